// The FUSE child process's contract with whoever starts it: one clear log line and a specific exit
// code for each reason the mount is off, so that the node keeps serving gRPC and says why. Method:
// the process is started as the supervisor will start it, against situations made for the
// purpose — no arguments, a state folder that is not a state store, a mount point that is a file,
// is not empty or has another file system on it — and, in a private mount namespace (unshare, as
// root), a machine without /dev/fuse (a tmpfs over /dev) and without libfuse (/dev/null bound over
// libfuse.so.2); and, where /dev/fuse is not open to every user, a user who may not use it. The
// pure parts (arguments, exit reasons, mount options) are checked directly.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { open } from 'lmdb';
import t from 'tap';

import {
  fuseExitCodes,
  fuseExitReason,
  fuseProcessArguments,
  fuseProcessModule,
  isRestartable,
  parseFuseProcessArguments,
} from '../../src/fs/fuse-contract.js';
import { loadFuseNative, mountOptions } from '../../src/fs/mount.js';
import { openMachine, removeFolder, temporaryFolder } from '../store/state-helpers.js';
import { mountSkipReason, runCommand } from './fuse-helpers.js';

interface Outcome {
  readonly code: number | null;
  readonly output: string;
}

/** Runs `program args`, collecting its output, for at most 30 s. */
function runToEnd(program: string, args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('close', (code) => resolve({ code, output }));
  });
}

const runFuseProcess = (args: readonly string[]): Promise<Outcome> => runToEnd(process.execPath, [fuseProcessModule, ...args]);

/** Lines of pino JSON among the output that say the mount is off. */
function offLines(output: string): string[] {
  return output.split('\n').filter((line) => line.includes('is off:'));
}

t.test('arguments: built and parsed back, bad ones refused', async (t) => {
  const options = { stateFolder: '/data/state', mountPoint: '/mnt/dfs', allowOther: 'no', nodeId: 'n1', logLevel: 'debug', prettyLogs: true, autoUnmount: false, debug: true } as const;
  t.same(parseFuseProcessArguments(fuseProcessArguments(options), {}), options, 'round trip');
  t.same(parseFuseProcessArguments([], { DFS_FUSE_STATE_FOLDER: '/s', DFS_MOUNT: '/m' }), {
    stateFolder: '/s',
    mountPoint: '/m',
    allowOther: 'auto',
    nodeId: '',
    logLevel: 'info',
    prettyLogs: false,
    autoUnmount: true,
    debug: false,
  }, 'the folders from the environment, defaults for the rest');
  t.match(parseFuseProcessArguments(['--mount-point=/m'], {}), /state folder is missing/);
  t.match(parseFuseProcessArguments(['--state-folder', '/s'], {}), /mount point is missing/);
  t.match(parseFuseProcessArguments(['--state-folder', '/s', '--mount-point', '/m', '--allow-other', 'maybe'], {}), /--allow-other is auto, yes or no/);
  t.match(parseFuseProcessArguments(['--state-folder', '/s', '--mount-point', '/m', '--log-level', 'loud'], {}), /--log-level is one of/);
  t.match(parseFuseProcessArguments(['--state-folder'], {}), /needs a value/);
  t.match(parseFuseProcessArguments(['--frobnicate'], {}), /unknown argument/);
});

t.test('exit codes: one per reason, and which ones a restart can cure', async (t) => {
  const codes = Object.values(fuseExitCodes);
  t.equal(new Set(codes).size, codes.length, 'no two reasons share a code');
  for (const [reason, code] of Object.entries(fuseExitCodes)) t.equal(fuseExitReason(code), reason);
  t.equal(fuseExitReason(null), 'crashed', 'a signal');
  t.equal(fuseExitReason(3), 'crashed', 'an unknown code');
  t.notOk(isRestartable('deviceMissing'));
  t.notOk(isRestartable('libraryMissing'));
  t.notOk(isRestartable('permissionDenied'));
  t.ok(isRestartable('mountLost'));
  t.ok(isRestartable('crashed'));
  t.ok(isRestartable('mountFailed'));
});

