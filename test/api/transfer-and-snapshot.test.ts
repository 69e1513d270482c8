// TransferLeader and Snapshot in the gRPC layer. Goal: both reach the backend with what the client
// sent and answer in the proto's JSON-friendly shape (leaderId; index and sizeBytes), and a
// backend refusal reaches the client with the status code of status.ts (a non-member is
// INVALID_ARGUMENT, a follower answers UNAVAILABLE). Method: the FakeBackend, scripted.

import t from 'tap';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DfsError } from '../../src/errors.js';
import { callUnary, callUnaryError, startTestServer } from './helpers.js';

t.test('TransferLeader answers the new leader; refusals keep their codes', async (t) => {
  const { client, backend } = await startTestServer(t);
  t.same(await callUnary(client, 'TransferLeader', { to: 'node2' }), { leaderId: 'node2' });
  t.equal(backend.lastCall('transferLeader')?.request, 'node2', 'the target reaches the backend');
  await callUnary(client, 'TransferLeader', {});
  t.equal(backend.lastCall('transferLeader')?.request, '', 'no target: the backend chooses');

  backend.failNext('transferLeader', new DfsError('InvalidArgument', '"node9" is not a member; the members are node1, node2'));
  const unknown = await callUnaryError(client, 'TransferLeader', { to: 'node9' });
  t.equal(unknown.code, GrpcStatus.INVALID_ARGUMENT);
  t.match(unknown.details, /not a member/);
  backend.failNext('transferLeader', new DfsError('NotLeader', 'only the leader moves leadership: ask node1, the leader', { leader: 'node1' }));
  const follower = await callUnaryError(client, 'TransferLeader', { to: 'node2' });
  t.equal(follower.code, GrpcStatus.UNAVAILABLE);
  t.match(follower.details, /ask node1/);
});

t.test('Snapshot answers the index and size', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.snapshotInfo = { index: 42, sizeBytes: 9000 };
  t.same(await callUnary(client, 'Snapshot', {}), { index: 42, sizeBytes: 9000 });
});
