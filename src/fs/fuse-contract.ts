// What the FUSE child process (src/fs/fuse-process.ts) and whoever starts it agree on: its command
// line, the messages it sends over the IPC channel, and its exit codes. The supervisor forks the
// process with fuseProcessArguments and reads its exit code with fuseExitReason: the codes for a
// machine without FUSE (no /dev/fuse, no libfuse, no permission) mean "the mount is off, keep
// serving gRPC, do not restart" (as does an unusable mount point); the others mean "restart and
// remount".

import { fileURLToPath } from 'node:url';

import type { LevelWithSilent } from 'pino';

/** The child's entry point (compiled), for child_process.fork. */
export const fuseProcessModule = fileURLToPath(new URL('./fuse-process.js', import.meta.url));

export const fuseExitCodes = {
  /** Unmounted after SIGTERM, SIGINT or the end of the IPC channel. */
  unmounted: 0,
  /** An uncaught error (a bug): restart. */
  crashed: 1,
  /** A missing or malformed argument (a bug of whoever started it). */
  usage: 64,
  /** No /dev/fuse (no fuse kernel module, or a container without the device). */
  deviceMissing: 80,
  /** libfuse 2 (libfuse.so.2, Debian's libfuse2) or fuse-native's binding cannot be loaded. */
  libraryMissing: 81,
  /** /dev/fuse cannot be opened by this user, or a user has no setuid fusermount to mount for it. */
  permissionDenied: 82,
  /** The mount point cannot be made or used (not a folder, not empty, another file system on it). */
  mountPointUnusable: 83,
  /** libfuse refused to mount (its own message is on stderr just before). */
  mountFailed: 84,
  /** The state store cannot be opened read-only. */
  stateUnavailable: 85,
  /** The mount went away under the running process (unmounted from outside): restart. */
  mountLost: 86,
} as const;

export type FuseExitReason = keyof typeof fuseExitCodes;

/** The reason behind an exit code ('crashed' for codes not in the table, e.g. a signal's). */
export function fuseExitReason(code: number | null): FuseExitReason {
  for (const [reason, value] of Object.entries(fuseExitCodes) as [FuseExitReason, number][]) {
    if (value === code) return reason;
  }
  return 'crashed';
}

/**
 * False when the machine cannot mount at all, or the mount point is unusable (not a folder, not
 * empty, another file system on it): restarting would fail the same way until someone acts.
 */
export function isRestartable(reason: FuseExitReason): boolean {
  return !(reason === 'deviceMissing' || reason === 'libraryMissing' || reason === 'permissionDenied' || reason === 'mountPointUnusable' || reason === 'usage');
}

/** Sent over the IPC channel, when there is one. */
export type FuseProcessMessage =
  | { readonly type: 'mounted'; readonly mountPoint: string; readonly options: readonly string[] }
  | { readonly type: 'unmounted'; readonly mountPoint: string }
  /** What the mount answered so far (about once a second, only after something changed). */
  | { readonly type: 'operationMetrics'; readonly report: FuseOperationsReport };

/** The write operations: the mount answers each with EROFS. */
export const writeOperations = [
  'write',
  'create',
  'truncate',
  'ftruncate',
  'unlink',
  'rename',
  'link',
  'symlink',
  'mkdir',
  'rmdir',
  'mknod',
  'chmod',
  'chown',
  'utimens',
  'setxattr',
  'removexattr',
] as const;
export type WriteOperation = (typeof writeOperations)[number];

/**
 * The FUSE callbacks the mount implements, as fuse-native names them: the `op` label of
 * dfs_fuse_operations_total and dfs_fuse_operation_duration_seconds. libfuse 2's high-level API has
 * no lookup: the kernel's LOOKUP of a name arrives as a getattr (so a missing name is a getattr
 * answered ENOENT). The write operations are answered EROFS.
 */
export const fuseOperationNames = ['getattr', 'fgetattr', 'readdir', 'open', 'read', 'release', 'statfs', ...writeOperations] as const;

export type FuseOperationName = (typeof fuseOperationNames)[number];

/**
 * The `result` label: ok, or the errno the operation answered. The errnos are the ones src/fs/errno.ts
 * can answer plus the usual permission ones; anything else is counted as 'other', so the label stays
 * bounded whatever an operation answers.
 */
export const fuseResultNames = ['ok', 'ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'EINVAL', 'EIO', 'EBADF', 'ENFILE', 'EEXIST', 'EROFS', 'EACCES', 'EPERM', 'other'] as const;

export type FuseResultName = (typeof fuseResultNames)[number];

/**
 * Upper bounds (seconds) of dfs_fuse_operation_duration_seconds' buckets, from 5 µs (a getattr
 * answered from LMDB's map) to 1 s (a stall); the process counts into them and the gRPC worker
 * renders them, so both take them from here.
 */
export const fuseDurationBucketsSeconds: readonly number[] = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1];

