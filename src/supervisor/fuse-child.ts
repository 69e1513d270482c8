// The supervisor's side of the FUSE mount: it forks the FUSE process (src/fs/fuse-process.ts), keeps
// it running, and stops it. A child process and not a worker thread (DESIGN.md): fuse-native cannot
// run in a worker, and a crash or hang in the mount must not take the Raft node down.
//
// - Exit codes the child gives for a machine that cannot mount (no /dev/fuse, no libfuse, no
//   permission, an unusable mount point) leave the mount off: the child has logged the one line
//   that says why, the node goes on serving gRPC and the cache folder.
// - Any other exit (a crash, kill -9, the mount unmounted from outside) is followed by a new child
//   after a doubling backoff (1 s up to 30 s; back to 1 s after a minute of uptime), which cleans up
//   the dead mount and mounts again. More than `maxRestarts` in `restartWindowMilliseconds` leaves
//   the mount off with an error line.
// - stop() sends SIGTERM (the child unmounts and exits), then SIGKILL after a timeout. The child
//   also unmounts by itself when the IPC channel closes, i.e. when the node dies.
// - The child's operation figures (about once a second, cumulative per child: a new child counts
//   from 0 under a new run) go to whoever listens (onOperationMetrics): the node sends them on to
//   the gRPC worker, which serves /metrics.

import { fork, type ChildProcess } from 'node:child_process';

import type { LevelWithSilent, Logger } from 'pino';

import { fuseExitReason, fuseProcessArguments, fuseProcessModule, isRestartable, type FuseOperationsReport, type FuseProcessMessage } from '../fs/fuse-contract.js';

export interface FuseChildOptions {
  readonly stateFolder: string;
  readonly mountPoint: string;
  readonly nodeId: string;
  readonly logLevel: LevelWithSilent;
  readonly prettyLogs: boolean;
  readonly logger: Logger;
  /** More arguments for the child (tests: --no-auto-unmount). */
  readonly extraArguments?: readonly string[];
  readonly maxRestarts?: number;
  readonly restartWindowMilliseconds?: number;
  readonly stopTimeoutMilliseconds?: number;
  /** The first restart's delay (default 1 s), doubled up to 30 s. */
  readonly initialBackoffMilliseconds?: number;
  /** The child's entry point (default: src/fs/fuse-process.ts compiled); tests use a stand-in. */
  readonly module?: string;
}

export type FuseState = 'starting' | 'mounted' | 'restarting' | 'off' | 'stopped';

export class FuseChild {
  private child: ChildProcess | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarts: number[] = [];
  private startedAt = 0;
  private backoffMilliseconds: number;
  private stopping = false;
  private currentState: FuseState = 'stopped';
  private readonly listeners = new Set<(state: FuseState) => void>();
  private readonly metricsListeners = new Set<(report: FuseOperationsReport) => void>();

  constructor(private readonly options: FuseChildOptions) {
    this.backoffMilliseconds = options.initialBackoffMilliseconds ?? 1_000;
  }

  get state(): FuseState {
    return this.currentState;
  }

  /** The running child's pid (tests kill it), or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  onState(listener: (state: FuseState) => void): void {
    this.listeners.add(listener);
  }

  /** Each operation report of the running child (FuseOperationsReport: cumulative within its run). */
  onOperationMetrics(listener: (report: FuseOperationsReport) => void): void {
    this.metricsListeners.add(listener);
  }

  start(): void {
    if (this.stopping || this.child !== null) return;
    const { options } = this;
    const argv = [
      ...fuseProcessArguments({
        stateFolder: options.stateFolder,
        mountPoint: options.mountPoint,
        nodeId: options.nodeId,
        logLevel: options.logLevel,
        prettyLogs: options.prettyLogs,
      }),
      ...(options.extraArguments ?? []),
    ];
    // execArgv [] : the node's own flags (an inspector port, a loader) are not the child's.
    const child = fork(options.module ?? fuseProcessModule, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    this.child = child;
    this.startedAt = Date.now();
    this.setState('starting');
    child.on('message', (message: FuseProcessMessage) => {
      switch (message.type) {
        case 'mounted':
          this.setState('mounted');
          return;
        case 'unmounted':
          return;
        case 'operationMetrics':
          for (const listener of this.metricsListeners) listener(message.report);
          return;
      }
    });
    child.on('error', (error) => options.logger.error({ mountPoint: options.mountPoint }, `the FUSE process: ${error.message}`));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      this.exited(code, signal);
    });
  }

  /** Unmounts: SIGTERM, then SIGKILL after the timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) {
      this.setState('stopped');
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timeout = this.options.stopTimeoutMilliseconds ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeout)))]);
    clearTimeout(timer);
    if (killed) {
      this.options.logger.warn({ mountPoint: this.options.mountPoint }, `the FUSE process did not unmount within ${timeout} ms; killing it (the next start cleans up the mount)`);
      child.kill('SIGKILL');
      await exited;
    }
    this.setState('stopped');
  }

  private exited(code: number | null, signal: NodeJS.Signals | null): void {
    const { logger, mountPoint } = this.options;
    if (this.stopping) {
      this.setState('stopped');
      return;
    }
    const reason = fuseExitReason(code);
    const how = signal === null ? `exited with code ${code}` : `was killed by ${signal}`;
    if (signal === null && !isRestartable(reason)) {
      // The child logged the line that says why; repeating it adds nothing.
      logger.debug({ mountPoint, code, reason }, `the FUSE process ${how} (${reason}): the mount stays off`);
      this.setState('off');
      return;
    }
    const now = Date.now();
    const window = this.options.restartWindowMilliseconds ?? 10 * 60_000;
    const maxRestarts = this.options.maxRestarts ?? 10;
    this.restarts = this.restarts.filter((time) => now - time < window);
    if (this.restarts.length >= maxRestarts) {
      logger.error(
        { mountPoint, code, signal },
        `the FUSE mount ${mountPoint} is off: its process ${how}, after ${this.restarts.length} restarts in ${Math.round(window / 60_000)} min; the node goes on serving gRPC (restart the node to try again)`,
      );
      this.setState('off');
      return;
    }
    if (now - this.startedAt > 60_000) this.backoffMilliseconds = this.options.initialBackoffMilliseconds ?? 1_000;
    const delay = this.backoffMilliseconds;
    this.backoffMilliseconds = Math.min(30_000, this.backoffMilliseconds * 2);
    this.restarts.push(now);
    logger.warn({ mountPoint, code, signal, reason, delayMilliseconds: delay }, `the FUSE process ${how} (${reason}); mounting ${mountPoint} again in ${delay} ms`);
    this.setState('restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start();
    }, delay);
  }

  private setState(state: FuseState): void {
    this.currentState = state;
    for (const listener of this.listeners) listener(state);
  }
}
