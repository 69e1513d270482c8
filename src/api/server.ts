// The gRPC server of one node: dfs.FileService, server reflection (v1 and v1alpha) and the
// standard health service, on one port.
//
// The handlers are thin on purpose: check what the .proto cannot express (enum values, ranges,
// the order of stream messages), call one FileBackend method, shape the answer, and turn any
// error into a status through the one table in status.ts. Around them this module keeps the
// promises a client relies on:
// - limits: one unary message is at most `maxMessageBytes` either way (grpc-js refuses a larger
//   request from its 5-byte length prefix, before buffering it), a Get never reads a value that
//   cannot be sent, stream chunks and the bytes buffered per stream are bounded, and so is the
//   number of calls in flight;
// - backpressure: GetStream writes the next chunk only when the client has taken enough of the
//   earlier ones (at most two chunks wait in this process), and PutStream reads the next message
//   only when the backend asks for it (grpc-js reads ahead at most 16 messages of a stream);
// - cancellation: a client that cancels, or whose deadline passes, aborts the backend call
//   through its AbortSignal;
// - graceful close: new calls are refused, calls in flight get a grace period to finish, and
//   those still running afterwards end with UNAVAILABLE (the client retries elsewhere).

import { once } from 'node:events';
import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from 'pino';
import { formatAddress, type Address } from '../config/address.js';
import { DfsError } from '../errors.js';
import type {
  CallContext,
  FileBackend,
  FileInfo,
  MemberRole,
  NodeStatus,
  PutResult,
  ReadConsistency,
  Suffrage,
  WatchEvent,
} from './backend.js';
import { fileServiceName, loadFileServiceDefinition, loadReflectionDefinition } from './proto.js';
import { toCallStatus, truncateDetails, type CallStatus } from './status.js';

const mebibyte = 1024 * 1024;

/** The unary message limit when the caller sets none (DESIGN.md, issue 3: 64 MiB). */
export const defaultMaxMessageBytes = 64 * mebibyte;
/** Room left in a Get response for its fields besides the data (info with a 4096-byte key). */
export const responseOverheadBytes = 16 * 1024;
/** List page size when the request says 0, and the most one page may hold. */
export const defaultPageSize = 1000;
export const maximumPageSize = 10_000;
/** GetStream chunk size when the request says 0, and the largest chunk ever sent. 4 MiB is the
 * default receive limit of grpc-js, grpc-go and grpcurl clients, so no chunk trips it. */
export const defaultChunkSizeBytes = mebibyte;
export const maximumChunkSizeBytes = 4 * mebibyte;
/** Calls handled at once; beyond this a call gets RESOURCE_EXHAUSTED with a retry hint. */
export const defaultMaximumConcurrentCalls = 1024;
/** Watch events written but not yet handed to HTTP/2; past this the stream stops reading its log. */
export const watchBufferedBytes = 256 * 1024;
/** How long close() lets calls in flight finish before ending them with UNAVAILABLE. */
export const defaultGraceMilliseconds = 10_000;
/** After the grace period, how long ended calls get to deliver their status before the
 * connections are cut. */
const forceShutdownDelayMilliseconds = 500;
/** The largest permission bits a file may carry (setuid, setgid, sticky and rwx for all). */
const maximumMode = 0o7777;

export interface GrpcServerOptions {
  /** Where to listen, `[host]:port`; an empty host means every IPv4 interface, port 0 any free port. */
  readonly address: string;
  readonly backend: FileBackend;
  readonly logger: Logger;
  /** The largest unary message, request or response; default 64 MiB. */
  readonly maxMessageBytes?: number;
  /** The health service's first state; default true (SERVING). */
  readonly serving?: boolean;
  /** Calls handled at once; default 1024. */
  readonly maximumConcurrentCalls?: number;
  /** Told of every dfs.FileService call's end (refused ones included), for the node's metrics. */
  readonly onCallEnd?: (method: string, code: GrpcStatus, seconds: number) => void;
}

export interface CloseOptions {
  /** How long calls in flight may take to finish; default 10 s. */
  readonly graceMilliseconds?: number;
}

