// The read-only mount, really mounted: what a person sees through ordinary tools. Method: a state
// store in a temporary folder, written by a state machine in this test process (the one writer),
// is mounted by the FUSE child process (src/fs/fuse-process.ts, forked with an IPC channel as the
// supervisor will) on a temporary folder; then `ls -la`, `cat`, `stat`, `find`, `du`,
// `sha256sum` and `cmp` (of a multi-MiB file of uneven chunks) must agree with what was written;
// `touch`, `echo >`, `mkdir`, `rm`, `mv`, `chmod`, `ln` must fail with "Read-only file system";
// file contents are kept in the kernel's page cache (a second read is served without this
// process), yet changes applied to the state (same size and same millisecond mtime — which only
// the reported mtime bump of operations.ts tells apart —, resized, removed, created, renamed) must
// be seen by the very next command, with no cached page serving the old content or size; a handle
// opened before a change reads the new content once the file was opened again (or from pages not
// read before), and fails with EIO once its file is removed; SIGTERM must unmount
// (nothing left in /proc/mounts), a SIGKILL must leave no mount behind (auto_unmount), a stale
// mount must be cleaned up by the next start, and an unmount from outside must end the process
// with its "mount lost" code. With CI=true these tests run (and fail if FUSE is missing); without
// it they skip only when /dev/fuse or libfuse is missing, saying so.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { fuseExitCodes } from '../../src/fs/fuse-contract.js';
import { chunkHash } from '../../src/store/commands.js';
import type { StateMachine } from '../../src/store/state-machine.js';
import { LogBuilder, openMachine, pseudoRandomBytes, removeFolder, temporaryFolder, type CommandInput } from '../store/state-helpers.js';
import { inProcMounts, mountSkipReason, runCommand, startFuseProcess, stopFuseProcess, waitFor, type FuseProcess } from './fuse-helpers.js';

const mebibyte = 1024 * 1024;
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

const skipReason = mountSkipReason();
if (skipReason !== null) {
  t.comment(`skipping the mount tests: ${skipReason}`);
  t.plan(0, skipReason);
} else {
  await mountTests();
}

