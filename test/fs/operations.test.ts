// The read-only file system's operations, without a kernel: every answer the mount gives, checked
// against a real StateReader on a state store in a temporary folder. Method: a state machine in
// this process applies puts, chunked commits, mkdirs, deletes and renames; the operations are
// called as libfuse would call them (absolute paths, flags, handles, libfuse-sized buffers) and
// compared with what was written — attributes (mode, size, times, owner, blocks) of files and of
// explicit, implied and root folders; listings in order with each entry's type, across listing
// pages and up to the entry limit; reads by range across chunk boundaries and past the end; a
// handle that reads its path's current version, and fails with EIO once the file is gone; the
// mtime reported to libfuse, which must change with every version even when size and millisecond
// mtime do not (what auto_cache compares), stay put while the version does, and stay safe beyond
// the bound on remembered files; EROFS for every write, both from the operations and from the
// fuse-native callbacks that mount.ts wires; paths that could escape ('..', NUL, empty names)
// refused; and the errno table.

import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';

import { pino } from 'pino';
import t, { type Test } from 'tap';

import { DfsError, type DfsErrorCode } from '../../src/errors.js';
import { errnoFor, errnoOf, FileSystemError, type Condition } from '../../src/fs/errno.js';
import { fuseOperations } from '../../src/fs/mount.js';
import { fileBlockBytes, ReadOnlyFileSystem, writeOperations, type OperationsOptions } from '../../src/fs/operations.js';
import { keyOfPath } from '../../src/fs/paths.js';
import { chunkHash } from '../../src/store/commands.js';
import { openFixture, pseudoRandomBytes, type CommandInput, type Fixture } from '../store/state-helpers.js';

const { errno } = osConstants;
const impliedFolderMilliseconds = 1_650_000_000_000;
const options: OperationsOptions = { uid: 1234, gid: 5678, impliedFolderMilliseconds, storedBytes: () => 10 * 4096 + 1 };

const put = (key: string, content: string | Uint8Array, modeBits = 0o644, modifiedMilliseconds = 1_700_000_000_123): CommandInput => ({
  type: 'put',
  key,
  data: typeof content === 'string' ? Buffer.from(content) : content,
  modeBits,
  modifiedMilliseconds,
});

/** The errno `call` fails with (negative); a test failure if it succeeds. */
function failure(call: () => unknown): number {
  try {
    call();
  } catch (error) {
    return errnoOf(error).errno;
  }
  throw new Error('expected the operation to fail');
}

function setUp(t: Test, label: string, extra: Partial<OperationsOptions> = {}): { fixture: Fixture; fileSystem: ReadOnlyFileSystem } {
  const fixture = openFixture(`fs-${label}`);
  t.teardown(fixture.close);
  return { fixture, fileSystem: new ReadOnlyFileSystem(fixture.reader, { ...options, ...extra }) };
}

/** Reads a whole file through open/read/release with libfuse-sized reads. */
function readAll(fileSystem: ReadOnlyFileSystem, path: string, readBytes = 128 * 1024): Buffer {
  const handle = fileSystem.open(path, fsConstants.O_RDONLY);
  const pieces: Buffer[] = [];
  for (let position = 0; ; ) {
    const buffer = Buffer.alloc(readBytes);
    const count = fileSystem.read(handle, buffer, readBytes, position);
    if (count === 0) break;
    pieces.push(buffer.subarray(0, count));
    position += count;
  }
  fileSystem.release(handle);
  return Buffer.concat(pieces);
}

