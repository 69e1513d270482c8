// RaftNode: the pure, deterministic Raft state machine. Inputs are tick(), step(message) and the
// client calls (propose, proposeConfChange, readIndex, transferLeadership); the output is a Ready
// that the driver persists, sends and applies before it calls advance(). No clock, timer, socket,
// promise or Math.random lives here: time is ticks and randomness comes from options.random.
//
// Beyond the paper's core (§5): pre-vote and check-quorum with a leader lease (dissertation §9.6),
// batched and pipelined replication with fast backtracking, ReadIndex (§6.4), leadership transfer
// (§3.10), single-server membership changes with learners (§4), and chunked snapshots (§5).

import { applyConfChange, hasQuorum, isMember, isVoter, members, quorumIndex } from './config.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import type { LogStorage } from './storage.js';
import { clientRequestTypes } from './types.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftErrorCode,
  RaftOptions,
  ReadState,
  Ready,
  Result,
  Role,
  SnapshotChunk,
  SoftState,
} from './types.js';

export interface PeerProgress {
  readonly match: number;
  readonly next: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly config: ConfState;
  /** Only on the leader: every other member's replication progress. */
  readonly progress: ReadonlyMap<NodeId, PeerProgress> | null;
  readonly transferee: NodeId | null;
}

/** A read waiting for its heartbeat round; `from` is the node that asked (maybe this one). */
interface PendingRead {
  readonly requestId: string;
  readonly from: NodeId;
  readonly index: number;
  readonly round: number;
}

/** Committed entries handed out per Ready, so a long catch-up is applied in bounded batches. */
const applyBatchMessagesPerReady = 16;

/** A message before `send` stamps the sender on it. */
type Unsent<M> = M extends Message ? Omit<M, 'from'> : never;

const noLeaderMessage = 'no leader is known; retry after an election';

function fail<T>(code: RaftErrorCode, message: string, leader: NodeId | null): Result<T> {
  return { ok: false, code, message, leader };
}

