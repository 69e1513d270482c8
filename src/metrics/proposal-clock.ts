// Times proposals from the gRPC actor's request to the Raft actor until the store reports the
// command applied here (or the Raft actor refuses it): the commit latency a client of this node
// feels, forwarding to the leader included. Bounded: at most `capacity` proposals are timed at
// once (the oldest is given up as expired beyond that), and one older than `expireMilliseconds`
// has timed out in the backend already and is counted as expired.

export type ProposalResult = 'committed' | 'failed' | 'expired';

export interface ProposalClockOptions {
  readonly capacity: number;
  readonly expireMilliseconds: number;
  readonly onSettled: (result: ProposalResult, seconds: number | null) => void;
  /** Milliseconds, for tests; default performance.now. */
  readonly now?: () => number;
}

export class ProposalClock {
  /** Start times by request id, oldest first (a Map keeps insertion order). */
  private readonly started = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: ProposalClockOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.started.size;
  }

  start(requestId: string): void {
    if (this.started.size >= this.options.capacity) {
      const oldest = this.started.keys().next();
      if (oldest.done !== true) {
        this.started.delete(oldest.value);
        this.options.onSettled('expired', null);
      }
    }
    this.started.set(requestId, this.now());
  }

  /** Ends the timing of `requestId` if it is a proposal being timed (other ids are ignored). */
  settle(requestId: string, result: 'committed' | 'failed'): void {
    const startedAt = this.started.get(requestId);
    if (startedAt === undefined) return;
    this.started.delete(requestId);
    this.options.onSettled(result, result === 'committed' ? (this.now() - startedAt) / 1000 : null);
  }

  /** Gives up the proposals that waited longer than expireMilliseconds. */
  expire(): void {
    const oldestAllowed = this.now() - this.options.expireMilliseconds;
    for (const [requestId, startedAt] of this.started) {
      if (startedAt >= oldestAllowed) break;
      this.started.delete(requestId);
      this.options.onSettled('expired', null);
    }
  }
}