t.test('getattr: files, explicit and implied folders, the root', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'getattr');
  fixture.run(put('docs/readme.md', 'hello, world', 0o640, 1_700_000_000_123));
  fixture.run({ type: 'mkdir', key: 'empty', modeBits: 0o750, modifiedMilliseconds: 1_600_000_000_000 });
  fixture.run(put('setuid', 'x', 0o4755));

  const file = fileSystem.getattr('/docs/readme.md');
  t.same(file, {
    mode: fsConstants.S_IFREG | 0o640,
    uid: 1234,
    gid: 5678,
    size: 12,
    nlink: 1,
    blksize: fileBlockBytes,
    blocks: 1,
    atime: 1_700_000_000_123,
    mtime: 1_700_000_000_123,
    ctime: 1_700_000_000_123,
  });
  t.equal(fileSystem.getattr('/setuid').mode, fsConstants.S_IFREG | 0o4755, 'all 12 mode bits are carried');

  const implied = fileSystem.getattr('/docs');
  t.equal(implied.mode, fsConstants.S_IFDIR | 0o755, 'a folder implied by its files is 0755');
  t.equal(implied.mtime, impliedFolderMilliseconds);
  t.equal(implied.nlink, 1, 'sub-folders are not counted (1 tells find/fts so)');
  const explicit = fileSystem.getattr('/empty');
  t.equal(explicit.mode, fsConstants.S_IFDIR | 0o750, 'an explicit folder has the mode mkdir recorded');
  t.equal(explicit.mtime, 1_600_000_000_000);
  const root = fileSystem.getattr('/');
  t.equal(root.mode, fsConstants.S_IFDIR | 0o755, 'the root is a 0755 folder');
  t.equal(root.uid, 1234);

  t.equal(failure(() => fileSystem.getattr('/missing')), -errno.ENOENT);
  t.equal(failure(() => fileSystem.getattr('/docs/readme.md/below')), -errno.ENOENT, 'nothing is below a file');
  t.equal(failure(() => fileSystem.getattr('/doc')), -errno.ENOENT, 'a prefix of a folder name is not a folder');

  const big = pseudoRandomBytes(1_000_001, 5);
  fixture.run(put('big', big));
  t.equal(fileSystem.getattr('/big').blocks, Math.ceil(1_000_001 / 512), 'blocks count 512-byte units (du)');
});

t.test('getattr sees every applied change at once', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'getattr-change');
  fixture.run(put('a', 'one'));
  t.equal(fileSystem.getattr('/a').size, 3);
  fixture.run(put('a', 'three', 0o600, 5));
  t.match(fileSystem.getattr('/a'), { size: 5, mode: fsConstants.S_IFREG | 0o600, mtime: 5 });
  fixture.run({ type: 'rename', requestId: '', from: 'a', to: 'b' } as CommandInput);
  t.equal(failure(() => fileSystem.getattr('/a')), -errno.ENOENT);
  t.equal(fileSystem.getattr('/b').size, 5);
  fixture.run({ type: 'delete', key: 'b' });
  t.equal(failure(() => fileSystem.getattr('/b')), -errno.ENOENT);
});

t.test('readdir: names in order with their types, . and .., errors', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'readdir');
  fixture.run(put('top.txt', 'x'));
  fixture.run(put('docs/b.txt', 'bb'));
  fixture.run(put('docs/a.txt', 'a'));
  fixture.run(put('docs/sub/deep/file', 'deep'));
  fixture.run({ type: 'mkdir', key: 'docs/empty', modeBits: 0o700, modifiedMilliseconds: 7 });
  fixture.run(put('docs.txt', 'sorts after docs/'));

  const root = fileSystem.readdir('/');
  t.same(root.names, ['.', '..', 'docs.txt', 'docs', 'top.txt'], 'in key order, a folder sorting as its name and /');
  t.equal(root.attributes.length, root.names.length, 'one attribute set per name');
  const docs = fileSystem.readdir('/docs');
  t.same(docs.names, ['.', '..', 'a.txt', 'b.txt', 'empty', 'sub']);
  const types = docs.attributes.map((attributes) => ((attributes.mode & fsConstants.S_IFMT) === fsConstants.S_IFDIR ? 'd' : 'f'));
  t.same(types, ['d', 'd', 'f', 'f', 'd', 'd']);
  t.equal(docs.attributes[3]?.size, 2, 'entries carry their attributes');
  t.equal(docs.attributes[4]?.mode, fsConstants.S_IFDIR | 0o700);
  t.same(fileSystem.readdir('/docs/empty').names, ['.', '..'], 'an explicit empty folder lists nothing');

  t.equal(failure(() => fileSystem.readdir('/top.txt')), -errno.ENOTDIR);
  t.equal(failure(() => fileSystem.readdir('/nothing')), -errno.ENOENT);
});

