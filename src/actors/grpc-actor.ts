// The gRPC actor's side of the cluster: it implements the FileBackend port (src/api/backend.ts)
// with messages to the Raft actor and direct, read-only LMDB reads of the applied state.
//
// - A write becomes a command with a request id, proposed through the Raft actor (a follower's
//   core forwards it to the leader); it resolves when the store actor on THIS node has applied it
//   and reports the result, so "returned" means committed by a majority and applied here.
// - A linearizable read asks the Raft actor for a read index (ReadIndex: the leader confirms with
//   a majority that it still leads), waits until this node has applied that index, then reads.
// - Large values travel as content chunks (putChunk, each one entry of at most chunkSizeBytes)
//   and become visible at once with a final commitFile entry; memory stays bounded by the number
//   of chunks in flight.

import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type {
  AddPeerRequest,
  CallContext,
  DeleteResult,
  FileBackend,
  FileInfo,
  FileStream,
  GetRequest,
  GetResult,
  GetStreamRequest,
  ListPage,
  ListRequest,
  NodeStatus as ApiNodeStatus,
  PutRequest,
  PutResult,
  PutStreamHeader,
  ReadConsistency,
  SnapshotInfo,
  StatRequest,
  WatchEvent,
  WatchRequest,
} from '../api/backend.js';
import { DfsError } from '../errors.js';
import type { ConfChange } from '../raft/types.js';
import type { Command } from '../store/commands.js';
import { Deadlines } from './mailbox.js';
import type { CommandResult, NodeStatus, RaftReply, RaftRequest, StoreEvent } from './protocol.js';
import { requestIdSeparator } from './store-actor.js';

/** A command for the state machine, before the backend stamps its request id on it. */
export type CommandInput = Command extends infer Each ? (Each extends Command ? Omit<Each, 'requestId'> : never) : never;

/** What the backend needs of the state machine's read side and command codec. */
export interface StatePort {
  encode(command: CommandInput, requestId: string): Uint8Array;
  /** The content address a putChunk of `data` is stored under. */
  chunkHash(data: Uint8Array): Uint8Array;
  validateKey(key: string): string | null;
  validatePrefix(prefix: string): string | null;
  stat(key: string): FileInfo | null;
  get(key: string): { data: Uint8Array; info: FileInfo } | null;
  openRead(key: string, chunkSizeBytes: number): FileStream | null;
  list(prefix: string, pageSize: number, pageToken: string): ListPage;
  /** The applied index of the newest committed state. */
  appliedIndex(): number;
  /** A page of the change log (StateReader.changes). */
  changes(from: { version: number; sequence: number }, prefix: string, limit: number): ChangePage;
}

/** A page of the change log, in the API's vocabulary. */
export interface ChangePage {
  readonly changes: readonly Omit<WatchEvent, 'moreInVersion'>[];
  readonly next: { readonly version: number; readonly sequence: number };
  readonly appliedIndex: number;
  readonly caughtUp: boolean;
}

/** Changes one Watch reads from the log per step (it yields to the event loop between steps). */
const watchPageChanges = 256;

export interface GrpcActorOptions {
  readonly nodeId: string;
  readonly state: StatePort;
  readonly toRaft: (request: RaftRequest) => void;
  readonly logger: Logger;
  readonly requestTimeoutMilliseconds: number;
  /** Values above this go through chunks. */
  readonly chunkSizeBytes: number;
  /** Chunks of one stream proposed but not yet applied. */
  readonly maxChunksInFlight: number;
  readonly maxPendingRequests: number;
  /** Told whenever the known leader changes (null: none). */
  readonly onLeadership?: (leader: string | null) => void;
}

type Outcome = { kind: 'result'; result: CommandResult } | { kind: 'raft'; reply: RaftReply };

const defaultMode = 0o644;

/** A file's metadata as the cache folder carries it from the source file. */
export interface SourceMetadata {
  readonly modeBits: number;
  readonly modifiedMilliseconds: number;
}