export interface GrpcServer {
  /** The address listened on, with the port the system chose when 0 was asked for. */
  readonly address: string;
  readonly port: number;
  /** Sets the health service's state (overall and for dfs.FileService), e.g. NOT_SERVING while
   * the node has no leader. */
  setServing(serving: boolean): void;
  /** dfs.FileService calls being handled now (a long PutStream counts until it ends). */
  callsInFlight(): number;
  /** Stops accepting calls and resolves once every connection is closed; see CloseOptions. */
  close(options?: CloseOptions): Promise<void>;
}

/** Thrown (as a rejection) by startGrpcServer when it cannot listen. */
export class GrpcServerStartError extends Error {
  override readonly name = 'GrpcServerStartError';
  constructor(
    readonly address: string,
    readonly reason: 'addressInUse' | 'addressNotAvailable' | 'accessDenied' | 'invalidAddress' | 'other',
    message: string,
  ) {
    super(message);
  }
}

// Messages as the handlers see them (proto.ts handlerLoadOptions: camelCase, defaults filled in,
// enums as names, 64-bit integers as numbers, bytes as Buffers, oneofs named by `message`).
// Enums arrive as a number when the client sent a value the .proto does not name.
type ConsistencyName = 'LINEARIZABLE' | 'LOCAL' | number;
interface PutRequestMessage { key: string; data: Buffer; mode: number }
interface GetRequestMessage { key: string; consistency: ConsistencyName; includeInfo: boolean }
interface KeyRequestMessage { key: string }
interface StatRequestMessage { key: string; consistency: ConsistencyName }
interface ListRequestMessage { prefix: string; pageSize: number; pageToken: string; consistency: ConsistencyName }
interface AddPeerRequestMessage { id: string; address: string }
interface RemovePeerRequestMessage { id: string }
interface TransferLeaderRequestMessage { to: string }
interface PutStreamRequestMessage {
  message?: 'header' | 'chunk';
  header: { key: string; mode: number } | null;
  chunk: Buffer;
}
interface GetStreamRequestMessage { key: string; consistency: ConsistencyName; chunkSizeBytes: number }
type GetStreamResponseMessage = { info: FileInfo } | { chunk: Uint8Array };
interface WatchRequestMessage { prefix: string; fromVersion: number }
interface WatchEventMessage { version: number; type: string; key: string; info?: FileInfo; moreInVersion: boolean }

/** One call the server is handling: what close() and a cancelling client need to reach it. */
interface ActiveCall {
  readonly method: string;
  readonly controller: AbortController;
  readonly context: CallContext;
  /** Ends the call now with this status, whatever its handler is waiting for. Idempotent. */
  finish(status: CallStatus): void;
}