t.test('readdir pages through a folder bigger than one listing page, up to its limit', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'readdir-big', { maxFolderEntries: 25_000 });
  const names = Array.from({ length: 25_000 }, (_, number) => `f${String(number).padStart(5, '0')}`);
  for (let start = 0; start < names.length; start += 5000) {
    fixture.machine.apply(names.slice(start, start + 5000).map((name) => fixture.log.command(put(`big/${name}`, ''))));
  }
  const listing = fileSystem.readdir('/big');
  t.equal(listing.names.length, 25_002);
  t.same(listing.names.slice(2), names, 'every name, in order, across three pages');
  fixture.run(put('big/one-too-many', ''));
  t.equal(failure(() => fileSystem.readdir('/big')), -errno.EIO, 'a folder past the limit is an error, not a silent cut');
});

t.test('open and read: ranges across chunks, the end of the file, handles', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'read');
  // A file of uneven chunks through putChunk/commitFile, as the watcher uploads large files.
  const pieces = [pseudoRandomBytes(300_000, 1), pseudoRandomBytes(1_048_576, 2), pseudoRandomBytes(77_777, 3)];
  for (const data of pieces) fixture.run({ type: 'putChunk', data });
  const content = Buffer.concat(pieces);
  fixture.run({ type: 'commitFile', key: 'chunked.bin', chunks: pieces.map(chunkHash), sizeBytes: content.length, modeBits: 0o644, modifiedMilliseconds: 1 });
  fixture.run(put('empty', ''));

  t.ok(readAll(fileSystem, '/chunked.bin').equals(content), 'the whole file in 128 KiB reads');
  t.ok(readAll(fileSystem, '/chunked.bin', 4096).equals(content), 'and in 4 KiB reads');
  t.equal(readAll(fileSystem, '/empty').length, 0, 'an empty file reads as nothing');

  const handle = fileSystem.open('/chunked.bin', fsConstants.O_RDONLY);
  const buffer = Buffer.alloc(100_000);
  for (const position of [0, 299_990, 1_348_570, content.length - 10]) {
    const count = fileSystem.read(handle, buffer, buffer.length, position);
    t.equal(count, Math.min(buffer.length, content.length - position), `count at ${position}`);
    t.ok(buffer.subarray(0, count).equals(content.subarray(position, position + count)), `bytes at ${position}, across a chunk boundary`);
  }
  t.equal(fileSystem.read(handle, buffer, buffer.length, content.length), 0, 'nothing at the end');
  t.equal(fileSystem.read(handle, buffer, buffer.length, content.length + 5000), 0, 'nothing past the end');
  t.equal(fileSystem.read(handle, buffer, 10, 0), 10, 'no more than asked');

  const second = fileSystem.open('/chunked.bin', fsConstants.O_RDONLY);
  t.not(second, handle, 'each open has its own handle');
  t.ok(second > 0 && second <= 0x7fff_ffff, 'a non-zero int32');
  t.equal(fileSystem.openFileCount, 2);
  fileSystem.release(handle);
  fileSystem.release(second);
  t.equal(fileSystem.openFileCount, 0);
  t.equal(failure(() => fileSystem.read(handle, buffer, 10, 0)), -errno.EBADF, 'a released handle reads nothing');
  t.equal(failure(() => fileSystem.release(handle)), -errno.EBADF);

  t.equal(failure(() => fileSystem.open('/missing', fsConstants.O_RDONLY)), -errno.ENOENT);
  t.equal(failure(() => fileSystem.open('/', fsConstants.O_RDONLY)), -errno.EISDIR);
  fixture.run(put('folder/file', 'x'));
  t.equal(failure(() => fileSystem.open('/folder', fsConstants.O_RDONLY)), -errno.EISDIR);
});