function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export class RaftNode {
  readonly id: NodeId;
  private readonly log: RaftLog;
  private readonly options: Required<RaftOptions>;

  private term: number;
  private vote: NodeId | null;
  private role: Role = 'follower';
  private leader: NodeId | null = null;

  /** Every configuration entry in the log after the snapshot, oldest first. */
  private configs: { index: number; config: ConfState }[] = [];
  private snapshotConfig: ConfState;

  private nowTicks = 0;
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTimeoutTicks = 0;

  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  /** Index of the latest configuration entry a leader appended; no new change until it commits. */
  private pendingConfIndex = 0;
  private transferee: NodeId | null = null;
  private transferElapsedTicks = 0;
  /** Replication is owed to every follower at the next ready() (batches proposals). */
  private broadcastPending = false;
  /** The commit index moved: followers hear of it at the next ready(), even with no new entries. */
  private commitBroadcastPending = false;

  private readRound = 0;
  /** A read round started since the last ready(): its heartbeat goes out then. */
  private readBroadcastPending = false;
  private pendingReads: PendingRead[] = [];
  /** Per read round, the voters that acknowledged a heartbeat carrying it (or a later one). */
  private readAcks = new Map<NodeId, number>();
  /** Reads asked before this leader committed an entry of its term (§6.4 step 1). */
  private readsAwaitingCommit: { requestId: string; from: NodeId }[] = [];
  private incomingSnapshot: { index: number; nextOffset: number } | null = null;

  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private snapshotChunk: SnapshotChunk | null = null;
  private persistedHardState: HardState;
  private reportedSoftState: SoftState = { role: 'follower', leader: null };
  private readyOutstanding = false;

  constructor(storage: LogStorage, options: RaftOptions) {
    if (options.electionTimeoutTicks <= options.heartbeatIntervalTicks) {
      throw new Error('raft: electionTimeoutTicks must exceed heartbeatIntervalTicks');
    }
    if (options.maxInflightMessages < 1) throw new Error('raft: maxInflightMessages must be at least 1');
    if (options.snapshotChunkBytes < 1) throw new Error('raft: snapshotChunkBytes must be at least 1');
    this.id = options.id;
    this.options = { transferTimeoutTicks: options.electionTimeoutTicks, ...options };
    this.log = new RaftLog(storage);
    const hardState = storage.hardState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.persistedHardState = hardState;
    this.snapshotConfig = storage.snapshot().config;
    this.loadConfigs();
    this.resetElectionTimer();
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick (elections, heartbeats, check-quorum, transfer timeout). */
  tick(): void {
    this.nowTicks++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Handles one peer message. Messages for another node are dropped. */
  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id) return;
    if (!clientRequestTypes.has(message.type) && !this.handleTerm(message)) return;
    switch (message.type) {
      case 'preVote':
        return this.handlePreVote(message);
      case 'preVoteResponse':
      case 'requestVoteResponse':
        return this.handleVoteResponse(message);
      case 'requestVote':
        return this.handleRequestVote(message);
      case 'appendEntries':
        this.followLeader(message.from);
        return this.handleAppendEntries(message);
      case 'heartbeat':
        this.followLeader(message.from);
        return this.handleHeartbeat(message);
      case 'installSnapshot':
        this.followLeader(message.from);
        return this.handleInstallSnapshot(message);
      case 'appendEntriesResponse':
        return this.handleAppendEntriesResponse(message);
      case 'heartbeatResponse':
        return this.handleHeartbeatResponse(message);
      case 'installSnapshotResponse':
        return this.handleInstallSnapshotResponse(message);
      case 'timeoutNow':
        // §3.10: the target starts an election at once, skipping pre-vote and the leader lease.
        if (message.from === this.leader && this.promotable()) this.startElection(true);
        return;
      case 'readIndex':
        if (this.role === 'leader') this.addRead(message.requestId, message.from);
        return;
      case 'readIndexResponse':
        this.readStates.push({ requestId: message.requestId, index: message.index });
        return;
      case 'propose':
        if (this.role === 'leader' && this.transferee === null) {
          for (const data of message.data) this.appendOwn({ kind: 'normal', data });
        }
        return;
      case 'proposeConfChange':
        // The sender learns the outcome by seeing the configuration change; refusals are dropped.
        if (this.role === 'leader') this.proposeConfChange(message.change);
        else if (this.leader !== null) this.send({ ...message, to: this.leader, term: this.term });
        return;      case 'transferLeader':
        // Likewise: the sender learns the outcome by seeing the leader change; refusals are dropped.
        // Never sent back to the node it came from, so two stale views cannot bounce it around.
        if (this.role === 'leader') this.transferLeadership(message.target);
        else if (this.leader !== null && this.leader !== message.from) this.send({ ...message, to: this.leader, term: this.term });
        return;
    }
  }

  /** Leader: appends; follower: forwards to the known leader. Value: the index on the leader, else 0. */
  propose(data: Uint8Array): Result<number> {
    if (this.role === 'leader') {
      if (this.transferee !== null) {
        return fail('TransferInProgress', `leadership is moving to ${this.transferee}; retry shortly`, this.transferee);
      }
      return ok(this.appendOwn({ kind: 'normal', data }));
    }
    if (this.leader === null) return fail('NoLeader', noLeaderMessage, null);
    this.send({ type: 'propose', to: this.leader, term: this.term, data: [data] });
    return ok(0);
  }

  /**
   * One change at a time; it takes effect when appended. Leader: appends, value the entry's index.
   * Follower: checks the change against the configuration it knows and forwards it (value 0).
   */
  proposeConfChange(change: ConfChange): Result<number> {
    if (this.role !== 'leader') {
      if (this.leader === null) return fail('NoLeader', noLeaderMessage, null);
      const checked = applyConfChange(this.config(), change);
      if (typeof checked === 'string') return fail('InvalidConfChange', checked, this.leader);
      this.send({ type: 'proposeConfChange', to: this.leader, term: this.term, change });
      return ok(0);
    }
    if (this.transferee !== null) {
      return fail('TransferInProgress', `leadership is moving to ${this.transferee}; retry shortly`, this.transferee);
    }
    if (this.pendingConfIndex > this.log.commitIndex) {
      return fail('ConfChangeInProgress', 'an earlier membership change is not committed yet; retry when it is', this.id);
    }
    const config = applyConfChange(this.config(), change);
    if (typeof config === 'string') return fail('InvalidConfChange', config, this.id);
    return ok(this.appendOwn({ kind: 'config', change, config }));
  }

  /** Starts a linearizable read; its ReadState (same requestId) arrives in a later Ready. */
  readIndex(requestId: string): Result<null> {
    if (this.role === 'leader') {
      this.addRead(requestId, this.id);
      return ok(null);
    }
    if (this.leader === null) return fail('NoLeader', noLeaderMessage, null);
    this.send({ type: 'readIndex', to: this.leader, term: this.term, requestId });
    return ok(null);
  }

  /**
   * Hands leadership to `to` once it is caught up (§3.10: TimeoutNow), or, when `to` is null, to
   * the voter furthest along. `to` is first checked against the configuration this node knows: a
   * stranger is NotMember, a learner (or no other voter at all) InvalidTransfer. Leader: starts
   * the transfer; value the target. Follower: forwards the request to the leader (which checks
   * it again and drops what it refuses); value `to`, null when the leader is to choose.
   */
  transferLeadership(to: NodeId | null): Result<NodeId | null> {
    const config = this.config();
    const current = this.role === 'leader' ? this.id : this.leader;
    if (to !== null && !isMember(config, to)) {
      return fail('NotMember', `${JSON.stringify(to)} is not a member; the members are ${members(config).join(', ')}`, current);
    }
    if (to !== null && !isVoter(config, to)) {
      return fail('InvalidTransfer', `${to} is a learner: only a voter can lead (it is promoted once it has caught up)`, current);
    }
    if (to === null && current !== null && config.voters.every((voter) => voter === current)) {
      return fail('InvalidTransfer', `${current === this.id ? 'this node' : current} is the only voter: there is nobody to hand leadership to`, current);
    }
    if (this.role !== 'leader') {
      if (this.leader === null) return fail('NoLeader', noLeaderMessage, null);
      if (to !== this.leader) this.send({ type: 'transferLeader', to: this.leader, term: this.term, target: to });
      return ok(to);
    }
    const target = to ?? this.furthestVoter();
    if (target === null || target === this.id) return ok(this.id);
    this.transferee = target;
    this.transferElapsedTicks = 0;
    const progress = this.progress.get(target);
    if (progress !== undefined && progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, false);
    return ok(target);
  }

  /** Starts an election now (pre-vote first), as if the election timeout had elapsed. */
  campaign(): void {
    if (this.role === 'leader' || !this.promotable()) return;
    this.startPreVote();
  }

  // ---------------------------------------------------------------- output

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    return (
      this.broadcastPending ||
      this.readBroadcastPending ||
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      this.snapshotChunk !== null ||
      this.log.unstableEntries().length > 0 ||
      this.log.commitIndex > this.log.appliedIndex ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  ready(): Ready {
    if (this.readyOutstanding) throw new Error('raft: ready() called again before advance()');
    if (this.broadcastPending) {
      this.broadcastAppend(this.commitBroadcastPending);
      this.broadcastPending = false;
      this.commitBroadcastPending = false;
    }
    if (this.readBroadcastPending) {
      this.readBroadcastPending = false;
      this.broadcastHeartbeat();
    }
    const hardState = this.hardState();
    const softState: SoftState = { role: this.role, leader: this.leader };
    const ready: Ready = {
      softState: this.softStateChanged() ? softState : null,
      hardState: this.hardStateChanged() ? hardState : null,
      entries: [...this.log.unstableEntries()],
      snapshotChunk: this.snapshotChunk,
      committedEntries: this.log.nextCommittedEntries(this.options.maxMessageBytes * applyBatchMessagesPerReady),
      messages: this.messages,
      readStates: this.readStates,
    };
    this.reportedSoftState = softState;
    this.messages = [];
    this.readStates = [];
    this.snapshotChunk = null;
    this.readyOutstanding = true;
    return ready;
  }

  advance(ready: Ready): void {
    this.readyOutstanding = false;
    if (ready.hardState !== null) this.persistedHardState = ready.hardState;
    if (ready.snapshotChunk?.done === true) this.log.stableSnapshotTo(ready.snapshotChunk.meta.index);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) this.log.appliedIndex = Math.max(this.log.appliedIndex, lastApplied.index);
    if (this.role === 'leader') {
      // The leader counts its own log only once it is durable.
      this.progress.get(this.id)?.maybeUpdate(this.log.stableLastIndex(), this.nowTicks);
      this.maybeCommit();
    }
  }

  status(): RaftStatus {
    let progress: Map<NodeId, PeerProgress> | null = null;
    if (this.role === 'leader') {
      progress = new Map();
      for (const [id, peer] of this.progress) {
        if (id === this.id) continue;
        progress.set(id, { match: peer.match, next: peer.next, state: peer.state, recentActive: peer.recentActive });
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commitIndex: this.log.commitIndex,
      appliedIndex: this.log.appliedIndex,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      config: this.config(),
      progress,
      transferee: this.transferee,
    };
  }

  // ---------------------------------------------------------------- roles and time

  private config(): ConfState {
    return this.configs[this.configs.length - 1]?.config ?? this.snapshotConfig;
  }

  private loadConfigs(): void {
    this.configs = [];
    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    for (let index = first; index <= last; ) {
      const batch = this.log.entries(index, last + 1, 1 << 24);
      for (const entry of batch) {
        if (entry.kind === 'config') this.configs.push({ index: entry.index, config: entry.config });
      }
      index += batch.length;
    }
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commitIndex };
  }

  private hardStateChanged(): boolean {
    const persisted = this.persistedHardState;
    return persisted.term !== this.term || persisted.vote !== this.vote || persisted.commit !== this.log.commitIndex;
  }

  private softStateChanged(): boolean {
    return this.reportedSoftState.role !== this.role || this.reportedSoftState.leader !== this.leader;
  }

  private resetElectionTimer(): void {
    this.electionElapsedTicks = 0;
    const base = this.options.electionTimeoutTicks;
    this.randomizedElectionTimeoutTicks = base + Math.floor(this.options.random() * base);
  }

  private tickElection(): void {
    this.electionElapsedTicks++;
    // A node that may not campaign keeps counting, so that its leader lease lapses and it
    // grants votes to the candidates that can restore the cluster.
    if (this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks && this.promotable()) this.startPreVote();
  }

  /**
   * Whether this node may start an election: it votes in its latest configuration, or (§4.2.2)
   * that configuration removed it but is not committed yet, and the committed one counts it — it
   * may still be needed to commit its own removal.
   */
  private promotable(): boolean {
    if (isVoter(this.config(), this.id)) return true;
    const latest = this.configs[this.configs.length - 1];
    if (latest === undefined || latest.index <= this.log.commitIndex) return false;
    let committed = this.snapshotConfig;
    for (const entry of this.configs) if (entry.index <= this.log.commitIndex) committed = entry.config;
    return isVoter(committed, this.id);
  }

  private tickLeader(): void {
    this.heartbeatElapsedTicks++;
    this.electionElapsedTicks++;
    if (this.electionElapsedTicks >= this.options.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      // Check-quorum: a leader cut off from a majority steps down rather than serve stale reads.
      const self = this.progress.get(this.id);
      if (self !== undefined) self.recentActive = true;
      const active = hasQuorum(this.config().voters, (id) => this.progress.get(id)?.recentActive === true);
      for (const [id, peer] of this.progress) peer.recentActive = id === this.id;
      if (!active) {
        this.becomeFollower(this.term, null);
        return;
      }
    }
    if (this.transferee !== null && ++this.transferElapsedTicks >= this.options.transferTimeoutTicks) {
      this.transferee = null;
    }
    if (this.heartbeatElapsedTicks >= this.options.heartbeatIntervalTicks) {
      this.heartbeatElapsedTicks = 0;
      this.broadcastHeartbeat();
    }
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.leader = leader;
    this.resetLeaderState();
    this.resetElectionTimer();
  }

  private resetLeaderState(): void {
    this.progress.clear();
    this.votes.clear();
    this.transferee = null;
    this.pendingReads = [];
    this.readsAwaitingCommit = [];
    this.readAcks.clear();
    this.readBroadcastPending = false;
    this.broadcastPending = false;
    this.commitBroadcastPending = false;
  }

  /** Acknowledges the sender of a current-term AppendEntries, heartbeat or snapshot as leader. */
  private followLeader(leader: NodeId): void {
    if (this.role === 'leader') throw new Error(`raft: two leaders in term ${this.term}: ${this.id} and ${leader}`);
    if (this.role !== 'follower') this.becomeFollower(this.term, leader);
    this.leader = leader;
    this.electionElapsedTicks = 0;
  }

  private startPreVote(): void {
    this.role = 'preCandidate';
    this.leader = null;
    this.votes = new Map([[this.id, true]]);
    this.resetElectionTimer();
    if (this.tallyVotes()) return;
    const lastLog = { lastLogIndex: this.log.lastIndex(), lastLogTerm: this.log.lastTerm() };
    for (const to of this.otherVoters()) this.send({ type: 'preVote', to, term: this.term + 1, ...lastLog });
  }

  private otherVoters(): NodeId[] {
    return this.config().voters.filter((voter) => voter !== this.id);
  }

  private startElection(transfer: boolean): void {
    this.resetLeaderState();
    this.role = 'candidate';
    this.term++;
    this.vote = this.id;
    this.leader = null;
    this.votes = new Map([[this.id, true]]);
    this.resetElectionTimer();
    if (this.tallyVotes()) return;
    const lastLog = { lastLogIndex: this.log.lastIndex(), lastLogTerm: this.log.lastTerm() };
    for (const to of this.otherVoters()) this.send({ type: 'requestVote', to, term: this.term, ...lastLog, transfer });
  }

  /** Moves the campaign on once the votes decide it; true when it is decided. */
  private tallyVotes(): boolean {
    const voters = this.config().voters;
    if (hasQuorum(voters, (id) => this.votes.get(id) === true)) {
      if (this.role === 'preCandidate') this.startElection(false);
      else this.becomeLeader();
      return true;
    }
    if (hasQuorum(voters, (id) => this.votes.get(id) === false)) {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leader = this.id;
    this.resetLeaderState();
    this.heartbeatElapsedTicks = 0;
    this.electionElapsedTicks = 0;
    for (const id of members(this.config())) this.addProgress(id);
    this.progress.get(this.id)?.maybeUpdate(this.log.stableLastIndex(), this.nowTicks);
    // §8: a no-op entry of the new term lets the leader learn which entries are committed.
    this.appendOwn({ kind: 'normal', data: new Uint8Array(0) });
    // No membership change until an entry of this term commits (the dissertation's errata for
    // single-server changes): two changes from one configuration, made by leaders of different
    // terms, could otherwise have majorities that do not overlap and lose a committed entry.
    this.pendingConfIndex = this.log.lastIndex();
  }

  private addProgress(id: NodeId): void {
    const progress = new Progress(id, this.log.lastIndex() + 1, this.nowTicks);
    progress.recentActive = true;
    this.progress.set(id, progress);
  }

  // ---------------------------------------------------------------- terms and votes

  /** Applies §5.1's term rules; false when the message must go no further. */
  private handleTerm(message: Message): boolean {
    if (message.term > this.term) {
      const isVoteRequest = message.type === 'preVote' || message.type === 'requestVote';
      if (isVoteRequest) {
        // Leader lease (§9.6): while a leader is heard from, vote requests are disruptions.
        const transfer = message.type === 'requestVote' && message.transfer;
        const inLease = this.leader !== null && this.electionElapsedTicks < this.options.electionTimeoutTicks;
        if (inLease && !transfer) return false;
      }
      // A pre-vote and its grant speak of a term nobody has entered yet.
      if (message.type === 'preVote' || (message.type === 'preVoteResponse' && message.granted)) return true;
      const fromLeader =
        message.type === 'appendEntries' || message.type === 'heartbeat' || message.type === 'installSnapshot';
      this.becomeFollower(message.term, fromLeader ? message.from : null);
      return true;
    }
    if (message.term < this.term) {
      if (message.type === 'appendEntries' || message.type === 'heartbeat') {
        // A deposed leader learns of the newer term (needed with pre-vote, which alone never raises it).
        this.send({
          type: 'appendEntriesResponse',
          to: message.from,
          term: this.term,
          success: false,
          matchIndex: 0,
          rejectedIndex: 0,
          conflictIndex: 0,
          conflictTerm: 0,
        });
      } else if (message.type === 'preVote') {
        this.send({ type: 'preVoteResponse', to: message.from, term: this.term, granted: false });
      }
      return false;
    }
    return true;
  }

  private handlePreVote(message: Extract<Message, { type: 'preVote' }>): void {
    // §5.4.1: grant only to a candidate whose log is at least as up-to-date as ours.
    const canVote =
      message.term > this.term || this.vote === message.from || (this.vote === null && this.leader === null);
    const granted = canVote && this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    this.send({ type: 'preVoteResponse', to: message.from, term: granted ? message.term : this.term, granted });
  }

  private handleRequestVote(message: Extract<Message, { type: 'requestVote' }>): void {
    // §5.2: at most one vote per term, first come first served; §5.4.1: the election restriction.
    const canVote = this.vote === message.from || (this.vote === null && this.leader === null);
    const granted = canVote && this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    if (granted) {
      this.vote = message.from;
      this.electionElapsedTicks = 0;
    }
    this.send({ type: 'requestVoteResponse', to: message.from, term: this.term, granted });
  }

  private handleVoteResponse(message: Extract<Message, { type: 'preVoteResponse' | 'requestVoteResponse' }>): void {
    const expected = message.type === 'preVoteResponse' ? 'preCandidate' : 'candidate';
    if (this.role !== expected) return;
    if (message.type === 'preVoteResponse' && message.granted && message.term !== this.term + 1) return;
    this.votes.set(message.from, message.granted);
    this.tallyVotes();
  }

  // ---------------------------------------------------------------- follower side of replication

  private handleAppendEntries(message: Extract<Message, { type: 'appendEntries' }>): void {
    const reply = (fields: { success: boolean; matchIndex: number; conflictIndex: number; conflictTerm: number }) =>
      this.send({ type: 'appendEntriesResponse', to: message.from, term: this.term, rejectedIndex: message.prevLogIndex, ...fields });
    if (message.prevLogIndex < this.log.commitIndex) {
      // Everything up to our commit index matches any leader's log: say so instead of re-checking.
      return reply({ success: true, matchIndex: this.log.commitIndex, conflictIndex: 0, conflictTerm: 0 });
    }
    const appended = this.log.maybeAppend(message.prevLogIndex, message.prevLogTerm, message.entries);
    if (appended === null) {
      // §5.3: reject, with a hint that lets the leader skip a whole conflicting term at once.
      const ourTerm = this.log.term(message.prevLogIndex);
      if (ourTerm === null) {
        return reply({ success: false, matchIndex: 0, conflictIndex: this.log.lastIndex() + 1, conflictTerm: 0 });
      }
      const conflictIndex = this.log.firstIndexOfTermAt(message.prevLogIndex);
      return reply({ success: false, matchIndex: 0, conflictIndex, conflictTerm: ourTerm });
    }
    if (appended.truncatedFrom !== null) this.dropConfigsFrom(appended.truncatedFrom);
    for (const entry of message.entries) {
      if (entry.kind === 'config' && entry.index > (this.configs[this.configs.length - 1]?.index ?? 0)) {
        this.configs.push({ index: entry.index, config: entry.config });
      }
    }
    this.log.commitTo(Math.min(message.leaderCommit, appended.lastNewIndex));
    reply({ success: true, matchIndex: appended.lastNewIndex, conflictIndex: 0, conflictTerm: 0 });
  }

  private dropConfigsFrom(index: number): void {
    this.configs = this.configs.filter((entry) => entry.index < index);
  }

  private handleHeartbeat(message: Extract<Message, { type: 'heartbeat' }>): void {
    // The leader sends min(our match, its commit), so our log holds the entries it commits.
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResponse', to: message.from, term: this.term, readRound: message.readRound });
  }

  private handleInstallSnapshot(message: Extract<Message, { type: 'installSnapshot' }>): void {
    const reply = (nextOffset: number, done: boolean, matchIndex: number) =>
      this.send({
        type: 'installSnapshotResponse',
        to: message.from,
        term: this.term,
        snapshotIndex: message.meta.index,
        nextOffset,
        done,
        matchIndex,
      });
    if (message.meta.index <= this.log.commitIndex) {
      // We already have everything the snapshot covers.
      this.incomingSnapshot = null;
      return reply(0, true, this.log.commitIndex);
    }
    if (this.log.matchTerm(message.meta.index, message.meta.term)) {
      // Figure 13 step 6: our log already holds the snapshot's last entry, so it matches the
      // leader's up to there; keep the entries after it (they may be acknowledged, even committed).
      this.incomingSnapshot = null;
      this.log.commitTo(message.meta.index);
      return reply(0, true, message.meta.index);
    }
    if (this.snapshotChunk !== null) return; // one chunk per Ready; the leader resends
    const incoming = this.incomingSnapshot;
    const continues = incoming !== null && incoming.index === message.meta.index && incoming.nextOffset === message.offset;
    if (message.offset !== 0 && !continues) {
      return reply(incoming?.index === message.meta.index ? incoming.nextOffset : 0, false, 0);
    }
    this.snapshotChunk = { meta: message.meta, offset: message.offset, data: message.data, done: message.done };
    const nextOffset = message.offset + message.data.byteLength;
    if (!message.done) {
      this.incomingSnapshot = { index: message.meta.index, nextOffset };
      return reply(nextOffset, false, 0);
    }
    // §7: the snapshot replaces the whole log and the state machine.
    this.incomingSnapshot = null;
    this.log.restore(message.meta);
    this.snapshotConfig = message.meta.config;
    this.configs = [];
    reply(nextOffset, true, message.meta.index);
  }

  // ---------------------------------------------------------------- leader side of replication

  private appendOwn(fields: { kind: 'normal'; data: Uint8Array } | Omit<Extract<Entry, { kind: 'config' }>, 'index' | 'term'>): number {
    const index = this.log.lastIndex() + 1;
    const entry: Entry = { ...fields, index, term: this.term };
    this.log.append([entry]);
    if (entry.kind === 'config') {
      this.configs.push({ index, config: entry.config });
      this.pendingConfIndex = index;
      this.applyLeaderConfig(entry.config);
    }
    this.broadcastPending = true;
    return index;
  }

  /** A configuration takes effect on the leader when appended (§4.1). */
  private applyLeaderConfig(config: ConfState): void {
    for (const id of members(config)) if (!this.progress.has(id)) this.addProgress(id);
    for (const id of [...this.progress.keys()]) {
      if (!isMember(config, id) && id !== this.id) this.progress.delete(id);
    }
    if (this.transferee !== null && !isVoter(config, this.transferee)) this.transferee = null;
  }

  private broadcastAppend(allowEmpty: boolean): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, allowEmpty);
  }

  private sendAppend(to: NodeId, allowEmpty: boolean): void {
    const progress = this.progress.get(to);
    if (progress === undefined || !progress.canSend(this.options.maxInflightMessages)) return;
    const prevLogIndex = progress.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    if (prevLogTerm === null || prevLogIndex < this.log.firstIndex() - 1) {
      this.startSnapshot(progress);
      return;
    }
    const lastIndex = this.log.lastIndex();
    const entries = this.log.entries(progress.next, lastIndex + 1, this.options.maxMessageBytes);
    if (entries.length === 0 && !allowEmpty && progress.state === 'replicate') return;
    this.send({
      type: 'appendEntries',
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.log.commitIndex,
    });
    const last = entries[entries.length - 1];
    if (progress.state === 'probe') {
      progress.probeSent = true;
    } else if (last !== undefined) {
      progress.next = last.index + 1;
      progress.inflight.push(last.index);
    }
  }

  private startSnapshot(progress: Progress): void {
    const meta = this.log.storage.snapshot();
    progress.becomeSnapshot(meta.index, this.nowTicks);
    this.sendSnapshotChunk(progress);
  }

  private sendSnapshotChunk(progress: Progress): void {
    const pending = progress.snapshot;
    if (pending === null) return;
    const meta = this.log.storage.snapshot();
    if (meta.index !== pending.index) {
      // Compacted again since the transfer began: send the newer snapshot from its start.
      pending.index = meta.index;
      pending.offset = 0;
    }
    const data = this.log.storage.snapshotData(pending.offset, this.options.snapshotChunkBytes);
    pending.sentTick = this.nowTicks;
    this.send({
      type: 'installSnapshot',
      to: progress.id,
      term: this.term,
      meta,
      offset: pending.offset,
      data,
      done: pending.offset + data.byteLength >= meta.sizeBytes,
    });
  }

  private handleAppendEntriesResponse(message: Extract<Message, { type: 'appendEntriesResponse' }>): void {
    if (this.role !== 'leader') return;
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (message.success) {
      const wasProbing = progress.state === 'probe';
      const updated = progress.maybeUpdate(message.matchIndex, this.nowTicks);
      // A follower that a snapshot was meant for may have caught up by appends after all.
      const snapshotNeedless = progress.state === 'snapshot' && progress.match + 1 >= this.log.firstIndex();
      if (wasProbing || snapshotNeedless) progress.becomeReplicate(this.nowTicks);
      if (updated) {
        this.maybePromote(progress);
        if (this.transferee === message.from && progress.match === this.log.lastIndex()) {
          this.sendTimeoutNow(message.from);
        }
        if (this.maybeCommit()) return;
      }
      this.sendAppend(message.from, false);
      return;
    }
    // A rejection. Stale ones (for an index we have moved past) are ignored.
    if (progress.state === 'replicate' && message.rejectedIndex <= progress.match) return;
    if (progress.state === 'probe' && message.rejectedIndex !== progress.next - 1) return;
    if (progress.state === 'snapshot') return;
    progress.becomeProbe(Math.min(this.backtrackTo(message), message.rejectedIndex));
    this.sendAppend(message.from, false);
  }

  /** Fast backtracking: skip the follower's whole conflicting term, or past its short log. */
  private backtrackTo(message: Extract<Message, { type: 'appendEntriesResponse' }>): number {
    if (message.conflictTerm > 0) {
      const last = this.log.lastIndexOfTerm(message.conflictTerm, message.rejectedIndex);
      if (last !== null) return last + 1;
    }
    return Math.max(1, message.conflictIndex);
  }

  private handleHeartbeatResponse(message: Extract<Message, { type: 'heartbeatResponse' }>): void {
    if (this.role !== 'leader') return;
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (message.readRound > 0) this.acknowledgeReads(message.from, message.readRound);
    const stalledTicks = this.nowTicks - progress.lastProgressTick;
    switch (progress.state) {
      case 'probe':
        progress.probeSent = false;
        break;
      case 'replicate':
        // AppendEntries lost in flight leave the window full and the follower silent: start over.
        if (progress.inflight.length > 0 && stalledTicks >= this.options.electionTimeoutTicks) {
          progress.becomeProbe(progress.match + 1);
        }
        break;
      case 'snapshot':
        if (progress.snapshot !== null && this.nowTicks - progress.snapshot.sentTick >= this.options.electionTimeoutTicks) {
          this.sendSnapshotChunk(progress);
        }
        return;
    }
    if (progress.match < this.log.lastIndex()) this.sendAppend(message.from, false);
  }

  private handleInstallSnapshotResponse(message: Extract<Message, { type: 'installSnapshotResponse' }>): void {
    if (this.role !== 'leader') return;
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (progress.state !== 'snapshot' || progress.snapshot?.index !== message.snapshotIndex) return;
    if (message.done) {
      progress.maybeUpdate(Math.max(message.matchIndex, message.snapshotIndex), this.nowTicks);
      progress.becomeReplicate(this.nowTicks);
      this.maybePromote(progress);
      this.sendAppend(message.from, true);
      return;
    }
    // The chunk at `offset` is in flight; a reply asking for it again is a duplicate or reordering.
    if (message.nextOffset === progress.snapshot.offset) return;
    progress.snapshot.offset = message.nextOffset;
    this.sendSnapshotChunk(progress);
  }

  /** §5.3/§5.4.2: commit the highest index a majority stores, only if it is of this term. */
  private maybeCommit(): boolean {
    const config = this.config();
    const index = quorumIndex(config.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index <= this.log.commitIndex || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    this.broadcastPending = true;
    this.commitBroadcastPending = true;
    this.releaseReadsAwaitingCommit();
    if (!isVoter(config, this.id) && this.pendingConfIndex <= index) this.stepDownAfterRemoval();
    return true;
  }

  /** A leader that removed itself leaves once that is committed, handing over to the most caught-up voter. */
  private stepDownAfterRemoval(): void {
    this.broadcastAppend(true);
    let successor: Progress | null = null;
    for (const id of this.config().voters) {
      const candidate = this.progress.get(id);
      if (candidate !== undefined && (successor === null || candidate.match > successor.match)) successor = candidate;
    }
    if (successor !== null && successor.match === this.log.lastIndex()) this.sendTimeoutNow(successor.id);
    this.becomeFollower(this.term, null);
  }

  /** Leader: the other voter with the highest match index (one heard from recently first on a tie). */
  private furthestVoter(): NodeId | null {
    let best: Progress | null = null;
    for (const id of this.config().voters) {
      const candidate = id === this.id ? undefined : this.progress.get(id);
      if (candidate === undefined) continue;
      const better =
        best === null || candidate.match > best.match || (candidate.match === best.match && candidate.recentActive && !best.recentActive);
      if (better) best = candidate;
    }
    return best?.id ?? null;
  }

  private maybePromote(progress: Progress): void {
    if (!this.options.autoPromoteLearners || !this.config().learners.includes(progress.id)) return;
    if (progress.match < this.log.commitIndex || this.pendingConfIndex > this.log.commitIndex) return;
    this.proposeConfChange({ type: 'promote', nodeId: progress.id });
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', to, term: this.term });
  }

  private broadcastHeartbeat(): void {
    for (const [id, progress] of this.progress) {
      if (id === this.id) continue;
      this.send({
        type: 'heartbeat',
        to: id,
        term: this.term,
        commit: Math.min(progress.match, this.log.commitIndex),
        readRound: this.readRound,
      });
    }
  }

  // ---------------------------------------------------------------- ReadIndex (§6.4)

  private addRead(requestId: string, from: NodeId): void {
    if (this.log.term(this.log.commitIndex) !== this.term) {
      this.readsAwaitingCommit.push({ requestId, from });
      return;
    }
    // Reads that arrive together share one round: one heartbeat broadcast confirms them all.
    if (!this.readBroadcastPending) {
      this.readRound++;
      this.readBroadcastPending = true;
    }
    this.pendingReads.push({ requestId, from, index: this.log.commitIndex, round: this.readRound });
    this.readAcks.set(this.id, this.readRound);
    if (this.releaseReads()) this.readBroadcastPending = false;
  }

  private releaseReadsAwaitingCommit(): void {
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const read of waiting) this.addRead(read.requestId, read.from);
  }

  private acknowledgeReads(from: NodeId, round: number): void {
    if ((this.readAcks.get(from) ?? 0) >= round) return;
    this.readAcks.set(from, round);
    this.releaseReads();
  }

  /** Releases every read whose round a majority of voters has acknowledged; true if all went. */
  private releaseReads(): boolean {
    const voters = this.config().voters;
    const confirmedRound = quorumIndex(voters, (id) => this.readAcks.get(id) ?? 0);
    while (this.pendingReads.length > 0 && (this.pendingReads[0]?.round ?? 0) <= confirmedRound) {
      const read = this.pendingReads.shift();
      if (read === undefined) break;
      if (read.from === this.id) this.readStates.push({ requestId: read.requestId, index: read.index });
      else this.send({ type: 'readIndexResponse', to: read.from, term: this.term, requestId: read.requestId, index: read.index });
    }
    return this.pendingReads.length === 0;
  }

  private send(message: Unsent<Message>): void {
    this.messages.push({ ...message, from: this.id } as Message);
  }
}