/** For uploads from the cache folder: the source's metadata, and a last check before the commit. */
export interface ChunkedPutOptions extends SourceMetadata {
  /**
   * Runs after every chunk is stored and before the commitFile entry is proposed; throwing
   * abandons the upload (its chunks become garbage), so a file that changed while it was read is
   * never made visible.
   */
  readonly beforeCommit?: () => void | Promise<void>;
}

export class ClusterBackend implements FileBackend {
  private sequence = 0;
  private readonly bootId = Date.now().toString(36);
  private readonly waiting: Deadlines<Outcome>;
  private appliedIndex = 0;
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  /** (time, applied index) samples, oldest first, kept for the garbage collection's grace period. */
  private appliedHistory: { time: number; index: number }[] = [];
  /** Watch streams waiting for the next applied index; woken by every store event, failed by close(). */
  private watchWaiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  /** The leader the Raft actor last reported, and who waits to hear of a change. */
  private knownLeader: string | null = null;
  private leadershipWaiters = new Set<(leader: string | null) => void>();
  private closed = false;

  constructor(private readonly options: GrpcActorOptions) {
    this.waiting = new Deadlines(options.maxPendingRequests);
  }

  // ---------------------------------------------------------------- inbound messages

  handleRaftReply(reply: RaftReply): void {
    if (reply.type === 'leadership') {
      this.knownLeader = reply.leader;
      for (const waiter of [...this.leadershipWaiters]) waiter(reply.leader);
      this.options.onLeadership?.(reply.leader);
      return;
    }
    this.waiting.resolve(reply.requestId, { kind: 'raft', reply });
  }

  handleStoreEvent(event: StoreEvent): void {
    for (const result of event.results) this.waiting.resolve(result.requestId, { kind: 'result', result });
    if (event.index > this.appliedIndex) {
      this.appliedIndex = event.index;
      const ready = this.appliedWaiters.filter((waiter) => waiter.index <= event.index);
      this.appliedWaiters = this.appliedWaiters.filter((waiter) => waiter.index > event.index);
      for (const waiter of ready) waiter.resolve();
      const watchers = [...this.watchWaiters];
      this.watchWaiters.clear();
      for (const watcher of watchers) watcher.resolve();
    }
  }

  /**
   * Called periodically on every node; acts only on the leader. Content chunks that no file
   * references (uploads that were cancelled or failed) are dropped once they have been
   * unreferenced since before the applied index of `graceMilliseconds` ago, so an upload in
   * progress keeps its chunks. Bounded: at most `maxRounds` collectGarbage entries per call.
   */
  async collectGarbage(isLeader: boolean, graceMilliseconds: number, maxRounds = 16): Promise<number> {
    const now = Date.now();
    this.appliedHistory.push({ time: now, index: this.appliedIndex });
    while (this.appliedHistory.length > 1 && (this.appliedHistory[1]?.time ?? now) <= now - graceMilliseconds) this.appliedHistory.shift();
    const oldest = this.appliedHistory[0];
    if (!isLeader || oldest === undefined || oldest.time > now - graceMilliseconds || oldest.index === 0) return 0;
    const context: CallContext = { signal: new AbortController().signal, deadlineUnixMilliseconds: now + this.options.requestTimeoutMilliseconds };
    let dropped = 0;
    for (let round = 0; round < maxRounds; round++) {
      const requestId = this.nextRequestId();
      const data = this.options.state.encode({ type: 'collectGarbage', beforeIndex: oldest.index }, requestId);
      const outcome = await this.await(requestId, context, () => this.options.toRaft({ type: 'propose', requestId, data }));
      if (outcome.kind !== 'result' || !outcome.result.ok) break;
      const result = outcome.result as { affectedCount?: number; complete?: boolean };
      dropped += result.affectedCount ?? 0;
      if (result.complete !== false) break;
    }
    if (dropped > 0) this.options.logger.info({ dropped, beforeIndex: oldest.index }, `dropped ${dropped} content chunks no file uses`);
    return dropped;
  }

