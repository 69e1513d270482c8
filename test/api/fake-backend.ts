// An in-memory FileBackend for the gRPC layer's tests: it keeps files in a Map, numbers versions
// like a log index, and lets a test script what the cluster would do (fail the next call of a
// method with a given DfsError, hold a call until the test releases it, report a given status).
// It checks keys by DESIGN.md's rules with a short local copy, since the real rules live in the
// store and the gRPC layer must not depend on them. Every call is recorded (the last 1000) so
// that a test can see exactly what a handler passed on.

import { DfsError } from '../../src/errors.js';
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
  MemberStatus,
  NodeStatus,
  PutRequest,
  PutResult,
  PutStreamHeader,
  SnapshotInfo,
  StatRequest,
  WatchEvent,
  WatchRequest,
} from '../../src/api/backend.js';

export type BackendMethod = keyof FileBackend;

export interface RecordedCall {
  readonly method: BackendMethod;
  /** The request as the handler passed it (for putStream: the header). */
  readonly request: unknown;
  readonly context: CallContext;
}

/** A call held by `holdNext`: the test sees it arrive and decides when it may go on. */
export interface HeldCall {
  /** Resolves with the call's context once the call has arrived. */
  readonly arrived: Promise<CallContext>;
  /** Lets the call go on. */
  release(): void;
}

const maximumRecordedCalls = 1000;
const defaultMode = 0o644;

export class FakeBackend implements FileBackend {
  /** Largest value putStream accepts, like the store's file size limit. */
  maximumFileSizeBytes = 64 * 1024 * 1024;
  /** Milliseconds since the epoch stamped on writes; fixed so that answers are predictable. */
  clockUnixMilliseconds = 1_700_000_000_000;
  /** What status() reports; members change with addPeer/removePeer. */
  nodeStatus: NodeStatus = {
    nodeId: 'node1',
    role: 'leader',
    term: 3,
    leaderId: 'node1',
    leaderAddress: '127.0.0.1:12000',
    commitIndex: 0,
    appliedIndex: 0,
    snapshotIndex: 0,
    members: [
      { id: 'node1', address: '127.0.0.1:12000', role: 'leader', suffrage: 'voter', progressKnown: true, matchIndex: 0, lagEntries: 0 },
    ],
  };
  readonly calls: RecordedCall[] = [];
  /** How many chunks getStream streams have produced so far, over all streams. */
  producedChunks = 0;
  /** How many getStream iterators were closed before their end (the client went away). */
  abandonedStreams = 0;
  /** Chunks putStream has pulled so far, over all streams. */
  pulledChunks = 0;
  /** The change log watch() replays (a test fills it); after it, a watch waits for its cancel. */
  watchEvents: WatchEvent[] = [];
  /** Watch streams whose iterator has ended (cancelled or finished). */
  endedWatches = 0;

  private readonly files = new Map<string, { data: Buffer; info: FileInfo }>();
  private lastVersion = 0;
  private readonly failures = new Map<BackendMethod, unknown>();
  private readonly holds = new Map<BackendMethod, { arrived: (context: CallContext) => void; released: Promise<void> }>();
  private pullGate: Promise<void> | undefined;

  /** Makes the next call of `method` throw `error` (after recording it). */
  failNext(method: BackendMethod, error: unknown): void {
    this.failures.set(method, error);
  }

  /**
   * Holds the next call of `method` until released or until its signal aborts (then it rejects
   * with the signal's reason, as a real backend gives up on a cancelled call).
   */
  holdNext(method: BackendMethod): HeldCall {
    let arrived!: (context: CallContext) => void;
    const arrivedPromise = new Promise<CallContext>((resolve) => { arrived = resolve; });
    let release!: () => void;
    const released = new Promise<void>((resolve) => { release = resolve; });
    this.holds.set(method, { arrived, released });
    return { arrived: arrivedPromise, release };
  }

  /** While set, putStream pulls no further chunk until the promise resolves (backpressure tests). */
  pausePulling(until: Promise<void> | undefined): void {
    this.pullGate = until;
  }

  /** Stores a file directly, bypassing gRPC (test setup). */
  seed(key: string, data: Uint8Array, mode = defaultMode): FileInfo {
    return this.store(key, Buffer.from(data), mode).info;
  }

  /** The stored bytes of a key, or undefined. */
  content(key: string): Buffer | undefined {
    return this.files.get(key)?.data;
  }

