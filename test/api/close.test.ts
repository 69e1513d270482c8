// Graceful close. Goal: close() refuses new calls, lets calls in flight finish within the grace
// period, ends the ones still running afterwards with UNAVAILABLE (so that clients retry on
// another node) and aborts their backend work, and never hangs — not even on a stream whose
// client stopped reading. Method: the FakeBackend holds calls until the test releases them; the
// test closes the server while they are held and watches the clients and the backend's signals.

import t from 'tap';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { callUnary, callUnaryError, createFileServiceClient, openGetStream, startTestServer, waitFor } from './helpers.js';

t.test('a call in flight finishes during the grace period; new calls are refused', async (t) => {
  const { server, client, backend, address } = await startTestServer(t);
  const held = backend.holdNext('put');
  const put = callUnary(client, 'Put', { key: 'a', data: Buffer.from('x') });
  await held.arrived;

  const started = Date.now();
  const closed = server.close({ graceMilliseconds: 5000 });
  t.equal(server.close(), closed, 'close() is idempotent');

  const sameConnection = await callUnaryError(client, 'Get', { key: 'a' });
  t.equal(sameConnection.code, GrpcStatus.UNAVAILABLE, 'a new call on an open connection is refused');
  const newClient = createFileServiceClient(address, true);
  t.teardown(() => newClient.close());
  const newConnection = await callUnaryError(newClient, 'Get', { key: 'a' });
  t.equal(newConnection.code, GrpcStatus.UNAVAILABLE, 'a new connection is refused');

  held.release();
  t.same(await put, { version: 1, sizeBytes: 1 }, 'the call in flight completes');
  await closed;
  t.ok(Date.now() - started < 4000, 'close() did not wait for the whole grace period');
});

t.test('calls still running after the grace period end with UNAVAILABLE', async (t) => {
  const { server, client, backend } = await startTestServer(t);
  const held = backend.holdNext('get');
  const get = callUnaryError(client, 'Get', { key: 'a' });
  const context = await held.arrived;

  const started = Date.now();
  await server.close({ graceMilliseconds: 300 });
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 300 && elapsed < 3000, `close() took ${elapsed} ms`);
  const error = await get;
  t.equal(error.code, GrpcStatus.UNAVAILABLE);
  t.match(error.details, /this node is shutting down; retry on another node; retry in 1000 ms/);
  t.same(error.metadata.get('grpc-retry-pushback-ms'), ['1000']);
  t.ok(context.signal.aborted, "the backend's work is aborted");
});

t.test('a stream whose client stopped reading does not hold close() up', async (t) => {
  const { server, client, backend } = await startTestServer(t);
  backend.seed('huge', Buffer.alloc(64 * 1024 * 1024));
  const stream = openGetStream(client, { key: 'huge', chunkSizeBytes: 64 * 1024 });
  const failure = new Promise<{ code: number }>((resolve) => stream.on('error', resolve));
  await new Promise<void>((resolve) => stream.once('data', () => resolve()));
  stream.pause();
  await waitFor(() => backend.producedChunks > 0);

  const started = Date.now();
  await server.close({ graceMilliseconds: 300 });
  t.ok(Date.now() - started < 3000, `close() took ${Date.now() - started} ms`);
  stream.resume();
  const error = await failure;
  // Its status cannot overtake the data it is not reading, so the connection is cut: CANCELLED.
  t.ok([GrpcStatus.UNAVAILABLE, GrpcStatus.CANCELLED].includes(error.code),
    `the client learns the stream broke (status ${error.code})`);
  await waitFor(() => backend.abandonedStreams === 1);
  t.equal(backend.abandonedStreams, 1, "the backend's stream was closed");
});