/** Starts listening; rejects with GrpcServerStartError when the address cannot be used. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 2 * responseOverheadBytes) {
    throw new Error(`maxMessageBytes must be an integer of at least ${2 * responseOverheadBytes}, got ${maxMessageBytes}`);
  }
  const maximumConcurrentCalls = options.maximumConcurrentCalls ?? defaultMaximumConcurrentCalls;
  if (!Number.isSafeInteger(maximumConcurrentCalls) || maximumConcurrentCalls < 1) {
    throw new Error(`maximumConcurrentCalls must be a positive integer, got ${maximumConcurrentCalls}`);
  }
  const logger = options.logger.child({ component: 'grpc' });
  const backend = options.backend;

  const bindAddress = readBindAddress(options.address);

  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    // Per connection; the server-wide bound is maximumConcurrentCalls.
    'grpc.max_concurrent_streams': maximumConcurrentCalls,
    // Ping idle connections so that a vanished client's streams are cancelled within about a
    // minute instead of holding their resources until TCP gives up.
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
  });

  const activeCalls = new Set<ActiveCall>();
  let closing = false;

  /** Registers a call, or answers it at once when the server is closing or full. */
  function begin(
    method: string,
    call: { getDeadline(): Date | number; on(event: 'cancelled', listener: () => void): unknown },
    finishCall: (status: CallStatus) => void,
  ): ActiveCall | undefined {
    const startedAt = performance.now();
    const ended = (status: CallStatus): void => {
      options.onCallEnd?.(method, status.code, (performance.now() - startedAt) / 1000);
    };
    if (closing) {
      const refused = toCallStatus(shuttingDownError(), logger, { method });
      ended(refused);
      finishCall(refused);
      return undefined;
    }
    if (activeCalls.size >= maximumConcurrentCalls) {
      const busy = new DfsError('ResourceExhausted',
        `server busy: ${activeCalls.size} calls in flight, the limit is ${maximumConcurrentCalls}`);
      const refused = toCallStatus(busy, logger, { method });
      ended(refused);
      finishCall(refused);
      return undefined;
    }
    const controller = new AbortController();
    const deadline = call.getDeadline();
    const deadlineUnixMilliseconds = deadline instanceof Date ? deadline.getTime() : deadline;
    let finished = false;
    const active: ActiveCall = {
      method,
      controller,
      context: { signal: controller.signal, deadlineUnixMilliseconds },
      finish(status) {
        if (finished) return;
        finished = true;
        activeCalls.delete(active);
        ended(status);
        // A call that ends without success stops any backend work still running for it (close()
        // ran out of grace, the client left); after a backend error this changes nothing.
        if (status.code !== GrpcStatus.OK && !controller.signal.aborted) {
          controller.abort(new DfsError('Unavailable', `call ended early: ${status.details}`));
        }
        finishCall(status);
      },
    };
    activeCalls.add(active);
    // grpc-js emits 'cancelled' when the client cancels, when its deadline passes (grpc-js has
    // then sent DEADLINE_EXCEEDED itself), and also after every status it sends, so a call that
    // already finished ignores it.
    call.on('cancelled', () => {
      active.finish({ code: GrpcStatus.CANCELLED, details: 'cancelled by the client or its deadline', metadata: new Metadata() });
    });
    return active;
  }

  /** The status for an error a handler caught; quiet when the call was over anyway. */
  function statusOf(error: unknown, active: ActiveCall): CallStatus {
    if (active.controller.signal.aborted) {
      // The client is gone or close() ended the call: the error is the backend giving up, and
      // the status will not reach anyone (ActiveCall.finish already ran).
      logger.debug({ method: active.method, err: error }, 'call ended after it was aborted');
      return { code: GrpcStatus.CANCELLED, details: 'cancelled', metadata: new Metadata() };
    }
    return toCallStatus(error, logger, { method: active.method });
  }

  /** Wraps a unary handler: registration, cancellation, error mapping, one answer only. */
  function unary<Request, Response>(
    method: string,
    handle: (request: Request, context: CallContext) => Promise<Response>,
  ) {
    return (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
      const answer = answerOnce(callback);
      const active = begin(method, call, (status) => {
        if (status.code !== GrpcStatus.OK) answer(status);
      });
      if (active === undefined) return;
      handle(call.request, active.context).then(
        (response) => {
          answer(null, response);
          active.finish({ code: GrpcStatus.OK, details: 'OK', metadata: new Metadata() });
        },
        (error: unknown) => active.finish(statusOf(error, active)),
      );
    };
  }

  const handlers = {
    Put: unary<PutRequestMessage, unknown>('Put', async (request, context) => {
      const result = await backend.put({ key: request.key, data: request.data, mode: checkMode(request.mode) }, context);
      return putResponse(result);
    }),

    Get: unary<GetRequestMessage, unknown>('Get', async (request, context) => {
      const consistency = checkConsistency(request.consistency);
      const maximumSizeBytes = maxMessageBytes - responseOverheadBytes;
      const result = await backend.get({ key: request.key, consistency, maximumSizeBytes }, context);
      if (result.data.byteLength > maximumSizeBytes) {
        // The backend should have refused; checked again because grpc-js would otherwise fail
        // the call with a message about the server's send limit that the user cannot act on.
        throw tooLargeForGet(request.key, result.data.byteLength, maximumSizeBytes);
      }
      // Leaving `info` out keeps the JSON answer `{"data": "..."}` (the seed's contract).
      return request.includeInfo ? { data: result.data, info: result.info } : { data: result.data };
    }),

    Delete: unary<KeyRequestMessage, unknown>('Delete', async (request, context) => {
      const result = await backend.delete(request.key, context);
      return { version: result.version };
    }),

    List: unary<ListRequestMessage, unknown>('List', async (request, context) => {
      const page = await backend.list({
        prefix: request.prefix,
        pageSize: request.pageSize === 0 ? defaultPageSize : Math.min(request.pageSize, maximumPageSize),
        pageToken: request.pageToken,
        consistency: checkConsistency(request.consistency),
      }, context);
      return { entries: page.entries, nextPageToken: page.nextPageToken };
    }),

    Stat: unary<StatRequestMessage, unknown>('Stat', async (request, context) => {
      return backend.stat({ key: request.key, consistency: checkConsistency(request.consistency) }, context);
    }),

    Status: unary<Record<string, never>, unknown>('Status', async (_request, context) => {
      return statusResponse(await backend.status(context));
    }),

    AddPeer: unary<AddPeerRequestMessage, unknown>('AddPeer', async (request, context) => {
      await backend.addPeer({ id: request.id, address: request.address }, context);
      return {};
    }),

    RemovePeer: unary<RemovePeerRequestMessage, unknown>('RemovePeer', async (request, context) => {
      await backend.removePeer(request.id, context);
      return {};
    }),

    TransferLeader: unary<TransferLeaderRequestMessage, unknown>('TransferLeader', async (request, context) => {
      const result = await backend.transferLeader(request.to, context);
      return { leaderId: result.leaderId };
    }),

    Snapshot: unary<Record<string, never>, unknown>('Snapshot', async (_request, context) => {
      const result = await backend.snapshot(context);
      return { index: result.index, sizeBytes: result.sizeBytes };
    }),

    PutStream: (call: ServerReadableStream<PutStreamRequestMessage, unknown>, callback: sendUnaryData<unknown>): void => {
      const answer = answerOnce(callback);
      const active = begin('PutStream', call, (status) => {
        if (status.code !== GrpcStatus.OK) answer(status);
      });
      if (active === undefined) return;
      const reader = new PutStreamReader(call, active.controller.signal);
      handlePutStream(reader, active.context).then(
        (result) => {
          answer(null, putResponse(result));
          active.finish({ code: GrpcStatus.OK, details: 'OK', metadata: new Metadata() });
        },
        // A malformed stream is the client's mistake, whatever the backend made of it.
        (error: unknown) => active.finish(statusOf(reader.protocolError ?? error, active)),
      );
    },

    GetStream: (call: ServerWritableStream<GetStreamRequestMessage, GetStreamResponseMessage>): void => {
      const active = begin('GetStream', call, (status) => {
        // grpc-js turns an 'error' event into the call's status once queued messages are out.
        if (status.code !== GrpcStatus.OK) call.emit('error', status);
      });
      if (active === undefined) return;
      handleGetStream(call, active).then(
        () => active.finish({ code: GrpcStatus.OK, details: 'OK', metadata: new Metadata() }),
        (error: unknown) => active.finish(statusOf(error, active)),
      );
    },

    Watch: (call: ServerWritableStream<WatchRequestMessage, WatchEventMessage>): void => {
      const active = begin('Watch', call, (status) => {
        if (status.code !== GrpcStatus.OK) call.emit('error', status);
      });
      if (active === undefined) return;
      handleWatch(call, active).then(
        () => active.finish({ code: GrpcStatus.OK, details: 'OK', metadata: new Metadata() }),
        (error: unknown) => active.finish(statusOf(error, active)),
      );
    },
  };

  /** Pulls one event at a time and writes it; a client that does not read holds the pulling. */
  async function handleWatch(call: ServerWritableStream<WatchRequestMessage, WatchEventMessage>, active: ActiveCall): Promise<void> {
    const signal = active.controller.signal;
    const events = backend.watch({ prefix: call.request.prefix, fromVersion: call.request.fromVersion }, active.context);
    const iterator = events[Symbol.asyncIterator]();
    const writer = new BoundedWriter<WatchEventMessage>(call, signal, watchBufferedBytes);
    try {
      for (;;) {
        const next = await abortable(iterator.next(), signal);
        if (next.done === true) break;
        await writer.write(watchEventMessage(next.value), next.value.key.length + 128);
      }
      await writer.flush();
    } finally {
      // Not awaited: a generator waiting for news finishes its step first, which the abort ends.
      iterator.return?.().catch((error: unknown) => logger.warn({ err: error }, 'closing a Watch backend iterator failed'));
    }
    call.end();
  }

  async function handlePutStream(reader: PutStreamReader, context: CallContext): Promise<PutResult> {
    const header = await reader.readHeader();
    const result = await backend.putStream({ key: header.key, mode: checkMode(header.mode) }, reader.chunks(), context);
    if (!reader.finished) {
      // Storing a value without its tail would be silent data loss; a backend that stops early
      // has a bug, and the client must not be told its value was stored.
      throw new Error('the backend completed a PutStream without reading the stream to its end');
    }
    return result;
  }

  async function handleGetStream(
    call: ServerWritableStream<GetStreamRequestMessage, GetStreamResponseMessage>,
    active: ActiveCall,
  ): Promise<void> {
    const request = call.request;
    const requested = request.chunkSizeBytes === 0 ? defaultChunkSizeBytes : request.chunkSizeBytes;
    const chunkSizeBytes = Math.min(requested, maximumChunkSizeBytes, maxMessageBytes - responseOverheadBytes);
    const consistency = checkConsistency(request.consistency);
    const signal = active.controller.signal;
    const file = await backend.getStream({ key: request.key, consistency, chunkSizeBytes }, active.context);
    const writer = new BoundedWriter<GetStreamResponseMessage>(call, signal, 2 * chunkSizeBytes);
    const iterator = file.chunks[Symbol.asyncIterator]();
    try {
      await writer.write({ info: file.info }, 0);
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) break;
        // Cut chunks larger than promised: the client's receive limit is what the size protects.
        for (let offset = 0; offset < next.value.byteLength; offset += chunkSizeBytes) {
          const piece = next.value.subarray(offset, offset + chunkSizeBytes);
          await writer.write({ chunk: piece }, piece.byteLength);
        }
      }
      await writer.flush();
    } finally {
      // Stopping early (cancelled, failed) releases what the backend holds for the stream.
      if (signal.aborted || !writer.completed) {
        try {
          await iterator.return?.();
        } catch (error) {
          // The reason the stream stopped matters more than a failure to clean up after it.
          logger.warn({ err: error, key: request.key }, 'closing a GetStream backend iterator failed');
        }
      }
    }
    call.end();
  }

  // ------------------------------------------------------------------ health, reflection, bind

  const health = new HealthImplementation({});
  const setServing = (serving: boolean): void => {
    const status: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', status);
    health.setStatus(fileServiceName, status);
  };
  setServing(options.serving ?? true);

  server.addService(loadFileServiceDefinition(), handlers as unknown as UntypedServiceImplementation);
  health.addToServer(server);
  new ReflectionService(loadReflectionDefinition() as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);

  const formattedBindAddress = formatAddress(bindAddress);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(formattedBindAddress, ServerCredentials.createInsecure(), (error, boundPort) => {
      if (error === null) resolve(boundPort);
      else reject(startError(formattedBindAddress, error));
    });
  });
  const address = formatAddress({ host: bindAddress.host, port });
  logger.info({ address, maxMessageBytes }, 'gRPC server listening');

  let closed: Promise<void> | undefined;
  return {
    address,
    port,
    setServing,
    callsInFlight: () => activeCalls.size,
    close(closeOptions = {}) {
      closed ??= closeServer(closeOptions.graceMilliseconds ?? defaultGraceMilliseconds);
      return closed;
    },
  };

  async function closeServer(graceMilliseconds: number): Promise<void> {
    closing = true;
    setServing(false);
    logger.info({ address, callsInFlight: activeCalls.size, graceMilliseconds }, 'gRPC server closing');
    // A Watch never ends by itself: waiting out the grace period for it would only delay the stop.
    for (const active of [...activeCalls]) {
      if (active.method === 'Watch') active.finish(toCallStatus(watchShutdownError(), logger, { method: active.method }));
    }
    // tryShutdown stops listening and sends GOAWAY; connections close once their calls end.
    const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    const graceEnded = Symbol('grace ended');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<typeof graceEnded>((resolve) => {
      timer = setTimeout(() => resolve(graceEnded), graceMilliseconds);
    });
    const outcome = await Promise.race([drained, grace]);
    clearTimeout(timer);
    if (outcome === graceEnded) {
      logger.warn({ callsInFlight: activeCalls.size }, 'grace period over: ending the calls still in flight with UNAVAILABLE');
      for (const active of [...activeCalls]) {
        active.finish(toCallStatus(shuttingDownError(), logger, { method: active.method }));
      }
      // Give the statuses a moment to leave, then cut whatever is left (a client that stopped
      // reading a stream would otherwise hold the close forever).
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, forceShutdownDelayMilliseconds))]);
      server.forceShutdown();
    }
    logger.info({ address }, 'gRPC server closed');
  }
}