/** One operation's figures since the FUSE process started. */
export interface FuseOperationFigures {
  readonly op: FuseOperationName;
  /** Calls by result; results never seen are left out. */
  readonly results: Readonly<Partial<Record<FuseResultName, number>>>;
  /**
   * Calls by duration, per bucket (not cumulative): entry i counts durations ≤
   * fuseDurationBucketsSeconds[i] and above the bound before it; the last entry (one more than the
   * bounds) counts the longer ones.
   */
  readonly bucketCounts: readonly number[];
  readonly sumSeconds: number;
}

/**
 * The FUSE process's operation figures, cumulative since it started (operations never called are
 * left out). `run` names one FUSE process (a restarted one counts from 0 again under a new run),
 * so whoever turns these into counters adds only what grew since the previous report of the run.
 */
export interface FuseOperationsReport {
  readonly run: string;
  readonly operations: readonly FuseOperationFigures[];
}

export type AllowOther = 'auto' | 'yes' | 'no';

export interface FuseProcessOptions {
  /** The state store's folder (the store worker's LMDB environment), opened read-only. */
  readonly stateFolder: string;
  readonly mountPoint: string;
  /** allow_other: 'auto' (the default) = when running as root or /etc/fuse.conf allows it. */
  readonly allowOther: AllowOther;
  readonly nodeId: string;
  readonly logLevel: LevelWithSilent;
  readonly prettyLogs: boolean;
  /**
   * auto_unmount (default true, when a fusermount program exists): libfuse's helper unmounts when
   * the process dies, even by SIGKILL. False leaves a dead mount behind a crash, for the next start
   * to clean up (--no-auto-unmount; tests use it to make one).
   */
  readonly autoUnmount: boolean;
  /** libfuse's debug output on stderr. */
  readonly debug: boolean;
}

const logLevels: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The command-line arguments that give the child `options`. */
export function fuseProcessArguments(options: Partial<FuseProcessOptions> & Pick<FuseProcessOptions, 'stateFolder' | 'mountPoint'>): string[] {
  const argv = ['--state-folder', options.stateFolder, '--mount-point', options.mountPoint];
  if (options.allowOther !== undefined) argv.push('--allow-other', options.allowOther);
  if (options.nodeId !== undefined) argv.push('--node-id', options.nodeId);
  if (options.logLevel !== undefined) argv.push('--log-level', options.logLevel);
  if (options.prettyLogs === true) argv.push('--pretty-logs');
  if (options.autoUnmount === false) argv.push('--no-auto-unmount');
  if (options.debug === true) argv.push('--debug');
  return argv;
}

/**
 * Reads the child's options from its arguments, with DFS_FUSE_STATE_FOLDER and DFS_MOUNT as
 * fallbacks for the two folders. Answers a message naming the problem when they are not usable.
 */
export function parseFuseProcessArguments(argv: readonly string[], environment: NodeJS.ProcessEnv): FuseProcessOptions | string {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const valued = new Set(['--state-folder', '--mount-point', '--allow-other', '--node-id', '--log-level']);
  const bare = new Set(['--pretty-logs', '--no-auto-unmount', '--debug']);
  for (let position = 0; position < argv.length; position++) {
    const argument = argv[position] as string;
    const equals = argument.indexOf('=');
    const name = equals > 0 ? argument.slice(0, equals) : argument;
    if (bare.has(name) && equals < 0) {
      flags.add(name);
    } else if (valued.has(name)) {
      const value = equals > 0 ? argument.slice(equals + 1) : argv[++position];
      if (value === undefined) return `${name} needs a value`;
      values.set(name, value);
    } else {
      return `unknown argument ${JSON.stringify(argument)}`;
    }
  }
  const stateFolder = values.get('--state-folder') ?? environment['DFS_FUSE_STATE_FOLDER'] ?? '';
  const mountPoint = values.get('--mount-point') ?? environment['DFS_MOUNT'] ?? '';
  if (stateFolder === '') return 'the state folder is missing (--state-folder or DFS_FUSE_STATE_FOLDER)';
  if (mountPoint === '') return 'the mount point is missing (--mount-point or DFS_MOUNT)';
  const allowOther = values.get('--allow-other') ?? 'auto';
  if (allowOther !== 'auto' && allowOther !== 'yes' && allowOther !== 'no') return `--allow-other is auto, yes or no, not ${JSON.stringify(allowOther)}`;
  const logLevel = values.get('--log-level') ?? 'info';
  if (!(logLevels as readonly string[]).includes(logLevel)) return `--log-level is one of ${logLevels.join(', ')}, not ${JSON.stringify(logLevel)}`;
  return {
    stateFolder,
    mountPoint,
    allowOther,
    nodeId: values.get('--node-id') ?? '',
    logLevel: logLevel as LevelWithSilent,
    prettyLogs: flags.has('--pretty-logs'),
    autoUnmount: !flags.has('--no-auto-unmount'),
    debug: flags.has('--debug'),
  };
}
