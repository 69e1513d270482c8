// fuse-native wiring: the mount options, the callbacks that call src/fs/operations.ts, the checks
// that tell why a machine cannot mount, and (lazy) unmounting, including the stale mount a crashed
// process leaves behind ("Transport endpoint is not connected").
//
// Kernel caches. After a change is applied on this node, no reader may see the old content or
// size, and reads of unchanged files should cost what reading the page cache costs (DESIGN.md,
// "Consistency the user can rely on"). The choice, and why:
// - entry_timeout=0, negative_timeout=0, attr_timeout=0: every path walk and stat asks us, so a
//   new, removed or resized file shows at once. The price: `ls -l FOLDER` costs five requests per
//   entry (libfuse 2 has no readdirplus): a getattr of the mount's root and of the folder (the
//   permission checks of default_permissions along the path), a lookup of the folder and of the
//   name, and the getattr of the name — each about one LMDB get, but each also a round trip
//   through fuse-native's thread hand-off, which costs far more than the get.
// - file contents live in the kernel's page cache (no direct_io), kept across opens by libfuse's
//   auto_cache: at every open libfuse asks us for the attributes again (fgetattr; ac_attr_timeout=0
//   makes that every open) and keeps the cached pages only if size and mtime equal what it heard
//   before; otherwise the kernel drops them as the open completes. fuse-native 2.2.6 carries mtime
//   in whole milliseconds, so operations.ts makes sure that two versions never report the same
//   size and mtime (1 ms later when they would), and read() serves the current version, so that
//   pages loaded after a change, by any handle, are of the new version. Hence: a new open (cat,
//   cp, an editor) sees the new content and size at once; so does a stat for the size (a size
//   change also makes the kernel drop the pages when it hears of it). A handle opened before a
//   change reads the new content from pages not cached yet, and everything new once the file is
//   opened again by anyone; until then it may still be served pages it (or another handle) cached
//   before a change of the same size: libfuse 2.9 offers no auto_inval_data (which would check the
//   attributes at each read) and fuse-native exposes no cache invalidation call. The gain: warm
//   reads never reach this process, MAP_SHARED mmap works, and the kernel reads ahead.
// - fgetattr: fuse-native 2.2.6 answers it with getattr, which would hide the open check from
//   operations.ts; DfsFuse routes it to fileSystem.fgetattr instead (see ReportedFiles there).
// - no max_readahead: libfuse 2 may only lower the kernel's 128 KiB, reads are at most 128 KiB
//   (libfuse 2 negotiates no bigger requests), and raising the mount's read_ahead_kb (sysfs, 1 and
//   4 MiB) did not make cold reads faster on the test machine: one JS thread answers the reads.
// - no fuse-native timeout: every operation answers synchronously, and its timer (a setTimeout
//   and clearTimeout per request) is a measurable part of a getattr's cost.
// - ro: the kernel refuses writes with EROFS before they reach us; the write callbacks answer
//   EROFS too, for anything that gets through.
// - default_permissions: the kernel enforces the mode bits carried from the source files.
// - allow_other: other users may read the mount (root may always set it; others need
//   user_allow_other in /etc/fuse.conf); the caller decides.
// - auto_unmount: libfuse's fusermount helper unmounts when the process dies, even by SIGKILL, so
//   a crash leaves no dead mount behind (it needs a fusermount binary; without one a stale mount
//   is still cleaned up on the next start by cleanStaleMount).
// - fsname=dfs, subtype=dfs: /proc/mounts shows "dfs <mount point> fuse.dfs ro,...".

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

import type { Logger } from 'pino';
import type FuseNative from 'fuse-native';

import { errnoOf, FileSystemError } from './errno.js';
import { instrumentOperations, type FuseOperationMeter } from './fuse-metrics.js';
import { writeOperations, type ReadOnlyFileSystem, type WriteOperation } from './operations.js';

type FuseModule = typeof FuseNative;

/** The one internal of fuse-native 2.2.6's Fuse class DfsFuse calls (index.js: `_op_getattr`). */
interface FuseInternals {
  _op_getattr(this: { ops: Pick<FuseNative.Operations, 'getattr'> }, signal: unknown, target: string): void;
}

/** Why a machine cannot mount: the keys match src/fs/fuse-contract.ts's exit codes. */
export type MountProblem = 'deviceMissing' | 'libraryMissing' | 'permissionDenied' | 'mountPointUnusable' | 'mountFailed';