t.test('a handle reads the current version of its path, and fails once the file is gone', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'versions');
  const first = pseudoRandomBytes(3 * 1024 * 1024, 11);
  const second = pseudoRandomBytes(3 * 1024 * 1024, 12); // same size, same mtime below
  fixture.run(put('file', first, 0o644, 42));
  const handle = fileSystem.open('/file', fsConstants.O_RDONLY);
  const buffer = Buffer.alloc(128 * 1024);
  t.equal(fileSystem.read(handle, buffer, buffer.length, 0), buffer.length);
  t.ok(buffer.equals(first.subarray(0, buffer.length)));

  // The kernel's page cache is shared by every handle of the file: a page read through the old
  // handle after the change must be of the new version, or a later open could be served it.
  fixture.run(put('file', second, 0o644, 42));
  t.equal(fileSystem.read(handle, buffer, buffer.length, buffer.length), buffer.length);
  t.ok(buffer.equals(second.subarray(buffer.length, 2 * buffer.length)), 'the old handle reads the new version');
  t.ok(readAll(fileSystem, '/file').equals(second), 'so does a new open');
  fixture.run(put('file', 'short'));
  t.equal(fileSystem.read(handle, buffer, buffer.length, 0), 5, 'and the new size');
  t.equal(fileSystem.read(handle, buffer, buffer.length, 1024 * 1024), 0, 'nothing past the new end');
  fileSystem.release(handle);

  const before = fileSystem.open('/file', fsConstants.O_RDONLY);
  fixture.run({ type: 'delete', key: 'file' });
  t.equal(failure(() => fileSystem.read(before, buffer, buffer.length, 0)), -errno.EIO, 'a removed file fails its open handles');
  fileSystem.release(before);

  fixture.run(put('moving', 'content'));
  const moving = fileSystem.open('/moving', fsConstants.O_RDONLY);
  fixture.run({ type: 'rename', from: 'moving', to: 'moved' });
  t.equal(failure(() => fileSystem.read(moving, buffer, buffer.length, 0)), -errno.EIO, 'so does a renamed one');
  t.equal(readAll(fileSystem, '/moved').toString(), 'content');
});

t.test('the reported mtime changes with every version, even when size and mtime do not', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'mtime');
  fixture.run(put('file', 'version 1', 0o644, 1_000));
  t.equal(fileSystem.getattr('/file').mtime, 1_000, 'the file\'s own mtime');
  t.equal(fileSystem.fgetattr('/file').mtime, 1_000, 'at open too: unchanged, so auto_cache keeps the cache');

  fixture.run(put('file', 'version 2', 0o644, 1_000));
  t.equal(fileSystem.readdir('/').attributes[2]?.mtime, 1_001, 'a listing shows what getattr will report');
  const bumped = fileSystem.getattr('/file');
  t.match(bumped, { size: 9, mtime: 1_001, atime: 1_001, ctime: 1_001 }, 'same size and mtime as reported before: 1 ms later');
  t.equal(fileSystem.getattr('/file').mtime, 1_001, 'and it stays so while the version does');
  t.equal(fileSystem.fgetattr('/file').mtime, 1_001);

  fixture.run(put('file', 'version 3', 0o644, 1_000));
  t.equal(fileSystem.getattr('/file').mtime, 1_000, 'the next same-size version differs from 1,001: its own mtime');
  fixture.run(put('file', 'version 4', 0o644, 1_001));
  t.equal(fileSystem.getattr('/file').mtime, 1_001, 'a real mtime change is reported as it is');
  fixture.run(put('file', 'version 5', 0o644, 1_001));
  t.equal(fileSystem.getattr('/file').mtime, 1_002);
  fixture.run(put('file', 'longer version 6', 0o644, 1_002));
  t.equal(fileSystem.getattr('/file').mtime, 1_002, 'a new size is a change by itself');

  // Versions that come and go between two reports: only the last report counts.
  fixture.run(put('file', 'version 7 .....', 0o644, 1_002));
  fixture.run(put('file', 'longer version 8', 0o644, 1_002));
  t.equal(fileSystem.getattr('/file').mtime, 1_003, 'the version changed since the last report (16 bytes, 1,002)');

  // A removed and re-created file is the same path to libfuse (and the kernel's inode).
  fixture.run({ type: 'delete', key: 'file' });
  t.equal(failure(() => fileSystem.getattr('/file')), -errno.ENOENT);
  fixture.run(put('file', 'longer version 9', 0o644, 1_003));
  t.equal(fileSystem.getattr('/file').mtime, 1_004);
  t.same(fileSystem.reportedFileCounts, { remembered: 1, forgotten: 0 });
  fileSystem.readdir('/');
  fixture.run(put('other', 'x'));
  fileSystem.readdir('/');
  t.same(fileSystem.reportedFileCounts, { remembered: 1, forgotten: 0 }, 'listings remember nothing (libfuse 2 keeps only the type)');
});

