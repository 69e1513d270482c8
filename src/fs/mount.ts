// fuse-native wiring: the mount options, the callbacks that call src/fs/operations.ts, the checks
// that tell why a machine cannot mount, and (lazy) unmounting, including the stale mount a crashed
// process leaves behind ("Transport endpoint is not connected").
//
// Kernel caches. After a change is applied on this node, no reader may see the old content or
// size, and no open handle may mix two versions (DESIGN.md, "Consistency the user can rely on").
// The choice, and why:
// - entry_timeout=0, negative_timeout=0, attr_timeout=0: every path walk and stat asks us, so a
//   new, removed or resized file shows at once (the price: one getattr per entry of `ls -l`, which
//   is one LMDB get; libfuse 2 has no readdirplus to save it).
// - direct_io: no page cache for file contents at all; every read comes to us and is served from
//   LMDB at the version its handle opened. The alternative, keeping the page cache while a file's
//   version is unchanged, cannot be had through fuse-native 2.2.6: its open callback cannot set
//   keep_cache, and libfuse's auto_cache keeps the cache while size and mtime are unchanged —
//   mtime in milliseconds through fuse-native — so two versions of equal size written in the same
//   millisecond would be served stale. Without keep_cache (the default) the cache lives only while
//   a file is open, but it is shared by all handles of the file: a reader that opened version 1
//   would read pages another reader loaded of version 2, a mix. direct_io has neither problem.
//   Its costs: every read is a round trip to this process, warm or cold — on the 2-core test
//   machine about 600 MB/s for a 256 MiB file read in 1 MiB (128 KiB requests), 65 MB/s in 4 KiB
//   reads (st_blksize is 128 KiB so that stdio, coreutils and Python read in 128 KiB); and
//   MAP_SHARED mmap fails with ENODEV (MAP_PRIVATE, which running a program uses, works). Serving
//   warm reads from the page cache needs keep_cache per open, i.e. a patched binding.
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

import { errnoFor, errnoOf } from './errno.js';
import { writeOperations, type ReadOnlyFileSystem, type WriteOperation } from './operations.js';

type FuseModule = typeof FuseNative;

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
}

/** The -o options of the mount (see the file's comment for each). */
export function mountOptions(settings: Pick<MountSettings, 'allowOther' | 'autoUnmount'>): string[] {
  const options = ['ro', 'fsname=dfs', 'subtype=dfs', 'default_permissions', 'direct_io', 'entry_timeout=0', 'negative_timeout=0', 'attr_timeout=0'];
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
        if (errno === errnoFor('ChangedSinceOpen')) logger.info({ path: target }, `${target} changed while open: its reader gets EIO and must open it again`);
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
  // (opts.attrTimeout)`) and knows neither ro nor direct_io: give libfuse ours instead.
  class DfsFuse extends fuseNative {
    protected override _fuseOptions(): string {
      return `-o${options.join(',')}`;
    }
  }
  const fuse = new DfsFuse(mountPoint, fuseOperations(fileSystem, logger), { debug: settings.debug ?? false });
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