t.test('mount options: read-only, page cache kept by auto_cache, no attribute or entry caching', async (t) => {
  const base = mountOptions({ allowOther: false, autoUnmount: false });
  for (const option of ['ro', 'auto_cache', 'ac_attr_timeout=0', 'entry_timeout=0', 'negative_timeout=0', 'attr_timeout=0', 'default_permissions', 'fsname=dfs', 'subtype=dfs']) {
    t.ok(base.includes(option), option);
  }
  t.notOk(base.includes('allow_other'));
  t.notOk(base.includes('auto_unmount'));
  t.notOk(base.includes('kernel_cache'), 'never kernel_cache (it would keep pages of changed files)');
  t.notOk(base.includes('direct_io'), 'no direct_io: contents go through the page cache');
  const all = mountOptions({ allowOther: true, autoUnmount: true });
  t.ok(all.includes('allow_other') && all.includes('auto_unmount'));
});

t.test('usage: no arguments, unknown arguments', async (t) => {
  const none = await runFuseProcess([]);
  t.equal(none.code, fuseExitCodes.usage);
  t.match(none.output, /state folder is missing/);
  const unknown = await runFuseProcess(['--state-folder', '/s', '--mount-point', '/m', '--nope']);
  t.equal(unknown.code, fuseExitCodes.usage);
});

const skipReason = mountSkipReason();

t.test('a state folder that is not a state store, a mount point that cannot be one', { skip: skipReason ?? false }, async (t) => {
  const root = temporaryFolder('fuse-process');
  t.teardown(() => removeFolder(root));
  const stateFolder = path.join(root, 'state');
  fs.mkdirSync(stateFolder);
  await openMachine(stateFolder).close();

  // Another program's LMDB environment. (Not a file of garbage: lmdb-js 3.5.6 crashes the process
  // with SIGSEGV opening one, reader and writer alike — a store issue of its own.)
  const notAStore = path.join(root, 'not-a-store');
  const foreign = open({ path: notAStore });
  await foreign.put('someone else', 'data');
  await foreign.close();
  const garbage = await runFuseProcess(['--state-folder', notAStore, '--mount-point', path.join(root, 'mnt-a')]);
  t.equal(garbage.code, fuseExitCodes.stateUnavailable, garbage.output);
  t.equal(offLines(garbage.output).length, 1, 'one line says why');
  t.match(offLines(garbage.output)[0], /cannot read the state store/);

  const file = path.join(root, 'a-file');
  fs.writeFileSync(file, 'x');
  const notAFolder = await runFuseProcess(['--state-folder', stateFolder, '--mount-point', file]);
  t.equal(notAFolder.code, fuseExitCodes.mountPointUnusable, notAFolder.output);
  t.match(offLines(notAFolder.output)[0], /not a folder|cannot create/);

  const full = path.join(root, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'someone-elses-file'), 'x');
  const notEmpty = await runFuseProcess(['--state-folder', stateFolder, '--mount-point', full]);
  t.equal(notEmpty.code, fuseExitCodes.mountPointUnusable, notEmpty.output);
  t.match(offLines(notEmpty.output)[0], /not empty/);
  t.ok(fs.existsSync(path.join(full, 'someone-elses-file')), 'and its files are untouched');

  if (process.getuid?.() === 0) {
    const occupied = path.join(root, 'occupied');
    fs.mkdirSync(occupied);
    const mounted = await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'dfs-test', occupied]);
    t.equal(mounted.code, 0, mounted.stderr);
    t.teardown(async () => void (await runCommand('umount', [occupied])));
    const other = await runFuseProcess(['--state-folder', stateFolder, '--mount-point', occupied]);
    t.equal(other.code, fuseExitCodes.mountPointUnusable, other.output);
    t.match(offLines(other.output)[0], /another file system mounted on it \(tmpfs/);
    t.match(fs.readFileSync('/proc/mounts', 'utf8'), new RegExp(`^dfs-test ${occupied} tmpfs `, 'm'), 'which is left alone');
  }
});

