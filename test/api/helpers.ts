// Shared set-up for the gRPC layer's tests: a server on 127.0.0.1 with a free port and a
// FakeBackend, a grpc-js client built from proto/dfs.proto the way an application would build one,
// promise wrappers for its calls, and a pino logger that writes into an array so that a test can
// read what the server logged. Everything started here is closed in t.teardown.

import { Writable } from 'node:stream';
import {
  Metadata,
  credentials,
  loadPackageDefinition,
  type CallOptions,
  type Client,
  type ClientReadableStream,
  type ClientWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { pino, type Logger } from 'pino';
import { findDfsProtoPath, handlerLoadOptions } from '../../src/api/proto.js';
import { startGrpcServer, type GrpcServer, type GrpcServerOptions } from '../../src/api/server.js';
import { FakeBackend } from './fake-backend.js';

/** The tap assertion object, narrowed to what the helpers use. */
export interface Teardown {
  teardown(callback: () => unknown): void;
}

/** A pino logger whose JSON lines end up in `lines`, parsed. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, destination), lines };
}

/** A client of dfs.FileService with one method per RPC, as grpc-js generates it. */
export type FileServiceClient = Client & Record<string, (...parameters: unknown[]) => unknown>;

/** Receive limit of the test clients: above the server's 64 MiB so that the server's limits are
 * the ones tested. */
const clientReceiveLimitBytes = 128 * 1024 * 1024;

/**
 * A client of dfs.FileService. `ownConnection` gives it a connection of its own instead of
 * sharing one with other clients of the same address (grpc-js shares by default).
 */
export function createFileServiceClient(address: string, ownConnection = false): FileServiceClient {
  const packageObject = loadPackageDefinition(loadSync(findDfsProtoPath(), handlerLoadOptions));
  const dfsPackage = packageObject['dfs'] as unknown as Record<string, new (...parameters: unknown[]) => FileServiceClient>;
  const FileService = dfsPackage['FileService'];
  if (FileService === undefined) throw new Error('dfs.FileService missing from proto/dfs.proto');
  return new FileService(address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': clientReceiveLimitBytes,
    ...(ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
  });
}

export interface TestServer {
  readonly server: GrpcServer;
  readonly backend: FakeBackend;
  readonly client: FileServiceClient;
  readonly address: string;
  readonly logLines: Array<Record<string, unknown>>;
}

/** Starts a server with a FakeBackend and a client for it; both close when the test ends. */
export async function startTestServer(
  t: Teardown,
  options: Partial<Omit<GrpcServerOptions, 'backend' | 'logger'>> = {},
): Promise<TestServer> {
  const backend = new FakeBackend();
  const { logger, lines } = capturingLogger();
  const server = await startGrpcServer({ address: '127.0.0.1:0', backend, logger, ...options });
  const client = createFileServiceClient(server.address);
  t.teardown(async () => {
    client.close();
    await server.close({ graceMilliseconds: 1000 });
  });
  return { server, backend, client, address: server.address, logLines: lines };
}

/** Calls a unary method and resolves with its response (or rejects with the ServiceError). */
export function callUnary<Response = Record<string, unknown>>(
  client: FileServiceClient,
  method: string,
  request: unknown,
  options: CallOptions = {},
  metadata: Metadata = new Metadata(),
): Promise<Response> {
  const stub = client[method];
  if (stub === undefined) throw new Error(`no method ${method}`);
  return new Promise<Response>((resolve, reject) => {
    stub.call(client, request, metadata, options, (error: ServiceError | null, response: Response) => {
      if (error !== null) reject(error);
      else resolve(response);
    });
  });
}

/** Calls a unary method that must fail; resolves with the error (the test checks its code). */
export async function callUnaryError(
  client: FileServiceClient,
  method: string,
  request: unknown,
  options: CallOptions = {},
): Promise<ServiceError> {
  try {
    await callUnary(client, method, request, options);
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error(`${method} succeeded but was expected to fail`);
}

/** Opens a GetStream. */
export function openGetStream(client: FileServiceClient, request: unknown, options: CallOptions = {}): ClientReadableStream<Record<string, unknown>> {
  const stub = client['GetStream'];
  if (stub === undefined) throw new Error('no method GetStream');
  return stub.call(client, request, new Metadata(), options) as ClientReadableStream<Record<string, unknown>>;
}

/** Reads a whole GetStream: the first message's info and every chunk. */
export async function readGetStream(stream: ClientReadableStream<Record<string, unknown>>): Promise<{ info: unknown; chunks: Buffer[] }> {
  let info: unknown;
  const chunks: Buffer[] = [];
  for await (const message of stream) {
    const typed = message as { message?: string; info?: unknown; chunk?: Buffer };
    if (typed.message === 'info') info = typed.info;
    else if (typed.message === 'chunk' && typed.chunk !== undefined) chunks.push(typed.chunk);
  }
  return { info, chunks };
}

/** Opens a PutStream; `done` settles with the response once the client ends the stream. */
export function openPutStream(client: FileServiceClient, options: CallOptions = {}): {
  stream: ClientWritableStream<unknown>;
  done: Promise<Record<string, unknown>>;
} {
  const stub = client['PutStream'];
  if (stub === undefined) throw new Error('no method PutStream');
  let stream!: ClientWritableStream<unknown>;
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    stream = stub.call(client, new Metadata(), options, (error: ServiceError | null, response: Record<string, unknown>) => {
      if (error !== null) reject(error);
      else resolve(response);
    }) as ClientWritableStream<unknown>;
  });
  return { stream, done };
}

/** Resolves after `milliseconds`. */
export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Polls `condition` every 10 ms until it holds or `timeoutMilliseconds` pass. */
export async function waitFor(condition: () => boolean, timeoutMilliseconds = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMilliseconds) throw new Error('condition not met in time');
    await sleep(10);
  }
}
