// The supervisor: the main thread of a `dfs` node. It starts the actors in order (store, raft,
// grpc — each waits for the one it depends on), wires them with MessageChannels, restarts them
// when one crashes, and shuts them down in reverse order on SIGINT/SIGTERM (a leader first hands
// leadership to a caught-up peer).
//
// Restart policy: the actors share state only through disk (the Raft log and the state LMDB), so
// the safe restart after a crash is of the whole set, in order, which replays from disk. At most
// `maxRestarts` within `restartWindowMilliseconds`, with doubling backoff; beyond that the node
// exits non-zero with the reason. A worker that reports `fatal` (a port in use, a foreign data
// folder) is not restarted: it would fail the same way.

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { Mailbox, decodeMessage } from '../actors/mailbox.js';
import type { ControlReport, ControlRequest } from '../actors/protocol.js';

export type ActorName = 'store' | 'raft' | 'grpc';

export const startOrder: readonly ActorName[] = ['store', 'raft', 'grpc'];

/** What each worker receives: the serialisable settings and its channels to the other actors. */
export interface WorkerInput<Settings> {
  readonly actor: ActorName;
  readonly settings: Settings;
  readonly prettyLogs: boolean;
  readonly ports: Partial<Record<ActorName, MessagePort>>;
}

export interface SupervisorOptions<Settings> {
  readonly settings: Settings;
  readonly logger: Logger;
  readonly prettyLogs: boolean;
  /** The compiled worker script of each actor. */
  readonly workerUrl: (actor: ActorName) => URL;
  readonly startTimeoutMilliseconds: number;
  readonly handOverTimeoutMilliseconds: number;
  readonly maxRestarts: number;
  readonly restartWindowMilliseconds: number;
}

interface Running {
  readonly worker: Worker;
  readonly control: Mailbox<ControlReport, ControlRequest>;
  expectedExit: boolean;
  /** It reported `fatal`: it no longer answers `stop`, so stopping it is terminating it. */
  fatal: boolean;
  /** It reported `started`: its control handler is listening. */
  started: boolean;
}

export class Supervisor<Settings> {
  private running = new Map<ActorName, Running>();
  private restarts: number[] = [];
  private stopping = false;
  /** Bumped by every restart: a start sequence of an older generation gives up. */
  private generation = 0;
  private exitCode: number | null = null;
  private finished!: (code: number) => void;
  /** Resolves with the process exit code once the node has stopped for good. */
  readonly done = new Promise<number>((resolve) => {
    this.finished = resolve;
  });

  constructor(private readonly options: SupervisorOptions<Settings>) {}

