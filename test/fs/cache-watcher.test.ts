// The cache-folder watcher end to end on a real folder, with the cluster replaced by a fake: does
// every change made in the folder reach the namespace as exactly the operations it needs — one
// put for a new or changed file (with its mode bits and mtime), chunks for a large one, one rename
// for a moved file or folder, one delete or deleteFolder for what was removed, a folder for an
// empty one — and nothing for what did not change, nothing for a file still being written, nothing
// half-read? Method: real chokidar watches a temporary folder; the fake CacheTarget keeps an
// in-memory namespace (files with content, version, mode and mtime; folders; a version counter)
// and records every call, so each test asserts the exact list of calls. Tests wait with
// watcher.idle() and bounded polling; fixed waits appear only where the claim is that nothing
// (more) happens. Restarts reopen the LMDB index from disk, and a child process holds a file open
// for writing.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';
import t, { type Test } from 'tap';

import type { ChunkedPutOptions, SourceMetadata } from '../../src/actors/grpc-actor.js';
import type { CallContext, PutResult } from '../../src/api/backend.js';
import { DfsError, type DfsErrorCode } from '../../src/errors.js';
import { CacheIndex } from '../../src/fs/cache-index.js';
import { CacheWatcher, type CacheTarget, type CacheWatcherOptions } from '../../src/fs/cache-watcher.js';

const logger = pino({ level: 'silent' });
const chunkSizeBytes = 64 * 1024;

interface StoredFile {
  data: Buffer;
  version: number;
  modeBits: number;
  modifiedMilliseconds: number;
}

type Call =
  | { op: 'putFile'; key: string; data: Buffer; metadata: SourceMetadata }
  | { op: 'putChunked'; key: string; chunkSizes: number[]; metadata: SourceMetadata }
  | { op: 'delete' | 'deleteFolder'; key: string }
  | { op: 'rename'; key: string; to: string }
  | { op: 'makeFolder'; key: string; metadata: SourceMetadata };

function isUnder(path: string, folder: string): boolean {
  return path.startsWith(`${folder}/`);
}

/** An in-memory namespace with the state machine's rules, recording every call. */
class FakeTarget implements CacheTarget {
  readonly files = new Map<string, StoredFile>();
  readonly folders = new Set<string>();
  version = 0;
  calls: Call[] = [];
  /** Failures to throw before the next calls of an operation: op → codes, first first. */
  readonly failures = new Map<string, DfsErrorCode[]>();
  /** Runs in putChunked after the chunks are read and before beforeCommit. */
  beforeChunkedCommit: ((key: string) => void | Promise<void>) | null = null;

  fileVersion(key: string): number | null {
    return this.files.get(key)?.version ?? null;
  }

  async putFile(key: string, data: Uint8Array, metadata: SourceMetadata, _context: CallContext): Promise<PutResult> {
    this.calls.push({ op: 'putFile', key, data: Buffer.from(data), metadata: { ...metadata } });
    this.failIfAsked('putFile');
    return this.store(key, Buffer.from(data), metadata);
  }

  async putChunked(key: string, chunks: AsyncIterable<Uint8Array>, options: ChunkedPutOptions, _context: CallContext): Promise<PutResult> {
    const metadata = { modeBits: options.modeBits, modifiedMilliseconds: options.modifiedMilliseconds };
    const call: Call = { op: 'putChunked', key, chunkSizes: [], metadata };
    this.calls.push(call);
    this.failIfAsked('putChunked');
    const pieces: Buffer[] = [];
    for await (const chunk of chunks) {
      call.chunkSizes.push(chunk.byteLength);
      pieces.push(Buffer.from(chunk));
    }
    await this.beforeChunkedCommit?.(key);
    await options.beforeCommit?.();
    return this.store(key, Buffer.concat(pieces), metadata);
  }

  async delete(key: string, _context: CallContext): Promise<{ version: number }> {
    this.calls.push({ op: 'delete', key });
    this.failIfAsked('delete');
    if (this.files.delete(key)) return { version: ++this.version };
    if (this.folders.has(key)) {
      if ([...this.files.keys(), ...this.folders].some((path) => isUnder(path, key))) throw new DfsError('FailedPrecondition', `folder ${key} is not empty`);
      this.folders.delete(key);
      return { version: ++this.version };
    }
    throw new DfsError('KeyNotFound', `no file or folder ${key}`);
  }