export class MountError extends Error {
  override readonly name = 'MountError';
  constructor(
    readonly problem: MountProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface MountSettings {
  readonly mountPoint: string;
  readonly allowOther: boolean;
  readonly autoUnmount: boolean;
  /** libfuse's debug output on stderr. */
  readonly debug?: boolean;
  /** Counts every callback's result and duration (src/fs/fuse-metrics.ts); none without. */
  readonly meter?: FuseOperationMeter;
}

/** The -o options of the mount (see the file's comment for each). */
export function mountOptions(settings: Pick<MountSettings, 'allowOther' | 'autoUnmount'>): string[] {
  const options = ['ro', 'fsname=dfs', 'subtype=dfs', 'default_permissions', 'auto_cache', 'ac_attr_timeout=0', 'entry_timeout=0', 'negative_timeout=0', 'attr_timeout=0'];
  if (settings.allowOther) options.push('allow_other');
  if (settings.autoUnmount) options.push('auto_unmount');
  return options;
}

const deviceFile = '/dev/fuse';
const fusermountFolders = ['/bin', '/usr/bin', '/usr/local/bin'];

let loaded: FuseModule | null = null;

/** Loads fuse-native (and with it libfuse.so.2). MountError libraryMissing if it cannot. */
export function loadFuseNative(): FuseModule {
  if (loaded !== null) return loaded;
  try {
    loaded = createRequire(import.meta.url)('fuse-native') as FuseModule;
    return loaded;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = message.includes('libfuse') ? ' (install libfuse 2: apt-get install libfuse2)' : '';
    throw new MountError('libraryMissing', `cannot load fuse-native: ${message.split('\n')[0] ?? message}${hint}`);
  }
}

/** The path of a fusermount program (libfuse 2 runs `fusermount`; Debian's fuse3 links it to fusermount3). */
export function findFusermount(name: 'fusermount' | 'fusermount3' = 'fusermount'): string | null {
  const folders = [...fusermountFolders, ...(process.env['PATH'] ?? '').split(':').filter((folder) => folder !== '')];
  for (const folder of folders) {
    const candidate = path.join(folder, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Checks that this machine can mount at all, in the order a person would fix it: the device, the
 * library, the permission. Throws MountError with a message that says what is missing.
 */
export function checkFuseAvailable(): FuseModule {
  try {
    const device = fs.statSync(deviceFile);
    if (!device.isCharacterDevice()) throw new MountError('deviceMissing', `${deviceFile} is not a character device`);
  } catch (error) {
    if (error instanceof MountError) throw error;
    throw new MountError('deviceMissing', `${deviceFile} is missing (load the fuse kernel module, or give the container the device: --device /dev/fuse)`);
  }
  const module = loadFuseNative();
  // Everyone must open /dev/fuse: libfuse 2 opens it before mount(2), and the setuid fusermount
  // that mounts for a user opens it with the user's rights too (so it must be crw-rw-rw-).
  try {
    fs.closeSync(fs.openSync(deviceFile, 'r+'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MountError(
      'permissionDenied',
      isRoot()
        ? `cannot open ${deviceFile} as root (${reason}): a container without the device's cgroup permission?`
        : `cannot open ${deviceFile} as uid ${process.getuid?.() ?? '?'} (${reason}): users need read-write access to it (usually mode 0666), or run as root`,
    );
  }
  // A user's mount(2) is refused, and libfuse then asks fusermount (setuid root) to mount.
  if (!isRoot() && findFusermount() === null) {
    throw new MountError('permissionDenied', 'there is no fusermount to mount for a user: install fuse3 (Debian links fusermount to fusermount3), or run as root');
  }
  return module;
}

/** Whether /etc/fuse.conf lets users other than root use allow_other. */
export function userAllowOther(): boolean {
  try {
    return /^\s*user_allow_other\s*$/m.test(fs.readFileSync('/etc/fuse.conf', 'utf8'));
  } catch {
    return false;
  }
}

interface MountEntry {
  readonly mountPoint: string;
  readonly type: string;
  readonly source: string;
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** The mounts at `mountPoint` (the last one is on top), from /proc/self/mountinfo. */
export function mountsAt(mountPoint: string): MountEntry[] {
  const wanted = path.resolve(mountPoint);
  const entries: MountEntry[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // id parent major:minor root mount-point options [optional...] - type source super-options
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    const point = fields[4];
    const type = fields[separator + 1];
    const source = fields[separator + 2];
    if (separator < 0 || point === undefined || type === undefined || source === undefined) continue;
    if (unescapeMountField(point) === wanted) entries.push({ mountPoint: wanted, type, source: unescapeMountField(source) });
  }
  return entries;
}

export function isMounted(mountPoint: string): boolean {
  return mountsAt(mountPoint).length > 0;
}

function run(file: string, args: readonly string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000 }, (error, stdout, stderr) => resolve({ ok: error === null, output: `${stdout}${stderr}`.trim() }));
  });
}

/**
 * Detaches the FUSE mount at `mountPoint` now (lazily: processes inside it keep what they hold),
 * with fusermount3 -uz, fusermount -uz or, as root, umount -l. Throws if it is still mounted.
 */
export async function lazyUnmount(mountPoint: string): Promise<void> {
  const attempts: [string, string[]][] = [];
  for (const name of ['fusermount3', 'fusermount'] as const) {
    const program = findFusermount(name);
    if (program !== null) attempts.push([program, ['-u', '-z', mountPoint]]);
  }
  if (isRoot()) attempts.push(['umount', ['-l', mountPoint]]);
  const outputs: string[] = [];
  for (const [program, args] of attempts) {
    if (!isMounted(mountPoint)) return;
    const result = await run(program, args);
    if (!result.ok) outputs.push(`${path.basename(program)}: ${result.output}`);
  }
  if (isMounted(mountPoint)) throw new Error(`cannot unmount ${mountPoint}: ${outputs.join('; ') || 'no fusermount or umount to run'}`);
}

/**
 * Unmounts what a crashed dfs mount left at `mountPoint` (its FUSE connection is gone, so every
 * access fails with ENOTCONN). Answers how many mounts it removed. Another file system mounted
 * there is left alone: MountError mountPointUnusable.
 */
export async function cleanStaleMount(mountPoint: string): Promise<number> {
  let removed = 0;
  for (let attempt = 0; attempt < 8; attempt++) {
    const top = mountsAt(mountPoint).at(-1);
    if (top === undefined) return removed;
    if (top.type !== 'fuse.dfs') {
      throw new MountError('mountPointUnusable', `${mountPoint} has another file system mounted on it (${top.type} from ${top.source}); unmount it first`);
    }
    await lazyUnmount(mountPoint);
    removed++;
  }
  throw new MountError('mountPointUnusable', `${mountPoint} still has dfs mounts after ${removed} unmounts`);
}

/** Makes the mount point (with its parents) if needed; MountError mountPointUnusable if it cannot be one. */
export function prepareMountPoint(mountPoint: string): void {
  try {
    fs.mkdirSync(mountPoint, { recursive: true });
  } catch (error) {
    throw new MountError('mountPointUnusable', `cannot create the mount point ${mountPoint}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(mountPoint);
  } catch (error) {
    throw new MountError('mountPointUnusable', `cannot use the mount point ${mountPoint}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!stat.isDirectory()) throw new MountError('mountPointUnusable', `the mount point ${mountPoint} is not a folder`);
  if (fs.readdirSync(mountPoint).length > 0) {
    throw new MountError('mountPointUnusable', `the mount point ${mountPoint} is not empty (libfuse mounts only on an empty folder): move its files away`);
  }
}

/**
 * The fuse-native callbacks for `fileSystem`: each calls the operation and answers its result, or
 * the errno of what it threw (src/fs/errno.ts). Expected failures (ENOENT...) are logged at
 * debug; anything else is a fault, logged as an error, and answered EIO.
 */
export function fuseOperations(fileSystem: ReadOnlyFileSystem, logger: Logger): FuseNative.Operations {
  function failure(operation: string, target: string, error: unknown): number {
    const { errno, expected } = errnoOf(error);
    const message = error instanceof Error ? error.message : String(error);
    if (expected) logger.debug({ operation, path: target, errno }, message);
    else logger.error({ operation, path: target, err: error }, `${operation} ${target} failed: ${message}`);
    return errno;
  }
  const refuse = (operation: WriteOperation, target: string): number => {
    try {
      return fileSystem.refuseWrite(operation, target);
    } catch (error) {
      return failure(operation, target, error);
    }
  };
  const operations: FuseNative.Operations = {
    getattr(target, callback) {
      try {
        callback(0, fileSystem.getattr(target));
      } catch (error) {
        callback(failure('getattr', target, error));
      }
    },
    fgetattr(target, _handle, callback) {
      try {
        callback(0, fileSystem.fgetattr(target));
      } catch (error) {
        callback(failure('fgetattr', target, error));
      }
    },
    readdir(target, callback) {
      try {
        const listing = fileSystem.readdir(target);
        callback(0, listing.names, listing.attributes);
      } catch (error) {
        callback(failure('readdir', target, error));
      }
    },
    open(target, flags, callback) {
      try {
        callback(0, fileSystem.open(target, flags));
      } catch (error) {
        callback(failure('open', target, error));
      }
    },
    read(target, handle, buffer, length, position, callback) {
      try {
        callback(fileSystem.read(handle, buffer, length, position));
      } catch (error) {
        const errno = failure('read', target, error);
        if (error instanceof FileSystemError && error.condition === 'RemovedSinceOpen') logger.info({ path: target }, `${target} was removed while open: its reader gets EIO`);
        callback(errno);
      }
    },
    release(target, handle, callback) {
      try {
        fileSystem.release(handle);
        callback(0);
      } catch (error) {
        callback(failure('release', target, error));
      }
    },
    statfs(target, callback) {
      try {
        callback(0, fileSystem.statfs());
      } catch (error) {
        callback(failure('statfs', target, error));
      }
    },
    write: (target, _handle, _buffer, _length, _position, callback) => callback(refuse('write', target)),
    create: (target, _mode, callback) => callback(refuse('create', target)),
    truncate: (target, _size, callback) => callback(refuse('truncate', target)),
    ftruncate: (target, _handle, _size, callback) => callback(refuse('ftruncate', target)),
    unlink: (target, callback) => callback(refuse('unlink', target)),
    rename: (source, _destination, callback) => callback(refuse('rename', source)),
    link: (_source, destination, callback) => callback(refuse('link', destination)),
    symlink: (_source, destination, callback) => callback(refuse('symlink', destination)),
    mkdir: (target, _mode, callback) => callback(refuse('mkdir', target)),
    rmdir: (target, callback) => callback(refuse('rmdir', target)),
    mknod: (target, _mode, _device, callback) => callback(refuse('mknod', target)),
    chmod: (target, _mode, callback) => callback(refuse('chmod', target)),
    chown: (target, _uid, _gid, callback) => callback(refuse('chown', target)),
    utimens: (target, _atime, _mtime, callback) => callback(refuse('utimens', target)),
    setxattr: (target, _name, _value, _position, _flags, callback) => callback(refuse('setxattr', target)),
    removexattr: (target, _name, callback) => callback(refuse('removexattr', target)),
  };
  // Every write operation is wired (a missing one would answer ENOSYS, not EROFS).
  for (const name of writeOperations) {
    if (operations[name] === undefined) throw new Error(`write operation ${name} is not wired`);
  }
  return operations;
}

export interface Mount {
  readonly mountPoint: string;
  readonly options: readonly string[];
  /** Detaches the mount (lazily) and waits until it is gone from /proc/self/mountinfo. */
  unmount(): Promise<void>;
}

/** How long libfuse may take to answer the kernel's INIT after mount(2). */
const mountTimeoutMilliseconds = 15_000;

/**
 * Mounts `fileSystem` at settings.mountPoint, which must exist and be empty (prepareMountPoint,
 * cleanStaleMount). Resolves once the kernel has initialised the connection.
 */
export async function mountFileSystem(fuseNative: FuseModule, fileSystem: ReadOnlyFileSystem, settings: MountSettings, logger: Logger): Promise<Mount> {
  const mountPoint = path.resolve(settings.mountPoint);
  const options = mountOptions(settings);
  // fuse-native builds the -o string from its own options, drops zero timeouts (`if
  // (opts.attrTimeout)`) and knows neither ro nor auto_cache: give libfuse ours instead.
  class DfsFuse extends fuseNative {
    protected override _fuseOptions(): string {
      // (debug too: fuse-native would add it from its own options, which this replaces.)
      return `-o${[...options, ...(settings.debug === true ? ['debug'] : [])].join(',')}`;
    }

    // fuse-native 2.2.6's own _op_fgetattr calls ops.getattr; run its _op_getattr (which encodes
    // the answer for the binding) over our fgetattr instead, so auto_cache's check reaches it.
    _op_fgetattr(signal: unknown, target: string, handle: number): void {
      const fgetattr = this.operations.fgetattr;
      if (fgetattr === undefined) throw new Error('fgetattr is not wired');
      const getattr: FuseNative.Operations['getattr'] = (name, callback) => fgetattr(name, handle, callback);
      (fuseNative.prototype as unknown as FuseInternals)._op_getattr.call({ ops: { getattr } }, signal, target);
    }

    private get operations(): FuseNative.Operations {
      return (this as unknown as { ops: FuseNative.Operations }).ops;
    }
  }
  // Measured here, around every callback at once, rather than in each of them.
  const operations = fuseOperations(fileSystem, logger);
  const fuse = new DfsFuse(mountPoint, settings.meter === undefined ? operations : instrumentOperations(operations, settings.meter), { debug: settings.debug ?? false, timeout: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new MountError('mountFailed', `libfuse did not finish mounting ${mountPoint} within ${mountTimeoutMilliseconds} ms`)), mountTimeoutMilliseconds);
    fuse.mount((error) => {
      clearTimeout(timer);
      if (error === null) resolve();
      else reject(new MountError('mountFailed', `cannot mount ${mountPoint}: ${error.message} (libfuse's reason, if any, is on stderr)`));
    });
  });
  return {
    mountPoint,
    options,
    // Not fuse.unmount(): that runs `fusermount -uz` only, which may be missing as root. Once the
    // kernel lets go, libfuse's loop thread ends by itself; fuse-native holds no reference that
    // would keep the process alive.
    unmount: () => lazyUnmount(mountPoint),
  };
}