// ------------------------------------------------------------------------------ call helpers

/**
 * A callback that passes on only its first answer: a call can end through its handler, its
 * client (cancel, deadline) or close(), and grpc-js must hear of one of them only.
 */
function answerOnce<Response>(callback: sendUnaryData<Response>): (status: CallStatus | null, response?: Response) => void {
  let answered = false;
  return (status, response) => {
    if (answered) return;
    answered = true;
    if (status === null) callback(null, response);
    else callback(status);
  };
}

/**
 * Reads a PutStream one message at a time, on demand: the next message is taken from the
 * client only when the backend pulls the next chunk, so at most the stream's small read buffer
 * sits in memory. Shape errors are kept in `protocolError` so that the handler reports them even
 * when the backend wraps them.
 */
class PutStreamReader {
  protocolError: DfsError | undefined;
  finished = false;
  private readonly iterator: AsyncIterator<PutStreamRequestMessage>;

  constructor(
    call: ServerReadableStream<PutStreamRequestMessage, unknown>,
    private readonly signal: AbortSignal,
  ) {
    this.iterator = call[Symbol.asyncIterator]() as AsyncIterator<PutStreamRequestMessage>;
  }

  async readHeader(): Promise<{ key: string; mode: number }> {
    const first = await this.next();
    if (first === undefined) {
      throw this.fail('PutStream received no message; the first must carry the header (key and mode)');
    }
    if (first.message !== 'header' || first.header === null) {
      throw this.fail('the first PutStream message must carry the header (key and mode), not a chunk');
    }
    return first.header;
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const message = await this.next();
      if (message === undefined) {
        this.finished = true;
        return;
      }
      if (message.message === 'header') throw this.fail('only the first PutStream message may carry a header');
      // A message with neither field set is an empty chunk: harmless, skipped.
      if (message.chunk.byteLength > 0) yield message.chunk;
    }
  }

  /** The next message, or undefined at the end; rejects as soon as the call is aborted. */
  private async next(): Promise<PutStreamRequestMessage | undefined> {
    const result = await abortable(this.iterator.next(), this.signal);
    return result.done === true ? undefined : result.value;
  }

  private fail(message: string): DfsError {
    this.protocolError = new DfsError('InvalidArgument', message);
    return this.protocolError;
  }
}

