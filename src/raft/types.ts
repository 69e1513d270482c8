// The vocabulary of the Raft core: entries, persistent state, configurations, messages and the
// Ready value the driver handles. Everything here is plain data so that it can cross a
// MessagePort or a TCP frame as msgpack without adapters.

export type NodeId = string;

/** The cluster membership. Voters elect and form quorums; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * Where each member is reached (opaque to the core, e.g. 'host:port'). Carried in every config
   * entry and snapshot so that a node that only has the snapshot still knows its peers.
   */
  readonly addresses?: Readonly<Record<NodeId, string>>;
}

/** A single-server membership change (Raft dissertation §4.1). */
export type ConfChange =
  | { readonly type: 'bootstrap' }
  | { readonly type: 'addLearner'; readonly nodeId: NodeId; readonly address?: string }
  | { readonly type: 'promote'; readonly nodeId: NodeId }
  | { readonly type: 'remove'; readonly nodeId: NodeId };

/**
 * A log entry. A `config` entry carries the whole configuration that results from its change,
 * so any node that has the entry knows the full membership without replaying earlier ones.
 */
export type Entry =
  | { readonly index: number; readonly term: number; readonly kind: 'normal'; readonly data: Uint8Array }
  | {
      readonly index: number;
      readonly term: number;
      readonly kind: 'config';
      readonly change: ConfChange;
      readonly config: ConfState;
    };

/** What must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Describes the state-machine snapshot that replaces the log up to and including `index`. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly config: ConfState;
  readonly sizeBytes: number;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/**
 * Peer messages. `term` is the sender's current term, except for PreVote (the term the sender
 * would campaign in) and a granted PreVoteResponse (echoes that term).
 */
export type Message =
  | (Envelope & { readonly type: 'preVote'; readonly lastLogIndex: number; readonly lastLogTerm: number })
  | (Envelope & { readonly type: 'preVoteResponse'; readonly granted: boolean })
  | (Envelope & {
      readonly type: 'requestVote';
      readonly lastLogIndex: number;
      readonly lastLogTerm: number;
      /** Set when campaigning because of TimeoutNow: voters ignore their leader lease. */
      readonly transfer: boolean;
    })
  | (Envelope & { readonly type: 'requestVoteResponse'; readonly granted: boolean })
  | (Envelope & {
      readonly type: 'appendEntries';
      readonly prevLogIndex: number;
      readonly prevLogTerm: number;
      readonly entries: readonly Entry[];
      readonly leaderCommit: number;
    })
  | (Envelope & {
      readonly type: 'appendEntriesResponse';
      readonly success: boolean;
      /** On success: the last index known to match the leader. */
      readonly matchIndex: number;
      /** On rejection: the prevLogIndex that was rejected (lets the leader drop stale replies). */
      readonly rejectedIndex: number;
      /** On rejection: a hint for fast backtracking (§5.3 optimisation). */
      readonly conflictIndex: number;
      readonly conflictTerm: number;
    })
  | (Envelope & {
      readonly type: 'heartbeat';
      readonly commit: number;
      /** ReadIndex round this heartbeat confirms leadership for; 0 when none. */
      readonly readRound: number;
    })
  | (Envelope & { readonly type: 'heartbeatResponse'; readonly readRound: number })
  | (Envelope & {
      readonly type: 'installSnapshot';
      readonly meta: SnapshotMeta;
      readonly offset: number;
      readonly data: Uint8Array;
      readonly done: boolean;
    })
  | (Envelope & {
      readonly type: 'installSnapshotResponse';
      readonly snapshotIndex: number;
      /** The byte offset the follower expects next; with `done`, the whole snapshot is installed. */
      readonly nextOffset: number;
      readonly done: boolean;
      /** Set when the follower already had everything up to this index (commit ≥ snapshot). */
      readonly matchIndex: number;
    })
  | (Envelope & { readonly type: 'timeoutNow' })
  | (Envelope & { readonly type: 'readIndex'; readonly requestId: string })
  | (Envelope & { readonly type: 'readIndexResponse'; readonly requestId: string; readonly index: number })
  | (Envelope & { readonly type: 'propose'; readonly data: readonly Uint8Array[] })
  /** A membership change sent to the leader by a follower, or by a node asking to join. */
  | (Envelope & { readonly type: 'proposeConfChange'; readonly change: ConfChange })
  /**
   * A leadership transfer asked of a follower, sent on to the leader: hand over to `target`, or
   * to the voter furthest along when null. Refusals are dropped (the asker sees who leads).
   */
  | (Envelope & { readonly type: 'transferLeader'; readonly target: NodeId | null });

/** Client requests carried to the leader; like etcd's local messages they are not bound to a term. */
export const clientRequestTypes: ReadonlySet<MessageType> = new Set(['propose', 'proposeConfChange', 'readIndex', 'transferLeader']);

export type MessageType = Message['type'];

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly requestId: string;
  readonly index: number;
}

/** A chunk of a snapshot received from the leader, to be written to the pending snapshot. */
export interface SnapshotChunk {
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly data: Uint8Array;
  /** The last chunk: the driver installs the pending snapshot, replacing the log and the state machine. */
  readonly done: boolean;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
}

/**
 * The output of the core. The driver must, in this order:
 *  1. write `snapshotChunk` (installing the snapshot when it is `done`), `entries` (truncating any
 *     stored suffix from `entries[0].index`) and `hardState`, and make them durable;
 *  2. send `messages`;
 *  3. apply `committedEntries` and serve `readStates` once applied;
 *  4. call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshotChunk: SnapshotChunk | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** Operating errors returned (not thrown) by the core's client-facing calls. */
export type RaftErrorCode =
  | 'NotLeader'
  | 'NoLeader'
  | 'TransferInProgress'
  | 'ConfChangeInProgress'
  | 'InvalidConfChange'
  | 'NotMember'
  /** A leadership transfer nobody can take: the target is a learner, or no other voter exists. */
  | 'InvalidTransfer';

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: RaftErrorCode; readonly message: string; readonly leader: NodeId | null };

export interface RaftOptions {
  readonly id: NodeId;
  /** Base election timeout; the effective one is drawn from [base, 2·base). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  /** Upper bound of AppendEntries messages in flight to one follower (pipelining window). */
  readonly maxInflightMessages: number;
  /** Upper bound of entry bytes (data length) in one AppendEntries. */
  readonly maxMessageBytes: number;
  /** Snapshot transfer chunk size. */
  readonly snapshotChunkBytes: number;
  /** Ticks a leadership transfer may take before it is abandoned. */
  readonly transferTimeoutTicks?: number;
  /** Leader proposes `promote` for a learner once its match index reaches the commit index. */
  readonly autoPromoteLearners: boolean;
  /** Seeded source of randomness in [0, 1). */
  readonly random: () => number;
}