  async deleteFolder(key: string, _context: CallContext): Promise<number> {
    this.calls.push({ op: 'deleteFolder', key });
    this.failIfAsked('deleteFolder');
    if (this.files.has(key)) throw new DfsError('FailedPrecondition', `${key} is a file`);
    const under = (path: string): boolean => path === key || isUnder(path, key);
    const found = [...this.files.keys(), ...this.folders].filter(under);
    if (found.length === 0) throw new DfsError('KeyNotFound', `no folder ${key}`);
    for (const path of found) {
      this.files.delete(path);
      this.folders.delete(path);
    }
    return ++this.version;
  }

  async rename(from: string, to: string, _context: CallContext): Promise<number> {
    this.calls.push({ op: 'rename', key: from, to });
    this.failIfAsked('rename');
    const version = ++this.version;
    const file = this.files.get(from);
    if (file !== undefined) {
      this.files.delete(from);
      this.files.set(to, { ...file, version });
      return version;
    }
    const moving = (path: string): boolean => path === from || isUnder(path, from);
    const movedFiles = [...this.files].filter(([path]) => moving(path));
    const movedFolders = [...this.folders].filter(moving);
    if (movedFiles.length === 0 && movedFolders.length === 0) throw new DfsError('KeyNotFound', `no file or folder ${from}`);
    for (const [path, stored] of movedFiles) {
      this.files.delete(path);
      this.files.set(to + path.slice(from.length), { ...stored, version });
    }
    for (const path of movedFolders) {
      this.folders.delete(path);
      this.folders.add(to + path.slice(from.length));
    }
    return version;
  }

  async makeFolder(key: string, metadata: SourceMetadata, _context: CallContext): Promise<number> {
    this.calls.push({ op: 'makeFolder', key, metadata: { ...metadata } });
    this.failIfAsked('makeFolder');
    if (this.files.has(key)) throw new DfsError('AlreadyExists', `a file exists at ${key}`);
    this.folders.add(key);
    return ++this.version;
  }

  /** The calls in short form: "putFile a.txt", "rename a -> b". */
  brief(): string[] {
    return this.calls.map((call) => (call.op === 'rename' ? `rename ${call.key} -> ${call.to}` : `${call.op} ${call.key}`));
  }

  private store(key: string, data: Buffer, metadata: SourceMetadata): PutResult {
    const version = ++this.version;
    this.files.set(key, { data, version, modeBits: metadata.modeBits, modifiedMilliseconds: metadata.modifiedMilliseconds });
    return { version, sizeBytes: data.byteLength };
  }

  private failIfAsked(op: string): void {
    const code = this.failures.get(op)?.shift();
    if (code !== undefined) throw new DfsError(code, `${op} failed on purpose (${code})`);
  }
}

