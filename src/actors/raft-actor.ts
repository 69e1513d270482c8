// The Raft actor: drives the pure core (src/raft) with real time, durable storage and the peer
// network. It owns the Ready loop — persist (one flush per batch) → send → hand committed entries
// to the store actor → advance — and nothing in it waits on a client, a FUSE call or a big read,
// so heartbeats and elections keep their rhythm whatever the rest of the node is doing.
//
// It also forms the cluster when the data folder is empty (src/cluster/formation.ts), answers the
// gRPC actor's requests (proposals, reads, membership, status) and decides when to compact the log.
// Beside Raft it speaks one small protocol of its own with the other nodes' Raft actors: a status
// query, by which a follower shows the cluster as the leader sees it (only the leader knows how
// far each member has replicated).

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { decideFormation, discoverRequest, type DiscoverReply, type DiscoverRequest, type FormationSelf } from '../cluster/formation.js';
import type { DfsErrorCode } from '../errors.js';
import { members } from '../raft/config.js';
import { RaftNode } from '../raft/node.js';
import { bootstrap, type RaftStorage } from '../raft/storage.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, RaftErrorCode, Ready, SnapshotChunk, SnapshotMeta } from '../raft/types.js';
import { isDriverMessage, type DriverMessage, type PeerMessage, type PeerStatus, type StatusReply } from '../transport/validate.js';
import type { ApplyEntry, MemberStatus, NodeStatus, RaftMetricsReport, RaftReply, RaftRequest, SnapshotObservation, StoreReport, StoreRequest } from './protocol.js';

/** What the Raft actor needs of its log storage beyond the core's port. */
export interface DurableRaftStorage extends RaftStorage {
  /** Writes a Ready's entries, hard state and snapshot chunk in one transaction (visible at once). */
  persist(batch: { entries: readonly Entry[]; hardState: HardState | null; snapshotChunk: SnapshotChunk | null }): void;
  /** Resolves when everything written so far is on disk (one fsync for the batch). */
  flush(): Promise<void>;
  /** Takes over a snapshot file the state machine wrote and compacts the log up to meta.index. */
  compactFromFile(meta: SnapshotMeta, path: string): void;
  /** The current snapshot file (what the store restores from after an install); null when none. */
  snapshotPath(): string | null;
  /** The folder the log owns; snapshots the state machine writes for compaction go inside it. */
  path(): string;
  /** null until the node founded or joined a cluster. */
  clusterId(): string | null;
  setClusterId(clusterId: string): void;
}

/** What the Raft actor needs of the peer network. */
export interface PeerNetwork {
  /** Raft messages, and the status queries and replies between Raft actors. */
  send(message: PeerMessage): void;
  setPeerAddress(nodeId: NodeId, address: string): void;
  removePeer(nodeId: NodeId): void;
  setClusterId(clusterId: string): void;
  /** Asks whoever listens at `address` who they are; null when nobody answered in time. */
  discover(address: string, request: DiscoverRequest): Promise<DiscoverReply | null>;
  onMessage(handler: (message: PeerMessage) => void): void;
  onDiscover(handler: (request: DiscoverRequest) => DiscoverReply): void;
}

export interface RaftActorOptions {
  readonly nodeId: NodeId;
  readonly advertise: string;
  readonly peers: readonly string[];
  readonly storage: DurableRaftStorage;
  readonly network: PeerNetwork;
  readonly toStore: (request: StoreRequest) => void;
  readonly toApi: (reply: RaftReply) => void;
  readonly logger: Logger;
  readonly tickMilliseconds: number;
  readonly electionTimeoutTicks: number;
  /** Compact once this many applied entries sit in the log. */
  readonly snapshotEveryEntries: number;
  readonly maxMessageBytes: number;
  readonly onFatal: (message: string) => void;
  readonly onHealth: (serving: boolean) => void;
  /** Receives what was measured since the last report, every metricsIntervalMilliseconds. */
  readonly onMetrics?: (report: RaftMetricsReport) => void;
  /** Default 1000. */
  readonly metricsIntervalMilliseconds?: number;
}

/** The most flush durations one metrics report carries: at one flush per Ready batch this is
 * far above a real node's rate per second, and keeps a report small whatever happens. */
export const maxReportedObservations = 2048;
/** The most snapshots one report carries (a node takes or installs a few per minute at most). */
const maxReportedSnapshots = 64;

/** What the Raft actor measured since its last metrics report. */
class RaftMeasurements {
  fsyncSeconds: number[] = [];
  fsyncsNotReported = 0;
  persistedEntries = 0;
  committedEntries = 0;
  snapshots: SnapshotObservation[] = [];
  campaigns = 0;

