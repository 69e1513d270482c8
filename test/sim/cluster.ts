// A simulated cluster of RaftNode instances, driven tick by tick from one seeded generator (no
// timers, no Math.random, no Date), in the manner of TigerBeetle's VOPR. Each node is a core, a
// MemoryStorage and a key-value state machine, joined by the same Ready loop a real driver runs
// (persist, send, install, apply, serve reads, advance). Around them: a faulty network
// (network.ts), partitions, crash-and-restart (the core and the state machine are discarded, the
// storage is kept), paused nodes, membership changes, leadership transfers, log compaction,
// election storms, a nemesis that goes after leaders (crashing or cutting off a leader just after
// it is elected, or just after its commit index advances), and clients that write and read
// linearizably while all of it happens. The SafetyChecker sees every append, hard state,
// application and leadership as it happens; `finish()` heals everything and checks liveness and
// the end state. Every event goes to a trace; the same seed gives the same trace, byte for byte.

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RaftNode } from '../../src/raft/node.js';
import { seededRandom } from '../../src/raft/random.js';
import { bootstrap } from '../../src/raft/storage.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, RaftOptions, ReadState, Ready, Result } from '../../src/raft/types.js';
import { ReadChecker, SafetyChecker, SafetyViolation, checkHistory, checkReplicasAgree, checkStoredLogs, type Outcome, type ReadRecord, type WriteRecord } from './checkers.js';
import { SimulatedNetwork, describeMessage, reliableNetwork } from './network.js';
import type { SimulationOptions } from './options.js';
import { KeyValueMachine, encodeCommand } from './state-machine.js';

/** A core that still has a Ready after this many rounds for one input is stuck in a loop. */
const maxReadyRoundsPerInput = 100;

export interface SimulationStats {
  ticks: number;
  messagesSent: number;
  messagesDelivered: number;
  messagesDropped: number;
  messagesDuplicated: number;
  messagesDelayed: number;
  crashes: number;
  pauses: number;
  partitions: number;
  storms: number;
  /** Leaders crashed or cut off by the nemesis, just after their election or a commit. */
  leaderDisruptions: number;
  membershipChanges: number;
  transfers: number;
  leaderElections: number;
  compactions: number;
  snapshotsSent: number;
  snapshotChunksSent: number;
  snapshotsInstalled: number;
  writesAcknowledged: number;
  /** Writes whose client gave up before healing (retried, and then acknowledged, after it). */
  writesUnknown: number;
  readsCompleted: number;
  readsUnknown: number;
}

/** A ring of the latest trace lines plus a digest of all of them (and all of them, on request). */
export class Trace {
  digest = 0x811c9dc5;
  lineCount = 0;
  readonly all: string[] | null;
  private readonly recent: string[] = [];

  constructor(
    private readonly tailLines: number,
    keepAll: boolean,
  ) {
    this.all = keepAll ? [] : null;
  }

  record(tick: number, text: string): void {
    const line = `${String(tick).padStart(6)} ${text}`;
    for (let i = 0; i < line.length; i++) this.digest = Math.imul(this.digest ^ line.charCodeAt(i), 0x01000193) >>> 0;
    this.lineCount++;
    this.all?.push(line);
    this.recent.push(line);
    if (this.recent.length > this.tailLines) this.recent.shift();
  }

  tail(): string[] {
    return [...this.recent];
  }
}

type Lifecycle = 'joining' | 'member' | 'retired';

interface SimulatedNode {
  readonly id: NodeId;
  /** Survives crashes: it is the node's disk. */
  readonly storage: MemoryStorage;
  /** 'joining' until a committed configuration names it; 'retired' once one no longer does. */
  lifecycle: Lifecycle;
  /** Null while crashed or after retiring. */
  raft: RaftNode | null;
  machine: KeyValueMachine | null;
  /** ReadStates waiting for the state machine to reach their index. */
  readStates: ReadState[];
  restartTick: number | null;
  /** Non-null while paused: no ticks, no deliveries, messages queue. */
  resumeTick: number | null;
  /** Set once a committed configuration no longer names this member. */
  retireTick: number | null;
}

interface WriteOperation extends WriteRecord {
  invokeTick: number;
  completeTime: number | null;
  outcome: Outcome;
  attempts: number;
  deadlineTick: number;
  /** Nodes that accepted an attempt and are still up: the first of them to apply it acknowledges. */
  readonly acceptedBy: Set<NodeId>;
}

interface ReadOperation extends ReadRecord {
  invokeTick: number;
  completeTime: number | null;
  outcome: Outcome;
  writeId: string | null;
  attempts: number;
  deadlineTick: number;
  /** requestId → the node that accepted that attempt. */
  readonly requests: Map<string, NodeId>;
}

interface Partition {
  readonly description: string;
  readonly endTick: number | null;
}

/** The nemesis's appointment with the leader of one term. */
interface LeaderDisruption {
  readonly tick: number;
  readonly leader: NodeId;
  readonly term: number;
}

