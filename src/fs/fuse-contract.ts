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
  | { readonly type: 'unmounted'; readonly mountPoint: string };

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
