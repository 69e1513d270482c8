// The port the gRPC handlers call: everything dfs.FileService can do, in the vocabulary of the
// store rather than of protobuf. The handlers in server.ts only check the shape of a request, call
// one method here and turn the result into a response (or a thrown DfsError into a status through
// status.ts), so the gRPC layer can be built and tested without a cluster. The cluster implements
// this port in the grpc worker, on top of messages to the raft and store actors and of read-only
// LMDB reads; tests use the in-memory test/api/fake-backend.ts.
//
// The contract every implementation keeps:
// - Operating errors are thrown as DfsError (src/errors.ts) with a stable code; anything else that
//   is thrown is a bug, answered with INTERNAL and logged.
// - Keys are checked here, not in the handlers: a key that breaks a rule of DESIGN.md ("Bad
//   input") is rejected with InvalidKey and a message that names the rule.
// - Every method honours `context.signal`: once it is aborted (the client cancelled, its deadline
//   passed, or the server is closing) the result is no longer wanted, so the method stops waiting
//   and may reject with anything. An aborted write may still commit; the client learns the
//   outcome by reading.
// - Nothing grows with the size of a file except what `put`/`get` are given or return, and
//   those are bounded by the unary message limit (`maximumSizeBytes`).

/** How fresh a read must be; see `enum Consistency` in proto/dfs.proto. */
export type ReadConsistency = 'linearizable' | 'local';

/** A node's part in Raft; 'unknown' when the answering node cannot tell. */
export type MemberRole = 'unknown' | 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Whether a member votes; 'unknown' when the answering node cannot tell. */
export type Suffrage = 'unknown' | 'voter' | 'learner';

/** The metadata of one stored file (message FileInfo). */
export interface FileInfo {
  readonly key: string;
  readonly sizeBytes: number;
  /** Grows with every committed change of the namespace; the version of the file's last write. */
  readonly version: number;
  /** Milliseconds since the Unix epoch. */
  readonly modifiedUnixMilliseconds: number;
  /** POSIX permission bits, at most 0o7777. */
  readonly mode: number;
}

/** What every call carries besides its request. */
export interface CallContext {
  /** Aborted when the client cancels, its deadline passes, or the server closes. */
  readonly signal: AbortSignal;
  /**
   * The client's deadline in milliseconds since the Unix epoch; Infinity when it set none. A
   * method that waits (for a leader, a commit, a ReadIndex) should give up by then with Timeout.
   */
  readonly deadlineUnixMilliseconds: number;
}

export interface PutRequest {
  readonly key: string;
  readonly data: Uint8Array;
  /** Permission bits, at most 0o7777; 0 means the default 0o644. */
  readonly mode: number;
}

/** The first message of a PutStream. */
export interface PutStreamHeader {
  readonly key: string;
  /** Permission bits, at most 0o7777; 0 means the default 0o644. */
  readonly mode: number;
}

export interface PutResult {
  readonly version: number;
  readonly sizeBytes: number;
}

export interface GetRequest {
  readonly key: string;
  readonly consistency: ReadConsistency;
  /**
   * The largest value the caller can take in one message. A larger file is rejected with TooLarge
   * before its content is read, so that memory stays bounded (the caller then uses getStream).
   */
  readonly maximumSizeBytes: number;
}

export interface GetResult {
  readonly data: Uint8Array;
  /** The metadata of the version `data` belongs to. */
  readonly info: FileInfo;
}

export interface GetStreamRequest {
  readonly key: string;
  readonly consistency: ReadConsistency;
  /** The largest chunk the stream may yield; the handler also cuts larger ones. */
  readonly chunkSizeBytes: number;
}

/** An open read of one version of a file. */
export interface FileStream {
  /** The metadata of the version being read; every chunk belongs to it. */
  readonly info: FileInfo;
  /**
   * The content in order, each chunk at most `chunkSizeBytes`. The consumer pulls one chunk at a
   * time and may stop early (`return()` on the iterator, e.g. when the client goes away), which
   * must release whatever the stream holds (an LMDB read transaction, a file handle).
   */
  readonly chunks: AsyncIterable<Uint8Array>;
}

export interface DeleteResult {
  readonly version: number;
}

export interface ListRequest {
  /** Keys that start with this string, byte for byte; '' lists everything. */
  readonly prefix: string;
  /** The most entries to return, 1 to 10000 (the handler applies the default and the cap). */
  readonly pageSize: number;
  /** '' for the first page, else a `nextPageToken` this backend returned; InvalidArgument if not. */
  readonly pageToken: string;
  readonly consistency: ReadConsistency;
}

export interface ListPage {
  /** In bytewise key order. */
  readonly entries: readonly FileInfo[];
  /** '' on the last page. */
  readonly nextPageToken: string;
}

export interface StatRequest {
  readonly key: string;
  readonly consistency: ReadConsistency;
}

export interface MemberStatus {
  readonly id: string;
  /** The member's peer (Raft) address, host:port. */
  readonly address: string;
  readonly role: MemberRole;
  readonly suffrage: Suffrage;
  /** Whether matchIndex and lagEntries are known (only the leader tracks them). */
  readonly progressKnown: boolean;
  readonly matchIndex: number;
  readonly lagEntries: number;
}

