// The simulator's safety and liveness checkers. They never look inside the core: they see what a
// driver sees (the storage it wrote, the Ready values it handled, the clients' history) and throw a
// SafetyViolation naming the property of the Raft paper (Figure 3) that broke. `SafetyChecker` is
// fed event by event while a run goes on, so a violation is caught at the step that caused it;
// `checkStoredLogs`, `checkReplicasAgree` and `checkHistory` judge a finished run. Method notes:
//  - Log matching is checked through an identity table: every entry ever stored anywhere is
//    recorded as (index, term) → (term of the entry before it, payload). In a correct run one
//    leader created each (index, term) once on top of a fixed prefix, so a second, different
//    identity is a violation; by induction this is the paper's "identical in all preceding entries".
//  - "Committed" means applied by some state machine (a subset of what is committed, so sound).
//  - Two rules are checked at the moment a leader acts on them, not only through their far
//    consequences, because those consequences need a long chain of bad luck to show: a leader
//    must hold the votes of a majority of its configuration for its term (the persisted votes say
//    who voted for whom), and a leader moves its commit index only to an entry of its own term.
//    Both are visible from outside the core: hard states, Ready roles and stored logs.
//  - Reads are checked against the order the log gives the writes (see checkHistory).

import type { LogStorage } from '../../src/raft/storage.js';
import type { Entry, HardState, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { entryPayload } from './state-machine.js';

export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'SafetyViolation';
  }
}

interface CommittedEntry {
  readonly term: number;
  /**
   * The term of the first node to apply it, when it did: an upper bound of the term the entry was
   * committed in (whoever learns of a commit is at least in the committing leader's term).
   */
  readonly commitTermBound: number;
  readonly payload: string;
  /** The state machine digest right after applying this entry. */
  readonly digest: number;
  readonly firstAppliedBy: NodeId;
}

/** Log matching over everything ever stored (see the file comment). */
export class LogMatchingTable {
  private readonly identities = new Map<string, { readonly previousTerm: number; readonly payload: string; readonly storedBy: NodeId }>();

  record(nodeId: NodeId, entry: Entry, previousTerm: number): void {
    const key = `${entry.index}/${entry.term}`;
    const payload = entryPayload(entry);
    const known = this.identities.get(key);
    if (known === undefined) {
      this.identities.set(key, { previousTerm, payload, storedBy: nodeId });
      return;
    }
    if (known.previousTerm !== previousTerm || known.payload !== payload) {
      throw new SafetyViolation(
        'log matching',
        `entry ${key} on ${nodeId} (previous term ${previousTerm}, payload ${payload}) differs from the same entry on ${known.storedBy} (previous term ${known.previousTerm}, payload ${known.payload})`,
      );
    }
  }

  /** Records every entry a storage holds. */
  recordLog(nodeId: NodeId, log: LogStorage): void {
    const first = log.firstIndex();
    const last = log.lastIndex();
    if (last < first) return;
    let previousTerm = log.term(first - 1);
    for (const entry of log.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) {
      this.record(nodeId, entry, previousTerm);
      previousTerm = entry.term;
    }
  }
}

/** The configuration in force for the owner of `log`: its latest configuration entry, else its snapshot's. */
function latestConfig(log: LogStorage): { readonly voters: readonly NodeId[] } {
  const first = log.firstIndex();
  const last = log.lastIndex();
  let config = log.snapshot().config;
  if (last >= first) {
    for (const entry of log.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) if (entry.kind === 'config') config = entry.config;
  }
  return config;
}

function describeVotes(votes: ReadonlyMap<NodeId, NodeId> | undefined): string {
  if (votes === undefined || votes.size === 0) return 'none';
  return [...votes].map(([voter, candidate]) => `${voter}→${candidate}`).join(' ');
}

/** Log matching between the logs the nodes hold now. */
export function checkStoredLogs(logs: ReadonlyMap<NodeId, LogStorage>): void {
  const table = new LogMatchingTable();
  for (const [nodeId, log] of logs) table.recordLog(nodeId, log);
}

export class SafetyChecker {
  /** term → the one node that led it, over the whole run. */
  private readonly leaders = new Map<number, NodeId>();
  /** term → voter → the candidate it voted for in that term, from the hard states persisted. */
  private readonly votes = new Map<number, Map<NodeId, NodeId>>();
  /** index → the entry the first state machine applied there. */
  private readonly committed = new Map<number, CommittedEntry>();
  private highestCommittedIndex = 0;
  private readonly logMatching = new LogMatchingTable();
  /** writeId → the index of its first entry in the committed log (where it took effect). */
  private readonly writeIndexes = new Map<string, number>();