/** Polls `condition` until it holds; fails the test after `timeoutMilliseconds`. */
async function waitFor(t: Test, what: string, condition: () => boolean, timeoutMilliseconds = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMilliseconds;
  while (!condition()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for ${what}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const pause = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

function temporaryFolder(t: Test, name: string): string {
  const folder = mkdtempSync(join(tmpdir(), `dfs-${name}-`));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

interface Setup {
  folder: string;
  target: FakeTarget;
  watcher: CacheWatcher;
  index: CacheIndex;
  /** Waits until `count` calls were made, then until the watcher is idle. */
  settle(what: string, count: number): Promise<void>;
}

async function startWatcher(
  t: Test,
  options: { folder?: string; target?: FakeTarget; index?: CacheIndex; watcher?: Partial<CacheWatcherOptions> } = {},
): Promise<Setup> {
  const folder = options.folder ?? temporaryFolder(t, 'cache');
  const target = options.target ?? new FakeTarget();
  const index = options.index ?? CacheIndex.inMemory();
  const watcher = new CacheWatcher({
    cacheFolder: folder,
    index,
    target,
    logger,
    chunkSizeBytes,
    stabilityMilliseconds: 50,
    settleMilliseconds: 20,
    deleteGraceMilliseconds: 300,
    ...options.watcher,
  });
  t.teardown(() => watcher.close());
  await watcher.start();
  await watcher.idle();
  const settle = async (what: string, count: number): Promise<void> => {
    await waitFor(t, what, () => target.calls.length >= count);
    await watcher.idle();
  };
  return { folder, target, watcher, index, settle };
}

t.test('a new file is put once, with its mode bits and mtime', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  writeFileSync(join(folder, 'a.txt'), 'hello');
  chmodSync(join(folder, 'a.txt'), 0o640);
  await settle('the put', 1);
  const stats = statSync(join(folder, 'a.txt'));
  t.same(target.brief(), ['putFile a.txt']);
  t.match(target.calls[0], { op: 'putFile', key: 'a.txt', data: Buffer.from('hello'), metadata: { modeBits: 0o640, modifiedMilliseconds: Math.floor(stats.mtimeMs) } });
  t.same(target.files.get('a.txt')?.data, Buffer.from('hello'));
});

t.test('repeated events for an unchanged file send nothing more; a change sends it again', async (t) => {
  const { folder, target, watcher, settle } = await startWatcher(t);
  const path = join(folder, 'a.txt');
  writeFileSync(path, 'one');
  // Whole seconds, so that setting them again below changes nothing (a Date has no microseconds).
  utimesSync(path, 1_700_000_000, 1_700_000_000);
  await settle('the first put', 1);
  t.match(target.calls[0], { metadata: { modifiedMilliseconds: 1_700_000_000_000 } });
  // Events without a change: the same times set again, the same mode set again.
  const stats = statSync(path);
  utimesSync(path, 1_700_000_000, 1_700_000_000);
  chmodSync(path, stats.mode & 0o7777);
  await pause(1_000);
  await watcher.idle();
  t.same(target.brief(), ['putFile a.txt'], 'no second put');
  writeFileSync(path, 'two, longer');
  await settle('the second put', 2);
  t.same(target.brief(), ['putFile a.txt', 'putFile a.txt']);
  t.same(target.files.get('a.txt')?.data, Buffer.from('two, longer'));
});

t.test('a file larger than a chunk streams as chunks', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  const content = Buffer.alloc(3 * chunkSizeBytes + 1234);
  for (let position = 0; position < content.length; position++) content[position] = (position * 7919) % 251;
  writeFileSync(join(folder, 'big.bin'), content);
  await settle('the chunked put', 1);
  t.same(target.brief(), ['putChunked big.bin']);
  const [call] = target.calls;
  t.ok(call?.op === 'putChunked' && call.chunkSizes.every((size) => size <= chunkSizeBytes), 'no chunk larger than chunkSizeBytes');
  t.ok(target.files.get('big.bin')?.data.equals(content), 'the bytes arrive unchanged');
});

t.test('a file open for writing by another process waits for its writer to finish', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  const path = join(folder, 'slow.log');
  const writer = spawn('sh', ['-c', `exec 3>'${path}'; echo part >&3; sleep 2; echo rest >&3`], { stdio: 'ignore' });
  t.teardown(() => writer.kill());
  const exited = once(writer, 'exit');
  await waitFor(t, 'the first line', () => {
    try {
      return statSync(path).size > 0;
    } catch {
      return false;
    }
  });
  await exited;
  t.same(target.calls, [], 'nothing was sent while the writer had it open');
  await settle('the put', 1);
  t.same(target.brief(), ['putFile slow.log']);
  t.same(target.files.get('slow.log')?.data.toString(), 'part\nrest\n', 'the complete content');
});

t.test('a file that changes while it is read is not committed; its final content is', async (t) => {
  const target = new FakeTarget();
  let changed = false;
  let folder = '';
  target.beforeChunkedCommit = (key) => {
    if (changed) return;
    changed = true;
    appendFileSync(join(folder, key), 'tail');
  };
  const setup = await startWatcher(t, { target });
  folder = setup.folder;
  const content = Buffer.alloc(chunkSizeBytes + 10, 1);
  writeFileSync(join(folder, 'grow.bin'), content);
  await setup.settle('two chunked puts', 2);
  t.same(target.brief(), ['putChunked grow.bin', 'putChunked grow.bin']);
  t.ok(target.files.get('grow.bin')?.data.equals(Buffer.concat([content, Buffer.from('tail')])), 'only the final content was committed');
  t.equal(setup.watcher.counters.abandonedUploads, 1);
  t.equal(setup.watcher.counters.uploads, 1);
});

t.test('a renamed file is one rename', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  writeFileSync(join(folder, 'a.txt'), 'content');
  await settle('the put', 1);
  target.calls = [];
  renameSync(join(folder, 'a.txt'), join(folder, 'b.txt'));
  await settle('the rename', 1);
  await pause(500);
  t.same(target.brief(), ['rename a.txt -> b.txt']);
  t.same(target.files.get('b.txt')?.data, Buffer.from('content'));
  t.notOk(target.files.has('a.txt'));
});