export interface NodeStatus {
  readonly nodeId: string;
  readonly role: MemberRole;
  readonly term: number;
  /** '' when no leader is known. */
  readonly leaderId: string;
  /** The leader's peer (Raft) address; '' when no leader is known. */
  readonly leaderAddress: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** The last index in this node's snapshot; its Raft log holds the entries after it. */
  readonly snapshotIndex: number;
  /** Every member of the current configuration, this node included, ordered by id. */
  readonly members: readonly MemberStatus[];
}

/** What a change did to a key (enum ChangeType). */
export type ChangeType = 'put' | 'delete' | 'makeFolder' | 'removeFolder';

export interface WatchRequest {
  /** Keys that start with this string, byte for byte; '' watches everything (List's rules). */
  readonly prefix: string;
  /** The first version to send; 0 means from now. */
  readonly fromVersion: number;
}

/** One change of one key (message WatchEvent). */
export interface WatchEvent {
  readonly version: number;
  readonly type: ChangeType;
  readonly key: string;
  /** The file after a put, the folder after a makeFolder (size 0); null otherwise. */
  readonly info: FileInfo | null;
  /** More events of the same version follow. */
  readonly moreInVersion: boolean;
}

export interface AddPeerRequest {
  readonly id: string;
  /** The new node's peer (Raft) address, host:port. */
  readonly address: string;
}

/**
 * Everything dfs.FileService does. Each method resolves once its effect is final as proto/dfs.proto
 * describes (a write: committed by a majority and applied on this node) or rejects with a DfsError.
 */
export interface FileBackend {
  /** Stores a whole value. InvalidKey; NoLeader/NotLeader/Unavailable; Timeout; TooLarge. */
  put(request: PutRequest, context: CallContext): Promise<PutResult>;

  /**
   * Stores a value of any size from `chunks`, visible only once all of it is committed. The
   * backend pulls chunks at its own pace, which is the stream's backpressure: the handler reads
   * the next message from the client only when asked. If `chunks` throws (the client cancelled)
   * nothing is stored. TooLarge when the value exceeds the store's file size limit.
   */
  putStream(header: PutStreamHeader, chunks: AsyncIterable<Uint8Array>, context: CallContext): Promise<PutResult>;

  /** Reads a whole value. InvalidKey; KeyNotFound; TooLarge (above `maximumSizeBytes`). */
  get(request: GetRequest, context: CallContext): Promise<GetResult>;

  /**
   * Opens a read of one version of a file. Rejects (KeyNotFound, InvalidKey, ...) before any
   * chunk, so that the client gets a clean status rather than half a stream.
   */
  getStream(request: GetStreamRequest, context: CallContext): Promise<FileStream>;

  /** Removes a key. InvalidKey; KeyNotFound when it does not exist. */
  delete(key: string, context: CallContext): Promise<DeleteResult>;

  /** One page of the keys under a prefix. InvalidArgument for a page token it did not issue. */
  list(request: ListRequest, context: CallContext): Promise<ListPage>;

  /** The metadata of one file. InvalidKey; KeyNotFound. */
  stat(request: StatRequest, context: CallContext): Promise<FileInfo>;

  /** This node and the cluster as this node sees it. Never waits for a leader. */
  status(context: CallContext): Promise<NodeStatus>;

  /**
   * Adds a node as a learner (promoted once caught up). AlreadyExists for a known id;
   * InvalidArgument for a malformed id or address; FailedPrecondition while another membership
   * change is in progress.
   */
  addPeer(request: AddPeerRequest, context: CallContext): Promise<void>;

  /**
   * Removes a node from the configuration. FailedPrecondition when `id` is not a member or the
   * change would leave no voter; NoLeader/NotLeader/Unavailable while no leader can take it.
   */
  removePeer(id: string, context: CallContext): Promise<void>;

  /**
   * The changes under a prefix in commit order: the retained ones from `fromVersion` on, then
   * live ones, until `context.signal` is aborted (the iterator then ends). The consumer pulls one
   * event at a time and the backend reads its change log only as fast as that, so a slow client
   * costs no memory. Compacted (before or during the stream) when the log no longer holds the
   * next version to send; InvalidKey for a bad prefix; Unavailable when the node stops.
   */
  watch(request: WatchRequest, context: CallContext): AsyncIterable<WatchEvent>;

  /**
   * Hands leadership to the voter `to` ('' : the one furthest along) and resolves with the new
   * leader's id once this node knows it took over. NotLeader (naming the leader) on any node but
   * the leader; InvalidArgument for a non-member; FailedPrecondition for a learner or when there is
   * no other voter; Timeout when leadership did not move in time.
   */
  transferLeader(to: string, context: CallContext): Promise<{ leaderId: string }>;

  /** Compacts this node's Raft log into a snapshot of what it has applied; its index and size. */
  snapshot(context: CallContext): Promise<SnapshotInfo>;
}

export interface SnapshotInfo {
  /** The last log index the snapshot covers. */
  readonly index: number;
  readonly sizeBytes: number;
}