/**
 * Writes stream messages while keeping at most `maximumBufferedBytes` written but not yet
 * handed to HTTP/2 (grpc-js calls a write's callback once the message is passed on, which a
 * client that stops reading holds back through HTTP/2 flow control).
 */
class BoundedWriter<Message> {
  completed = false;
  private bufferedBytes = 0;
  private waiter: (() => void) | undefined;
  private failure: unknown;

  constructor(
    private readonly call: ServerWritableStream<unknown, Message>,
    private readonly signal: AbortSignal,
    private readonly maximumBufferedBytes: number,
  ) {}

  async write(message: Message, sizeBytes: number): Promise<void> {
    // Writing after the call ended would make the stream report a second, different status.
    if (this.signal.aborted) throw this.signal.reason;
    while (this.bufferedBytes > 0 && this.bufferedBytes + sizeBytes > this.maximumBufferedBytes) {
      await this.waitForProgress();
    }
    if (this.failure !== undefined) throw this.failure;
    this.bufferedBytes += sizeBytes;
    this.call.write(message, (error?: Error | null) => {
      if (error) this.failure = error;
      this.bufferedBytes -= sizeBytes;
      const wake = this.waiter;
      this.waiter = undefined;
      wake?.();
    });
  }

  /** Waits until everything written has been handed on. */
  async flush(): Promise<void> {
    while (this.bufferedBytes > 0) await this.waitForProgress();
    if (this.failure !== undefined) throw this.failure;
    this.completed = true;
  }