t.test('beyond the bound on remembered files, an open drops the cache instead of risking it', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'mtime-bound', { maxReportedFiles: 2 });
  for (const name of ['a', 'b']) fixture.run(put(name, name, 0o644, 5_000));
  t.equal(fileSystem.getattr('/a').mtime, 5_000);
  t.equal(fileSystem.getattr('/b').mtime, 5_000);
  t.equal(fileSystem.fgetattr('/a').mtime, 5_000, 'within the bound an open check repeats the report');
  t.same(fileSystem.reportedFileCounts, { remembered: 2, forgotten: 0 });

  // Reporting c forgets b, the least recently reported. b then changes with the same size and
  // mtime: with no memory of the last report, getattr cannot tell it must differ...
  fixture.run(put('c', 'c', 0o644, 5_000));
  t.equal(fileSystem.getattr('/c').mtime, 5_000);
  t.same(fileSystem.reportedFileCounts, { remembered: 2, forgotten: 1 });
  fixture.run(put('b', 'B', 0o644, 5_000));
  t.equal(fileSystem.getattr('/b').mtime, 5_000, 'no memory of b: its own mtime');
  // ...so the open check differs from that report, which makes auto_cache drop b's pages.
  t.equal(fileSystem.fgetattr('/b').mtime, 5_001, 'the open check of a file reported without memory differs');
  t.equal(fileSystem.getattr('/b').mtime, 5_001, 'and then stays put');
  t.equal(fileSystem.fgetattr('/b').mtime, 5_001, 'so the next open keeps the cache');
  fixture.run(put('b', 'b', 0o644, 5_000));
  t.equal(fileSystem.getattr('/b').mtime, 5_000, 'a later version is compared as usual');
  t.equal(fileSystem.fgetattr('/b').mtime, 5_000);
  t.throws(() => new ReadOnlyFileSystem(fixture.reader, { ...options, maxReportedFiles: 0 }), /maxReportedFiles/);
});

t.test('open limits: writes are refused, handles are bounded', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'open-limits', { maxOpenFiles: 3 });
  fixture.run(put('file', 'x'));
  for (const flags of [fsConstants.O_WRONLY, fsConstants.O_RDWR, fsConstants.O_RDONLY | fsConstants.O_TRUNC, fsConstants.O_WRONLY | fsConstants.O_APPEND]) {
    t.equal(failure(() => fileSystem.open('/file', flags)), -errno.EROFS, `flags ${flags.toString(8)}`);
  }
  const handles = [1, 2, 3].map(() => fileSystem.open('/file', fsConstants.O_RDONLY));
  t.equal(failure(() => fileSystem.open('/file', fsConstants.O_RDONLY)), -errno.ENFILE, 'one more than the limit');
  fileSystem.release(handles[0] as number);
  t.ok(fileSystem.open('/file', fsConstants.O_RDONLY) > 0, 'a released handle makes room');
});

t.test('every write operation answers EROFS', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'writes');
  fixture.run(put('file', 'x'));
  for (const operation of writeOperations) {
    t.equal(failure(() => fileSystem.refuseWrite(operation, '/file')), -errno.EROFS, operation);
  }
  t.equal(fileSystem.getattr('/file').size, 1, 'and nothing changed');
});