  lastCall(method: BackendMethod): RecordedCall | undefined {
    return this.calls.filter((call) => call.method === method).at(-1);
  }

  async put(request: PutRequest, context: CallContext): Promise<PutResult> {
    await this.enter('put', request, context);
    checkKey(request.key);
    const stored = this.store(request.key, Buffer.from(request.data), request.mode);
    return { version: stored.info.version, sizeBytes: stored.info.sizeBytes };
  }

  async putStream(header: PutStreamHeader, chunks: AsyncIterable<Uint8Array>, context: CallContext): Promise<PutResult> {
    await this.enter('putStream', header, context);
    checkKey(header.key);
    const pieces: Buffer[] = [];
    let sizeBytes = 0;
    for await (const chunk of chunks) {
      this.pulledChunks += 1;
      sizeBytes += chunk.byteLength;
      if (sizeBytes > this.maximumFileSizeBytes) {
        throw new DfsError('TooLarge', `value exceeds the ${this.maximumFileSizeBytes}-byte file size limit`);
      }
      pieces.push(Buffer.from(chunk));
      if (this.pullGate !== undefined) await this.pullGate;
    }
    const stored = this.store(header.key, Buffer.concat(pieces), header.mode);
    return { version: stored.info.version, sizeBytes: stored.info.sizeBytes };
  }

  async get(request: GetRequest, context: CallContext): Promise<GetResult> {
    await this.enter('get', request, context);
    const file = this.find(request.key);
    if (file.info.sizeBytes > request.maximumSizeBytes) {
      throw new DfsError('TooLarge', `${request.key} is ${file.info.sizeBytes} bytes, more than ${request.maximumSizeBytes}; use GetStream`);
    }
    return { data: file.data, info: file.info };
  }

  async getStream(request: GetStreamRequest, context: CallContext): Promise<FileStream> {
    await this.enter('getStream', request, context);
    const file = this.find(request.key);
    return { info: file.info, chunks: this.chunksOf(file.data, request.chunkSizeBytes) };
  }

  async delete(key: string, context: CallContext): Promise<DeleteResult> {
    await this.enter('delete', key, context);
    this.find(key);
    this.files.delete(key);
    this.lastVersion += 1;
    return { version: this.lastVersion };
  }

  async list(request: ListRequest, context: CallContext): Promise<ListPage> {
    await this.enter('list', request, context);
    let after: Buffer | undefined;
    if (request.pageToken !== '') {
      after = Buffer.from(request.pageToken, 'base64url');
      if (after.length === 0 || after.toString('base64url') !== request.pageToken) {
        throw new DfsError('InvalidArgument', 'page_token is not one this server issued; pass next_page_token unchanged');
      }
    }
    const prefix = Buffer.from(request.prefix);
    const keys = [...this.files.keys()]
      .map((key) => Buffer.from(key))
      .filter((key) => key.subarray(0, prefix.length).equals(prefix))
      .filter((key) => after === undefined || Buffer.compare(key, after) > 0)
      .sort(Buffer.compare);
    const page = keys.slice(0, request.pageSize);
    const last = page.at(-1);
    return {
      entries: page.map((key) => this.find(key.toString()).info),
      nextPageToken: keys.length > page.length && last !== undefined ? last.toString('base64url') : '',
    };
  }

  async stat(request: StatRequest, context: CallContext): Promise<FileInfo> {
    await this.enter('stat', request, context);
    return this.find(request.key).info;
  }

  async status(context: CallContext): Promise<NodeStatus> {
    await this.enter('status', undefined, context);
    return { ...this.nodeStatus, commitIndex: this.lastVersion, appliedIndex: this.lastVersion };
  }

  async addPeer(request: AddPeerRequest, context: CallContext): Promise<void> {
    await this.enter('addPeer', request, context);
    if (request.id === '' || request.address === '') {
      throw new DfsError('InvalidArgument', 'AddPeer needs both an id and an address');
    }
    if (this.nodeStatus.members.some((member) => member.id === request.id)) {
      throw new DfsError('AlreadyExists', `${request.id} is already a member`);
    }
    const learner: MemberStatus = {
      id: request.id, address: request.address, role: 'follower', suffrage: 'learner',
      progressKnown: true, matchIndex: 0, lagEntries: this.lastVersion,
    };
    const members = [...this.nodeStatus.members, learner].sort((a, b) => a.id.localeCompare(b.id));
    this.nodeStatus = { ...this.nodeStatus, members };
  }