  noteFsync(seconds: number): void {
    if (this.fsyncSeconds.length < maxReportedObservations) this.fsyncSeconds.push(seconds);
    else this.fsyncsNotReported++;
  }

  noteSnapshot(snapshot: SnapshotObservation): void {
    if (this.snapshots.length < maxReportedSnapshots) this.snapshots.push(snapshot);
  }

  /** The report of everything noted so far, and a fresh start; null when nothing happened. */
  take(): RaftMetricsReport | null {
    const report: RaftMetricsReport = {
      type: 'raftMetrics',
      fsyncSeconds: this.fsyncSeconds,
      fsyncsNotReported: this.fsyncsNotReported,
      persistedEntries: this.persistedEntries,
      committedEntries: this.committedEntries,
      snapshots: this.snapshots,
      campaigns: this.campaigns,
    };
    const empty = report.fsyncSeconds.length === 0 && report.fsyncsNotReported === 0 && report.persistedEntries === 0
      && report.committedEntries === 0 && report.snapshots.length === 0 && report.campaigns === 0;
    if (empty) return null;
    this.fsyncSeconds = [];
    this.fsyncsNotReported = 0;
    this.persistedEntries = 0;
    this.committedEntries = 0;
    this.snapshots = [];
    this.campaigns = 0;
    return report;
  }
}

function secondsSince(startNanoseconds: bigint): number {
  return Number(process.hrtime.bigint() - startNanoseconds) / 1e9;
}

const raftErrorCodes: Record<RaftErrorCode, DfsErrorCode> = {
  NotLeader: 'NotLeader',
  NoLeader: 'NoLeader',
  TransferInProgress: 'Unavailable',
  ConfChangeInProgress: 'FailedPrecondition',
  InvalidConfChange: 'FailedPrecondition',
  NotMember: 'InvalidArgument',
  InvalidTransfer: 'FailedPrecondition',
};

const formationRetryMilliseconds = 1000;
const maxPendingConfChanges = 64;
/** Status queries to the leader waiting for their answer; more are answered locally at once. */
const maxPendingStatusQueries = 64;

/** A status query sent to the leader for the gRPC actor's request `requestId`. */
interface PendingStatusQuery {
  readonly requestId: string;
  readonly leader: NodeId;
  readonly timer: NodeJS.Timeout;
}

export class RaftActor {
  private node: RaftNode | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private formationTimer: NodeJS.Timeout | null = null;
  private pumping = false;
  private pumpScheduled = false;
  private syncedTerm = -1;
  private syncedVote: NodeId | null = null;
  private stopped = false;
  private readonly nonce = randomBytes(8).toString('hex');
  /** Configuration as of each committed config entry after the snapshot (for snapshot metadata). */
  private committedConfigs: { index: number; config: ConfState }[] = [];
  private knownAddresses = new Map<NodeId, string>();
  private pendingConfChanges = new Map<string, ConfChange>();
  private storeAppliedIndex = 0;
  private snapshotInProgress = false;
  /** Snapshot requests waiting for a snapshot at or past the applied index they were made at. */
  private snapshotRequests: { requestId: string; appliedIndex: number }[] = [];
  private lastRole: string | null = null;
  private lastLeader: NodeId | null = null;
  private readonly measurements = new RaftMeasurements();
  private metricsTimer: NodeJS.Timeout | null = null;
  /** When the snapshot being written for compaction was asked for. */
  private snapshotStartedAt: bigint | null = null;
  /** When the first chunk of the snapshot being received from the leader arrived. */
  private installStartedAt: bigint | null = null;
  /** Status queries in flight, by the id they carry on the wire. */
  private statusQueries = new Map<string, PendingStatusQuery>();
  private statusQuerySequence = 0;

  constructor(private readonly options: RaftActorOptions) {}

  start(): void {
    const { network, storage } = this.options;
    network.onMessage((message) => {
      if (isDriverMessage(message)) {
        this.handleDriverMessage(message);
        return;
      }
      this.node?.step(message);
      this.pump();
    });
    network.onDiscover(() => this.answerDiscover());
    this.storeAppliedIndex = storage.snapshot().index;
    if (storage.lastIndex() > 0 || storage.snapshot().index > 0) {
      network.setClusterId(storage.clusterId() ?? '');
      // Before the node may vote, campaign or write: a folder copied from another cluster and
      // started with this cluster's peers must be refused, not run on as a cluster of its own.
      void this.checkPeersCluster()
        .then((sameCluster) => {
          if (sameCluster && !this.stopped) this.startNode();
        })
        .catch((error: unknown) => this.options.onFatal(`checking the peers' cluster failed: ${String(error)}`));
    } else {
      this.formCluster();
    }
    this.ticker = setInterval(() => {
      this.node?.tick();
      this.pump();
    }, this.options.tickMilliseconds);
    const onMetrics = this.options.onMetrics;
    if (onMetrics !== undefined) {
      this.metricsTimer = setInterval(() => {
        const report = this.measurements.take();
        if (report !== null) onMetrics(report);
      }, this.options.metricsIntervalMilliseconds ?? 1000);
      this.metricsTimer.unref();
    }
  }

