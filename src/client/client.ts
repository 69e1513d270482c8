// A typed client of dfs.FileService, for dfsctl, the tests and the benchmarks. It speaks the
// same proto the server loads (src/api/proto.ts) and turns gRPC failures into DfsClientError
// with the status name, so callers switch on `code` instead of parsing messages.

import { credentials, loadPackageDefinition, Metadata, status as grpcStatus, type Client, type ClientReadableStream, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { findDfsProtoPath, handlerLoadOptions } from '../api/proto.js';

export type Consistency = 'LINEARIZABLE' | 'LOCAL';

export interface FileInfo {
  readonly key: string;
  readonly sizeBytes: number;
  readonly version: number;
  readonly modifiedUnixMilliseconds: number;
  readonly mode: number;
}

/** What a change did to a key (proto enum ChangeType). */
export type ChangeType = 'PUT' | 'DELETE' | 'MAKE_FOLDER' | 'REMOVE_FOLDER';

/** One change of one key, as Watch streams it. */
export interface WatchEvent {
  /** The version (log index) of the command that made the change. */
  readonly version: number;
  readonly type: ChangeType;
  /** The key changed; a folder's key for folder events. */
  readonly key: string;
  /** For PUT the file, for MAKE_FOLDER the folder (size 0); undefined otherwise. */
  readonly info?: FileInfo;
  /**
   * More events of this version follow. Resume with fromVersion = the version of the last event
   * received without it, plus one.
   */
  readonly moreInVersion: boolean;
}

export interface WatchOptions {
  /** The first version to receive; 0 or undefined means from now. */
  readonly fromVersion?: number;
  /** Aborting ends the iteration quietly (and cancels the call). */
  readonly signal?: AbortSignal;
}

export interface ClusterMember {
  readonly id: string;
  readonly address: string;
  readonly role: string;
  readonly suffrage: string;
  readonly progressKnown: boolean;
  readonly matchIndex: number;
  readonly lagEntries: number;
}

export interface ClusterStatus {
  readonly nodeId: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string;
  readonly leaderAddress: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /**
   * The last index in the node's snapshot: its Raft log holds the entries after it. Always set by
   * this client (0 before any compaction); optional only so that hand-made statuses need not say.
   */
  readonly snapshotIndex?: number;
  readonly members: readonly ClusterMember[];
}

export class DfsClientError extends Error {
  override readonly name = 'DfsClientError';
  constructor(
    /** The gRPC status name, e.g. 'NOT_FOUND', 'UNAVAILABLE'. */
    readonly code: string,
    message: string,
    readonly details: { readonly retryAfterMilliseconds?: number } = {},
  ) {
    super(message);
  }
}

export interface CallOptions {
  /** Milliseconds from now; the default is the client's. */
  readonly timeoutMilliseconds?: number;
}

type Callback<T> = (error: ServiceError | null, value?: T) => void;
type UnaryMethod = (request: unknown, metadata: Metadata, options: { deadline: Date }, callback: Callback<unknown>) => void;

interface FileServiceClient extends Client {
  [method: string]: unknown;
}

const statusNames = new Map<number, string>(Object.entries(grpcStatus).filter(([, value]) => typeof value === 'number').map(([name, value]) => [value as number, name]));

function toClientError(error: ServiceError): DfsClientError {
  const pushback = error.metadata?.get('grpc-retry-pushback-ms')[0];
  const retry = typeof pushback === 'string' && /^\d+$/.test(pushback) ? { retryAfterMilliseconds: Number(pushback) } : {};
  return new DfsClientError(statusNames.get(error.code) ?? `STATUS_${error.code}`, error.details || error.message, retry);
}

let serviceConstructor: (new (address: string, channelCredentials: ReturnType<typeof credentials.createInsecure>, options: object) => FileServiceClient) | null = null;

function fileServiceConstructor(): NonNullable<typeof serviceConstructor> {
  if (serviceConstructor === null) {
    const loaded = loadPackageDefinition(loadSync(findDfsProtoPath(), handlerLoadOptions)) as Record<string, Record<string, unknown>>;
    serviceConstructor = loaded['dfs']?.['FileService'] as NonNullable<typeof serviceConstructor>;
  }
  return serviceConstructor;
}

export class DfsClient {
  private readonly client: FileServiceClient;

  constructor(
    readonly address: string,
    private readonly defaultTimeoutMilliseconds = 15_000,
    maxMessageBytes = 64 * 1024 * 1024 + 1024 * 1024,
  ) {
    const Constructor = fileServiceConstructor();
    this.client = new Constructor(address, credentials.createInsecure(), {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
    });
  }

  close(): void {
    this.client.close();
  }

  async put(key: string, data: Uint8Array, options: CallOptions & { mode?: number } = {}): Promise<{ version: number; sizeBytes: number }> {
    return this.unary('put', { key, data, mode: options.mode ?? 0 }, options);
  }

  async get(key: string, options: CallOptions & { consistency?: Consistency } = {}): Promise<Uint8Array> {
    const response = await this.unary<{ data: Uint8Array }>('get', { key, consistency: options.consistency ?? 'LINEARIZABLE' }, options);
    return response.data;
  }

  async getWithInfo(key: string, options: CallOptions & { consistency?: Consistency } = {}): Promise<{ data: Uint8Array; info: FileInfo }> {
    return this.unary('get', { key, consistency: options.consistency ?? 'LINEARIZABLE', includeInfo: true }, options);
  }

  async delete(key: string, options: CallOptions = {}): Promise<{ version: number }> {
    return this.unary('delete', { key }, options);
  }

  async list(prefix: string, options: CallOptions & { pageSize?: number; pageToken?: string; consistency?: Consistency } = {}): Promise<{ entries: FileInfo[]; nextPageToken: string }> {
    return this.unary('list', { prefix, pageSize: options.pageSize ?? 0, pageToken: options.pageToken ?? '', consistency: options.consistency ?? 'LINEARIZABLE' }, options);
  }

  /** Every key under `prefix`, page by page. */
  async *listAll(prefix: string, options: CallOptions & { pageSize?: number } = {}): AsyncGenerator<FileInfo> {
    let pageToken = '';
    do {
      const page = await this.list(prefix, { ...options, pageToken });
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  async stat(key: string, options: CallOptions & { consistency?: Consistency } = {}): Promise<FileInfo> {
    return this.unary('stat', { key, consistency: options.consistency ?? 'LINEARIZABLE' }, options);
  }

  async status(options: CallOptions = {}): Promise<ClusterStatus> {
    return this.unary('status', {}, options);
  }

  async addPeer(id: string, address: string, options: CallOptions = {}): Promise<void> {
    await this.unary('addPeer', { id, address }, options);
  }

  async removePeer(id: string, options: CallOptions = {}): Promise<void> {
    await this.unary('removePeer', { id }, options);
  }

  /**
   * Hands leadership to the voter `to` (undefined or '': the one furthest along); resolves with the
   * new leader's id once it has taken over. Call it on the leader (UNAVAILABLE elsewhere, naming it).
   */
  async transferLeadership(to?: string, options: CallOptions = {}): Promise<{ leaderId: string }> {
    return this.unary('transferLeader', { to: to ?? '' }, options);
  }

  /** Compacts the node's Raft log into a snapshot now; the snapshot's last index and size. */
  async snapshot(options: CallOptions = {}): Promise<{ index: number; sizeBytes: number }> {
    return this.unary('snapshot', {}, options);
  }

  /** Streams `chunks` into `key`; the file appears whole when the stream ends. */
  async putStream(key: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: CallOptions & { mode?: number } = {}): Promise<{ version: number; sizeBytes: number }> {
    const method = this.client['putStream'] as (metadata: Metadata, options: { deadline: Date }, callback: Callback<unknown>) => ClientWritableStream<unknown>;
    let settle!: { resolve: (value: { version: number; sizeBytes: number }) => void; reject: (error: Error) => void };
    const result = new Promise<{ version: number; sizeBytes: number }>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const call = method.call(this.client, new Metadata(), { deadline: this.deadline(options, 600_000) }, (error, value) => {
      if (error !== null) settle.reject(toClientError(error));
      else settle.resolve(value as { version: number; sizeBytes: number });
    });
    // The server may answer (refuse) before the upload ends: then no write may wait for a 'drain'
    // that never comes, and the answer must not go unhandled while chunks are still being read.
    let answered: Error | null = null;
    let waiting: { resolve: () => void; reject: (error: Error) => void } | null = null;
    result.then(
      () => waiting?.resolve(),
      (error: Error) => {
        answered = error;
        waiting?.reject(error);
      },
    );
    const write = (message: unknown): Promise<void> =>
      new Promise((resolve, reject) => {
        if (answered !== null) {
          reject(answered);
          return;
        }
        if (call.write(message)) {
          resolve();
          return;
        }
        const entry = { resolve, reject };
        waiting = entry;
        call.once('drain', () => {
          if (waiting === entry) waiting = null;
          resolve();
        });
      });
    try {
      await write({ header: { key, mode: options.mode ?? 0 } });
      for await (const chunk of chunks) await write({ chunk });
      call.end();
    } catch (error) {
      call.cancel();
      // The server's own reason beats the cancellation's.
      if (answered !== null) throw answered;
      throw error;
    }
    return result;
  }

  /** Reads `key` as a stream of chunks; the first yielded value is the file's metadata. */
  async *getStream(key: string, options: CallOptions & { consistency?: Consistency; chunkSizeBytes?: number } = {}): AsyncGenerator<Uint8Array, FileInfo | null> {
    const method = this.client['getStream'] as (request: unknown, metadata: Metadata, options: { deadline: Date }) => ClientReadableStream<{ info?: FileInfo; chunk?: Uint8Array }>;
    const call = method.call(this.client, { key, consistency: options.consistency ?? 'LINEARIZABLE', chunkSizeBytes: options.chunkSizeBytes ?? 0 }, new Metadata(), {
      deadline: this.deadline(options, 600_000),
    });
    let info: FileInfo | null = null;
    try {
      for await (const message of call as AsyncIterable<{ info?: FileInfo | null; chunk?: Uint8Array | null }>) {
        if (message.info !== undefined && message.info !== null) info = message.info;
        else if (message.chunk !== undefined && message.chunk !== null) yield message.chunk;
      }
    } catch (error) {
      throw isServiceError(error) ? toClientError(error) : error;
    } finally {
      call.cancel();
    }
    return info;
  }

  /**
   * Every change under `prefix` in commit order, until `options.signal` aborts or the caller stops
   * iterating (both cancel the call). Throws DfsClientError: FAILED_PRECONDITION when fromVersion
   * was compacted away (the message names the oldest version still available), UNAVAILABLE when
   * the node stops, INVALID_ARGUMENT for a bad prefix. No deadline: a watch runs until cancelled.
   */
  async *watch(prefix: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent> {
    const method = this.client['watch'] as (request: unknown, metadata: Metadata, options: object) => ClientReadableStream<WatchEventMessage>;
    const signal = options.signal;
    if (signal?.aborted === true) return;
    const call = method.call(this.client, { prefix, fromVersion: options.fromVersion ?? 0 }, new Metadata(), {});
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const message of call as AsyncIterable<WatchEventMessage>) {
        yield {
          version: message.version,
          type: message.type as ChangeType,
          key: message.key,
          ...(message.info === null || message.info === undefined ? {} : { info: message.info }),
          moreInVersion: message.moreInVersion,
        };
      }
    } catch (error) {
      // Read again: the signal may have been aborted since the check before the call.
      const aborted = (signal as AbortSignal | undefined)?.aborted === true;
      if (aborted && isServiceError(error) && error.code === grpcStatus.CANCELLED) return;
      throw isServiceError(error) ? toClientError(error) : error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  private deadline(options: CallOptions, fallbackMilliseconds = this.defaultTimeoutMilliseconds): Date {
    return new Date(Date.now() + (options.timeoutMilliseconds ?? fallbackMilliseconds));
  }

  private unary<T>(name: string, request: unknown, options: CallOptions): Promise<T> {
    const method = this.client[name] as UnaryMethod;
    return new Promise<T>((resolve, reject) => {
      method.call(this.client, request, new Metadata(), { deadline: this.deadline(options) }, (error, value) => {
        if (error !== null) reject(toClientError(error));
        else resolve(value as T);
      });
    });
  }
}

interface WatchEventMessage {
  version: number;
  type: string;
  key: string;
  info?: FileInfo | null;
  moreInVersion: boolean;
}

function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === 'number';
}