  async removePeer(id: string, context: CallContext): Promise<void> {
    await this.enter('removePeer', id, context);
    if (!this.nodeStatus.members.some((member) => member.id === id)) {
      throw new DfsError('FailedPrecondition', `${id} is not a member`);
    }
    this.nodeStatus = { ...this.nodeStatus, members: this.nodeStatus.members.filter((member) => member.id !== id) };
  }

  /** Records a call, then applies any scripted hold or failure for its method. */
  async *watch(request: WatchRequest, context: CallContext): AsyncGenerator<WatchEvent> {
    await this.enter('watch', request, context);
    try {
      for (const event of this.watchEvents) {
        if (event.version >= request.fromVersion && event.key.startsWith(request.prefix)) yield event;
      }
      await new Promise<void>((resolve) => {
        if (context.signal.aborted) resolve();
        else context.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      this.endedWatches++;
    }
  }

  /** What transferLeader and snapshot answer. */
  snapshotInfo: SnapshotInfo = { index: 0, sizeBytes: 0 };

  async transferLeader(to: string, context: CallContext): Promise<{ leaderId: string }> {
    await this.enter('transferLeader', to, context);
    const leaderId = to === '' ? (this.nodeStatus.members.find((member) => member.id !== this.nodeStatus.nodeId)?.id ?? this.nodeStatus.nodeId) : to;
    this.nodeStatus = { ...this.nodeStatus, leaderId };
    return { leaderId };
  }

  async snapshot(context: CallContext): Promise<SnapshotInfo> {
    await this.enter('snapshot', undefined, context);
    return this.snapshotInfo;
  }

  private async enter(method: BackendMethod, request: unknown, context: CallContext): Promise<void> {
    this.calls.push({ method, request, context });
    if (this.calls.length > maximumRecordedCalls) this.calls.shift();
    const hold = this.holds.get(method);
    if (hold !== undefined) {
      this.holds.delete(method);
      hold.arrived(context);
      await untilReleasedOrAborted(hold.released, context.signal);
    }
    const failure = this.failures.get(method);
    if (failure !== undefined) {
      this.failures.delete(method);
      throw failure;
    }
  }

  private find(key: string): { data: Buffer; info: FileInfo } {
    checkKey(key);
    const file = this.files.get(key);
    if (file === undefined) throw new DfsError('KeyNotFound', `no file with key ${JSON.stringify(key)}`);
    return file;
  }

  private store(key: string, data: Buffer, mode: number): { data: Buffer; info: FileInfo } {
    this.lastVersion += 1;
    const info: FileInfo = {
      key,
      sizeBytes: data.byteLength,
      version: this.lastVersion,
      modifiedUnixMilliseconds: this.clockUnixMilliseconds,
      mode: mode === 0 ? defaultMode : mode,
    };
    const file = { data, info };
    this.files.set(key, file);
    return file;
  }

  private async *chunksOf(data: Buffer, chunkSizeBytes: number): AsyncGenerator<Uint8Array> {
    let completed = false;
    try {
      for (let offset = 0; offset < data.byteLength; offset += chunkSizeBytes) {
        this.producedChunks += 1;
        yield data.subarray(offset, offset + chunkSizeBytes);
      }
      completed = true;
    } finally {
      if (!completed) this.abandonedStreams += 1;
    }
  }
}

function untilReleasedOrAborted(released: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void released.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

const maximumKeyBytes = 4096;
const maximumSegmentBytes = 255;

/** DESIGN.md's key rules, a short copy for the fake (the store owns the real ones). */
export function checkKey(key: string): void {
  const fail = (rule: string): never => {
    throw new DfsError('InvalidKey', `invalid key ${JSON.stringify(key.slice(0, 100))}: ${rule}`);
  };
  if (key === '') fail('a key must not be empty');
  if (key.includes('\0')) fail('a key must not contain NUL');
  if (Buffer.byteLength(key) > maximumKeyBytes) fail(`a key must be at most ${maximumKeyBytes} bytes`);
  if (key.startsWith('/')) fail('a key is a relative path and must not start with "/"');
  for (const segment of key.split('/')) {
    if (segment === '') fail('a key must not have empty segments ("//" or a trailing "/")');
    if (segment === '.' || segment === '..') fail('a key must not have "." or ".." segments');
    if (Buffer.byteLength(segment) > maximumSegmentBytes) fail(`each segment of a key must be at most ${maximumSegmentBytes} bytes`);
  }
}
