// The JSON forms are part of the contract (DESIGN.md "The API as its users call it"). Goal: the
// seed's commands work as written — `grpcurl -d '{"key":"foo","data":"YmFy"}' ... Put` stores the
// bytes "bar", and `-d '{"key":"foo"}' ... Get` prints `{"data": "YmFy"}` and nothing else — and
// every other RPC reads and prints the JSON a user of grpcurl would write and expect. Method:
// proto/dfs.proto is loaded with protobufjs keeping its field names, requests are encoded from JSON
// and responses printed with the proto3 JSON mapping exactly as grpcurl applies it by default
// (proto-json.ts: defaults left out, lowerCamelCase names, 64-bit integers as strings), and sent
// as raw bytes through a real grpc-js client to a server with the FakeBackend.

import t from 'tap';
import protobuf from 'protobufjs';
import { findDfsProtoPath } from '../../src/api/proto.js';
import type { GetRequest } from '../../src/api/backend.js';
import { ReflectionJsonClient } from './reflection-client.js';
import { startTestServer } from './helpers.js';

const root = new protobuf.Root().loadSync(findDfsProtoPath(), { keepCase: true });
root.resolveAll();

t.test("the seed's Put and Get, as written", async (t) => {
  const { address, backend } = await startTestServer(t);
  const client = new ReflectionJsonClient(address, 'v1');
  t.teardown(() => client.close());

  const put = await client.invoke(root, 'dfs.FileService/Put', '{"key":"foo","data":"YmFy"}');
  t.same(backend.content('foo'), Buffer.from('bar'), '"YmFy" is base64 for the bytes "bar"');
  t.same(put, { version: '1', sizeBytes: '3' }, 'Put prints the version and size, 64-bit numbers as strings');

  const get = await client.invoke(root, 'dfs.FileService/Get', '{"key":"foo"}');
  t.equal(JSON.stringify(get), '{"data":"YmFy"}', 'Get prints the data and nothing else');

  const local = await client.invoke(root, 'dfs.FileService/Get', '{"key":"foo","consistency":"LOCAL"}');
  t.equal(JSON.stringify(local), '{"data":"YmFy"}');
  t.equal((backend.lastCall('get')?.request as GetRequest).consistency, 'local');

  const withInfo = await client.invoke(root, 'dfs.FileService/Get', '{"key":"foo","include_info":true}');
  t.same(withInfo, {
    data: 'YmFy',
    info: { key: 'foo', sizeBytes: '3', version: '1', modifiedUnixMilliseconds: String(backend.clockUnixMilliseconds), mode: 420 },
  }, 'include_info adds the metadata');
  const camel = await client.invoke(root, 'dfs.FileService/Get', '{"key":"foo","includeInfo":true}');
  t.same(camel, withInfo, 'lowerCamelCase field names are accepted too');

  backend.seed('empty', Buffer.alloc(0));
  t.equal(JSON.stringify(await client.invoke(root, 'dfs.FileService/Get', '{"key":"empty"}')), '{}',
    'an empty value prints as {} (proto3 leaves out empty bytes)');
});

t.test('the other RPCs in JSON', async (t) => {
  const { address, backend } = await startTestServer(t);
  const client = new ReflectionJsonClient(address, 'v1');
  t.teardown(() => client.close());
  const modified = String(backend.clockUnixMilliseconds);

  await client.invoke(root, 'dfs.FileService/Put', '{"key":"docs/a.txt","data":"aGVsbG8=","mode":384}');
  await client.invoke(root, 'dfs.FileService/Put', '{"key":"docs/b.txt","data":"eA=="}');

  t.same(await client.invoke(root, 'dfs.FileService/Stat', '{"key":"docs/a.txt"}'),
    { key: 'docs/a.txt', sizeBytes: '5', version: '1', modifiedUnixMilliseconds: modified, mode: 384 });

  const firstPage = await client.invoke(root, 'dfs.FileService/List', '{"prefix":"docs/","page_size":1}');
  t.match(firstPage, { entries: [{ key: 'docs/a.txt' }], nextPageToken: /.+/ });
  const secondPage = await client.invoke(root, 'dfs.FileService/List',
    JSON.stringify({ prefix: 'docs/', pageSize: 1, pageToken: firstPage['nextPageToken'] }));
  t.same(secondPage, { entries: [{ key: 'docs/b.txt', sizeBytes: '1', version: '2', modifiedUnixMilliseconds: modified, mode: 420 }] },
    'the last page has no nextPageToken');

  t.same(await client.invoke(root, 'dfs.FileService/Delete', '{"key":"docs/b.txt"}'), { version: '3' });

  t.same(await client.invoke(root, 'dfs.FileService/AddPeer', '{"id":"node2","address":"127.0.0.1:12001"}'), {});
  t.same(await client.invoke(root, 'dfs.FileService/Status', '{}'), {
    nodeId: 'node1', role: 'LEADER', term: '3', leaderId: 'node1', leaderAddress: '127.0.0.1:12000',
    commitIndex: '3', appliedIndex: '3',
    members: [
      { id: 'node1', address: '127.0.0.1:12000', role: 'LEADER', suffrage: 'VOTER', progressKnown: true },
      { id: 'node2', address: '127.0.0.1:12001', role: 'FOLLOWER', suffrage: 'LEARNER', progressKnown: true, lagEntries: '3' },
    ],
  }, 'zero match index and lag are left out, like every proto3 default');
  t.same(await client.invoke(root, 'dfs.FileService/RemovePeer', '{"id":"node2"}'), {});
});
