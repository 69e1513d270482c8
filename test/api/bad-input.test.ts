// Bad input gets a clear error and loses nothing (DESIGN.md). Goal: a unary message over the
// limit is refused with RESOURCE_EXHAUSTED (64 MiB by default, configurable) and stores nothing;
// a Get of a value too large for one message says to use GetStream; a flood of calls beyond the
// in-flight limit is told to retry; bytes that are not gRPC at all — random noise, HTTP/1.1, a
// valid HTTP/2 preface followed by garbage — only close that connection; and a port in use or a
// malformed address refuses to start with a message naming the address. Method: a server on
// 127.0.0.1 with a free port and the FakeBackend, real grpc-js clients, raw TCP sockets; after
// each kind of abuse the server must still answer a normal Put and Get.

import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo } from 'node:net';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { pino } from 'pino';
import { startGrpcServer, GrpcServerStartError } from '../../src/api/server.js';
import type { GetRequest } from '../../src/api/backend.js';
import { FakeBackend } from './fake-backend.js';
import { callUnary, callUnaryError, createFileServiceClient, startTestServer, waitFor, type FileServiceClient } from './helpers.js';

const mebibyte = 1024 * 1024;

async function stillServes(t: Test, client: FileServiceClient): Promise<void> {
  await callUnary(client, 'Put', { key: 'alive', data: Buffer.from('yes') });
  const got = await callUnary<{ data: Buffer }>(client, 'Get', { key: 'alive' });
  t.same(got.data, Buffer.from('yes'), 'the server still serves');
}

t.test('a unary message over the configured limit is RESOURCE_EXHAUSTED', async (t) => {
  const { client, backend } = await startTestServer(t, { maxMessageBytes: mebibyte });
  const error = await callUnaryError(client, 'Put', { key: 'big', data: Buffer.alloc(mebibyte + 1) });
  t.equal(error.code, GrpcStatus.RESOURCE_EXHAUSTED);
  t.match(error.details, /larger than max \(\d+ vs\.? 1048576\)/, `the message gives both sizes: ${error.details}`);
  t.equal(backend.content('big'), undefined, 'nothing stored');
  t.equal(backend.calls.length, 0, 'the backend never saw it');
  await callUnary(client, 'Put', { key: 'fits', data: Buffer.alloc(mebibyte - 1024) });
  t.equal(backend.content('fits')?.length, mebibyte - 1024, 'a message under the limit passes');
  await stillServes(t, client);
});

t.test('the default limit is 64 MiB', async (t) => {
  const { client, backend } = await startTestServer(t);
  const error = await callUnaryError(client, 'Put', { key: 'big', data: Buffer.alloc(64 * mebibyte + 1) });
  t.equal(error.code, GrpcStatus.RESOURCE_EXHAUSTED);
  t.match(error.details, /vs\.? 67108864\)/);
  t.equal(backend.content('big'), undefined);
  await callUnary(client, 'Put', { key: 'fits', data: Buffer.alloc(63 * mebibyte) });
  t.equal(backend.content('fits')?.length, 63 * mebibyte);
});

t.test('a value too large for one Get response points to GetStream', async (t) => {
  const { client, backend } = await startTestServer(t, { maxMessageBytes: mebibyte });
  backend.seed('big', Buffer.alloc(2 * mebibyte));
  const error = await callUnaryError(client, 'Get', { key: 'big' });
  t.equal(error.code, GrpcStatus.RESOURCE_EXHAUSTED);
  t.match(error.details, /GetStream/);
  t.equal((backend.lastCall('get')?.request as GetRequest).maximumSizeBytes, mebibyte - 16 * 1024,
    'the backend is told the limit before it reads anything');

  // Even a backend that ignores the limit cannot make the server send an oversized message.
  backend.get = async (request) => ({ data: Buffer.alloc(2 * mebibyte), info: await backend.stat({ key: request.key, consistency: 'local' }, {
    signal: new AbortController().signal, deadlineUnixMilliseconds: Infinity,
  }) });
  const checked = await callUnaryError(client, 'Get', { key: 'big' });
  t.equal(checked.code, GrpcStatus.RESOURCE_EXHAUSTED);
  t.match(checked.details, /big is 2097152 bytes, more than one Get response can carry \(1032192 bytes\); read it with GetStream/);
});