export class SimulatedCluster {
  readonly options: SimulationOptions;
  readonly checker = new SafetyChecker();
  readonly readChecker = new ReadChecker();
  readonly trace: Trace;
  readonly network: SimulatedNetwork;
  tick = 0;
  private readonly random: () => number;
  private readonly nodes = new Map<NodeId, SimulatedNode>();
  private nextNodeNumber = 1;
  private committedConfig: ConfState = { voters: [], learners: [] };
  private committedConfigIndex = 0;
  private partition: Partition | null = null;
  /** Nodes that crash and restart at the end of this tick (see send). */
  private readonly quickRestarts = new Set<NodeId>();
  /** Non-null during an election storm: the tick it ends. */
  private stormEndTick: number | null = null;
  private leaderDisruptions: LeaderDisruption[] = [];
  /** Per node, the latest term in which it advanced its commit index as leader. */
  private readonly lastLeaderCommitTerm = new Map<NodeId, number>();
  /** False once finish() began: no more random faults or new client operations. */
  private chaos = true;
  /** Position in the one global order of client events. */
  private clock = 0;
  private readonly writes: WriteOperation[] = [];
  private readonly writesById = new Map<string, WriteOperation>();
  private readonly reads: ReadOperation[] = [];
  private readonly pendingWrites = new Map<string, WriteOperation>();
  /**
   * After healing: the writes whose outcome was unknown, waiting for their retry. They go out
   * maxPendingOperations at a time, like any client's: all at once, each retried every
   * attemptTimeoutTicks while the log is slow to drain (one entry per message), they would append
   * copies faster than replication takes them away.
   */
  private readonly writesToRetry: WriteOperation[] = [];
  private readonly pendingReads = new Map<string, ReadOperation>();
  private readonly readsByRequest = new Map<string, ReadOperation>();
  private readonly stats = {
    crashes: 0,
    pauses: 0,
    partitions: 0,
    storms: 0,
    leaderDisruptions: 0,
    membershipChanges: 0,
    transfers: 0,
    leaderElections: 0,
    compactions: 0,
    snapshotsSent: 0,
    snapshotChunksSent: 0,
    snapshotsInstalled: 0,
    writesUnknown: 0,
  };

  constructor(options: SimulationOptions) {
    this.options = options;
    this.random = seededRandom(options.seed);
    this.trace = new Trace(options.traceTailLines, options.keepFullTrace);
    this.network = new SimulatedNetwork(
      this.random,
      {
        dropProbability: options.faults.dropProbability,
        duplicateProbability: options.faults.duplicateProbability,
        reorderProbability: options.faults.reorderProbability,
        minimumDelayTicks: options.minimumDelayTicks,
        maximumDelayTicks: options.maximumDelayTicks,
        reorderDelayTicks: options.reorderDelayTicks,
        longDelayProbability: options.faults.longDelayProbability,
        longDelayTicks: options.longDelayTicks,
        maxQueuedMessagesPerNode: options.maxQueuedMessagesPerNode,
      },
      (text) => this.record(text),
    );
    const founders: NodeId[] = [];
    for (let i = 0; i < options.nodeCount; i++) founders.push(`n${this.nextNodeNumber++}`);
    this.committedConfig = { voters: [...founders].sort(), learners: [] };
    this.committedConfigIndex = 1;
    this.record(`start seed ${options.seed} (${options.intensity}) voters ${founders.join(',')} ${JSON.stringify({ ...options, faults: undefined })} ${JSON.stringify(options.faults)}`);
    for (const id of founders) {
      const storage = new MemoryStorage();
      bootstrap(storage, founders);
      this.nodes.set(id, { id, storage, lifecycle: 'member', raft: null, machine: null, readStates: [], restartTick: null, resumeTick: null, retireTick: null });
    }
    for (const id of founders) this.restart(id);
  }

  // ---- the step ----------------------------------------------------------------------------

  /** One tick of simulated time: faults, clients, compaction, ticks, deliveries, checks. */
  step(): void {
    this.tick++;
    if (this.chaos) {
      this.injectFaults();
      this.startOperations();
    }
    this.runSchedules();
    this.compactLogs();
    for (const node of this.shuffled(this.activeNodes())) {
      node.raft?.tick();
      this.drain(node);
    }
    this.deliverMessages();
    this.expireOperations();
    this.updateLifecycles();
    for (const node of this.activeNodes()) this.observeLeadership(node);
    for (const id of this.quickRestarts) {
      this.crash(id);
      this.restart(id);
    }
    this.quickRestarts.clear();
  }

  runTicks(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.step();
  }

  /** Runs until `condition` holds; throws a liveness violation after `maxTicks`. */
  runUntil(condition: () => boolean, maxTicks: number, what: string): void {
    const start = this.tick;
    while (!condition()) {
      if (this.tick - start >= maxTicks) throw new SafetyViolation('liveness', `${what} did not happen within ${maxTicks} ticks`);
      this.step();
    }
  }

  // ---- the driver: the Ready loop of one node ----------------------------------------------

  private drain(node: SimulatedNode): void {
    const raft = node.raft;
    if (raft === null) return;
    for (let round = 0; raft.hasReady(); round++) {
      if (round === maxReadyRoundsPerInput) throw new Error(`${node.id} still has a Ready after ${round} rounds`);
      const ready = raft.ready();
      if (this.persist(node, ready)) return;
      for (const message of ready.messages) this.send(message);
      if (ready.snapshotChunk?.done === true) this.installSnapshot(node);
      for (const entry of ready.committedEntries) this.apply(node, entry);
      node.readStates.push(...ready.readStates);
      this.serveReads(node);
      if (ready.softState !== null) {
        this.record(`${node.id} is ${ready.softState.role} (leader ${ready.softState.leader ?? 'unknown'})`);
        this.observeLeadership(node);
      }
      raft.advance(ready);
    }
  }