  /**
   * Election safety (§5.2) and leader completeness (§5.4), checked when `nodeId` is first seen
   * leading `term`. It must be the only leader of the term, and a majority of the voters of its
   * configuration (the latest one in its log, as §4.1 has servers use) must have persisted a vote
   * for it in this very term: a vote granted in an earlier term counts for nothing. Its log must
   * hold every entry known to be committed in an earlier term. (A candidate may win late, on
   * delayed votes, after later terms committed entries it lacks.)
   */
  onLeader(nodeId: NodeId, term: number, log: LogStorage): void {
    const earlier = this.leaders.get(term);
    if (earlier === nodeId) return;
    if (earlier !== undefined) {
      throw new SafetyViolation('election safety', `${nodeId} and ${earlier} are both leaders of term ${term}`);
    }
    this.leaders.set(term, nodeId);
    const voters = latestConfig(log).voters;
    const votesOfTerm = this.votes.get(term);
    const votedFor = voters.filter((voter) => votesOfTerm?.get(voter) === nodeId);
    if (votedFor.length < Math.floor(voters.length / 2) + 1) {
      throw new SafetyViolation(
        'election safety',
        `${nodeId} leads term ${term} with the votes of ${votedFor.join(',') || 'nobody'} only, not of a majority of ${voters.join(',')} (votes persisted in term ${term}: ${describeVotes(votesOfTerm)})`,
      );
    }
    const snapshot = log.snapshot();
    for (let index = Math.max(snapshot.index, 1); index <= this.highestCommittedIndex; index++) {
      const committed = this.committed.get(index);
      if (committed === undefined || committed.commitTermBound >= term) continue;
      if (index > log.lastIndex()) {
        throw new SafetyViolation(
          'leader completeness',
          `${nodeId} leads term ${term} with last index ${log.lastIndex()} but entry ${index}/${committed.term} was committed by term ${committed.commitTermBound}`,
        );
      }
      const storedTerm = log.term(index);
      if (committed.term !== storedTerm) {
        throw new SafetyViolation(
          'leader completeness',
          `${nodeId} leads term ${term} with term ${storedTerm} at index ${index}, where ${index}/${committed.term} was committed by term ${committed.commitTermBound}`,
        );
      }
    }
  }

  leaderOf(term: number): NodeId | undefined {
    return this.leaders.get(term);
  }

  /**
   * Called before `entries` are appended to `log`: records them for log matching and rejects
   * overwriting an entry the node itself had already committed (commitIndex from its hard state).
   */
  onAppend(nodeId: NodeId, entries: readonly Entry[], log: LogStorage): void {
    const first = entries[0];
    if (first === undefined) return;
    const commitIndex = log.hardState().commit;
    let previousTerm = log.term(first.index - 1);
    for (const entry of entries) {
      if (entry.index <= commitIndex && entry.index <= log.lastIndex() && log.term(entry.index) !== entry.term) {
        throw new SafetyViolation(
          'no committed entry lost',
          `${nodeId} overwrites its committed entry ${entry.index} (term ${log.term(entry.index)}, commit index ${commitIndex}) with term ${entry.term}`,
        );
      }
      this.logMatching.record(nodeId, entry, previousTerm);
      previousTerm = entry.term;
    }
  }

  /**
   * A node's persistent state only moves forward: term, the one vote of a term, commit index.
   * Records the vote, for the majority check of onLeader.
   */
  onHardState(nodeId: NodeId, previous: HardState, next: HardState): void {
    if (next.term < previous.term) {
      throw new SafetyViolation('persistent state', `${nodeId} term went back from ${previous.term} to ${next.term}`);
    }
    if (next.term === previous.term && previous.vote !== null && next.vote !== previous.vote) {
      throw new SafetyViolation('persistent state', `${nodeId} voted for ${previous.vote} and then ${String(next.vote)} in term ${next.term}`);
    }
    if (next.commit < previous.commit) {
      throw new SafetyViolation('persistent state', `${nodeId} commit index went back from ${previous.commit} to ${next.commit}`);
    }
    if (next.vote !== null) {
      let votesOfTerm = this.votes.get(next.term);
      if (votesOfTerm === undefined) this.votes.set(next.term, (votesOfTerm = new Map()));
      votesOfTerm.set(nodeId, next.vote);
    }
  }