  /** True once the node is stopping or has stopped (after a signal or a fatal error). */
  get stopped(): boolean {
    return this.stopping || this.exitCode !== null;
  }

  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (error) {
      await this.fail(error instanceof Error ? error.message : String(error));
    }
  }

  /** Graceful stop: grpc first (no new requests), raft hands over and stops, store last. */
  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.options.logger.info(`stopping: ${reason}`);
    await this.stopAll(true);
    this.finish(0);
  }

  /**
   * Hands `request` to the actor's control channel, for news from outside the workers (the FUSE
   * process's operation figures for the gRPC actor). Answers false, and drops it, when the actor
   * is not running and started (restarting, stopping, failed): such news is repeated or superseded
   * by the next report, so nothing waits for it.
   */
  send(actor: ActorName, request: ControlRequest): boolean {
    const running = this.running.get(actor);
    if (this.stopping || running === undefined || !running.started || running.fatal || running.expectedExit) return false;
    running.control.send(request);
    return true;
  }

  private async startAll(): Promise<void> {
    const generation = this.generation;
    const channels = {
      raftStore: new MessageChannel(),
      raftGrpc: new MessageChannel(),
      storeGrpc: new MessageChannel(),
    };
    const ports: Record<ActorName, Partial<Record<ActorName, MessagePort>>> = {
      store: { raft: channels.raftStore.port2, grpc: channels.storeGrpc.port1 },
      raft: { store: channels.raftStore.port1, grpc: channels.raftGrpc.port1 },
      grpc: { raft: channels.raftGrpc.port2, store: channels.storeGrpc.port2 },
    };
    for (const actor of startOrder) {
      if (this.stopping || generation !== this.generation) return;
      await this.startWorker(actor, ports[actor]);
    }
    if (generation === this.generation) this.options.logger.info('all actors started');
  }

  private startWorker(actor: ActorName, ports: Partial<Record<ActorName, MessagePort>>): Promise<void> {
    const input: WorkerInput<Settings> = { actor, settings: this.options.settings, prettyLogs: this.options.prettyLogs, ports };
    const worker = new Worker(this.options.workerUrl(actor), {
      workerData: input,
      transferList: Object.values(ports),
    });
    const control = new Mailbox<ControlReport, ControlRequest>(worker);
    const running: Running = { worker, control, expectedExit: false, fatal: false, started: false };
    this.running.set(actor, running);
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const timer = setTimeout(() => {
        if (!started) reject(new Error(`the ${actor} actor did not start within ${this.options.startTimeoutMilliseconds} ms`));
      }, this.options.startTimeoutMilliseconds);
      control.receive((report) => {
        switch (report.type) {
          case 'started':
            started = true;
            running.started = true;
            clearTimeout(timer);
            this.options.logger.debug({ actor }, `${actor} actor started: ${report.detail}`);
            resolve();
            return;
          case 'fatal':
            clearTimeout(timer);
            running.expectedExit = true;
            running.fatal = true;
            if (!started) reject(new Error(report.message));
            else void this.fail(report.message);
            return;
          case 'stopped':
          case 'handedOver':
          case 'health':
            return;
        }
      });
      worker.on('error', (error) => {
        this.options.logger.error({ actor, err: error }, `${actor} actor crashed: ${error.message}`);
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        if (this.running.get(actor)?.worker === worker) this.running.delete(actor);
        if (running.expectedExit || this.stopping) {
          // Stopped on purpose (a restart or a shutdown): whoever waits for its start moves on.
          resolve();
          return;
        }
        if (!started) {
          reject(new Error(`the ${actor} actor exited with code ${code} while starting`));
          return;
        }
        void this.restartAfterCrash(actor, code);
      });
    });
  }

  private async restartAfterCrash(actor: ActorName, code: number): Promise<void> {
    if (this.stopping) return;
    const now = Date.now();
    this.restarts = this.restarts.filter((time) => now - time < this.options.restartWindowMilliseconds);
    if (this.restarts.length >= this.options.maxRestarts) {
      await this.fail(
        `the ${actor} actor exited with code ${code}, and the actors were already restarted ${this.restarts.length} times in ${Math.round(this.options.restartWindowMilliseconds / 1000)} s`,
      );
      return;
    }
    this.restarts.push(now);
    this.generation++;
    const backoffMilliseconds = Math.min(30_000, 500 * 2 ** (this.restarts.length - 1));
    this.options.logger.warn({ actor, code, backoffMilliseconds }, `${actor} actor exited with code ${code}; restarting all actors in ${backoffMilliseconds} ms`);
    await this.stopAll(false);
    await new Promise((resolve) => setTimeout(resolve, backoffMilliseconds));
    if (this.stopping) return;
    try {
      await this.startAll();
      this.options.logger.info({ actor }, `actors restarted after the ${actor} actor crashed`);
    } catch (error) {
      await this.fail(error instanceof Error ? error.message : String(error));
    }
  }

  private async stopAll(graceful: boolean): Promise<void> {
    const raft = this.running.get('raft');
    const grpc = this.running.get('grpc');
    if (graceful && grpc !== undefined) await this.stopWorker('grpc', grpc);
    if (graceful && raft !== undefined) {
      raft.control.send({ type: 'handOver', timeoutMilliseconds: this.options.handOverTimeoutMilliseconds });
      await this.waitFor(raft, 'handedOver', this.options.handOverTimeoutMilliseconds + 1000);
    }
    for (const actor of [...startOrder].reverse()) {
      const running = this.running.get(actor);
      if (running !== undefined) await this.stopWorker(actor, running);
    }
  }

  private async stopWorker(actor: ActorName, running: Running): Promise<void> {
    running.expectedExit = true;
    // A worker that reported `fatal` has given up (its composition root returned without wiring
    // `stop`); waiting for its `stopped` would only delay the exit by the whole timeout.
    if (!running.fatal) {
      running.control.send({ type: 'stop' });
      const stopped = await this.waitFor(running, 'stopped', 10_000);
      if (!stopped) this.options.logger.warn({ actor }, `${actor} actor did not stop in time; terminating it`);
    }
    await running.worker.terminate();
    this.running.delete(actor);
  }

  private waitFor(running: Running, type: ControlReport['type'], timeoutMilliseconds: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMilliseconds);
      const onMessage = (value: unknown): void => {
        // A second listener on the worker's channel: it sees every report, leaving the mailbox's own.
        if (!(value instanceof Uint8Array)) return;
        const decoded = decodeReport(value);
        if (decoded?.type === type) {
          clearTimeout(timer);
          running.worker.off('message', onMessage);
          resolve(true);
        }
      };
      running.worker.on('message', onMessage);
      running.worker.once('exit', () => {
        clearTimeout(timer);
        running.worker.off('message', onMessage);
        resolve(true);
      });
    });
  }

  private async fail(reason: string): Promise<void> {
    if (this.exitCode !== null) return;
    this.stopping = true;
    this.options.logger.fatal(reason);
    await this.stopAll(false);
    this.finish(1);
  }

  private finish(code: number): void {
    if (this.exitCode !== null) return;
    this.exitCode = code;
    this.finished(code);
  }
}

function decodeReport(bytes: Uint8Array): ControlReport | null {
  try {
    return decodeMessage(bytes) as ControlReport;
  } catch {
    return null;
  }
}
