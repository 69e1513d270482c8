// The store actor: the only writer of the state LMDB environment. It applies committed entries
// in log order, in batches (one transaction each, with the applied index), restores snapshots
// the Raft log received and writes snapshots for compaction. The results of commands proposed on
// this node go to the gRPC actor, which is waiting for them; the applied index goes to both.

import type { Logger } from 'pino';
import type { ApplyEntry, CommandResult, StoreEvent, StoreReport, StoreRequest } from './protocol.js';

/** What the store actor needs of the state machine (src/store/state-machine.ts). */
export interface StateMachinePort {
  appliedIndex(): number;
  /** Applies the entries above the applied index in one transaction; one result per command. */
  apply(entries: readonly ApplyEntry[]): readonly CommandResult[];
  writeSnapshot(path: string): Promise<{ index: number; term: number; sizeBytes: number }>;
  restoreSnapshot(path: string): Promise<unknown>;
}

export interface StoreActorOptions {
  readonly nodeId: string;
  readonly machine: StateMachinePort;
  readonly toRaft: (report: StoreReport) => void;
  readonly toApi: (event: StoreEvent) => void;
  readonly logger: Logger;
}

/** Request ids start with the proposing node's id and this separator (ids cannot contain it). */
export const requestIdSeparator = '/';

export class StoreActor {
  private readonly ownPrefix: string;
  /** Requests are handled one at a time, in order: a restore must finish before later applies. */
  private queue: Promise<void> = Promise.resolve();
  private inbox: StoreRequest[] = [];

  constructor(private readonly options: StoreActorOptions) {
    this.ownPrefix = `${options.nodeId}${requestIdSeparator}`;
  }

  /** Tells both peers where the state stands (after a start or a restart of the actors). */
  announce(): void {
    const index = this.options.machine.appliedIndex();
    this.options.toRaft({ type: 'applied', index });
    this.options.toApi({ type: 'applied', index, results: [] });
  }

  handle(request: StoreRequest): void {
    this.inbox.push(request);
    if (this.inbox.length > 1) return;
    this.queue = this.queue
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.processInbox())
      .catch((error: unknown) => {
        // A failed apply leaves the state machine in doubt: crash the actor so that the
        // supervisor restarts the actors, which resume from the durable applied index.
        setImmediate(() => {
          throw error;
        });
      });
  }

  /**
   * Handles everything that arrived meanwhile, in order; consecutive applies become one batch
   * (one transaction, one flush) however many Readies they came from.
   */
  private async processInbox(): Promise<void> {
    const requests = this.inbox;
    this.inbox = [];
    let batch: ApplyEntry[] = [];
    for (const request of requests) {
      if (request.type === 'apply') {
        batch.push(...request.entries);
        continue;
      }
      if (batch.length > 0) await this.process({ type: 'apply', entries: batch });
      batch = [];
      await this.process(request);
    }
    if (batch.length > 0) await this.process({ type: 'apply', entries: batch });
  }

  /** Resolves once every request received so far is handled. */
  idle(): Promise<void> {
    return this.queue;
  }

  private async process(request: StoreRequest): Promise<void> {
    const { machine, logger } = this.options;
    switch (request.type) {
      case 'apply': {
        const results = machine.apply(request.entries);
        const index = machine.appliedIndex();
        this.options.toApi({ type: 'applied', index, results: results.filter((result) => result.requestId.startsWith(this.ownPrefix)) });
        this.options.toRaft({ type: 'applied', index });
        return;
      }
      case 'restore':
        await machine.restoreSnapshot(request.path);
        logger.info({ index: request.index }, `state restored from the snapshot at index ${request.index}`);
        this.announce();
        return;
      case 'writeSnapshot':
        try {
          const written = await machine.writeSnapshot(request.path);
          this.options.toRaft({ type: 'snapshotWritten', path: request.path, ...written });
        } catch (error) {
          this.options.toRaft({ type: 'snapshotFailed', path: request.path, message: error instanceof Error ? error.message : String(error) });
        }
        return;
    }
  }
}