t.test('a renamed folder with files is one rename: no uploads, no deletions', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  mkdirSync(join(folder, 'd/sub'), { recursive: true });
  writeFileSync(join(folder, 'd/x.txt'), 'x');
  writeFileSync(join(folder, 'd/sub/y.txt'), 'y');
  await settle('folders and puts', 4);
  t.same(target.brief().sort(), ['makeFolder d', 'makeFolder d/sub', 'putFile d/sub/y.txt', 'putFile d/x.txt']);
  target.calls = [];
  renameSync(join(folder, 'd'), join(folder, 'e'));
  await settle('the rename', 1);
  await pause(500);
  t.same(target.brief(), ['rename d -> e']);
  t.same([...target.files.keys()].sort(), ['e/sub/y.txt', 'e/x.txt']);
});

t.test('a removed file is deleted; a removed folder is one deleteFolder', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  mkdirSync(join(folder, 'd/sub'), { recursive: true });
  writeFileSync(join(folder, 'd/x.txt'), 'x');
  writeFileSync(join(folder, 'd/sub/y.txt'), 'y');
  writeFileSync(join(folder, 'lone.txt'), 'z');
  await settle('folders and puts', 5);
  target.calls = [];
  rmSync(join(folder, 'lone.txt'));
  await settle('the delete', 1);
  t.same(target.brief(), ['delete lone.txt']);
  target.calls = [];
  rmSync(join(folder, 'd'), { recursive: true });
  await settle('the deleteFolder', 1);
  await pause(500);
  t.same(target.brief(), ['deleteFolder d']);
  t.same([...target.files.keys()], []);
  t.same([...target.folders], []);
});

t.test('an empty folder is made; a symbolic link is reported and not sent', async (t) => {
  const { folder, target, watcher, settle } = await startWatcher(t);
  mkdirSync(join(folder, 'empty'), { mode: 0o750 });
  await settle('the folder', 1);
  t.match(target.calls, [{ op: 'makeFolder', key: 'empty', metadata: { modeBits: 0o750 } }]);
  target.calls = [];
  symlinkSync('/etc/hostname', join(folder, 'link'));
  await waitFor(t, 'the report', () => watcher.problems().has('link'));
  await watcher.idle();
  await pause(300);
  t.match(watcher.problems().get('link'), /symbolic links/);
  t.same(target.calls, []);
});

t.test('a file replaced by a folder: the file is deleted, the folder made', async (t) => {
  const { folder, target, settle } = await startWatcher(t);
  writeFileSync(join(folder, 'x'), 'file');
  await settle('the put', 1);
  target.calls = [];
  rmSync(join(folder, 'x'));
  mkdirSync(join(folder, 'x'));
  await settle('the delete and the folder', 2);
  t.same(target.brief(), ['delete x', 'makeFolder x']);
  t.ok(target.folders.has('x'));
  t.notOk(target.files.has('x'));
});

t.test('a transient failure is retried until it succeeds', async (t) => {
  const target = new FakeTarget();
  target.failures.set('putFile', ['Unavailable']);
  const { folder, watcher, settle } = await startWatcher(t, { target });
  writeFileSync(join(folder, 'a.txt'), 'content');
  await settle('the failed and the retried put', 2);
  t.same(target.brief(), ['putFile a.txt', 'putFile a.txt']);
  t.same(target.files.get('a.txt')?.data, Buffer.from('content'));
  t.equal(watcher.counters.uploads, 1);
  t.same([...watcher.problems()], []);
});

t.test('a restart sends only what changed while the node was down', async (t) => {
  const folder = temporaryFolder(t, 'cache');
  const indexFolder = join(temporaryFolder(t, 'index'), 'cache-index');
  const target = new FakeTarget();
  const first = await startWatcher(t, { folder, target, index: CacheIndex.open(indexFolder, folder) });
  for (const name of ['same.txt', 'changed.txt', 'removed.txt', 'overwritten.txt', 'moved.txt', 'before-rename.txt']) writeFileSync(join(folder, name), name);
  await first.settle('six puts', 6);
  renameSync(join(folder, 'before-rename.txt'), join(folder, 'renamed-live.txt'));
  await first.settle('the live rename', 7);
  await first.watcher.close();
  await first.index.close();

  // While the node is down: edits here, and a newer write of overwritten.txt from another node.
  writeFileSync(join(folder, 'changed.txt'), 'changed while down');
  rmSync(join(folder, 'removed.txt'));
  rmSync(join(folder, 'overwritten.txt'));
  rmSync(join(folder, 'renamed-live.txt'));
  renameSync(join(folder, 'moved.txt'), join(folder, 'moved-down.txt'));
  target.files.set('overwritten.txt', { data: Buffer.from('newer'), version: ++target.version, modeBits: 0o644, modifiedMilliseconds: 1 });
  target.calls = [];

  const index = CacheIndex.open(indexFolder, folder);
  t.teardown(() => index.close());
  t.equal(index.size, 6, 'the index was kept on disk');
  const second = await startWatcher(t, { folder, target, index });
  await second.settle('the changes', 4);
  await pause(500);
  t.same(target.brief().sort(), ['delete removed.txt', 'delete renamed-live.txt', 'putFile changed.txt', 'rename moved.txt -> moved-down.txt']);
  t.same(target.files.get('overwritten.txt')?.data, Buffer.from('newer'), 'no delete of a file another node wrote since');
  t.same(target.files.get('changed.txt')?.data, Buffer.from('changed while down'));
  t.notOk(target.calls.some((call) => call.key === 'same.txt'), 'the unchanged file is not sent again');
});

