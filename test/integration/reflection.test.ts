// Server reflection on a real node. Goal: what grpcurl does without `-proto` works against a
// running `dfs` process, through both reflection versions (widely installed grpcurl versions speak
// only v1alpha): knowing nothing but the gRPC address, a client lists the services, fetches the
// file descriptors that define dfs.FileService, and calls Put and Get (and the health check) with
// the seed's JSON requests, getting the seed's JSON answers. Method: one real `dfs` process (a
// one-node cluster); the client is test/api/reflection-client.ts, which carries only the
// reflection protocol's own messages and builds every other type from what the server returned.

import t from 'tap';
import { ReflectionJsonClient, type ReflectionVersion } from '../api/reflection-client.js';
import { TestCluster } from './harness.js';

const expectedServices = ['dfs.FileService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

t.test('a client that knows only the address finds the services and calls Put and Get', async (t) => {
  const cluster = await TestCluster.started(t, 1);
  const node = await cluster.waitForLeader(30_000);

  for (const version of ['v1', 'v1alpha'] as ReflectionVersion[]) {
    await t.test(`reflection ${version}`, async (t) => {
      const client = new ReflectionJsonClient(node.grpcAddress, version);
      t.teardown(() => client.close());
      t.same((await client.listServices()).sort(), expectedServices, 'every served service is listed');

      const root = await client.rootFor('dfs.FileService');
      const methods = Object.keys(root.lookupService('dfs.FileService').methods).sort();
      t.same(methods, ['AddPeer', 'Delete', 'Get', 'GetStream', 'List', 'Put', 'PutStream', 'RemovePeer', 'Snapshot', 'Stat', 'Status', 'TransferLeader', 'Watch'], 'every method is described');

      // The seed's commands: Put {"key":"foo","data":"YmFy"}, then Get prints {"data": "YmFy"}.
      const key = `reflection/${version}/foo`;
      const put = await client.invoke(root, 'dfs.FileService/Put', JSON.stringify({ key, data: 'YmFy' }));
      t.match(put, { sizeBytes: '3' }, 'Put answers with the size (int64 as a JSON string)');
      t.equal(JSON.stringify(await client.invoke(root, 'dfs.FileService/Get', JSON.stringify({ key }))), '{"data":"YmFy"}', 'Get answers exactly {"data":"YmFy"}');
      t.equal(new TextDecoder().decode(await node.client.get(key)), 'bar', 'the typed client reads what reflection wrote');

      const status = await client.invoke(root, 'dfs.FileService/Status', '{}');
      t.match(status, { nodeId: 'node1', role: 'LEADER' }, 'Status through reflection');

      const healthRoot = await client.rootFor('grpc.health.v1.Health');
      t.same(await client.invoke(healthRoot, 'grpc.health.v1.Health/Check', '{}'), { status: 'SERVING' }, 'the health check, found through reflection alone');
    });
  }
});