  /**
   * §5.4.2: "Raft never commits log entries from previous terms by counting replicas": a leader
   * of `term` that moves its commit index to `commitIndex` (already appended to `log`) may do so
   * only for an entry of its own term. Earlier entries become committed with it, indirectly.
   */
  onLeaderCommit(nodeId: NodeId, term: number, previousCommitIndex: number, commitIndex: number, log: LogStorage): void {
    const entryTerm = log.term(commitIndex);
    if (entryTerm !== term) {
      throw new SafetyViolation(
        'commit rule',
        `${nodeId}, leader of term ${term}, moved its commit index from ${previousCommitIndex} to ${commitIndex}, an entry of term ${String(entryTerm)}: only an entry of the leader's own term is committed by counting replicas`,
      );
    }
  }

  /**
   * State machine safety (§5.4.3): `entry` is the next one `nodeId` applies after
   * `previousAppliedIndex`, in `currentTerm`; `digest` is its state machine's digest afterwards.
   */
  onApply(nodeId: NodeId, currentTerm: number, entry: Entry, previousAppliedIndex: number, digest: number, writeId: string | null): void {
    if (entry.index !== previousAppliedIndex + 1) {
      throw new SafetyViolation('state machine safety', `${nodeId} applied index ${entry.index} right after ${previousAppliedIndex}`);
    }
    const payload = entryPayload(entry);
    const committed = this.committed.get(entry.index);
    if (committed === undefined) {
      this.committed.set(entry.index, { term: entry.term, commitTermBound: currentTerm, payload, digest, firstAppliedBy: nodeId });
      this.highestCommittedIndex = Math.max(this.highestCommittedIndex, entry.index);
      if (writeId !== null && !this.writeIndexes.has(writeId)) this.writeIndexes.set(writeId, entry.index);
      return;
    }
    if (committed.term !== entry.term || committed.payload !== payload) {
      throw new SafetyViolation(
        'no committed entry lost',
        `${nodeId} applied ${entry.index}/${entry.term} ${payload} where ${committed.firstAppliedBy} applied ${entry.index}/${committed.term} ${committed.payload}`,
      );
    }
    if (committed.digest !== digest) {
      throw new SafetyViolation('state machine safety', `${nodeId} state after index ${entry.index} differs from ${committed.firstAppliedBy}'s (digest ${digest} ≠ ${committed.digest})`);
    }
  }

  /** A state machine restored from a snapshot must equal the one that applied up to its index. */
  onRestore(nodeId: NodeId, meta: SnapshotMeta, digest: number): void {
    if (meta.index === 0) return;
    const committed = this.committed.get(meta.index);
    if (committed === undefined) {
      throw new SafetyViolation('state machine safety', `${nodeId} installed a snapshot at ${meta.index}, which no state machine has applied`);
    }
    if (committed.term !== meta.term || committed.digest !== digest) {
      throw new SafetyViolation(
        'state machine safety',
        `${nodeId} installed a snapshot at ${meta.index}/${meta.term} (digest ${digest}) but ${committed.firstAppliedBy} applied ${meta.index}/${committed.term} (digest ${committed.digest})`,
      );
    }
  }

  get committedIndex(): number {
    return this.highestCommittedIndex;
  }

  /** The index of the write's first committed entry, undefined while it is not committed. */
  writeIndex(writeId: string): number | undefined {
    return this.writeIndexes.get(writeId);
  }
}

/** What the end-of-run checks need to know about one live member. */
export interface ReplicaState {
  readonly nodeId: NodeId;
  readonly appliedIndex: number;
  /** The whole state machine as text. */
  readonly state: string;
  hasApplied(writeId: string): boolean;
}

/** After healing: every live member holds the same state and every acknowledged write. */
export function checkReplicasAgree(replicas: readonly ReplicaState[], acknowledgedWriteIds: readonly string[]): void {
  const first = replicas[0];
  if (first === undefined) throw new SafetyViolation('liveness', 'no live member is left');
  for (const replica of replicas) {
    for (const writeId of acknowledgedWriteIds) {
      if (!replica.hasApplied(writeId)) {
        throw new SafetyViolation('durability', `acknowledged write ${writeId} is missing from ${replica.nodeId} (applied index ${replica.appliedIndex})`);
      }
    }
    if (replica.state !== first.state) {
      throw new SafetyViolation('state machine safety', `${replica.nodeId} ends with state ${replica.state}, ${first.nodeId} with ${first.state}`);
    }
  }
}

export type Outcome = 'pending' | 'ok' | 'unknown';

/** Times are positions in one global order of client events (invocations and completions). */
export interface WriteRecord {
  readonly writeId: string;
  readonly key: string;
  readonly invokeTime: number;
  readonly completeTime: number | null;
  readonly outcome: Outcome;
}