  /** Fails every waiting call (the node is stopping). */
  close(): void {
    this.closed = true;
    this.waiting.rejectAll(() => new DfsError('Unavailable', 'the node is shutting down; retry on another node'));
    const watchers = [...this.watchWaiters];
    this.watchWaiters.clear();
    for (const watcher of watchers) watcher.reject(watchEnded());
  }

  // ---------------------------------------------------------------- FileBackend

  async put(request: PutRequest, context: CallContext): Promise<PutResult> {
    this.checkKey(request.key);
    const modeBits = request.mode === 0 ? defaultMode : request.mode;
    return this.putFile(request.key, request.data, { modeBits, modifiedMilliseconds: Date.now() }, context);
  }

  async putStream(header: PutStreamHeader, chunks: AsyncIterable<Uint8Array>, context: CallContext): Promise<PutResult> {
    this.checkKey(header.key);
    return this.putChunks(header.key, chunks, { modeBits: header.mode === 0 ? defaultMode : header.mode, modifiedMilliseconds: Date.now() }, context);
  }

  // ---------------------------------------------------------------- the cache folder's writes

  /** Writes a whole file held in memory, with the source's metadata (chunked when large). */
  async putFile(key: string, data: Uint8Array, metadata: SourceMetadata, context: CallContext): Promise<PutResult> {
    this.checkKey(key);
    if (data.byteLength > this.options.chunkSizeBytes) return this.putChunks(key, [data], metadata, context);
    const version = await this.propose({ type: 'put', key, data, modeBits: metadata.modeBits, modifiedMilliseconds: metadata.modifiedMilliseconds }, context);
    return { version, sizeBytes: data.byteLength };
  }

  /** Streams a file as content chunks; it becomes visible at once when its commitFile applies. */
  async putChunked(key: string, chunks: AsyncIterable<Uint8Array>, options: ChunkedPutOptions, context: CallContext): Promise<PutResult> {
    this.checkKey(key);
    return this.putChunks(key, chunks, options, context);
  }

  /** Moves a file, or a folder with everything under it. */
  async rename(from: string, to: string, context: CallContext): Promise<number> {
    this.checkKey(from);
    this.checkKey(to);
    return this.propose({ type: 'rename', from, to }, context);
  }

  /** Removes a folder with everything under it. */
  async deleteFolder(key: string, context: CallContext): Promise<number> {
    this.checkKey(key);
    return this.propose({ type: 'deleteFolder', key }, context);
  }

  /** Creates an explicit folder, which exists even when it is empty. */
  async makeFolder(key: string, metadata: SourceMetadata, context: CallContext): Promise<number> {
    this.checkKey(key);
    return this.propose({ type: 'mkdir', key, modeBits: metadata.modeBits, modifiedMilliseconds: metadata.modifiedMilliseconds }, context);
  }

  async get(request: GetRequest, context: CallContext): Promise<GetResult> {
    this.checkKey(request.key);
    await this.readBarrier(request.consistency, context);
    const info = this.options.state.stat(request.key);
    if (info === null) throw notFound(request.key);
    if (info.sizeBytes > request.maximumSizeBytes) {
      throw new DfsError('TooLarge', `${request.key} holds ${info.sizeBytes} bytes, more than one message may carry (${request.maximumSizeBytes}); read it with GetStream`);
    }
    const found = this.options.state.get(request.key);
    if (found === null) throw notFound(request.key);
    return found;
  }

  async getStream(request: GetStreamRequest, context: CallContext): Promise<FileStream> {
    this.checkKey(request.key);
    await this.readBarrier(request.consistency, context);
    const stream = this.options.state.openRead(request.key, request.chunkSizeBytes);
    if (stream === null) throw notFound(request.key);
    return stream;
  }

  async delete(key: string, context: CallContext): Promise<DeleteResult> {
    this.checkKey(key);
    return { version: await this.propose({ type: 'delete', key }, context) };
  }

