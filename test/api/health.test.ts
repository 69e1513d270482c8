// The standard health service. Goal: grpc.health.v1.Health answers SERVING or NOT_SERVING for
// the server as a whole ("") and for dfs.FileService, as the caller sets it (the node reports
// NOT_SERVING while it has no leader), Watch streams each change, and close() turns it to
// NOT_SERVING before the server stops. Method: a grpc-js client built from grpc-health-check's own
// health.proto, as load balancers and Kubernetes probes use it, against a server on 127.0.0.1.

import t from 'tap';
import { credentials, loadPackageDefinition, status as GrpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { startTestServer, waitFor, type Teardown } from './helpers.js';

type HealthClient = Client & {
  check(request: { service: string }, callback: (error: ServiceError | null, response: { status: string }) => void): void;
  watch(request: { service: string }): NodeJS.ReadableStream & { cancel(): void };
};

function healthClient(t: Teardown, address: string): HealthClient {
  const packageObject = loadPackageDefinition(loadSync(protoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, credentials: unknown) => HealthClient } } };
  };
  const client = new packageObject.grpc.health.v1.Health(address, credentials.createInsecure());
  t.teardown(() => client.close());
  return client;
}

function check(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.check({ service }, (error, response) => (error === null ? resolve(response.status) : reject(error)));
  });
}

t.test('SERVING and NOT_SERVING as the caller sets them', async (t) => {
  const { server, address } = await startTestServer(t);
  const client = healthClient(t, address);
  t.equal(await check(client, ''), 'SERVING', 'the server as a whole');
  t.equal(await check(client, 'dfs.FileService'), 'SERVING');

  server.setServing(false);
  t.equal(await check(client, ''), 'NOT_SERVING');
  t.equal(await check(client, 'dfs.FileService'), 'NOT_SERVING');
  server.setServing(true);
  t.equal(await check(client, 'dfs.FileService'), 'SERVING');

  const unknown = await check(client, 'no.Such').then(() => undefined, (error: ServiceError) => error);
  t.equal(unknown?.code, GrpcStatus.NOT_FOUND, 'an unknown service name is NOT_FOUND');
});

t.test('a server can start NOT_SERVING', async (t) => {
  const { address } = await startTestServer(t, { serving: false });
  t.equal(await check(healthClient(t, address), ''), 'NOT_SERVING');
});

t.test('Watch streams every change, and close() reports NOT_SERVING', async (t) => {
  const { server, address } = await startTestServer(t);
  const client = healthClient(t, address);
  const seen: string[] = [];
  const stream = client.watch({ service: '' });
  stream.on('data', (message: { status: string }) => seen.push(message.status));
  stream.on('error', () => undefined);
  await waitFor(() => seen.length === 1);
  server.setServing(false);
  await waitFor(() => seen.length === 2);
  server.setServing(true);
  await waitFor(() => seen.length === 3);
  // The watch is a call in flight: close() reports NOT_SERVING on it, then ends it when its
  // grace period is over.
  const closed = server.close({ graceMilliseconds: 200 });
  await waitFor(() => seen.length === 4);
  await closed;
  t.same(seen, ['SERVING', 'NOT_SERVING', 'SERVING', 'NOT_SERVING']);
});