export interface ReadRecord {
  readonly readId: string;
  readonly key: string;
  readonly invokeTime: number;
  readonly completeTime: number | null;
  readonly outcome: Outcome;
  /** The write whose value the read returned; null when the key was absent. */
  readonly writeId: string | null;
}

/**
 * Linearizability of reads, checked as each read completes (everything that can convict a read is
 * known by then). The Raft log totally orders the writes, so a read of key k that returned the
 * write at log index w (0 for absent) is linearizable if
 *  - that write is to k, is committed, and was invoked before the read completed;
 *  - no write to k with an index above w was acknowledged before the read was invoked;
 *  - no read of k that completed before this one was invoked returned a write above w.
 * Events must arrive in time order (acknowledgements and completions happen in that order).
 */
export class ReadChecker {
  /** Per key, in time order: each acknowledged write and completed read, with the highest index so far. */
  private readonly established = new Map<string, Array<{ readonly time: number; readonly highest: number; readonly by: string }>>();

  acknowledged(write: WriteRecord, index: number | undefined): void {
    if (index === undefined || write.completeTime === null) {
      throw new SafetyViolation('durability', `write ${write.writeId} was acknowledged but is not committed`);
    }
    this.establish(write.key, write.completeTime, index, `write ${write.writeId}`);
  }

  /** `write` is the write the read returned (undefined when it returned absent or something unknown). */
  completed(read: ReadRecord, write: WriteRecord | undefined, index: number | undefined): void {
    if (read.completeTime === null) return;
    let readIndex = 0;
    if (read.writeId !== null) {
      if (write === undefined || write.key !== read.key) {
        throw new SafetyViolation('linearizable reads', `read ${read.readId} of ${read.key} returned ${read.writeId}, which is no write to ${read.key}`);
      }
      if (index === undefined) {
        throw new SafetyViolation('linearizable reads', `read ${read.readId} of ${read.key} returned ${read.writeId}, which was never committed`);
      }
      if (write.invokeTime > read.completeTime) {
        throw new SafetyViolation('linearizable reads', `read ${read.readId} completed at ${read.completeTime} with ${read.writeId}, invoked later at ${write.invokeTime}`);
      }
      readIndex = index;
    }
    const before = this.before(read.key, read.invokeTime);
    if (before !== undefined && readIndex < before.highest) {
      throw new SafetyViolation(
        'linearizable reads',
        `read ${read.readId} of ${read.key} (invoked at ${read.invokeTime}) returned ${read.writeId ?? 'absent'} (index ${readIndex}), but ${before.by} had established index ${before.highest} before`,
      );
    }
    this.establish(read.key, read.completeTime, readIndex, `read ${read.readId}`);
  }

  private establish(key: string, time: number, index: number, by: string): void {
    let events = this.established.get(key);
    if (events === undefined) this.established.set(key, (events = []));
    const last = events.at(-1);
    if (last !== undefined && time < last.time) throw new Error(`ReadChecker: event at ${time} arrived after one at ${last.time}`);
    events.push(last !== undefined && last.highest >= index ? { time, highest: last.highest, by: last.by } : { time, highest: index, by });
  }

  /** The last event of `key` strictly before `time` (binary search). */
  private before(key: string, time: number) {
    const events = this.established.get(key) ?? [];
    let low = 0;
    let high = events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((events[middle]?.time ?? 0) < time) low = middle + 1;
      else high = middle;
    }
    return events[low - 1];
  }
}

/** Checks a whole history with ReadChecker, feeding it the events in time order. */
export function checkHistory(writes: readonly WriteRecord[], reads: readonly ReadRecord[], writeIndex: (writeId: string) => number | undefined): void {
  const writesById = new Map(writes.map((write) => [write.writeId, write]));
  const events: Array<{ readonly time: number; readonly check: () => void }> = [];
  const checker = new ReadChecker();
  for (const write of writes) {
    if (write.outcome === 'ok') events.push({ time: write.completeTime ?? 0, check: () => checker.acknowledged(write, writeIndex(write.writeId)) });
  }
  for (const read of reads) {
    if (read.outcome !== 'ok') continue;
    const write = read.writeId === null ? undefined : writesById.get(read.writeId);
    const index = read.writeId === null ? undefined : writeIndex(read.writeId);
    events.push({ time: read.completeTime ?? 0, check: () => checker.completed(read, write, index) });
  }
  events.sort((a, b) => a.time - b.time);
  for (const event of events) event.check();
}