  async list(request: ListRequest, context: CallContext): Promise<ListPage> {
    const problem = this.options.state.validatePrefix(request.prefix);
    if (problem !== null) throw new DfsError('InvalidKey', `prefix ${JSON.stringify(request.prefix)}: ${problem}`);
    await this.readBarrier(request.consistency, context);
    return this.options.state.list(request.prefix, request.pageSize, request.pageToken);
  }

  async stat(request: StatRequest, context: CallContext): Promise<FileInfo> {
    this.checkKey(request.key);
    await this.readBarrier(request.consistency, context);
    const info = this.options.state.stat(request.key);
    if (info === null) throw notFound(request.key);
    return info;
  }

  async status(context: CallContext): Promise<ApiNodeStatus> {
    const reply = await this.ask({ type: 'status', requestId: this.nextRequestId() }, context);
    if (reply.type !== 'status') throw unexpected(reply);
    return toApiStatus(reply.status);
  }

  async addPeer(request: AddPeerRequest, context: CallContext): Promise<void> {
    if (!nodeIdPattern.test(request.id)) {
      throw new DfsError('InvalidArgument', `node id ${JSON.stringify(request.id)} ${nodeIdRule}`);
    }
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(request.address)) {
      throw new DfsError('InvalidArgument', `address ${JSON.stringify(request.address)} must be host:port`);
    }
    const status = await this.status(context);
    if (status.members.some((member) => member.id === request.id)) throw new DfsError('AlreadyExists', `${request.id} is already a member`);
    await this.changeMembership({ type: 'addLearner', nodeId: request.id, address: request.address }, context);
  }

  async removePeer(id: string, context: CallContext): Promise<void> {
    await this.changeMembership({ type: 'remove', nodeId: id }, context);
  }

  /**
   * Reads the change log a page at a time from `fromVersion` (0: after what is applied now) and
   * waits for the store's next applied index whenever it has caught up. One event is held back
   * until the next one (or the end of the log) shows whether its version has more events. A
   * version dropped from the log before it was sent ends the stream with Compacted.
   */
  async *watch(request: WatchRequest, context: CallContext): AsyncGenerator<WatchEvent> {
    const problem = this.options.state.validatePrefix(request.prefix);
    if (problem !== null) throw new DfsError('InvalidKey', `prefix ${JSON.stringify(request.prefix)}: ${problem}`);
    if (!Number.isSafeInteger(request.fromVersion) || request.fromVersion < 0) {
      throw new DfsError('InvalidArgument', `from_version must be a whole number from 0 to 2^53-1, got ${request.fromVersion}`);
    }
    let position = { version: request.fromVersion === 0 ? this.options.state.appliedIndex() + 1 : request.fromVersion, sequence: 0 };
    let pending: Omit<WatchEvent, 'moreInVersion'> | null = null;
    while (!context.signal.aborted) {
      if (this.closed) throw watchEnded();
      const page = this.options.state.changes(position, request.prefix, watchPageChanges);
      for (const change of page.changes) {
        if (pending !== null) yield { ...pending, moreInVersion: pending.version === change.version };
        pending = change;
      }
      position = page.next;
      if (pending !== null && (page.caughtUp || pending.version < position.version)) {
        yield { ...pending, moreInVersion: false };
        pending = null;
      }
      if (page.caughtUp) await this.waitForApplied(page.appliedIndex, context.signal);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Asks the Raft actor to start the transfer (on a follower it goes on to the leader), then
   * waits (within the call's timeout) until the leader changes: to the target when one was given,
   * away from the old leader otherwise. Answering "done" only once the new leader leads.
   */
  async transferLeader(to: string, context: CallContext): Promise<{ leaderId: string }> {
    if (to !== '' && !nodeIdPattern.test(to)) throw new DfsError('InvalidArgument', `node id ${JSON.stringify(to)} ${nodeIdRule}`);
    const requestId = this.nextRequestId();
    const timeout = this.timeoutMilliseconds(context);
    const reply = await this.ask({ type: 'transferLeadership', requestId, to: to === '' ? null : to }, context);
    let done: (leader: string | null) => boolean;
    let failure: () => string;
    if (reply.type === 'transferStarted') {
      const target = reply.to;
      if (target === this.options.nodeId) return { leaderId: target };
      done = (leader) => leader === target;
      failure = () =>
        `${target} did not take over within ${timeout} ms (it may still be catching up); leadership stays with ${this.knownLeader ?? 'nobody known'} until it does; Status shows the leader`;
    } else if (reply.type === 'transferForwarded') {
      const { to: target, leader: from } = reply;
      done = target === null ? (leader) => leader !== null && leader !== from : (leader) => leader === target;
      failure = () =>
        `leadership did not move ${target === null ? `away from ${from}` : `to ${target}`} within ${timeout} ms: this node sent the request on to ${from}, ` +
        `the leader it knew, which may have refused it (${target === null ? 'no other voter is caught up' : `${target} is not caught up or no longer a voter`}) ` +
        `or may no longer lead; the leader is ${this.knownLeader ?? 'not known'} now; Status shows the leader`;
    } else {
      throw unexpected(reply);
    }
    if (this.knownLeader !== null && done(this.knownLeader)) return { leaderId: this.knownLeader };
    return new Promise<{ leaderId: string }>((resolve, reject) => {
      const finish = (outcome: () => void): void => {
        clearTimeout(timer);
        this.leadershipWaiters.delete(waiter);
        context.signal.removeEventListener('abort', onAbort);
        outcome();
      };
      const waiter = (leader: string | null): void => {
        if (leader !== null && done(leader)) finish(() => resolve({ leaderId: leader }));
      };
      const onAbort = (): void => finish(() => reject(new DfsError('Timeout', 'the call was cancelled; the transfer may still complete')));
      const timer = setTimeout(() => finish(() => reject(new DfsError('Timeout', failure()))), timeout);
      this.leadershipWaiters.add(waiter);
      context.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * The cluster as the leader sees it, from any node: on the leader its own status; elsewhere the
   * leader's, fetched over the peer network within the call's deadline (callers pass about a
   * second). `fromLeader` false: no leader is known or it did not answer in time, and `status`
   * is this node's own (its members' progress is then unknown).
   */
  async leaderStatus(context: CallContext): Promise<{ status: ApiNodeStatus; fromLeader: boolean }> {
    const timeout = this.timeoutMilliseconds(context);
    // The Raft actor gives up on the leader a little before the call's deadline, so that its
    // fallback (the local status) still arrives in time.
    const timeoutMilliseconds = Math.max(1, timeout - Math.min(100, Math.floor(timeout / 4)));
    const reply = await this.ask({ type: 'leaderStatus', requestId: this.nextRequestId(), timeoutMilliseconds }, context);
    if (reply.type !== 'leaderStatus') throw unexpected(reply);
    return { status: toApiStatus(reply.status), fromLeader: reply.fromLeader };
  }

  async snapshot(context: CallContext): Promise<SnapshotInfo> {
    const reply = await this.ask({ type: 'snapshot', requestId: this.nextRequestId() }, context);
    if (reply.type !== 'snapshotTaken') throw unexpected(reply);
    return { index: reply.index, sizeBytes: reply.sizeBytes };
  }

  // ---------------------------------------------------------------- internals

  /** Resolves once the store reports an index above `index`, or the signal is aborted. */
  private waitForApplied(index: number, signal: AbortSignal): Promise<void> {
    if (this.appliedIndex > index || signal.aborted) return Promise.resolve();
    if (this.closed) return Promise.reject(watchEnded());
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          if (this.appliedIndex > index) resolve();
          else this.watchWaiters.add(waiter);
        },
        reject: (error: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = (): void => {
        this.watchWaiters.delete(waiter);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.watchWaiters.add(waiter);
    });
  }

  private checkKey(key: string): void {
    const problem = this.options.state.validateKey(key);
    if (problem !== null) throw new DfsError('InvalidKey', `key ${JSON.stringify(key.length > 100 ? `${key.slice(0, 100)}…` : key)}: ${problem}`);
  }

  private nextRequestId(): string {
    this.sequence++;
    return `${this.options.nodeId}${requestIdSeparator}${this.bootId}${requestIdSeparator}${this.sequence}`;
  }

  private timeoutMilliseconds(context: CallContext): number {
    return Math.max(1, Math.min(this.options.requestTimeoutMilliseconds, context.deadlineUnixMilliseconds - Date.now()));
  }

  /** Sends a request to the Raft actor and waits for the reply or the store's result. */
  private ask(request: RaftRequest, context: CallContext): Promise<RaftReply> {
    return this.await(request.requestId, context, () => this.options.toRaft(request)).then((outcome) => {
      if (outcome.kind !== 'raft') throw new DfsError('Internal', `request ${request.requestId} got a store result`);
      if (outcome.reply.type === 'failed') throw raftFailure(outcome.reply);
      return outcome.reply;
    });
  }

  private await(requestId: string, context: CallContext, send: () => void): Promise<Outcome> {
    if (context.signal.aborted) return Promise.reject(new DfsError('Timeout', 'the call was cancelled'));
    // Refused before anything is sent: a client told to retry must be sure nothing was proposed.
    if (this.waiting.size >= this.options.maxPendingRequests) {
      return Promise.reject(new DfsError('ResourceExhausted', 'too many requests are waiting for the cluster; nothing was done, retry shortly', { retryAfterMilliseconds: 100 }));
    }
    const timeout = this.timeoutMilliseconds(context);
    const outcome = this.waiting.wait(
      requestId,
      timeout,
      () => new DfsError('Timeout', `no answer from the cluster within ${timeout} ms (is a majority of nodes up?); the operation may still take effect`),
      () => new DfsError('ResourceExhausted', 'too many requests are waiting for the cluster; retry shortly', { retryAfterMilliseconds: 100 }),
    );
    const onAbort = (): void => {
      this.waiting.reject(requestId, new DfsError('Timeout', 'the call was cancelled; the operation may still take effect'));
    };
    context.signal.addEventListener('abort', onAbort, { once: true });
    send();
    return outcome.finally(() => context.signal.removeEventListener('abort', onAbort));
  }

  /** Proposes one command; resolves with the version it produced once applied on this node. */
  private async propose(command: CommandInput, context: CallContext): Promise<number> {
    const requestId = this.nextRequestId();
    const data = this.options.state.encode(command, requestId);
    const outcome = await this.await(requestId, context, () => this.options.toRaft({ type: 'propose', requestId, data }));
    if (outcome.kind === 'raft') {
      if (outcome.reply.type === 'failed') throw raftFailure(outcome.reply);
      throw unexpected(outcome.reply);
    }
    if (!outcome.result.ok) throw new DfsError(outcome.result.code, outcome.result.message);
    return outcome.result.version;
  }

  private async putChunks(key: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: ChunkedPutOptions, context: CallContext): Promise<PutResult> {
    const hashes: Uint8Array[] = [];
    const inFlight = new Set<Promise<number>>();
    let sizeBytes = 0;
    let failure: unknown = null;
    // Each chunk in flight listens for the call's cancellation: as many listeners as chunks in
    // flight (bounded), not a leak; without this Node warns at 11.
    setMaxListeners(this.options.maxChunksInFlight + 16, context.signal);
    const send = async (chunk: Uint8Array): Promise<void> => {
      hashes.push(this.options.state.chunkHash(chunk));
      sizeBytes += chunk.byteLength;
      const proposal = this.propose({ type: 'putChunk', data: chunk }, context);
      inFlight.add(proposal);
      void proposal.then(
        () => inFlight.delete(proposal),
        (error: unknown) => {
          inFlight.delete(proposal);
          failure ??= error;
        },
      );
      while (inFlight.size >= this.options.maxChunksInFlight && failure === null) await Promise.race([...inFlight].map((promise) => promise.catch(() => 0)));
      if (failure !== null) throw failure;
    };
    for await (const piece of rechunk(source, this.options.chunkSizeBytes)) await send(piece);
    await Promise.all([...inFlight].map((promise) => promise.catch(() => 0)));
    if (failure !== null) throw failure;
    await options.beforeCommit?.();
    const version = await this.propose(
      { type: 'commitFile', key, chunks: hashes, sizeBytes, modeBits: options.modeBits, modifiedMilliseconds: options.modifiedMilliseconds },
      context,
    );
    return { version, sizeBytes };
  }

  private async readBarrier(consistency: ReadConsistency, context: CallContext): Promise<void> {
    if (consistency === 'local') return;
    const reply = await this.ask({ type: 'readIndex', requestId: this.nextRequestId() }, context);
    if (reply.type !== 'readState') throw unexpected(reply);
    await this.waitApplied(reply.index, context);
  }

  private waitApplied(index: number, context: CallContext): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    const timeout = this.timeoutMilliseconds(context);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.appliedWaiters = this.appliedWaiters.filter((waiter) => waiter !== entry);
        reject(new DfsError('Timeout', `this node has not applied index ${index} within ${timeout} ms`));
      }, timeout);
      const entry = {
        index,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.appliedWaiters.push(entry);
    });
  }

  private async changeMembership(change: ConfChange, context: CallContext): Promise<void> {
    const reply = await this.ask({ type: 'confChange', requestId: this.nextRequestId(), change }, context);
    if (reply.type !== 'confChanged') throw unexpected(reply);
  }
}