  /** Writes a Ready to the node's disk; true when the node crashed right after (see maybeCrashAfterCommit). */
  private persist(node: SimulatedNode, ready: Ready): boolean {
    const { storage } = node;
    const chunk = ready.snapshotChunk;
    if (chunk !== null) {
      this.record(`${node.id} writes snapshot ${chunk.meta.index}/${chunk.meta.term} offset ${chunk.offset} bytes ${chunk.data.byteLength}${chunk.done ? ' done' : ''}`);
      storage.writeSnapshotChunk(chunk);
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      this.record(`${node.id} appends ${first.index}..${first.index + ready.entries.length - 1} term ${first.term}`);
      this.checker.onAppend(node.id, ready.entries, storage);
      storage.append(ready.entries);
    }
    if (ready.hardState !== null) {
      const { term, vote, commit } = ready.hardState;
      this.record(`${node.id} hard state term ${term} vote ${vote ?? '-'} commit ${commit}`);
      const previous = storage.hardState();
      this.checker.onHardState(node.id, previous, ready.hardState);
      storage.setHardState(ready.hardState);
      // A commit index can move within a term on a leader only by counting replicas (a leader
      // that has just won has committed nothing yet in its term).
      if (commit > previous.commit && term === previous.term && node.raft?.status().role === 'leader') {
        this.checker.onLeaderCommit(node.id, term, previous.commit, commit, storage);
        return this.maybeCrashAfterCommit(node, term, commit);
      }
    }
    return false;
  }

  /**
   * The nemesis: a leader whose commit index just moved may die right there, after persisting and
   * before this Ready's messages leave, so nobody hears of the commit but its own disk. The next
   * leader must then hold what it committed anyway (§5.4.2, Figure 8), and the old leader, when it
   * restarts and applies up to its persisted commit index, must agree with whatever came since.
   */
  private maybeCrashAfterCommit(node: SimulatedNode, term: number, commitIndex: number): boolean {
    const first = this.lastLeaderCommitTerm.get(node.id) !== term;
    this.lastLeaderCommitTerm.set(node.id, term);
    const { crashAfterCommitProbability, crashAfterFirstCommitProbability } = this.options.faults;
    const probability = first ? crashAfterFirstCommitProbability : crashAfterCommitProbability;
    if (!this.chaos || !(this.random() < probability) || !this.canTakeDown()) return false;
    const downTicks = this.between(this.options.crashDownTicks);
    this.stats.leaderDisruptions++;
    this.record(`nemesis: ${node.id} crashes for ${downTicks} ticks right after persisting its ${first ? 'first ' : ''}commit index ${commitIndex} of term ${term}, before sending`);
    this.crash(node.id);
    node.restartTick = this.tick + downTicks;
    return true;
  }

  private send(message: Message): void {
    // A node that granted a vote or acknowledged entries promised they are durable: restarting it
    // right away tests that promise (a vote forgotten on restart can elect two leaders in a term).
    const promise = message.type === 'requestVoteResponse' && message.granted ? 10 : message.type === 'appendEntriesResponse' && message.success ? 0.25 : 0;
    if (this.chaos && promise > 0 && this.random() < promise * this.options.faults.crashProbability) this.quickRestarts.add(message.from);
    if (message.type === 'installSnapshot') {
      this.stats.snapshotChunksSent++;
      if (message.offset === 0) this.stats.snapshotsSent++;
    }
    this.network.send(message, this.tick);
  }

  private installSnapshot(node: SimulatedNode): void {
    const meta = node.storage.snapshot();
    node.machine = KeyValueMachine.restore(meta, node.storage.snapshotData(0, meta.sizeBytes));
    this.stats.snapshotsInstalled++;
    this.record(`${node.id} installs snapshot ${meta.index}/${meta.term} voters ${meta.config.voters.join(',')} learners ${meta.config.learners.join(',')}`);
    this.checker.onRestore(node.id, meta, node.machine.digest);
  }

  private apply(node: SimulatedNode, entry: Entry): void {
    const machine = this.machineOf(node);
    const previousAppliedIndex = machine.appliedIndex;
    const writeId = machine.apply(entry);
    this.checker.onApply(node.id, node.storage.hardState().term, entry, previousAppliedIndex, machine.digest, writeId);
    if (entry.kind === 'config') {
      this.record(`${node.id} applies ${entry.index}/${entry.term} ${entry.change.type}${'nodeId' in entry.change ? ` ${entry.change.nodeId}` : ''}`);
      if (entry.index > this.committedConfigIndex) {
        this.committedConfig = entry.config;
        this.committedConfigIndex = entry.index;
      }
    }
    if (writeId !== null) this.acknowledgeWrite(node, writeId);
  }

  private serveReads(node: SimulatedNode): void {
    const machine = this.machineOf(node);
    const waiting: ReadState[] = [];
    for (const readState of node.readStates) {
      if (readState.index > machine.appliedIndex) {
        waiting.push(readState);
        continue;
      }
      const operation = this.readsByRequest.get(readState.requestId);
      if (operation === undefined || operation.outcome !== 'pending' || operation.requests.get(readState.requestId) !== node.id) continue;
      const value = machine.read(operation.key);
      operation.writeId = value?.writeId ?? null;
      this.completeRead(operation, 'ok');
      this.record(`${node.id} serves read ${operation.readId} of ${operation.key} at read index ${readState.index} applied ${machine.appliedIndex}: ${operation.writeId ?? 'absent'}`);
      const write = operation.writeId === null ? undefined : this.writesById.get(operation.writeId);
      this.readChecker.completed(operation, write, operation.writeId === null ? undefined : this.checker.writeIndex(operation.writeId));
    }
    node.readStates = waiting;
  }

  private observeLeadership(node: SimulatedNode): void {
    const raft = node.raft;
    if (raft === null) return;
    const status = raft.status();
    if (status.role !== 'leader' || this.checker.leaderOf(status.term) === node.id) return;
    this.stats.leaderElections++;
    this.record(`${node.id} leads term ${status.term} (last index ${status.lastIndex}, commit ${status.commitIndex})`);
    this.checker.onLeader(node.id, status.term, node.storage);
    if (this.chaos && this.random() < this.options.faults.newLeaderDisruptionProbability) {
      // A leader that dies before its first entry is replicated leaves an entry of its term that
      // only it holds: the raw material of Figure 8.
      const tick = this.tick + this.between(this.options.newLeaderDisruptionDelayTicks);
      this.leaderDisruptions.push({ tick, leader: node.id, term: status.term });
      this.record(`nemesis: ${node.id} will be hit at tick ${tick} if it still leads term ${status.term}`);
    }
  }