t.test('the fuse-native callbacks answer what the operations do', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'callbacks');
  fixture.run(put('dir/file', 'content'));
  const operations = fuseOperations(fileSystem, pino({ level: 'silent' }));

  const answer = <T>(call: (callback: (errno: number, value?: T) => void) => void): { errno: number; value: T | undefined } => {
    let result: { errno: number; value: T | undefined } | undefined;
    call((code, value) => (result = { errno: code, value }));
    if (result === undefined) throw new Error('the callback was not called synchronously');
    return result;
  };
  const number = (call: (callback: (value: number) => void) => void): number => {
    let result: number | undefined;
    call((value) => (result = value));
    if (result === undefined) throw new Error('the callback was not called synchronously');
    return result;
  };

  t.match(answer((callback) => operations.getattr?.('/dir/file', callback)), { errno: 0, value: { size: 7 } });
  t.match(answer((callback) => operations.fgetattr?.('/dir/file', 1, callback)), { errno: 0, value: { size: 7 } }, 'fgetattr: the open check of auto_cache');
  t.equal(answer((callback) => operations.fgetattr?.('/nothing', 1, callback)).errno, -errno.ENOENT);
  t.equal(answer((callback) => operations.getattr?.('/nothing', callback)).errno, -errno.ENOENT);
  t.equal(answer((callback) => operations.getattr?.('/a/../b', callback)).errno, -errno.EINVAL);
  let listed: readonly string[] | undefined;
  operations.readdir?.('/dir', (code, names, stats) => {
    t.equal(code, 0);
    t.equal(stats?.length, names?.length, 'names and stats of the same length (libfuse then knows the types)');
    listed = names;
  });
  t.same(listed, ['.', '..', 'file']);
  const opened = answer<number>((callback) => operations.open?.('/dir/file', fsConstants.O_RDONLY, callback));
  t.equal(opened.errno, 0);
  const handle = opened.value as number;
  const buffer = Buffer.alloc(16);
  t.equal(number((callback) => operations.read?.('/dir/file', handle, buffer, 16, 0, callback)), 7, 'read answers the byte count');
  t.equal(buffer.subarray(0, 7).toString(), 'content');
  t.equal(number((callback) => operations.read?.('/dir/file', 999, buffer, 16, 0, callback)), -errno.EBADF, 'or a negative errno');
  t.equal(answer((callback) => operations.release?.('/dir/file', handle, callback)).errno, 0);
  t.match(answer((callback) => operations.statfs?.('/', callback)), { errno: 0, value: { namemax: 255, bfree: 0, files: 1 } });

  const payload = Buffer.from('data');
  const writes: Record<string, () => number> = {
    write: () => number((callback) => operations.write?.('/dir/file', handle, payload, 4, 0, callback)),
    create: () => answer((callback) => operations.create?.('/new', 0o644, callback)).errno,
    truncate: () => answer((callback) => operations.truncate?.('/dir/file', 0, callback)).errno,
    ftruncate: () => answer((callback) => operations.ftruncate?.('/dir/file', handle, 0, callback)).errno,
    unlink: () => answer((callback) => operations.unlink?.('/dir/file', callback)).errno,
    rename: () => answer((callback) => operations.rename?.('/dir/file', '/other', callback)).errno,
    link: () => answer((callback) => operations.link?.('/dir/file', '/hard', callback)).errno,
    symlink: () => answer((callback) => operations.symlink?.('/dir/file', '/soft', callback)).errno,
    mkdir: () => answer((callback) => operations.mkdir?.('/made', 0o755, callback)).errno,
    rmdir: () => answer((callback) => operations.rmdir?.('/dir', callback)).errno,
    mknod: () => answer((callback) => operations.mknod?.('/node', 0o644, 0, callback)).errno,
    chmod: () => answer((callback) => operations.chmod?.('/dir/file', 0o600, callback)).errno,
    chown: () => answer((callback) => operations.chown?.('/dir/file', 0, 0, callback)).errno,
    utimens: () => answer((callback) => operations.utimens?.('/dir/file', 0, 0, callback)).errno,
    setxattr: () => answer((callback) => operations.setxattr?.('/dir/file', 'user.x', payload, 0, 0, callback)).errno,
    removexattr: () => answer((callback) => operations.removexattr?.('/dir/file', 'user.x', callback)).errno,
  };
  t.same(Object.keys(writes).sort(), [...writeOperations].sort(), 'every write operation is exercised');
  for (const [name, call] of Object.entries(writes)) t.equal(call(), -errno.EROFS, `${name} answers EROFS`);
  t.equal(fileSystem.getattr('/dir/file').size, 7, 'and nothing changed');
});