  /** Stops ticking; a leader first hands leadership to the most caught-up voter. */
  async handOver(timeoutMilliseconds: number): Promise<NodeId | null> {
    const node = this.node;
    if (node === null) return null;
    if (node.status().role !== 'leader') return null;
    const started = node.transferLeadership(null);
    if (!started.ok || started.value === null || started.value === this.options.nodeId) return null;
    const target = started.value;
    this.pump();
    const deadline = Date.now() + timeoutMilliseconds;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, this.options.tickMilliseconds));
      if (node.status().role !== 'leader') return target;
    }
    return null;
  }

  stop(): void {
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    if (this.metricsTimer !== null) clearInterval(this.metricsTimer);
    if (this.formationTimer !== null) clearTimeout(this.formationTimer);
    for (const query of this.statusQueries.values()) clearTimeout(query.timer);
    this.statusQueries.clear();
  }

  handleStoreReport(report: StoreReport): void {
    switch (report.type) {
      case 'applied':
        this.storeAppliedIndex = Math.max(this.storeAppliedIndex, report.index);
        this.maybeCompact();
        return;
      case 'snapshotWritten':
        this.snapshotInProgress = false;
        if (this.snapshotStartedAt !== null) {
          this.measurements.noteSnapshot({ kind: 'taken', sizeBytes: report.sizeBytes, seconds: secondsSince(this.snapshotStartedAt) });
          this.snapshotStartedAt = null;
        }
        this.compactTo(report);
        this.answerSnapshotRequests(report.index);
        return;
      case 'snapshotFailed':
        this.snapshotInProgress = false;
        this.snapshotStartedAt = null;
        this.options.logger.error({ path: report.path }, `writing a snapshot failed: ${report.message}`);
        for (const { requestId } of this.snapshotRequests.splice(0)) {
          this.options.toApi({ type: 'failed', requestId, code: 'Internal', message: `writing the snapshot failed: ${report.message}`, leader: null });
        }
        return;
    }
  }

  handleRequest(request: RaftRequest): void {
    const node = this.node;
    if (node === null) {
      if (request.type === 'leaderStatus') {
        this.options.toApi({ type: 'leaderStatus', requestId: request.requestId, status: this.status(), fromLeader: false });
        return;
      }
      this.options.toApi({ type: 'failed', requestId: request.requestId, code: 'NoLeader', message: 'this node has not joined a cluster yet', leader: null });
      return;
    }
    switch (request.type) {
      case 'propose': {
        const result = node.propose(request.data);
        if (!result.ok) this.fail(request.requestId, result);
        break;
      }
      case 'readIndex': {
        const result = node.readIndex(request.requestId);
        if (!result.ok) this.fail(request.requestId, result);
        break;
      }
      case 'confChange': {
        if (this.pendingConfChanges.size >= maxPendingConfChanges) {
          this.options.toApi({ type: 'failed', requestId: request.requestId, code: 'ResourceExhausted', message: 'too many membership changes are waiting', leader: null });
          break;
        }
        const result = node.proposeConfChange(request.change);
        if (!result.ok) this.fail(request.requestId, result);
        else this.pendingConfChanges.set(request.requestId, request.change);
        break;
      }
      case 'transferLeadership':
        this.transferLeadership(node, request.requestId, request.to);
        break;
      case 'snapshot':
        this.snapshotRequests.push({ requestId: request.requestId, appliedIndex: this.storeAppliedIndex });
        this.answerSnapshotRequests();
        break;
      case 'status':
        this.options.toApi({ type: 'status', requestId: request.requestId, status: this.status() });
        break;
      case 'leaderStatus':
        this.askLeaderStatus(request.requestId, request.timeoutMilliseconds);
        break;
    }
    this.pump();
  }

  /**
   * Starts handing leadership to `to`, or to the voter furthest along when null. The core checks
   * `to` against the configuration this node knows (a stranger, a learner, nobody to hand over to
   * are refused with a message that says why). On the leader the transfer starts here; on a
   * follower the request goes on to the leader, and the gRPC actor waits for the leader to change.
   */
  private transferLeadership(node: RaftNode, requestId: string, to: NodeId | null): void {
    const result = node.transferLeadership(to);
    if (!result.ok) {
      this.fail(requestId, result);
      return;
    }
    const status = node.status();
    if (status.role === 'leader') {
      this.options.toApi({ type: 'transferStarted', requestId, to: result.value ?? this.options.nodeId });
    } else if (status.leader !== null) {
      this.options.toApi({ type: 'transferForwarded', requestId, to: result.value, leader: status.leader });
    } else {
      this.options.toApi({ type: 'failed', requestId, code: 'NoLeader', message: 'no leader is known; retry after an election', leader: null });
    }
  }

  // ---------------------------------------------------------------- the leader's status, from any node

  /**
   * Answers the gRPC actor's `leaderStatus` request: on the leader its own status; elsewhere the
   * leader's, asked over the peer network and awaited for at most `timeoutMilliseconds`. With no
   * leader known, no answer in time, or an answer from a node that no longer leads: this node's
   * own status, marked as not from the leader.
   */
  private askLeaderStatus(requestId: string, timeoutMilliseconds: number): void {
    const node = this.node;
    const status = node?.status();
    const leader = status?.leader ?? null;
    if (node === null || status === undefined || status.role === 'leader' || leader === null || this.statusQueries.size >= maxPendingStatusQueries) {
      this.options.toApi({ type: 'leaderStatus', requestId, status: this.status(), fromLeader: status?.role === 'leader' });
      return;
    }
    const queryId = `${this.nonce}-${++this.statusQuerySequence}`;
    const timer = setTimeout(() => {
      if (!this.statusQueries.delete(queryId)) return;
      this.options.logger.debug({ leader, timeoutMilliseconds }, `the leader ${leader} did not answer a status query within ${timeoutMilliseconds} ms`);
      this.options.toApi({ type: 'leaderStatus', requestId, status: this.status(), fromLeader: false });
    }, Math.max(1, timeoutMilliseconds));
    this.statusQueries.set(queryId, { requestId, leader, timer });
    this.options.network.send({ type: 'statusQuery', from: this.options.nodeId, to: leader, term: status.term, requestId: queryId });
  }

  private handleDriverMessage(message: DriverMessage): void {
    switch (message.type) {
      case 'statusQuery': {
        // Any node answers with what it knows; the asker uses it only if it comes from a leader.
        const status = this.status();
        this.options.network.send({ type: 'statusReply', from: this.options.nodeId, to: message.from, term: status.term, requestId: message.requestId, status: toPeerStatus(status) });
        return;
      }
      case 'statusReply': {
        const query = this.statusQueries.get(message.requestId);
        // A reply we gave up on (timed out), never asked for, or from another node than asked.
        if (query === undefined || query.leader !== message.from) {
          this.options.logger.debug({ from: message.from, requestId: message.requestId }, `ignored a status reply from ${message.from} that answers no query in flight`);
          return;
        }
        this.statusQueries.delete(message.requestId);
        clearTimeout(query.timer);
        if (message.status.role === 'leader') {
          this.options.toApi({ type: 'leaderStatus', requestId: query.requestId, status: this.fromPeerStatus(message), fromLeader: true });
        } else {
          this.options.toApi({ type: 'leaderStatus', requestId: query.requestId, status: this.status(), fromLeader: false });
        }
        return;
      }
    }
  }

  /** The NodeStatus of the node that sent `reply`, as it described itself. */
  private fromPeerStatus(reply: StatusReply): NodeStatus {
    return nodeStatusFromPeer(reply, this.options.storage.clusterId() ?? '');
  }

  /**
   * Answers the snapshot requests that the log's snapshot now covers; for the others, takes a
   * snapshot (one at a time: a request made while one is being written waits for the next).
   */
  private answerSnapshotRequests(writtenIndex = 0): void {
    const snapshot = this.options.storage.snapshot();
    const waiting: typeof this.snapshotRequests = [];
    for (const request of this.snapshotRequests) {
      if (request.appliedIndex <= snapshot.index && snapshot.index > 0) {
        this.options.toApi({ type: 'snapshotTaken', requestId: request.requestId, index: snapshot.index, term: snapshot.term, sizeBytes: snapshot.sizeBytes });
      } else if (request.appliedIndex === 0) {
        this.options.toApi({ type: 'failed', requestId: request.requestId, code: 'FailedPrecondition', message: 'nothing is applied yet: there is nothing to snapshot', leader: null });
      } else if (request.appliedIndex <= writtenIndex) {
        // A snapshot that should cover it was written but the log did not take it (it changed
        // meanwhile, e.g. a snapshot from the leader arrived): say so rather than loop.
        this.options.toApi({ type: 'failed', requestId: request.requestId, code: 'Unavailable', message: 'the snapshot was written but the log could not be compacted to it; retry', leader: null });
      } else {
        waiting.push(request);
      }
    }
    this.snapshotRequests = waiting;
    if (waiting.length > 0 && !this.snapshotInProgress && this.node !== null) this.takeSnapshot();
  }

  status(): NodeStatus {
    const node = this.node;
    const clusterId = this.options.storage.clusterId() ?? '';
    if (node === null) {
      return {
        id: this.options.nodeId,
        clusterId,
        role: 'follower',
        term: 0,
        leader: null,
        leaderAddress: null,
        commitIndex: 0,
        appliedIndex: 0,
        firstIndex: 1,
        lastIndex: 0,
        members: [],
        config: { voters: [], learners: [] },
      };
    }
    const status = node.status();
    const memberStatus: MemberStatus[] = members(status.config).map((id) => {
      const progress = status.progress?.get(id);
      const match = id === this.options.nodeId ? status.lastIndex : (progress?.match ?? -1);
      return {
        id,
        address: this.addressOf(status.config, id),
        voter: status.config.voters.includes(id),
        matchIndex: status.role === 'leader' ? match : -1,
        lagEntries: status.role === 'leader' ? Math.max(0, status.lastIndex - match) : -1,
      };
    });
    return {
      id: this.options.nodeId,
      clusterId,
      role: status.role,
      term: status.term,
      leader: status.leader,
      leaderAddress: status.leader === null ? null : this.addressOf(status.config, status.leader),
      commitIndex: status.commitIndex,
      appliedIndex: this.storeAppliedIndex,
      firstIndex: status.firstIndex,
      lastIndex: status.lastIndex,
      members: memberStatus,
      config: status.config,
    };
  }

  // ---------------------------------------------------------------- formation

  private formCluster(): void {
    const self: FormationSelf = {
      nodeId: this.options.nodeId,
      advertise: this.options.advertise,
      nonce: this.nonce,
      peers: this.options.peers,
    };
    let lastReason = '';
    const attempt = async (): Promise<void> => {
      if (this.stopped) return;
      const request = discoverRequest(self);
      const replies = new Map<string, DiscoverReply>();
      await Promise.all(
        self.peers.map(async (address) => {
          const reply = await this.options.network.discover(address, request);
          if (reply !== null) replies.set(address, reply);
        }),
      );
      if (this.stopped) return;
      const decision = decideFormation(self, replies, randomBytes(16).toString('hex'));
      switch (decision.type) {
        case 'wait':
          if (decision.reason !== lastReason) this.options.logger.info(`forming the cluster: ${decision.reason}`);
          lastReason = decision.reason;
          this.formationTimer = setTimeout(() => void attempt(), formationRetryMilliseconds);
          return;
        case 'bootstrap':
          this.options.storage.setClusterId(decision.clusterId);
          this.options.network.setClusterId(decision.clusterId);
          bootstrap(this.options.storage, decision.voters, decision.addresses);
          await this.options.storage.flush();
          this.options.logger.info({ clusterId: decision.clusterId, voters: decision.voters }, `founded cluster ${decision.clusterId} with ${decision.voters.join(', ')}`);
          this.startNode();
          return;
        case 'join':
          this.options.storage.setClusterId(decision.clusterId);
          this.options.network.setClusterId(decision.clusterId);
          await this.options.storage.flush();
          this.options.logger.info({ clusterId: decision.clusterId, via: decision.viaNodeId }, `joining cluster ${decision.clusterId} through ${decision.viaNodeId}`);
          this.startNode();
          this.askToJoin(decision.viaNodeId, decision.viaAddress);
          return;
      }
    };
    void attempt().catch((error: unknown) => this.options.onFatal(`forming the cluster failed: ${String(error)}`));
  }

  /**
   * Asks each configured peer once (bounded by the transport's discover timeout) which cluster it
   * belongs to. A peer in another cluster means this data folder is not of the cluster the node
   * was pointed at: report it as fatal and return false. Silence, or a peer that has not joined
   * any cluster yet (a whole cluster restarting), is no evidence either way: return true.
   */
  private async checkPeersCluster(): Promise<boolean> {
    const own = this.options.storage.clusterId() ?? '';
    if (own === '' || this.options.peers.length === 0) return true;
    const self: FormationSelf = { nodeId: this.options.nodeId, advertise: this.options.advertise, nonce: this.nonce, peers: this.options.peers };
    const request = discoverRequest(self);
    const replies = await Promise.all(this.options.peers.map(async (address) => ({ address, reply: await this.options.network.discover(address, request) })));
    const foreign = replies.find(({ reply }) => reply !== null && reply.clusterId !== '' && reply.clusterId !== own);
    if (foreign === undefined || foreign.reply === null) return true;
    this.options.onFatal(
      `the data folder belongs to cluster ${own} (the Raft log in ${this.options.storage.path()}), but peer ${foreign.reply.nodeId} at ${foreign.address} ` +
        `belongs to cluster ${foreign.reply.clusterId}: this node's data is from another cluster. Start it with the peers of its own cluster, ` +
        `or give it an empty data folder to join cluster ${foreign.reply.clusterId} as a new node`,
    );
    return false;
  }

  /** Repeats the request to be added as a learner until this node sees itself in the configuration. */
  private askToJoin(viaNodeId: NodeId, viaAddress: string): void {
    this.options.network.setPeerAddress(viaNodeId, viaAddress);
    const ask = (): void => {
      const node = this.node;
      if (this.stopped || node === null) return;
      const config = node.status().config;
      if (members(config).includes(this.options.nodeId)) {
        this.options.logger.info(
          config.voters.includes(this.options.nodeId)
            ? 'joined the cluster as a voter'
            : 'joined the cluster as a learner; the leader promotes this node once it has caught up',
        );
        return;
      }
      this.options.network.send({
        type: 'proposeConfChange',
        from: this.options.nodeId,
        to: viaNodeId,
        term: 0,
        change: { type: 'addLearner', nodeId: this.options.nodeId, address: this.options.advertise },
      });
      this.formationTimer = setTimeout(ask, formationRetryMilliseconds);
    };
    ask();
  }

  private answerDiscover(): DiscoverReply {
    return {
      kind: 'discoverReply',
      nodeId: this.options.nodeId,
      advertise: this.options.advertise,
      nonce: this.nonce,
      clusterId: this.node === null ? '' : (this.options.storage.clusterId() ?? ''),
      initialMembers: [...new Set([this.options.advertise, ...this.options.peers])].sort(),
    };
  }

  private startNode(): void {
    const { storage } = this.options;
    this.loadCommittedConfigs();
    this.node = new RaftNode(storage, {
      id: this.options.nodeId,
      electionTimeoutTicks: this.options.electionTimeoutTicks,
      heartbeatIntervalTicks: 1,
      maxInflightMessages: 64,
      maxMessageBytes: this.options.maxMessageBytes,
      snapshotChunkBytes: 1 << 20,
      autoPromoteLearners: true,
      random: Math.random,
    });
    const config = this.node.status().config;
    this.updatePeers(config);
    // Alone in the cluster, nobody else can lead: no point waiting out an election timeout.
    if (config.voters.length === 1 && config.voters[0] === this.options.nodeId) this.node.campaign();
    this.pump();
  }

  // ---------------------------------------------------------------- the Ready loop

  /**
   * Schedules the Ready loop once for everything that arrives in this turn of the event loop:
   * all proposals and messages delivered together are stepped first and then persisted with
   * one flush and sent in one batch, instead of one flush per message.
   */
  private pump(): void {
    if (this.pumpScheduled || this.node === null || this.stopped) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      if (this.pumping) return;
      this.pumping = true;
      this.drain()
        .catch((error: unknown) => {
          this.options.onFatal(`the Raft loop failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        })
        .finally(() => {
          this.pumping = false;
          if (this.node?.hasReady() === true) this.pump();
        });
    });
  }

  private async drain(): Promise<void> {
    const node = this.node;
    if (node === null) return;
    while (node.hasReady() && !this.stopped) {
      const ready = node.ready();
      if (ready.snapshotChunk !== null && ready.snapshotChunk.offset === 0) this.installStartedAt = process.hrtime.bigint();
      await this.persist(ready);
      for (const message of ready.messages) this.options.network.send(message);
      if (ready.snapshotChunk?.done === true) this.installSnapshot(ready.snapshotChunk.meta);
      if (ready.committedEntries.length > 0) {
        this.measurements.committedEntries += ready.committedEntries.length;
        this.apply(ready.committedEntries);
      }
      for (const readState of ready.readStates) this.options.toApi({ type: 'readState', requestId: readState.requestId, index: readState.index });
      node.advance(ready);
      if (ready.softState !== null || ready.entries.some((entry) => entry.kind === 'config') || ready.snapshotChunk?.done === true) {
        this.noteRoleAndConfig();
      }
    }
  }

  private async persist(ready: Ready): Promise<void> {
    // A commit index alone need not be durable (a restarted node learns it again from the
    // leader, and the store skips what it already applied): only entries, a snapshot, the term
    // and the vote are worth a flush.
    const hardState = ready.hardState;
    const termOrVoteChanged = hardState !== null && (hardState.term !== this.syncedTerm || hardState.vote !== this.syncedVote);
    if (ready.entries.length === 0 && ready.snapshotChunk === null && !termOrVoteChanged) return;
    if (hardState !== null) {
      this.syncedTerm = hardState.term;
      this.syncedVote = hardState.vote;
    }
    // Timed from the write: the LMDB log commits and fdatasyncs inside persist() (flush() only
    // waits for what persist left pending), so the two together are the durable write.
    const flushStartedAt = process.hrtime.bigint();
    this.options.storage.persist({ entries: ready.entries, hardState: ready.hardState, snapshotChunk: ready.snapshotChunk });
    // Persist before send: nothing leaves this node that depends on what is not on disk.
    await this.options.storage.flush();
    this.measurements.noteFsync(secondsSince(flushStartedAt));
    this.measurements.persistedEntries += ready.entries.length;
  }

  private installSnapshot(meta: SnapshotMeta): void {
    this.committedConfigs = [{ index: meta.index, config: meta.config }];
    this.storeAppliedIndex = meta.index;
    this.measurements.noteSnapshot({ kind: 'installed', sizeBytes: meta.sizeBytes, seconds: this.installStartedAt === null ? 0 : secondsSince(this.installStartedAt) });
    this.installStartedAt = null;
    this.options.logger.info({ index: meta.index, term: meta.term, sizeBytes: meta.sizeBytes }, `installed a snapshot at index ${meta.index} from the leader`);
    const path = this.options.storage.snapshotPath();
    if (path === null) throw new Error('a snapshot was installed but the log has no snapshot file');
    this.options.toStore({ type: 'restore', path, index: meta.index, term: meta.term });
  }

  private apply(entries: readonly Entry[]): void {
    const batch: ApplyEntry[] = [];
    for (const entry of entries) {
      if (entry.kind === 'config') {
        this.committedConfigs.push({ index: entry.index, config: entry.config });
        this.resolveConfChanges(entry);
        this.options.logger.info({ index: entry.index, change: entry.change, voters: entry.config.voters, learners: entry.config.learners }, `membership change committed: ${describeChange(entry.change)}`);
        batch.push({ index: entry.index, term: entry.term, data: null });
      } else {
        batch.push({ index: entry.index, term: entry.term, data: entry.data.byteLength === 0 ? null : entry.data });
      }
    }
    this.options.toStore({ type: 'apply', entries: batch });
  }

  private resolveConfChanges(entry: Extract<Entry, { kind: 'config' }>): void {
    for (const [requestId, change] of this.pendingConfChanges) {
      if (change.type === entry.change.type && 'nodeId' in change && 'nodeId' in entry.change && change.nodeId === entry.change.nodeId) {
        this.pendingConfChanges.delete(requestId);
        this.options.toApi({ type: 'confChanged', requestId, index: entry.index });
      }
    }
  }

  private noteRoleAndConfig(): void {
    const node = this.node;
    if (node === null) return;
    const status = node.status();
    if (status.role !== this.lastRole || status.leader !== this.lastLeader) {
      if (status.role === 'candidate' && this.lastRole !== 'candidate') this.measurements.campaigns++;
      if (status.role === 'leader') this.options.logger.info({ term: status.term }, `became leader in term ${status.term}`);
      else if (status.leader !== null && status.leader !== this.lastLeader) {
        this.options.logger.info({ term: status.term, leader: status.leader }, `following ${status.leader} in term ${status.term}`);
      }
      this.lastRole = status.role;
      this.lastLeader = status.leader;
      this.options.onHealth(status.leader !== null);
      this.options.toApi({ type: 'leadership', leader: status.leader });
    }
    this.updatePeers(status.config);
  }

  private updatePeers(config: ConfState): void {
    const current = new Set(members(config));
    for (const id of current) {
      if (id === this.options.nodeId) continue;
      const address = config.addresses?.[id];
      if (address !== undefined && address !== '' && this.knownAddresses.get(id) !== address) {
        this.knownAddresses.set(id, address);
        this.options.network.setPeerAddress(id, address);
      }
    }
    for (const id of [...this.knownAddresses.keys()]) {
      if (!current.has(id)) {
        this.knownAddresses.delete(id);
        this.options.network.removePeer(id);
      }
    }
  }

  private addressOf(config: ConfState, id: NodeId): string {
    if (id === this.options.nodeId) return this.options.advertise;
    return config.addresses?.[id] ?? this.knownAddresses.get(id) ?? '';
  }

  private fail(requestId: string, result: { code: RaftErrorCode; message: string; leader: NodeId | null }): void {
    this.options.toApi({ type: 'failed', requestId, code: raftErrorCodes[result.code], message: result.message, leader: result.leader });
  }

  // ---------------------------------------------------------------- compaction

  private loadCommittedConfigs(): void {
    const { storage } = this.options;
    this.committedConfigs = [{ index: storage.snapshot().index, config: storage.snapshot().config }];
    const commit = storage.hardState().commit;
    for (let index = storage.firstIndex(); index <= Math.min(commit, storage.lastIndex()); ) {
      const batch = storage.entries(index, Math.min(commit, storage.lastIndex()) + 1, 16 << 20);
      for (const entry of batch) if (entry.kind === 'config') this.committedConfigs.push({ index: entry.index, config: entry.config });
      index += batch.length;
    }
  }

  private configAt(index: number): ConfState | null {
    let found: ConfState | null = null;
    for (const entry of this.committedConfigs) if (entry.index <= index) found = entry.config;
    return found;
  }

  private maybeCompact(): void {
    const { storage } = this.options;
    if (this.snapshotInProgress || this.node === null) return;
    const sinceSnapshot = this.storeAppliedIndex - storage.snapshot().index;
    if (sinceSnapshot < this.options.snapshotEveryEntries) return;
    // A new snapshot restarts every transfer in progress from its first byte: under steady writes
    // a slow follower would never finish one. Wait for transfers, up to four times the threshold.
    const progress = this.node.status().progress;
    const transferring = progress !== null && [...progress.values()].some((peer) => peer.state === 'snapshot');
    if (transferring && sinceSnapshot < 4 * this.options.snapshotEveryEntries) return;
    this.takeSnapshot();
  }

  private takeSnapshot(): void {
    this.snapshotInProgress = true;
    this.snapshotStartedAt = process.hrtime.bigint();
    const path = join(this.options.storage.path(), `taking-${this.storeAppliedIndex}-${this.nonce}.snap`);
    this.options.toStore({ type: 'writeSnapshot', path });
  }

  private compactTo(report: Extract<StoreReport, { type: 'snapshotWritten' }>): void {
    const { storage, logger } = this.options;
    const config = this.configAt(report.index);
    if (report.index <= storage.snapshot().index || config === null || report.index > storage.lastIndex()) return;
    storage.compactFromFile({ index: report.index, term: report.term, config, sizeBytes: report.sizeBytes }, report.path);
    // The snapshot now carries the configuration as of its index; later ones stay.
    this.committedConfigs = [{ index: report.index, config }, ...this.committedConfigs.filter((entry) => entry.index > report.index)];
    logger.info({ index: report.index, sizeBytes: report.sizeBytes }, `compacted the log up to index ${report.index} (snapshot of ${report.sizeBytes} bytes)`);
  }
}

function describeChange(change: ConfChange): string {
  switch (change.type) {
    case 'bootstrap':
      return 'cluster founded';
    case 'addLearner':
      return `${change.nodeId} added as a learner`;
    case 'promote':
      return `${change.nodeId} promoted to voter`;
    case 'remove':
      return `${change.nodeId} removed`;
  }
}

/** What a status reply carries of a NodeStatus: everything but what the envelope and the asker know. */
export function toPeerStatus(status: NodeStatus): PeerStatus {
  return {
    role: status.role,
    leader: status.leader,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    firstIndex: status.firstIndex,
    lastIndex: status.lastIndex,
    members: status.members.map((member) => {
      const progressKnown = member.matchIndex >= 0;
      return {
        id: member.id,
        address: member.address,
        voter: member.voter,
        progressKnown,
        matchIndex: progressKnown ? member.matchIndex : 0,
        lagEntries: progressKnown ? Math.max(0, member.lagEntries) : 0,
      };
    }),
  };
}

/** The NodeStatus of the node that sent a status reply (the inverse of toPeerStatus). */
export function nodeStatusFromPeer(reply: StatusReply, clusterId: string): NodeStatus {
  const { status } = reply;
  const addresses: Record<NodeId, string> = {};
  for (const member of status.members) if (member.address !== '') addresses[member.id] = member.address;
  const leaderAddress = status.leader === null ? null : (status.members.find((member) => member.id === status.leader)?.address ?? '');
  return {
    id: reply.from,
    clusterId,
    role: status.role,
    term: reply.term,
    leader: status.leader,
    leaderAddress,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    firstIndex: status.firstIndex,
    lastIndex: status.lastIndex,
    members: status.members.map((member) => ({
      id: member.id,
      address: member.address,
      voter: member.voter,
      matchIndex: member.progressKnown ? member.matchIndex : -1,
      lagEntries: member.progressKnown ? member.lagEntries : -1,
    })),
    config: {
      voters: status.members.filter((member) => member.voter).map((member) => member.id),
      learners: status.members.filter((member) => !member.voter).map((member) => member.id),
      addresses,
    },
  };
}