/** Why a user who may not open /dev/fuse cannot be tried here, or null. */
async function permissionSkipReason(): Promise<string | null> {
  if (skipReason !== null) return skipReason;
  if (process.getuid?.() !== 0) return 'needs root, to run the process as another user';
  if ((fs.statSync('/dev/fuse').mode & 0o006) === 0o006) return '/dev/fuse is open to every user here';
  if ((await runCommand('setpriv', ['--version'])).code !== 0) return 'no setpriv to run as another user';
  return null;
}

t.test('a user who may not open /dev/fuse: the mount is off, and why', { skip: (await permissionSkipReason()) ?? false }, async (t) => {
  // env -i: without tap's NODE_OPTIONS, whose process-info hook writes into the work tree at exit
  // (which nobody may not).
  const user = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'env', '-i', `PATH=${process.env['PATH'] ?? '/usr/bin:/bin'}`];
  const outcome = await runToEnd('setpriv', [...user, process.execPath, fuseProcessModule, '--state-folder', '/nonexistent/state', '--mount-point', '/nonexistent/mnt']);
  t.equal(outcome.code, fuseExitCodes.permissionDenied, outcome.output);
  t.equal(offLines(outcome.output).length, 1, 'one line says why');
  t.match(offLines(outcome.output)[0], /cannot open \/dev\/fuse as uid \d+/);
});

/** Why a private mount namespace cannot be made here, or null. */
async function namespaceSkipReason(): Promise<string | null> {
  if (skipReason !== null) return skipReason;
  if (process.getuid?.() !== 0) return 'needs root to make a private mount namespace';
  const probe = await runCommand('unshare', ['-m', '--propagation', 'private', 'true']);
  return probe.code === 0 ? null : `unshare -m does not work here: ${probe.stderr.trim()}`;
}

const namespaceSkip = await namespaceSkipReason();

/** Runs the FUSE process in a private mount namespace after `prepare` (a shell command) ran in it. */
function runInNamespace(prepare: string, args: readonly string[]): Promise<Outcome> {
  return runToEnd('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${prepare} && exec "$0" "$@"`, process.execPath, fuseProcessModule, ...args]);
}

t.test('a machine without /dev/fuse or without libfuse: the mount is off, and why', { skip: namespaceSkip ?? false }, async (t) => {
  const root = temporaryFolder('fuse-missing');
  t.teardown(() => removeFolder(root));
  const stateFolder = path.join(root, 'state');
  fs.mkdirSync(stateFolder);
  await openMachine(stateFolder).close();
  const args = ['--state-folder', stateFolder, '--mount-point', path.join(root, 'mnt')];

  const noDevice = await runInNamespace('mount -t tmpfs none /dev', args);
  t.equal(noDevice.code, fuseExitCodes.deviceMissing, noDevice.output);
  t.equal(offLines(noDevice.output).length, 1, 'one line says why');
  t.match(offLines(noDevice.output)[0], /\/dev\/fuse is missing/);

  loadFuseNative();
  const library = fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map((line) => line.slice(line.indexOf('/')))
    .find((file) => /\/libfuse\.so\.2(\.|$)/.test(file));
  if (library === undefined) {
    t.fail('libfuse.so.2 is not mapped into this process after loading fuse-native');
    return;
  }
  const noLibrary = await runInNamespace(`mount --bind /dev/null '${library}'`, args);
  t.equal(noLibrary.code, fuseExitCodes.libraryMissing, noLibrary.output);
  t.equal(offLines(noLibrary.output).length, 1, 'one line says why');
  t.match(offLines(noLibrary.output)[0], /cannot load fuse-native: .*libfuse/);
  t.notOk(fs.existsSync(path.join(root, 'mnt')) && fs.readdirSync(path.join(root, 'mnt')).length > 0, 'nothing was mounted');
});