t.test('statfs: a full, read-only file system of the store size', async (t) => {
  const { fixture, fileSystem } = setUp(t, 'statfs');
  fixture.run(put('a', 'x'));
  fixture.run(put('b/c', 'y'));
  fixture.run({ type: 'mkdir', key: 'd', modeBits: 0o755, modifiedMilliseconds: 0 });
  t.same(fileSystem.statfs(), { bsize: 4096, frsize: 4096, blocks: 11, bfree: 0, bavail: 0, files: 3, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255 });
});

t.test('paths map to keys and nothing else: no escape', async (t) => {
  t.equal(keyOfPath('/'), '');
  t.equal(keyOfPath('/a'), 'a');
  t.equal(keyOfPath('/docs/é 漢字/🙂.txt'), 'docs/é 漢字/🙂.txt');
  t.equal(keyOfPath('/.hidden/..dots.../x.'), '.hidden/..dots.../x.', 'dots inside names are names');
  const invalid = ['', 'relative', '/..', '/../etc/passwd', '/a/../../b', '/a/./b', '/.', '//', '/a//b', '/a/', '/a\0b', '/\ud800'];
  for (const path of invalid) {
    t.equal(failure(() => keyOfPath(path)), -errno.EINVAL, JSON.stringify(path));
  }
  t.equal(failure(() => keyOfPath(`/${'n'.repeat(256)}`)), -errno.ENAMETOOLONG, 'a name over 255 bytes');
  t.equal(failure(() => keyOfPath(`/${'é'.repeat(128)}`)), -errno.ENAMETOOLONG, 'counted in UTF-8 bytes');
  t.equal(keyOfPath(`/${'n'.repeat(255)}`).length, 255);
  t.equal(failure(() => keyOfPath(`/${Array.from({ length: 17 }, () => 'n'.repeat(250)).join('/')}`)), -errno.ENAMETOOLONG, 'a path over 4096 bytes');

  const { fixture, fileSystem } = setUp(t, 'paths');
  fixture.run(put('inside', 'x'));
  t.equal(failure(() => fileSystem.getattr('/../inside')), -errno.EINVAL, 'no operation takes such a path');
  t.equal(failure(() => fileSystem.open('/./inside', fsConstants.O_RDONLY)), -errno.EINVAL);
  t.equal(failure(() => fileSystem.readdir('/..')), -errno.EINVAL);
});

t.test('the errno table', async (t) => {
  const expected: Record<Condition, number> = {
    ReadOnly: errno.EROFS,
    NotFound: errno.ENOENT,
    NotAFolder: errno.ENOTDIR,
    IsAFolder: errno.EISDIR,
    NameTooLong: errno.ENAMETOOLONG,
    InvalidPath: errno.EINVAL,
    RemovedSinceOpen: errno.EIO,
    BadHandle: errno.EBADF,
    TooManyOpenFiles: errno.ENFILE,
    KeyNotFound: errno.ENOENT,
    InvalidKey: errno.EINVAL,
    InvalidArgument: errno.EINVAL,
    TooLarge: errno.EIO,
    FailedPrecondition: errno.EIO,
    AlreadyExists: errno.EEXIST,
    NotLeader: errno.EIO,
    NoLeader: errno.EIO,
    Unavailable: errno.EIO,
    Timeout: errno.EIO,
    Compacted: errno.EIO,
    ResourceExhausted: errno.EIO,
    Internal: errno.EIO,
  };
  for (const [condition, value] of Object.entries(expected) as [Condition, number][]) {
    t.equal(errnoFor(condition), -value, condition);
  }
  t.same(errnoOf(new FileSystemError('ReadOnly', 'x')), { errno: -errno.EROFS, expected: true });
  t.same(errnoOf(new DfsError('KeyNotFound' satisfies DfsErrorCode, 'x')), { errno: -errno.ENOENT, expected: true });
  t.same(errnoOf(new TypeError('a bug')), { errno: -errno.EIO, expected: false }, 'anything else is EIO, and a fault');
  t.equal(errno.EROFS, 30, 'Linux numbers (what libfuse passes on)');
});