async function mountTests(): Promise<void> {
  const root = temporaryFolder('fuse-mount');
  const stateFolder = path.join(root, 'state');
  const mountPoint = path.join(root, 'mnt');
  const localCopy = path.join(root, 'big.local');
  fs.mkdirSync(stateFolder);
  const machine: StateMachine = openMachine(stateFolder);
  const log = new LogBuilder();
  const apply = (...inputs: CommandInput[]): void => {
    for (const result of machine.apply(inputs.map((input) => log.command(input)))) {
      if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
    }
  };
  const put = (key: string, content: string | Uint8Array, modeBits = 0o644, modifiedMilliseconds = 1_700_000_000_123): CommandInput => ({
    type: 'put',
    key,
    data: typeof content === 'string' ? Buffer.from(content) : content,
    modeBits,
    modifiedMilliseconds,
  });

  let fuse: FuseProcess | undefined;
  t.teardown(async () => {
    await stopFuseProcess(fuse, mountPoint);
    await machine.close();
    removeFolder(root);
  });

  // The namespace: files at several depths with their own modes and times, an explicit empty
  // folder, a non-ASCII name, and a large file uploaded as uneven chunks (as the watcher will).
  const chunks = [pseudoRandomBytes(3 * mebibyte + 17, 1), pseudoRandomBytes(4 * mebibyte, 2), pseudoRandomBytes(2 * mebibyte - 5, 3)];
  const big = Buffer.concat(chunks);
  fs.writeFileSync(localCopy, big);
  apply(
    put('hello.txt', 'hello, world', 0o644, 1_700_000_000_123),
    put('docs/readme.md', '# read me\n', 0o600, 1_600_000_000_000),
    put('docs/sub/deep.txt', 'deep', 0o755, 1_650_000_000_000),
    put('unicode/é 漢字 🙂.txt', 'ünïcödé'),
    { type: 'mkdir', key: 'empty', modeBits: 0o750, modifiedMilliseconds: 1_500_000_000_000 },
    ...chunks.map((data): CommandInput => ({ type: 'putChunk', data })),
    { type: 'commitFile', key: 'big.bin', chunks: chunks.map(chunkHash), sizeBytes: big.length, modeBits: 0o644, modifiedMilliseconds: 1_700_000_000_000 },
  );
  const at = (key: string): string => path.join(mountPoint, key);

  t.test('mounts and says so in one line', async (t) => {
    fuse = startFuseProcess({ stateFolder, mountPoint });
    const message = await fuse.mounted;
    t.equal(message.type, 'mounted');
    t.ok(inProcMounts(mountPoint), 'listed in /proc/mounts');
    const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((entry) => entry.split(' ')[1] === mountPoint) ?? '';
    t.match(line, /^dfs \S+ fuse\.dfs ro,/, 'as dfs, type fuse.dfs, read-only');
    const running = fuse;
    t.ok(await waitFor(() => /mounted the replicated state read-only at/.test(running.output()), 5000), 'the log line (stdout may trail the IPC message)');
  });

  t.test('ls, cat, stat, find and du see what was written', async (t) => {
    const listing = await runCommand('ls', ['-la', mountPoint]);
    t.equal(listing.code, 0, listing.stderr);
    const line = (name: string): string => listing.stdout.split('\n').find((entry) => entry.endsWith(` ${name}`)) ?? '';
    t.match(line('hello.txt'), /^-rw-r--r-- 1 \S+ \S+ +12 /);
    t.match(line('big.bin'), new RegExp(`^-rw-r--r-- 1 \\S+ \\S+ +${big.length} `));
    t.match(line('docs'), /^drwxr-xr-x /);
    t.match(line('empty'), /^drwxr-x--- /);
    t.match(line('.'), /^drwxr-xr-x /);
    t.match(line('..'), /^d/);

    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'hello, world');
    t.equal((await runCommand('cat', [at('unicode/é 漢字 🙂.txt')])).stdout, 'ünïcödé');
    t.equal((await runCommand('cat', [at('docs/sub/deep.txt')])).stdout, 'deep');

    const stat = await runCommand('stat', ['-c', '%s %a %F %h %u %g|%y', at('docs/readme.md')]);
    t.equal(stat.code, 0, stat.stderr);
    const [fields, modified] = stat.stdout.trim().split('|');
    t.equal(fields, `10 600 regular file 1 ${process.getuid?.() ?? 0} ${process.getgid?.() ?? 0}`, 'size, mode, type, links, owner');
    t.match(modified, /^2020-09-13 12:26:40\.000000000/, 'mtime from the source (1,600,000,000,000 ms, UTC)');
    const millisecond = await runCommand('stat', ['-c', '%y', at('hello.txt')]);
    t.match(millisecond.stdout, /\.123000000 /, 'to the millisecond');
    const folder = await runCommand('stat', ['-c', '%F %a', at('empty')]);
    t.equal(folder.stdout.trim(), 'directory 750');

    const found = await runCommand('find', [mountPoint]);
    t.equal(found.code, 0, found.stderr);
    const relative = found.stdout
      .trim()
      .split('\n')
      .map((entry) => path.relative(mountPoint, entry))
      .sort();
    t.same(relative, ['', 'big.bin', 'docs', 'docs/readme.md', 'docs/sub', 'docs/sub/deep.txt', 'empty', 'hello.txt', 'unicode', 'unicode/é 漢字 🙂.txt'].sort(), 'find walks every folder');
    const files = await runCommand('find', [mountPoint, '-type', 'f']);
    t.equal(files.stdout.trim().split('\n').length, 5, 'and tells files from folders');

    const apparent = await runCommand('du', ['-sb', mountPoint]);
    const fileBytes = big.length + 12 + 10 + 4 + Buffer.byteLength('ünïcödé');
    t.equal(apparent.stdout.split('\t')[0], String(fileBytes + 5 * 4096), 'du -sb: the files plus 4096 per folder (5 with the root)');
    const usage = await runCommand('du', ['-k', at('big.bin')]);
    t.equal(usage.stdout.split('\t')[0], String(Math.ceil(big.length / 1024)), 'du counts the blocks of a file');
    const statfs = await runCommand('df', ['-P', mountPoint]);
    t.equal(statfs.code, 0, statfs.stderr);
    t.match(statfs.stdout, /\ndfs /, 'df shows the mount');
  });

  t.test('a multi-MiB file reads back byte for byte', async (t) => {
    const sum = await runCommand('sha256sum', [at('big.bin')]);
    t.equal(sum.stdout.split(' ')[0], sha256(big), 'sha256sum');
    const compare = await runCommand('cmp', [at('big.bin'), localCopy]);
    t.equal(compare.code, 0, `cmp: ${compare.stdout}${compare.stderr}`);
    const tail = await runCommand('tail', ['-c', '1000', at('big.bin')], { encoding: 'buffer' });
    t.equal(tail.code, 0);
    const read = fs.readFileSync(at('big.bin'));
    t.ok(read.equals(big), 'and through Node');
  });

  t.test('every write fails with "Read-only file system"', async (t) => {
    const attempts: [string, string[]][] = [
      ['touch', [at('new-file')]],
      ['sh', ['-c', `echo changed > '${at('hello.txt')}'`]],
      ['sh', ['-c', `echo more >> '${at('hello.txt')}'`]],
      ['mkdir', [at('new-folder')]],
      ['rm', [at('hello.txt')]],
      ['rmdir', [at('empty')]],
      ['mv', [at('hello.txt'), at('moved.txt')]],
      ['cp', [localCopy, at('copy.bin')]],
      ['chmod', ['600', at('hello.txt')]],
      ['ln', ['-s', 'hello.txt', at('link')]],
      ['truncate', ['-s', '0', at('hello.txt')]],
    ];
    for (const [program, args] of attempts) {
      const result = await runCommand(program, args);
      t.not(result.code, 0, `${program} ${args.join(' ')} fails`);
      t.match(result.stderr, /Read-only file system/, `${program}: ${result.stderr.trim()}`);
    }
    t.throws(() => fs.writeFileSync(at('hello.txt'), 'x'), { code: 'EROFS' }, 'and through Node');
    t.throws(() => fs.openSync(at('hello.txt'), 'r+'), { code: 'EROFS' });
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'hello, world', 'nothing changed');
    t.notOk(fs.existsSync(at('new-file')));
  });

  t.test('file contents stay in the page cache while they do not change', async (t) => {
    const running = fuse as FuseProcess;
    const fuseTicks = (): number => {
      const fields = fs.readFileSync(`/proc/${running.child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return Number(fields[11]) + Number(fields[12]); // utime + stime
    };
    t.ok(fs.readFileSync(at('big.bin')).equals(big), 'read once');
    const before = fuseTicks();
    for (let round = 0; round < 20; round++) fs.readFileSync(at('big.bin'));
    // 20 × 9 MiB through this process would take far more CPU than 20 opens and getattrs.
    t.ok(fuseTicks() - before < 100, `180 MiB read again cost the FUSE process ${fuseTicks() - before} ticks: served from the page cache`);
  });

  t.test('a change applied to the state is seen by the next command, never a stale page', async (t) => {
    // An open handle of the first version, read partly (its pages, and the readahead, are cached).
    const handle = fs.openSync(at('hello.txt'), 'r');
    t.teardown(() => fs.closeSync(handle));
    const start = Buffer.alloc(5);
    fs.readSync(handle, start, 0, 5, 0);
    t.equal(start.toString(), 'hello');
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'hello, world', 'read once, so the page cache holds it');
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'hello, world', 'and again, kept by auto_cache');

    // Same size, same millisecond mtime: only the version tells them apart, and auto_cache sees
    // only size and mtime — the reported mtime is 1 ms later so that it sees a change.
    apply(put('hello.txt', 'HELLO, WORLD', 0o644, 1_700_000_000_123));
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'HELLO, WORLD', 'the new content, at once');
    t.equal((await runCommand('stat', ['-c', '%s', at('hello.txt')])).stdout.trim(), '12', 'of the same size');
    const rest = Buffer.alloc(7);
    t.equal(fs.readSync(handle, rest, 0, 7, 5), 7);
    t.equal(rest.toString(), ', WORLD', 'the handle opened before the change reads the new content too');

    // Read (so cached), then changed in size and mode: a new open sees the new content and size.
    apply(put('hello.txt', 'a longer greeting, world', 0o640, 1_700_000_001_000));
    t.equal((await runCommand('stat', ['-c', '%s %a', at('hello.txt')])).stdout.trim(), '24 640', 'the new size and mode at once');
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'a longer greeting, world');
    const longer = Buffer.alloc(64);
    t.equal(fs.readSync(handle, longer, 0, 64, 0), 24, 'the old handle reads the new size');
    t.equal(longer.subarray(0, 24).toString(), 'a longer greeting, world');
    apply(put('hello.txt', 'short'));
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'short', 'and a shrunk file is not padded');
    t.equal((await runCommand('wc', ['-c', at('hello.txt')])).stdout.trim().split(' ')[0], '5');

    // The case a shared page cache gets wrong: a reader of version 1 and a reader of version 2 of
    // the same file at once. Pages the old reader loads after the change are of version 2 (read()
    // serves the current version), so the new reader, and every later one, reads version 2 whole.
    const first = pseudoRandomBytes(mebibyte, 21);
    const second = pseudoRandomBytes(mebibyte, 22);
    apply(put('mix.bin', first, 0o644, 1_700_000_000_000));
    const old = fs.openSync(at('mix.bin'), 'r');
    t.teardown(() => fs.closeSync(old));
    const head = Buffer.alloc(4096);
    fs.readSync(old, head, 0, head.length, 0);
    t.ok(head.equals(first.subarray(0, 4096)), 'the old reader starts on version 1');
    apply(put('mix.bin', second, 0o644, 1_700_000_000_000));
    const middle = Buffer.alloc(4096);
    fs.readSync(old, middle, 0, middle.length, 512 * 1024);
    t.ok(middle.equals(second.subarray(512 * 1024, 512 * 1024 + 4096)), 'the old reader loads a page not cached before: version 2');
    t.ok(fs.readFileSync(at('mix.bin')).equals(second), 'a new reader reads version 2 whole');
    t.ok(fs.readFileSync(at('mix.bin')).equals(second), 'and again, from the cache');
    fs.readSync(old, head, 0, head.length, 0);
    t.ok(head.equals(second.subarray(0, 4096)), 'the old reader too, once the file was opened again');

    // A removed file: a read of its open handle that reaches this process fails (pages it had
    // read already would still be served from the cache, as a local file's are after unlink).
    apply(put('gone.txt', 'soon gone'));
    const doomed = fs.openSync(at('gone.txt'), 'r');
    t.teardown(() => fs.closeSync(doomed));
    apply({ type: 'delete', key: 'gone.txt' });
    t.throws(() => fs.readSync(doomed, Buffer.alloc(9), 0, 9, 0), { code: 'EIO' }, 'a handle of a removed file gets EIO');

    // One byte in the middle of the large file, same size.
    const changed = Buffer.from(big);
    changed[5 * mebibyte] = (changed[5 * mebibyte] ?? 0) ^ 0xff;
    apply(put('big.bin', changed, 0o644, 1_700_000_000_000));
    t.equal((await runCommand('sha256sum', [at('big.bin')])).stdout.split(' ')[0], sha256(changed), 'sha256sum of the changed large file');

    // Looked up while missing, then created: no negative cache hides it.
    t.not((await runCommand('cat', [at('fresh.txt')])).code, 0);
    apply(put('fresh.txt', 'fresh'));
    t.equal((await runCommand('cat', [at('fresh.txt')])).stdout, 'fresh', 'a new file at once');

    apply({ type: 'delete', key: 'fresh.txt' });
    const gone = await runCommand('cat', [at('fresh.txt')]);
    t.match(gone.stderr, /No such file or directory/, 'a removed file is gone at once');
    t.notOk((await runCommand('ls', [mountPoint])).stdout.split('\n').includes('fresh.txt'));

    apply({ type: 'rename', from: 'docs', to: 'papers' });
    const found = await runCommand('find', [mountPoint, '-name', 'deep.txt']);
    t.equal(found.stdout.trim(), at('papers/sub/deep.txt'), 'a renamed folder at once');
    t.equal((await runCommand('cat', [at('docs/readme.md')])).code, 1, 'its old path is gone');
  });

  t.test('SIGTERM unmounts and leaves nothing mounted', async (t) => {
    const running = fuse as FuseProcess;
    running.child.kill('SIGTERM');
    const exit = await running.exited;
    t.equal(exit.code, fuseExitCodes.unmounted);
    t.notOk(inProcMounts(mountPoint), 'gone from /proc/mounts');
    t.same(fs.readdirSync(mountPoint), [], 'the mount point is an empty folder again');
    t.match(running.output(), /unmounted .* \(SIGTERM\)/, 'and says so');
  });

  t.test('a SIGKILLed process leaves no mount behind (auto_unmount)', async (t) => {
    fuse = startFuseProcess({ stateFolder, mountPoint });
    await fuse.mounted;
    fuse.child.kill('SIGKILL');
    await fuse.exited;
    const gone = await waitFor(() => !inProcMounts(mountPoint), 15_000);
    if (!gone) t.comment((await runCommand('sh', ['-c', `grep fuse /proc/mounts; ps -ef | grep -e fusermount -e fuse-process | grep -v grep`])).stdout);
    t.ok(gone, 'the mount goes away by itself');
  });

  t.test('a stale mount is cleaned up by the next start', async (t) => {
    const crashed = startFuseProcess({ stateFolder, mountPoint, autoUnmount: false });
    await crashed.mounted;
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    t.ok(inProcMounts(mountPoint), 'without auto_unmount, the dead mount stays');
    t.throws(() => fs.readdirSync(mountPoint), { code: 'ENOTCONN' }, 'and every access fails');

    fuse = startFuseProcess({ stateFolder, mountPoint });
    await fuse.mounted;
    const running = fuse;
    t.ok(await waitFor(() => /removed a stale dfs mount/.test(running.output()), 5000), 'it says it removed a stale mount');
    t.equal((await runCommand('cat', [at('hello.txt')])).stdout, 'short', 'the new mount serves');
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.split(' ')[1] === mountPoint);
    t.equal(mounts.length, 1, 'one mount, not two stacked');
  });

  t.test('a mount removed from outside ends the process with its own code', async (t) => {
    const running = fuse as FuseProcess;
    const unmount = await runCommand('fusermount', ['-u', '-z', mountPoint]);
    t.equal(unmount.code, 0, unmount.stderr);
    const exit = await running.exited;
    t.equal(exit.code, fuseExitCodes.mountLost, 'mountLost: the supervisor mounts it again');
    t.match(running.output(), /went away/);
  });
}