  private waitForProgress(): Promise<void> {
    return abortable(new Promise<void>((resolve) => { this.waiter = resolve; }), this.signal);
  }
}

/** `promise`, or a rejection with the signal's reason as soon as the signal is aborted. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}

// ------------------------------------------------------------------------ shape and conversion

function checkConsistency(consistency: ConsistencyName): ReadConsistency {
  if (consistency === 'LINEARIZABLE') return 'linearizable';
  if (consistency === 'LOCAL') return 'local';
  throw new DfsError('InvalidArgument', `consistency must be LINEARIZABLE (0) or LOCAL (1), got ${String(consistency)}`);
}

function checkMode(mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > maximumMode) {
    throw new DfsError('InvalidArgument', `mode must be permission bits from 0 to 07777 (4095), got ${mode}`);
  }
  return mode;
}

function tooLargeForGet(key: string, sizeBytes: number, maximumSizeBytes: number): DfsError {
  return new DfsError('TooLarge',
    `${truncateDetails(key, 200)} is ${sizeBytes} bytes, more than one Get response can carry (${maximumSizeBytes} bytes); read it with GetStream`);
}

function shuttingDownError(): DfsError {
  return new DfsError('Unavailable', 'this node is shutting down; retry on another node', { retryAfterMilliseconds: 1000 });
}

function watchShutdownError(): DfsError {
  return new DfsError('Unavailable', 'this node is shutting down: resume the watch on another node from the version after the last one received', { retryAfterMilliseconds: 1000 });
}

const changeTypeNames: Readonly<Record<WatchEvent['type'], string>> = {
  put: 'PUT',
  delete: 'DELETE',
  makeFolder: 'MAKE_FOLDER',
  removeFolder: 'REMOVE_FOLDER',
};

function watchEventMessage(event: WatchEvent): WatchEventMessage {
  return {
    version: event.version,
    type: changeTypeNames[event.type],
    key: event.key,
    ...(event.info === null ? {} : { info: event.info }),
    moreInVersion: event.moreInVersion,
  };
}

function putResponse(result: PutResult): { version: number; sizeBytes: number } {
  return { version: result.version, sizeBytes: result.sizeBytes };
}

const roleNames: Readonly<Record<MemberRole, string>> = {
  unknown: 'ROLE_UNKNOWN',
  follower: 'FOLLOWER',
  preCandidate: 'PRE_CANDIDATE',
  candidate: 'CANDIDATE',
  leader: 'LEADER',
};

const suffrageNames: Readonly<Record<Suffrage, string>> = {
  unknown: 'SUFFRAGE_UNKNOWN',
  voter: 'VOTER',
  learner: 'LEARNER',
};

function statusResponse(status: NodeStatus): unknown {
  return {
    nodeId: status.nodeId,
    role: roleNames[status.role],
    term: status.term,
    leaderId: status.leaderId,
    leaderAddress: status.leaderAddress,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    snapshotIndex: status.snapshotIndex,
    members: status.members.map((member) => ({
      id: member.id,
      address: member.address,
      role: roleNames[member.role],
      suffrage: suffrageNames[member.suffrage],
      progressKnown: member.progressKnown,
      matchIndex: member.matchIndex,
      lagEntries: member.lagEntries,
    })),
  };
}

/**
 * Reads `host:port`, `[ipv6]:port` or `:port`. The configuration has validated the address
 * already; this only splits it, and allows port 0 ("any free port", for tests). An empty host
 * means every interface: IPv4's wildcard, which binds even where IPv6 is switched off.
 */
function readBindAddress(text: string): Address {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw new GrpcServerStartError(text, 'invalidAddress',
      `cannot listen for gRPC on ${JSON.stringify(text)}: expected [host]:port with a port from 0 to 65535, e.g. ":13000" or "127.0.0.1:13000"`);
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** Turns grpc-js's bind failure into a message that names the address and what is wrong. */
function startError(address: string, error: Error): GrpcServerStartError {
  const text = error.message;
  if (text.includes('EADDRINUSE')) {
    return new GrpcServerStartError(address, 'addressInUse',
      `cannot listen for gRPC on ${address}: the address is already in use (another dfs node or another program listens there); stop it or choose another port with -grpc`);
  }
  if (text.includes('EADDRNOTAVAIL')) {
    return new GrpcServerStartError(address, 'addressNotAvailable',
      `cannot listen for gRPC on ${address}: no network interface of this machine has that address`);
  }
  if (text.includes('EACCES')) {
    return new GrpcServerStartError(address, 'accessDenied',
      `cannot listen for gRPC on ${address}: permission denied (ports below 1024 need privileges)`);
  }
  return new GrpcServerStartError(address, 'other', `cannot listen for gRPC on ${address}: ${text}`);
}
