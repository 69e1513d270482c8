// Every message that crosses between the node's actors, declared once. Each actor's inbox is a
// discriminated union and every handler switches over it exhaustively, so adding a message
// without handling it is a type error. The values are plain data: the codec (msgpack) carries
// them over MessagePorts.

import type { DfsErrorCode } from '../errors.js';
import type { FuseOperationsReport } from '../fs/fuse-contract.js';
import type { ConfChange, ConfState, NodeId, Role } from '../raft/types.js';

/** A committed log entry for the state machine; data is null for no-op and configuration entries. */
export interface ApplyEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array | null;
}

/** The outcome of one applied command, for the node that proposed it. */
export type CommandResult =
  | { readonly requestId: string; readonly ok: true; readonly version: number }
  | { readonly requestId: string; readonly ok: false; readonly code: DfsErrorCode; readonly message: string };

export interface MemberStatus {
  readonly id: NodeId;
  readonly address: string;
  readonly voter: boolean;
  /** Known on the leader only: -1 elsewhere. */
  readonly matchIndex: number;
  readonly lagEntries: number;
}

export interface NodeStatus {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly leaderAddress: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly members: readonly MemberStatus[];
  readonly config: ConfState;
}

/** The gRPC actor's requests to the Raft actor. Each is answered once, by `requestId`. */
export type RaftRequest =
  | { readonly type: 'propose'; readonly requestId: string; readonly data: Uint8Array }
  | { readonly type: 'readIndex'; readonly requestId: string }
  | { readonly type: 'confChange'; readonly requestId: string; readonly change: ConfChange }
  /** `to` null: the voter that is furthest along (the leader only). */
  | { readonly type: 'transferLeadership'; readonly requestId: string; readonly to: NodeId | null }
  | { readonly type: 'status'; readonly requestId: string }
  /** Compact the log into a snapshot of everything applied now; answered once it is done. */
  | { readonly type: 'snapshot'; readonly requestId: string }
  /**
   * The status as the leader sees it (every member's progress): asked of the leader over the peer
   * network when this node is not it. Answered by a 'leaderStatus' reply within about
   * `timeoutMilliseconds`, with this node's own status when the leader does not answer by then.
   */
  | { readonly type: 'leaderStatus'; readonly requestId: string; readonly timeoutMilliseconds: number };

/** The Raft actor's answers to the gRPC actor. A proposal's success arrives from the store. */
export type RaftReply =
  | { readonly type: 'failed'; readonly requestId: string; readonly code: DfsErrorCode; readonly message: string; readonly leader: NodeId | null }
  | { readonly type: 'readState'; readonly requestId: string; readonly index: number }
  | { readonly type: 'confChanged'; readonly requestId: string; readonly index: number }
  | { readonly type: 'transferStarted'; readonly requestId: string; readonly to: NodeId }
  /**
   * A follower sent a transfer request on to `leader` (the leader then at this node's knowledge);
   * `to` null: the leader chooses. It is done when the leader changes (to `to`, if given).
   */
  | { readonly type: 'transferForwarded'; readonly requestId: string; readonly to: NodeId | null; readonly leader: NodeId }
  /** The log's snapshot after a 'snapshot' request: it covers everything applied when it was asked for. */
  | { readonly type: 'snapshotTaken'; readonly requestId: string; readonly index: number; readonly term: number; readonly sizeBytes: number }
  | { readonly type: 'status'; readonly requestId: string; readonly status: NodeStatus }
  /** The answer to 'leaderStatus': the leader's status (fromLeader), or this node's own. */
  | { readonly type: 'leaderStatus'; readonly requestId: string; readonly status: NodeStatus; readonly fromLeader: boolean }
  /** Not an answer: the known leader changed (null: none), so the health service can say so. */
  | { readonly type: 'leadership'; readonly leader: NodeId | null };

/** One snapshot the Raft log took over: written here for compaction, or received from the leader. */
export interface SnapshotObservation {
  readonly kind: 'taken' | 'installed';
  readonly sizeBytes: number;
  /** Taken: from asking the store to write it to compacting the log. Installed: from its first
   * chunk to the last. */
  readonly seconds: number;
}

/**
 * Not an answer: what the Raft actor measured since its last report (about once a second), for
 * the gRPC actor's /metrics. Raw observations rather than histograms so that the buckets live in
 * one place (src/metrics); bounded by RaftMetricsReport limits in the Raft actor.
 */
export interface RaftMetricsReport {
  readonly type: 'raftMetrics';
  /** Durations of the flushes (one fsync per Ready batch), at most maxReportedObservations. */
  readonly fsyncSeconds: readonly number[];
  /** Flushes measured but left out of fsyncSeconds because the report was full. */
  readonly fsyncsNotReported: number;
  readonly persistedEntries: number;
  readonly committedEntries: number;
  readonly snapshots: readonly SnapshotObservation[];
  readonly campaigns: number;
}

/** Everything the Raft actor sends the gRPC actor. */
export type RaftNews = RaftReply | RaftMetricsReport;

/** The Raft actor's orders to the store actor, in log order. */
export type StoreRequest =
  | { readonly type: 'apply'; readonly entries: readonly ApplyEntry[] }
  /** Replace the whole state with the snapshot file the Raft log received from the leader. */
  | { readonly type: 'restore'; readonly path: string; readonly index: number; readonly term: number }
  /** Write the state as a snapshot file so the Raft log can be compacted up to its index. */
  | { readonly type: 'writeSnapshot'; readonly path: string };

/** The store actor's reports to the Raft actor. */
export type StoreReport =
  | { readonly type: 'snapshotWritten'; readonly path: string; readonly index: number; readonly term: number; readonly sizeBytes: number }
  | { readonly type: 'snapshotFailed'; readonly path: string; readonly message: string }
  | { readonly type: 'applied'; readonly index: number };

/** The store actor's news for the gRPC actor: what is applied now, and the proposers' results. */
export type StoreEvent = { readonly type: 'applied'; readonly index: number; readonly results: readonly CommandResult[] };

/** Supervisor → worker. */
export type ControlRequest =
  | { readonly type: 'stop' }
  /** Graceful shutdown, step one: a leader hands leadership to a caught-up peer. */
  | { readonly type: 'handOver'; readonly timeoutMilliseconds: number }
  /**
   * For the gRPC actor (the others ignore it): the FUSE process's operation figures, as it sent
   * them to the supervisor (cumulative within its run; src/fs/fuse-contract.ts), for /metrics.
   */
  | { readonly type: 'fuseMetrics'; readonly report: FuseOperationsReport };

/** Worker → supervisor. */
export type ControlReport =
  | { readonly type: 'started'; readonly detail: string }
  | { readonly type: 'stopped' }
  | { readonly type: 'handedOver'; readonly to: NodeId | null }
  /** The worker cannot go on and restarting it will not help (port in use, foreign data, ...). */
  | { readonly type: 'fatal'; readonly message: string }
  | { readonly type: 'health'; readonly serving: boolean };
