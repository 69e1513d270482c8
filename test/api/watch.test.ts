// The Watch RPC in the gRPC layer. Goal: events reach a grpc-js client in the proto's JSON-friendly
// shape (enum names, info only where there is one, moreInVersion); a client that cancels ends the
// backend's iteration; a closing server ends its watches at once with UNAVAILABLE instead of
// waiting out the grace period (a watch never ends by itself). Method: the FakeBackend's watch,
// which replays a scripted change log and then waits for the call's signal; and DfsClient.watch,
// whose AbortSignal ends the iteration quietly.

import t from 'tap';
import { status as GrpcStatus, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { DfsClient } from '../../src/client/client.js';
import { startTestServer, waitFor, type FileServiceClient } from './helpers.js';

function openWatch(client: FileServiceClient, request: unknown): ClientReadableStream<Record<string, unknown>> {
  const stub = client['Watch'];
  if (stub === undefined) throw new Error('no method Watch');
  return stub.call(client, request, new Metadata(), {}) as ClientReadableStream<Record<string, unknown>>;
}

function take(stream: ClientReadableStream<Record<string, unknown>>, count: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const messages: Record<string, unknown>[] = [];
    stream.on('data', (message: Record<string, unknown>) => {
      messages.push(message);
      if (messages.length === count) resolve(messages);
    });
    stream.on('error', reject);
  });
}

const info = { key: 'docs/a', sizeBytes: 3, version: 7, modifiedUnixMilliseconds: 1_700_000_000_000, mode: 0o644 };

t.test('events arrive in their proto shape; cancelling ends the backend iteration', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.watchEvents = [
    { version: 7, type: 'put', key: 'docs/a', info, moreInVersion: false },
    { version: 8, type: 'delete', key: 'docs/a', info: null, moreInVersion: true },
    { version: 8, type: 'makeFolder', key: 'docs/b', info: { ...info, key: 'docs/b', sizeBytes: 0, version: 8 }, moreInVersion: false },
    { version: 9, type: 'put', key: 'elsewhere', info, moreInVersion: false },
  ];
  const stream = openWatch(client, { prefix: 'docs/', fromVersion: 7 });
  const messages = await take(stream, 3);
  t.same(messages.map((message) => [message['version'], message['type'], message['key'], message['moreInVersion']]), [
    [7, 'PUT', 'docs/a', false],
    [8, 'DELETE', 'docs/a', true],
    [8, 'MAKE_FOLDER', 'docs/b', false],
  ]);
  t.same(messages[0]?.['info'], info, 'a PUT carries the file');
  t.equal(messages[1]?.['info'], null, 'a DELETE carries no info');
  t.same(backend.lastCall('watch')?.request, { prefix: 'docs/', fromVersion: 7 }, 'the request reaches the backend as sent');
  stream.on('error', () => undefined);
  stream.cancel();
  await waitFor(() => backend.endedWatches === 1);
  t.pass('the backend iteration ended when the client cancelled');
});

t.test('a closing server ends its watches at once with UNAVAILABLE', async (t) => {
  const { client, backend, server } = await startTestServer(t);
  backend.watchEvents = [{ version: 1, type: 'put', key: 'a', info, moreInVersion: false }];
  const stream = openWatch(client, { prefix: '', fromVersion: 0 });
  const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
  await take(stream, 1);
  const started = Date.now();
  await server.close({ graceMilliseconds: 10_000 });
  const error = await ended;
  t.equal(error.code, GrpcStatus.UNAVAILABLE);
  t.match(error.details, /resume the watch on another node/);
  t.ok(Date.now() - started < 3000, `close() did not wait for the grace period (${Date.now() - started} ms)`);
  await waitFor(() => backend.endedWatches === 1);
});

t.test('DfsClient.watch: typed events; aborting its signal ends the iteration quietly', async (t) => {
  const { backend, address } = await startTestServer(t);
  backend.watchEvents = [
    { version: 7, type: 'put', key: 'docs/a', info, moreInVersion: false },
    { version: 8, type: 'delete', key: 'docs/a', info: null, moreInVersion: false },
  ];
  const client = new DfsClient(address);
  t.teardown(() => client.close());
  const controller = new AbortController();
  const events = [];
  for await (const event of client.watch('docs/', { fromVersion: 1, signal: controller.signal })) {
    events.push(event);
    if (events.length === 2) setTimeout(() => controller.abort(), 50);
  }
  t.same(events, [
    { version: 7, type: 'PUT', key: 'docs/a', info, moreInVersion: false },
    { version: 8, type: 'DELETE', key: 'docs/a', moreInVersion: false },
  ]);
  await waitFor(() => backend.endedWatches === 1);
});