t.test('calls beyond the in-flight limit are told to retry', async (t) => {
  // The limit is also each connection's HTTP/2 stream limit, so one client beyond it waits for a
  // free stream by itself (backpressure); another connection is told the server is busy.
  const { client, backend, address } = await startTestServer(t, { maximumConcurrentCalls: 2 });
  const otherClient = createFileServiceClient(address, true);
  t.teardown(() => otherClient.close());
  backend.seed('a', Buffer.from('x'));
  const first = backend.holdNext('get');
  const firstCall = callUnary(client, 'Get', { key: 'a' });
  await first.arrived;
  const second = backend.holdNext('stat');
  const secondCall = callUnary(client, 'Stat', { key: 'a' });
  await second.arrived;
  const busy = await callUnaryError(otherClient, 'Put', { key: 'b', data: Buffer.from('y') });
  t.equal(busy.code, GrpcStatus.RESOURCE_EXHAUSTED);
  t.match(busy.details, /server busy: 2 calls in flight, the limit is 2; retry in \d+ ms/);
  t.equal(busy.metadata.get('grpc-retry-pushback-ms').length, 1);
  first.release();
  second.release();
  await Promise.all([firstCall, secondCall]);
  await stillServes(t, client);
});

/**
 * Sends `bytes` on a raw TCP connection; resolves with whether the server closed it within a
 * second (a connection that merely stalls is left to the server's keepalive, which closes it
 * when its pings go unanswered, after about 80 s).
 */
function sendRaw(port: number, bytes: Buffer, halfClose: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => (halfClose ? socket.end(bytes) : socket.write(bytes)));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined); // a reset is one way for the server to hang up
    socket.on('close', () => resolve(true));
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

t.test('bytes that are not gRPC only close their own connection', async (t) => {
  const { server, client } = await startTestServer(t);
  const http2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const refused = {
    'random bytes': randomBytes(64 * 1024),
    'an HTTP/1.1 request': Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
    'an HTTP/2 preface, then random bytes': Buffer.concat([http2Preface, randomBytes(4096)]),
  };
  for (const [name, bytes] of Object.entries(refused)) {
    for (const halfClose of [false, true]) {
      t.ok(await sendRaw(server.port, bytes, halfClose), `${name}${halfClose ? ' and a half-close' : ''}: the server hangs up`);
    }
  }
  const stalled = {
    'nothing': Buffer.alloc(0),
    'a frame header announcing 16 MiB, then nothing': Buffer.concat([http2Preface, Buffer.from([0xff, 0xff, 0xff, 0x04, 0, 0, 0, 0, 0])]),
  };
  await Promise.all(Object.values(stalled).flatMap((bytes) => [sendRaw(server.port, bytes, false), sendRaw(server.port, bytes, true)]));
  await Promise.all(Array.from({ length: 20 }, () => sendRaw(server.port, randomBytes(1024), false)));
  await stillServes(t, client);
});

t.test('a port in use refuses to start, naming the address', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as AddressInfo).port;
  const logger = pino({ level: 'silent' });

  const attempt = startGrpcServer({ address: `127.0.0.1:${port}`, backend: new FakeBackend(), logger });
  await t.rejects(attempt, {
    name: 'GrpcServerStartError',
    reason: 'addressInUse',
    message: new RegExp(`^cannot listen for gRPC on 127\\.0\\.0\\.1:${port}: the address is already in use`),
  });

  const { server } = await startTestServer(t);
  const second = await startGrpcServer({ address: server.address, backend: new FakeBackend(), logger }).then(() => undefined, (caught: unknown) => caught);
  t.match(second, { reason: 'addressInUse' }, 'a second gRPC server on the same port');

  for (const address of ['nonsense', '127.0.0.1:99999', '127.0.0.1:', '[::1:13000']) {
    const error = await startGrpcServer({ address, backend: new FakeBackend(), logger }).then(() => undefined, (caught: unknown) => caught);
    t.ok(error instanceof GrpcServerStartError, `${address} is refused`);
    t.match(error, { reason: 'invalidAddress', message: /expected \[host\]:port/ });
  }
});

t.test('a client deadline shorter than the backend call ends in DEADLINE_EXCEEDED, not a hang', async (t) => {
  const { client, backend } = await startTestServer(t);
  const held = backend.holdNext('put');
  const error = await callUnaryError(client, 'Put', { key: 'a', data: Buffer.from('x') }, { deadline: Date.now() + 100 });
  t.equal(error.code, GrpcStatus.DEADLINE_EXCEEDED);
  const context = await held.arrived;
  await waitFor(() => context.signal.aborted);
  t.ok(context.signal.aborted);
  await stillServes(t, client);
});
