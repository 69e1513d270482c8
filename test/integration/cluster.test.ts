// A real three-node cluster on 127.0.0.1, formed the way the compose layout forms it (each node
// lists the other two as peers, all start empty): it elects one leader, accepts a Put on a
// follower, serves it from every node (linearizable and local reads), deletes, lists 10,000 keys
// page by page, and reports its members. Real `dfs` processes; waits poll with a bound.

import t from 'tap';
import { TestCluster, waitFor } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

t.test('a three-node cluster serves every basic RPC from any node', async (t) => {
  const cluster = await TestCluster.started(t, 3);
  const leader = await cluster.waitForLeader(60_000);
  const followers = cluster.nodes.filter((node) => node !== leader);
  const follower = followers[0];
  if (follower === undefined) throw new Error('no follower');

  await t.test('Put on a follower, Get from every node', async (t) => {
    const put = await follower.client.put('docs/a.txt', encoder.encode('hello'));
    t.ok(put.version > 0, 'the write has a version');
    t.equal(put.sizeBytes, 5);
    for (const node of cluster.nodes) {
      t.equal(decoder.decode(await node.client.get('docs/a.txt')), 'hello', `${node.spec.id} reads it (linearizable)`);
    }
    for (const node of cluster.nodes) {
      const local = await waitFor(`${node.spec.id} applies it`, async () => {
        const data = await node.client.get('docs/a.txt', { consistency: 'LOCAL' }).catch(() => null);
        return data !== null && decoder.decode(data) === 'hello' ? data : null;
      });
      t.equal(decoder.decode(local), 'hello', `${node.spec.id} reads it locally`);
    }
    const info = await leader.client.stat('docs/a.txt');
    t.equal(info.sizeBytes, 5);
    t.equal(info.version, put.version);
  });

  await t.test('Delete from another node; Get then says NOT_FOUND everywhere', async (t) => {
    const other = followers[1] ?? leader;
    await other.client.delete('docs/a.txt');
    for (const node of cluster.nodes) {
      await t.rejects(node.client.get('docs/a.txt'), { name: 'DfsClientError', code: 'NOT_FOUND' }, `${node.spec.id}: gone`);
    }
    await t.rejects(other.client.delete('docs/a.txt'), { name: 'DfsClientError', code: 'NOT_FOUND' }, 'deleting it again: NOT_FOUND');
  });

  await t.test('List over 10,000 keys, page by page, from a follower', async (t) => {
    const total = 10_000;
    const keys = Array.from({ length: total }, (_, index) => `many/${String(index).padStart(5, '0')}`);
    const concurrency = 64;
    for (let start = 0; start < keys.length; start += concurrency) {
      await Promise.all(keys.slice(start, start + concurrency).map((key, offset) => cluster.nodes[(start + offset) % 3]!.client.put(key, encoder.encode(key))));
    }
    const listed: string[] = [];
    let pages = 0;
    let pageToken = '';
    do {
      const page = await follower.client.list('many/', { pageSize: 1000, pageToken });
      listed.push(...page.entries.map((entry) => entry.key));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '');
    t.equal(listed.length, total, 'every key listed once');
    t.same(listed, keys, 'in key order');
    t.equal(pages, 10, 'ten pages of 1000');
  });

  await t.test('Status names the leader and every member', async (t) => {
    const status = await leader.client.status();
    t.equal(status.role, 'LEADER');
    t.equal(status.leaderId, leader.spec.id);
    t.same(status.members.map((member) => member.id).sort(), ['node1', 'node2', 'node3']);
    t.ok(status.members.every((member) => member.suffrage === 'VOTER'), 'all three vote');
  });
});