/** Re-cuts a stream of buffers into pieces of exactly `size` bytes (the last one shorter). */
export async function* rechunk(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.byteLength) {
      const take = Math.min(size - pendingBytes, piece.byteLength - offset);
      pending.push(piece.subarray(offset, offset + take));
      pendingBytes += take;
      offset += take;
      if (pendingBytes === size) {
        yield concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield concat(pending, pendingBytes);
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return parts[0].slice();
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

const nodeIdPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
const nodeIdRule = 'must be 1 to 64 letters, digits, ".", "_" or "-", not starting with "." or "-"';

function watchEnded(): DfsError {
  return new DfsError('Unavailable', 'this node is shutting down: resume the watch on another node from the version after the last one received', { retryAfterMilliseconds: 1000 });
}

function notFound(key: string): DfsError {
  return new DfsError('KeyNotFound', `no file has the key ${JSON.stringify(key)}`);
}

function unexpected(reply: RaftReply): DfsError {
  return new DfsError('Internal', `unexpected reply ${reply.type} from the Raft actor`);
}

/** Failures that pass once a leader is known again carry a retry hint; the others do not. */
const retryableCodes: ReadonlySet<string> = new Set(['NoLeader', 'NotLeader', 'Unavailable']);

function raftFailure(reply: Extract<RaftReply, { type: 'failed' }>): DfsError {
  const retry = retryableCodes.has(reply.code) ? { retryAfterMilliseconds: 200 } : {};
  return new DfsError(reply.code, reply.message, { ...retry, ...(reply.leader === null ? {} : { leader: reply.leader }) });
}

function toApiStatus(status: NodeStatus): ApiNodeStatus {
  return {
    nodeId: status.id,
    role: status.role,
    term: status.term,
    leaderId: status.leader ?? '',
    leaderAddress: status.leaderAddress ?? '',
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    snapshotIndex: Math.max(0, status.firstIndex - 1),
    members: status.members.map((member) => ({
      id: member.id,
      address: member.address,
      // Only the leader knows the others follow it; elsewhere their roles are not known.
      role: member.id === status.id ? status.role : member.id === status.leader ? 'leader' : status.role === 'leader' ? 'follower' : 'unknown',
      suffrage: member.voter ? 'voter' : 'learner',
      progressKnown: member.matchIndex >= 0,
      matchIndex: Math.max(0, member.matchIndex),
      lagEntries: Math.max(0, member.lagEntries),
    })),
  };
}
