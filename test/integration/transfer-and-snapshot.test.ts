// TransferLeader and Snapshot on a real cluster. Goal: TransferLeader called on the leader moves
// leadership to the node asked for (or, without a target, to another voter) and answers only once
// the new leader leads, so every node's Status names it right after; asked of a follower, the
// follower forwards it to the leader and answers likewise once the new leader leads (with or
// without a target); for a node that is not a member it is refused at once, with the reason. Snapshot compacts the
// answering node's Raft log at once: it answers the snapshot's index (everything applied when it
// was asked) and size, Status then reports that index as the log's snapshot index, and the file is
// in <data>/raft/snapshots. Method: three real `dfs` processes with the default compaction
// threshold (10,000 entries), so that no compaction happens but the one asked for.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DfsClientError } from '../../src/client/client.js';
import { TestCluster, waitFor } from './harness.js';

const encoder = new TextEncoder();

async function failure(promise: Promise<unknown>): Promise<DfsClientError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DfsClientError) return error;
    throw error;
  }
  throw new Error('the call succeeded but was expected to fail');
}

t.test('TransferLeader and Snapshot', async (t) => {
  const cluster = await TestCluster.started(t, 3);
  const leader = await cluster.waitForLeader(60_000);
  const [target, bystander] = cluster.nodes.filter((node) => node !== leader);
  if (target === undefined || bystander === undefined) throw new Error('no followers');

  await t.test('moves leadership to the node asked for, answering once it leads', async (t) => {
    const result = await leader.client.transferLeadership(target.spec.id);
    t.equal(result.leaderId, target.spec.id);
    const statuses = await Promise.all([leader, target].map((node) => node.status()));
    t.same(statuses.map((status) => status.leaderId), [target.spec.id, target.spec.id], 'the old and the new leader name the new one at once');
    t.equal(statuses[1]?.role, 'LEADER');
    t.equal((await cluster.waitForLeader(10_000)).spec.id, target.spec.id, 'every node follows it');
    const after = await target.client.put('after/transfer', encoder.encode('x'));
    t.ok(after.version > 0, 'and writes go on');
  });

  await t.test('asked of a follower, the request goes to the leader and the call returns once the new leader leads', async (t) => {
    const started = Date.now();
    const result = await bystander.client.transferLeadership(bystander.spec.id);
    t.equal(result.leaderId, bystander.spec.id, `answered in ${Date.now() - started} ms`);
    const statuses = await Promise.all([bystander, target].map((node) => node.status()));
    t.same(statuses.map((status) => status.leaderId), [bystander.spec.id, bystander.spec.id], 'the new and the old leader name the new one');
    t.equal(statuses[0]?.role, 'LEADER');
    t.equal((await cluster.waitForLeader(10_000)).spec.id, bystander.spec.id, 'every node follows it');
  });

  await t.test('refuses a stranger or a bad id at once, even on a follower, and says why', async (t) => {
    for (const node of [bystander, target]) {
      const started = Date.now();
      const stranger = await failure(node.client.transferLeadership('node9'));
      t.equal(stranger.code, 'INVALID_ARGUMENT');
      t.match(stranger.message, /"node9" is not a member; the members are node1, node2, node3/);
      t.ok(Date.now() - started < 2_000, `at once on ${node.spec.id}`);
    }
    const badId = await failure(target.client.transferLeadership('-x'));
    t.equal(badId.code, 'INVALID_ARGUMENT');
  });

  await t.test('without a target, asked of a follower, another voter takes over', async (t) => {
    const result = await target.client.transferLeadership();
    t.not(result.leaderId, bystander.spec.id, `leadership moved away from ${bystander.spec.id} (to ${result.leaderId})`);
    t.equal((await cluster.waitForLeader(10_000)).spec.id, result.leaderId);
  });

  await t.test('Snapshot compacts the log of the node asked', async (t) => {
    for (let index = 0; index < 10; index++) await bystander.client.put(`snapshot/${index}`, encoder.encode(`value ${index}`));
    const before = await bystander.status();
    t.equal(before.snapshotIndex, 0, 'no compaction yet (the threshold is 10,000 entries)');
    const snapshot = await bystander.client.snapshot();
    t.ok(snapshot.index >= before.appliedIndex, `the snapshot (index ${snapshot.index}) covers what was applied (${before.appliedIndex})`);
    t.ok(snapshot.sizeBytes > 0, `it has a size (${snapshot.sizeBytes} bytes)`);
    t.equal((await bystander.status()).snapshotIndex, snapshot.index, "Status shows the log's new start");
    const files = readdirSync(join(bystander.spec.dataFolder, 'raft', 'snapshots'));
    t.ok(files.some((name) => name.startsWith(`snapshot-${snapshot.index}-`)), `the snapshot file is there: ${files.join(', ')}`);
    t.same(await bystander.client.snapshot(), snapshot, 'with nothing new applied, asking again answers the same snapshot');
    await bystander.client.put('snapshot/more', encoder.encode('more'));
    await waitFor('the write applied on the node', async () => (await bystander.status()).appliedIndex > snapshot.index);
    const next = await bystander.client.snapshot();
    t.ok(next.index > snapshot.index, `a new write, a new snapshot (${next.index})`);
  });
});