  private deliverMessages(): void {
    for (const message of this.network.takeDue(this.tick)) {
      const node = this.nodes.get(message.to);
      if (node === undefined || node.raft === null) {
        this.network.stats.dropped++;
        this.record(`lost (down) ${describeMessage(message)}`);
      } else if (node.resumeTick !== null) {
        this.network.hold(message, this.tick + 1);
      } else if (this.network.isBlocked(message.from, message.to)) {
        this.network.stats.dropped++;
        this.record(`lost (partition) ${describeMessage(message)}`);
      } else {
        this.network.stats.delivered++;
        this.record(describeMessage(message));
        node.raft.step(message);
        this.drain(node);
      }
    }
  }

  private compactLogs(): void {
    for (const node of this.activeNodes()) {
      const machine = this.machineOf(node);
      const snapshotIndex = node.storage.snapshot().index;
      if (machine.appliedIndex - snapshotIndex < this.options.compactionThresholdEntries) continue;
      const data = machine.snapshot();
      const index = machine.appliedIndex;
      node.storage.compact({ index, term: node.storage.term(index), config: machine.config, sizeBytes: data.byteLength }, data);
      this.stats.compactions++;
      this.record(`${node.id} compacts up to ${index} (${data.byteLength} bytes)`);
    }
  }

  // ---- crash, restart, pause ----------------------------------------------------------------

  /** Discards the core, the state machine and every client request it held; keeps the storage. False if it was down already. */
  crash(id: NodeId): boolean {
    const node = this.node(id);
    if (node.raft === null) return false;
    node.raft = null;
    node.machine = null;
    node.readStates = [];
    node.resumeTick = null;
    this.forgetRequestsAt(id);
    this.stats.crashes++;
    this.record(`${id} crashes`);
    return true;
  }