t.test('the index keeps paths longer than an LMDB key', async (t) => {
  const indexFolder = join(temporaryFolder(t, 'index'), 'cache-index');
  const long = Array.from({ length: 12 }, (_, position) => `${position}`.padEnd(200, 'x')).join('/');
  const first = CacheIndex.open(indexFolder, '/cache');
  first.set(long, { kind: 'file', device: 1, inode: 2, sizeBytes: 3, modifiedMilliseconds: 4.5, modeBits: 0o644, version: 6 });
  first.set('short', { kind: 'folder', device: 1, inode: 3, modeBits: 0o755, version: 7 });
  await first.close();
  const second = CacheIndex.open(indexFolder, '/cache');
  t.same(second.get(long), { kind: 'file', device: 1, inode: 2, sizeBytes: 3, modifiedMilliseconds: 4.5, modeBits: 0o644, version: 6 });
  t.equal(second.pathOfInode(1, 2), long);
  second.delete(long);
  await second.close();
  const third = CacheIndex.open(indexFolder, '/cache');
  t.same([...third.paths()], ['short']);
  await third.close();
  // Another cache folder: the old entries mean nothing there.
  const other = CacheIndex.open(indexFolder, '/elsewhere');
  t.equal(other.size, 0);
  await other.close();
});

t.test('a file removed before it was sent is removed from the namespace too', async (t) => {
  // As after a lost index: the namespace holds the path from before, the cache folder has the file
  // again, and the file goes before this run sends it.
  const target = new FakeTarget();
  await target.putFile('old.txt', Buffer.from('from before'), { modeBits: 0o644, modifiedMilliseconds: 1 }, { signal: new AbortController().signal, deadlineUnixMilliseconds: Number.POSITIVE_INFINITY });
  target.calls = [];
  const { folder } = await startWatcher(t, { target, watcher: { stabilityMilliseconds: 5_000 } });
  writeFileSync(join(folder, 'old.txt'), 'seen, not sent yet');
  await pause(600);
  rmSync(join(folder, 'old.txt'));
  await waitFor(t, 'the delete', () => target.calls.length >= 1);
  await pause(300);
  t.same(target.brief(), ['delete old.txt'], 'deleted, never put');
  t.notOk(target.files.has('old.txt'));
});

t.test('queueLength counts the paths waiting and the uploads under way, and drains to zero', async (t) => {
  // putFile waits for the gate: the first file stays in flight, the second waits for the one slot.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  class GatedTarget extends FakeTarget {
    override async putFile(key: string, data: Uint8Array, metadata: SourceMetadata, context: CallContext): Promise<PutResult> {
      await gate;
      return super.putFile(key, data, metadata, context);
    }
  }
  const target = new GatedTarget();
  const { folder, watcher, settle } = await startWatcher(t, { target, watcher: { maxConcurrentUploads: 1 } });
  t.same(watcher.queueLength, { queued: 0, inFlight: 0 }, 'idle: nothing waits');
  writeFileSync(join(folder, 'a.txt'), 'first');
  await waitFor(t, 'a.txt in flight', () => watcher.queueLength.inFlight === 1);
  writeFileSync(join(folder, 'b.txt'), 'second');
  await waitFor(t, 'b.txt queued behind it', () => watcher.queueLength.queued === 1);
  t.same(watcher.queueLength, { queued: 1, inFlight: 1 }, 'one uploading, one waiting for the slot');
  t.same(target.calls, [], 'nothing sent yet');
  open();
  await settle('both puts', 2);
  t.same(target.brief().sort(), ['putFile a.txt', 'putFile b.txt']);
  t.same(watcher.queueLength, { queued: 0, inFlight: 0 }, 'drained');
});