  /** A new core over the same storage; the state machine is restored from the snapshot. */
  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.raft !== null || node.lifecycle === 'retired') return;
    node.restartTick = null;
    const meta = node.storage.snapshot();
    node.machine = KeyValueMachine.restore(meta, node.storage.snapshotData(0, meta.sizeBytes));
    this.checker.onRestore(id, meta, node.machine.digest);
    node.raft = new RaftNode(node.storage, this.raftOptions(id));
    this.record(`${id} starts (snapshot ${meta.index}, last index ${node.storage.lastIndex()}, commit ${node.storage.hardState().commit})`);
    this.drain(node);
  }

  pause(id: NodeId, ticks: number): void {
    const node = this.node(id);
    if (node.raft === null || node.resumeTick !== null) return;
    node.resumeTick = this.tick + ticks;
    this.stats.pauses++;
    this.record(`${id} pauses for ${ticks} ticks`);
  }

  private runSchedules(): void {
    for (const node of this.nodes.values()) {
      if (node.restartTick !== null && node.restartTick <= this.tick) this.restart(node.id);
      if (node.resumeTick !== null && node.resumeTick <= this.tick) {
        node.resumeTick = null;
        this.record(`${node.id} resumes`);
      }
    }
    if (this.partition?.endTick != null && this.partition.endTick <= this.tick) this.healPartition();
  }

  // ---- partitions ---------------------------------------------------------------------------

  /** Blocks every link between the two groups, both ways. */
  partitionGroups(groupA: readonly NodeId[], groupB: readonly NodeId[], durationTicks: number | null = null): void {
    this.blockLinks(groupA, groupB, `split ${groupA.join(',')} | ${groupB.join(',')}`, durationTicks, true);
  }

  /** Blocks messages from `senders` to `receivers` only. */
  blockOneWay(senders: readonly NodeId[], receivers: readonly NodeId[], durationTicks: number | null = null): void {
    this.blockLinks(senders, receivers, `one-way ${senders.join(',')} -x-> ${receivers.join(',')}`, durationTicks, false);
  }

  /** Two halves that cannot talk to each other, and one node that talks to both. */
  bridge(bridgeId: NodeId, halfA: readonly NodeId[], halfB: readonly NodeId[], durationTicks: number | null = null): void {
    this.blockLinks(halfA, halfB, `bridge ${bridgeId} between ${halfA.join(',')} | ${halfB.join(',')}`, durationTicks, true);
  }

  /** Cuts every link between members: nobody hears anybody. */
  shatter(durationTicks: number | null = null): void {
    const ids = this.memberIds();
    this.blockLinks(ids, ids, `shatter ${ids.join(',')}`, durationTicks, false);
  }

  isolate(id: NodeId, durationTicks: number | null = null): void {
    const others = this.memberIds().filter((other) => other !== id);
    this.blockLinks([id], others, `isolate ${id}`, durationTicks, true);
  }

  /** Unblocks every link (including any a test blocked on the network directly). */
  healPartition(): void {
    this.network.unblockAll();
    if (this.partition === null) return;
    this.record(`heal ${this.partition.description}`);
    this.partition = null;
  }

  private blockLinks(from: readonly NodeId[], to: readonly NodeId[], description: string, durationTicks: number | null, bothWays: boolean): void {
    this.healPartition();
    for (const a of from) {
      for (const b of to) {
        if (a === b) continue;
        this.network.block(a, b);
        if (bothWays) this.network.block(b, a);
      }
    }
    this.partition = { description, endTick: durationTicks === null ? null : this.tick + durationTicks };
    this.stats.partitions++;
    this.record(`partition: ${description}${durationTicks === null ? '' : ` for ${durationTicks} ticks`}`);
  }

  // ---- membership and leadership ------------------------------------------------------------

  /** The leader of the highest term among the nodes that run, or null. */
  leader(): NodeId | null {
    let best: { id: NodeId; term: number } | null = null;
    for (const node of this.activeNodes()) {
      const status = node.raft?.status();
      if (status?.role === 'leader' && (best === null || status.term > best.term)) best = { id: node.id, term: status.term };
    }
    return best?.id ?? null;
  }

  /** Starts a node with empty storage and asks the leader to add it as a learner. */
  addNode(): NodeId {
    const id = `n${this.nextNodeNumber++}`;
    this.nodes.set(id, { id, storage: new MemoryStorage(), lifecycle: 'joining', raft: null, machine: null, readStates: [], restartTick: null, resumeTick: null, retireTick: null });
    this.restart(id);
    this.proposeConfChange({ type: 'addLearner', nodeId: id });
    return id;
  }

  /** Proposes at the leader, or at `via` (a follower forwards the change to the leader). */
  proposeConfChange(change: ConfChange, via: NodeId | null = null): Result<number> | null {
    const proposer = via ?? this.leader();
    if (proposer === null) return null;
    const node = this.node(proposer);
    const result = this.raftOf(node).proposeConfChange(change);
    this.drain(node);
    this.record(`${proposer} proposes ${JSON.stringify(change)}: ${describeResult(result)}`);
    if (result.ok) this.stats.membershipChanges++;
    return result;
  }

  /**
   * Asks `via` (the leader by default; a follower sends the request on to the leader it knows)
   * to hand leadership to `to`.
   */
  transferLeadership(to: NodeId, via: NodeId | null = null): void {
    const asked = via ?? this.leader();
    if (asked === null) return;
    const node = this.node(asked);
    if (node.raft === null) return;
    const result = this.raftOf(node).transferLeadership(to);
    this.drain(node);
    this.record(`${asked} ${via === null ? 'transfers' : 'is asked to transfer'} leadership to ${to}: ${describeResult(result)}`);
    if (result.ok) this.stats.transfers++;
  }

  /** The members of the latest committed configuration. */
  committedMembers(): NodeId[] {
    return [...this.committedConfig.voters, ...this.committedConfig.learners];
  }

  /**
   * Joining nodes become members when a committed configuration names them. A member that one no
   * longer names keeps running for two election timeouts (as an operator would stop it a little
   * later; a removed leader must step down by itself meanwhile) and then retires for good.
   */
  private updateLifecycles(): void {
    const members = new Set(this.committedMembers());
    for (const node of this.nodes.values()) {
      if (node.lifecycle === 'joining' && members.has(node.id)) {
        node.lifecycle = 'member';
        this.record(`${node.id} is a member`);
      } else if (node.lifecycle === 'member' && !members.has(node.id) && node.retireTick === null) {
        node.retireTick = this.tick + 2 * this.options.electionTimeoutTicks;
        this.record(`${node.id} is removed by committed entry ${this.committedConfigIndex}; it stops at tick ${node.retireTick}`);
      } else if (node.lifecycle === 'member' && node.retireTick !== null && node.retireTick <= this.tick) {
        node.lifecycle = 'retired';
        node.raft = null;
        node.machine = null;
        node.readStates = [];
        node.restartTick = null;
        node.resumeTick = null;
        this.forgetRequestsAt(node.id);
        this.record(`${node.id} retires`);
      }
    }
  }

  // ---- random faults ------------------------------------------------------------------------

  private injectFaults(): void {
    const { faults } = this.options;
    if (this.partition === null && this.random() < faults.partitionProbability) this.startRandomPartition();
    if (this.random() < faults.crashProbability) {
      const node = this.pickDisruptable();
      if (node !== null) {
        this.crash(node.id);
        node.restartTick = this.tick + this.between(this.options.crashDownTicks);
      }
    }
    if (this.random() < faults.pauseProbability) {
      const node = this.pickDisruptable();
      if (node !== null) this.pause(node.id, this.between(this.options.pauseTicks));
    }
    if (this.random() < faults.membershipProbability) this.randomMembershipChange();
    if (this.random() < faults.transferProbability) {
      const leader = this.leader();
      const voters = this.committedConfig.voters.filter((id) => id !== leader);
      const to = this.pick(voters);
      // Every other transfer is asked of the target itself, a follower, which forwards it (no
      // extra draw from the seeded generator, so the other faults of a seed stay where they were).
      if (to !== undefined) this.transferLeadership(to, this.stats.transfers % 2 === 1 ? to : null);
    }
    this.runStorm();
    this.runLeaderDisruptions();
  }

  /** Whether one more member may go down (crash or pause): at most a minority of the voters is down already. */
  private canTakeDown(): boolean {
    const members = this.memberIds().map((id) => this.node(id));
    const down = members.filter((node) => node.raft === null || node.resumeTick !== null).length;
    return down < Math.floor((this.committedConfig.voters.length - 1) / 2) + 1;
  }

  /** A running node, if one more may go down (canTakeDown). */
  private pickDisruptable(): SimulatedNode | null {
    if (!this.canTakeDown()) return null;
    const members = this.memberIds().map((id) => this.node(id));
    return this.pick(members.filter((node) => node.raft !== null && node.resumeTick === null)) ?? null;
  }

  /**
   * Election storms: for a while, about every other election timeout, leadership is knocked out
   * briefly, most often by cutting every link at once. Everybody's timer then runs out at nearly
   * the same time, so several pre-candidates pass pre-vote together and become candidates of one
   * term, split the votes, and try again: many elections, with vote requests and responses of
   * successive terms crossing on the network.
   */
  private runStorm(): void {
    const { electionTimeoutTicks } = this.options;
    if (this.stormEndTick === null) {
      if (!(this.random() < this.options.faults.stormProbability)) return;
      this.stormEndTick = this.tick + this.between(this.options.stormTicks);
      this.stats.storms++;
      this.record(`storm until tick ${this.stormEndTick}`);
    }
    if (this.stormEndTick <= this.tick) {
      this.stormEndTick = null;
      this.record('storm ends');
      return;
    }
    if (!(this.random() < 1 / (2 * electionTimeoutTicks))) return;
    const duration = this.between([Math.ceil(electionTimeoutTicks / 2), Math.ceil(1.5 * electionTimeoutTicks)]);
    const leader = this.leader();
    const blast = this.pick(['shatter', 'shatter', 'isolate leader', 'pause leader', 'crash leader'] as const) ?? 'shatter';
    if (leader === null || blast === 'shatter') return this.shatter(duration);
    // Pausing or crashing takes a node down: only within the budget of every crash (canTakeDown).
    if (blast === 'isolate leader' || !this.canTakeDown()) return this.isolate(leader, duration);
    if (blast === 'pause leader') return this.pause(leader, duration);
    this.crash(leader);
    this.node(leader).restartTick = this.tick + duration;
  }

  /** The nemesis's appointments that are due: each leader still leading its term is crashed or cut off. */
  private runLeaderDisruptions(): void {
    const due = this.leaderDisruptions.filter((disruption) => disruption.tick <= this.tick);
    if (due.length === 0) return;
    this.leaderDisruptions = this.leaderDisruptions.filter((disruption) => disruption.tick > this.tick);
    for (const { leader, term } of due) {
      const status = this.nodeStatus(leader);
      if (status === null || status.role !== 'leader' || status.term !== term || this.node(leader).resumeTick !== null) continue;
      this.stats.leaderDisruptions++;
      if (this.random() < 0.5 && this.canTakeDown()) {
        const downTicks = this.between(this.options.crashDownTicks);
        this.record(`nemesis: ${leader}, new leader of term ${term}, crashes for ${downTicks} ticks`);
        this.crash(leader);
        this.node(leader).restartTick = this.tick + downTicks;
      } else {
        this.record(`nemesis: ${leader}, new leader of term ${term}, is cut off`);
        this.isolate(leader, this.between(this.options.partitionTicks));
      }
    }
  }

  private startRandomPartition(): void {
    const ids = this.shuffled(this.memberIds());
    if (ids.length < 2) return;
    const duration = this.between(this.options.partitionTicks);
    const kind = this.pick(['split', 'one-way', 'isolate leader', 'bridge'] as const) ?? 'split';
    if (kind === 'split') {
      const cut = 1 + Math.floor(this.random() * (ids.length - 1));
      this.partitionGroups(ids.slice(0, cut), ids.slice(cut), duration);
    } else if (kind === 'one-way') {
      const [node = '', ...others] = ids;
      if (this.random() < 0.5) this.blockOneWay([node], others, duration);
      else this.blockOneWay(others, [node], duration);
    } else if (kind === 'isolate leader') {
      this.isolate(this.leader() ?? ids[0] ?? '', duration);
    } else if (ids.length >= 3) {
      const [bridgeId = '', ...others] = ids;
      const cut = 1 + Math.floor(this.random() * (others.length - 1));
      this.bridge(bridgeId, others.slice(0, cut), others.slice(cut), duration);
    }
  }

  private randomMembershipChange(): void {
    if (this.stats.membershipChanges >= this.options.maxMembershipChanges) return;
    const leaderId = this.leader();
    if (leaderId === null) return;
    const status = this.raftOf(this.node(leaderId)).status();
    const { voters, learners } = status.config;
    const joining = [...this.nodes.values()].find((node) => node.lifecycle === 'joining');
    const choices: Array<() => void> = [];
    if (joining !== undefined) {
      // Its addLearner entry was lost with a leader change: ask again.
      if (!voters.includes(joining.id) && !learners.includes(joining.id)) choices.push(() => this.proposeConfChange({ type: 'addLearner', nodeId: joining.id }, this.forwarder()));
    } else if (voters.length + learners.length < this.options.maxMembers) {
      choices.push(() => this.addNode());
    }
    if (!this.options.autoPromoteLearners) {
      for (const learner of learners) {
        const progress = status.progress?.get(learner);
        if (progress !== undefined && progress.match >= status.commitIndex) choices.push(() => this.proposeConfChange({ type: 'promote', nodeId: learner }, this.forwarder()));
      }
    }
    if (voters.length > 2) {
      // Removing the leader itself is the interesting case: give it a third of the removals.
      const removed = this.random() < 1 / 3 ? leaderId : this.pick(voters);
      if (removed !== undefined) choices.push(() => this.proposeConfChange({ type: 'remove', nodeId: removed }, this.forwarder()));
    }
    const learner = this.pick(learners);
    if (learner !== undefined) choices.push(() => this.proposeConfChange({ type: 'remove', nodeId: learner }, this.forwarder()));
    this.pick(choices)?.();
  }

  /** Null (propose at the leader) three times in four, else a random running node that forwards. */
  private forwarder(): NodeId | null {
    return this.random() < 0.75 ? null : (this.pick(this.activeNodes())?.id ?? null);
  }

  // ---- clients ------------------------------------------------------------------------------

  private startOperations(): void {
    const { writeProbability, readProbability, maxPendingOperations, maxOperations, keyCount } = this.options;
    const room = () => this.pendingWrites.size + this.pendingReads.size < maxPendingOperations && this.writes.length + this.reads.length < maxOperations;
    if (this.random() < writeProbability && room()) this.startWrite(`k${Math.floor(this.random() * keyCount)}`);
    if (this.random() < readProbability && room()) this.startRead(`k${Math.floor(this.random() * keyCount)}`);
  }

  startWrite(key: string): string {
    const writeId = `w${this.writes.length + 1}`;
    const operation: WriteOperation = {
      writeId,
      key,
      invokeTime: ++this.clock,
      invokeTick: this.tick,
      completeTime: null,
      outcome: 'pending',
      attempts: 0,
      deadlineTick: this.tick,
      acceptedBy: new Set(),
    };
    this.writes.push(operation);
    this.writesById.set(writeId, operation);
    this.pendingWrites.set(writeId, operation);
    this.attemptWrite(operation);
    return writeId;
  }

  startRead(key: string): string {
    const readId = `r${this.reads.length + 1}`;
    const operation: ReadOperation = {
      readId,
      key,
      invokeTime: ++this.clock,
      invokeTick: this.tick,
      completeTime: null,
      outcome: 'pending',
      writeId: null,
      attempts: 0,
      deadlineTick: this.tick,
      requests: new Map(),
    };
    this.reads.push(operation);
    this.pendingReads.set(readId, operation);
    this.attemptRead(operation);
    return readId;
  }

  private attemptWrite(operation: WriteOperation): void {
    operation.attempts++;
    const node = this.pick(this.activeNodes());
    if (node === undefined) {
      operation.deadlineTick = this.tick + this.options.retryBackoffTicks;
      return;
    }
    const result = this.raftOf(node).propose(encodeCommand({ writeId: operation.writeId, key: operation.key }));
    this.record(`client ${operation.writeId} put ${operation.key} via ${node.id} (attempt ${operation.attempts}): ${describeResult(result)}`);
    if (result.ok) {
      operation.acceptedBy.add(node.id);
      operation.deadlineTick = this.tick + this.options.attemptTimeoutTicks;
    } else {
      operation.deadlineTick = this.tick + this.options.retryBackoffTicks;
    }
    this.drain(node);
  }

  private attemptRead(operation: ReadOperation): void {
    operation.attempts++;
    const node = this.pick(this.activeNodes());
    if (node === undefined) {
      operation.deadlineTick = this.tick + this.options.retryBackoffTicks;
      return;
    }
    const requestId = `${operation.readId}.${operation.attempts}`;
    const result = this.raftOf(node).readIndex(requestId);
    this.record(`client ${operation.readId} get ${operation.key} via ${node.id} as ${requestId}: ${describeResult(result)}`);
    if (result.ok) {
      operation.requests.set(requestId, node.id);
      this.readsByRequest.set(requestId, operation);
      operation.deadlineTick = this.tick + this.options.attemptTimeoutTicks;
    } else {
      operation.deadlineTick = this.tick + this.options.retryBackoffTicks;
    }
    this.drain(node);
  }

  private acknowledgeWrite(node: SimulatedNode, writeId: string): void {
    const operation = this.pendingWrites.get(writeId);
    if (operation === undefined || !operation.acceptedBy.has(node.id)) return;
    operation.outcome = 'ok';
    operation.completeTime = ++this.clock;
    this.pendingWrites.delete(writeId);
    this.record(`client ${writeId} acknowledged by ${node.id}`);
    this.readChecker.acknowledged(operation, this.checker.writeIndex(writeId));
  }

  private completeRead(operation: ReadOperation, outcome: Outcome): void {
    operation.outcome = outcome;
    operation.completeTime = ++this.clock;
    this.pendingReads.delete(operation.readId);
    for (const requestId of operation.requests.keys()) this.readsByRequest.delete(requestId);
  }

  /**
   * Lets queued retries (writesToRetry) start, then retries every operation whose attempt timed
   * out; gives up (outcome unknown) after maxAttempts, except while healing.
   */
  private expireOperations(): void {
    while (this.writesToRetry.length > 0 && this.pendingWrites.size < this.options.maxPendingOperations) {
      const operation = this.writesToRetry.shift();
      if (operation === undefined) break;
      this.record(`client ${operation.writeId} retries after healing`);
      operation.deadlineTick = this.tick;
      this.pendingWrites.set(operation.writeId, operation);
    }
    for (const operation of [...this.pendingWrites.values()]) {
      if (operation.deadlineTick > this.tick) continue;
      if (this.chaos && operation.attempts >= this.options.maxAttempts) {
        operation.outcome = 'unknown';
        operation.completeTime = ++this.clock;
        this.pendingWrites.delete(operation.writeId);
        this.stats.writesUnknown++;
        this.record(`client ${operation.writeId} gives up: outcome unknown`);
      } else {
        this.attemptWrite(operation);
      }
    }
    for (const operation of [...this.pendingReads.values()]) {
      if (operation.deadlineTick > this.tick) continue;
      if (operation.attempts >= this.options.maxAttempts) {
        this.completeRead(operation, 'unknown');
        this.record(`client ${operation.readId} gives up: outcome unknown`);
      } else {
        this.attemptRead(operation);
      }
    }
  }

  /** A crashed or retired node answers no client: attempts it accepted are lost. */
  private forgetRequestsAt(id: NodeId): void {
    for (const operation of this.pendingWrites.values()) operation.acceptedBy.delete(id);
    for (const operation of this.pendingReads.values()) {
      for (const [requestId, nodeId] of operation.requests) if (nodeId === id) operation.requests.delete(requestId);
    }
  }

  // ---- the end of a run ---------------------------------------------------------------------

  /**
   * Heals every fault, then checks liveness (a leader within electionBoundTicks; every write that
   * was not acknowledged is retried and commits, and every member catches up, within
   * convergenceBoundTicks) and the end state (replicas agree, acknowledged writes are durable,
   * stored logs match, reads were linearizable).
   */
  finish(): void {
    this.chaos = false;
    this.stormEndTick = null;
    this.leaderDisruptions = [];
    this.healPartition();
    this.network.faults = { ...this.network.faults, ...reliableNetwork };
    for (const node of this.nodes.values()) {
      node.resumeTick = null;
      if (node.raft === null && node.lifecycle !== 'retired') this.restart(node.id);
    }
    this.record('healed: no more faults');
    const healTick = this.tick;
    this.runUntil(() => this.leader() !== null, this.options.electionBoundTicks, 'electing a leader after healing');
    this.record(`${this.leader() ?? ''} leads ${this.tick - healTick} ticks after healing`);
    for (const operation of this.writes) {
      if (operation.outcome !== 'unknown') continue;
      operation.outcome = 'pending';
      operation.completeTime = null;
      this.writesToRetry.push(operation);
    }
    this.runUntil(() => this.converged(), this.options.convergenceBoundTicks, 'committing every retried write and bringing every member up to date');
    this.checkEndState();
  }

  /** Every write acknowledged, no read pending, and every member has applied everything the leader holds. */
  private converged(): boolean {
    if (this.writesToRetry.length > 0 || this.pendingWrites.size > 0 || this.pendingReads.size > 0) return false;
    const leaderId = this.leader();
    if (leaderId === null) return false;
    const status = this.raftOf(this.node(leaderId)).status();
    if (status.commitIndex !== status.lastIndex) return false;
    return [...status.config.voters, ...status.config.learners].every((id) => {
      const node = this.nodes.get(id);
      return node?.raft != null && node.resumeTick === null && node.machine?.appliedIndex === status.commitIndex;
    });
  }

  checkEndState(): void {
    const replicas = this.committedMembers().map((id) => {
      const machine = this.machineOf(this.node(id));
      return { nodeId: id, appliedIndex: machine.appliedIndex, state: machine.describe(), hasApplied: (writeId: string) => machine.hasApplied(writeId) };
    });
    const acknowledged = this.writes.filter((write) => write.outcome === 'ok').map((write) => write.writeId);
    checkReplicasAgree(replicas, acknowledged);
    checkStoredLogs(new Map([...this.nodes.values()].map((node) => [node.id, node.storage])));
    checkHistory(this.writes, this.reads, (writeId) => this.checker.writeIndex(writeId));
  }

  summary(): SimulationStats {
    const net = this.network.stats;
    const count = <T extends { outcome: Outcome }>(operations: readonly T[], outcome: Outcome) => operations.filter((operation) => operation.outcome === outcome).length;
    return {
      ticks: this.tick,
      messagesSent: net.sent,
      messagesDelivered: net.delivered,
      messagesDropped: net.dropped,
      messagesDuplicated: net.duplicated,
      messagesDelayed: net.delayed,
      ...this.stats,
      writesAcknowledged: count(this.writes, 'ok'),
      readsCompleted: count(this.reads, 'ok'),
      readsUnknown: count(this.reads, 'unknown'),
    };
  }

  // ---- small helpers ------------------------------------------------------------------------

  /** Read-only views for scenario tests. */
  nodeStatus(id: NodeId) {
    return this.node(id).raft?.status() ?? null;
  }

  writeOutcome(writeId: string): Outcome | undefined {
    return this.writes.find((write) => write.writeId === writeId)?.outcome;
  }

  appliedIndex(id: NodeId): number | null {
    return this.node(id).machine?.appliedIndex ?? null;
  }

  isRetired(id: NodeId): boolean {
    return this.node(id).lifecycle === 'retired';
  }

  /** Members of a committed configuration that still run or will restart, in id order. */
  memberIds(): NodeId[] {
    return [...this.nodes.values()].filter((node) => node.lifecycle === 'member' && node.retireTick === null).map((node) => node.id);
  }

  private record(text: string): void {
    this.trace.record(this.tick, text);
  }

  private raftOptions(id: NodeId): RaftOptions {
    const { electionTimeoutTicks, heartbeatIntervalTicks, maxInflightMessages, maxMessageBytes, snapshotChunkBytes, autoPromoteLearners } = this.options;
    return {
      id,
      electionTimeoutTicks,
      heartbeatIntervalTicks,
      maxInflightMessages,
      maxMessageBytes,
      snapshotChunkBytes,
      autoPromoteLearners,
      random: seededRandom(Math.floor(this.random() * 2 ** 32)),
    };
  }

  /** Running, not paused and not retired, in id order. */
  private activeNodes(): SimulatedNode[] {
    return [...this.nodes.values()].filter((node) => node.raft !== null && node.resumeTick === null);
  }

  private node(id: NodeId): SimulatedNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  private raftOf(node: SimulatedNode): RaftNode {
    if (node.raft === null) throw new Error(`${node.id} is not running`);
    return node.raft;
  }

  private machineOf(node: SimulatedNode): KeyValueMachine {
    if (node.machine === null) throw new Error(`${node.id} has no state machine`);
    return node.machine;
  }

  private pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.random() * items.length)];
  }

  private between([minimum, maximum]: readonly [number, number]): number {
    return minimum + Math.floor(this.random() * (maximum - minimum + 1));
  }

  private shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}

function describeResult(result: Result<unknown>): string {
  return result.ok ? `ok ${String(result.value)}` : `${result.code} (leader ${result.leader ?? 'unknown'})`;
}
