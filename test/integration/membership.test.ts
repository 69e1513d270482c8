// Membership: a cluster grows by joining and shrinks by RemovePeer without manual steps, and a
// whole cluster restarts from its data folders as the same cluster. Goal: a one-node cluster
// (no peers, empty folder: it founds a cluster) takes data; a second node started with only
// `-peers <node1>` joins as a learner, is promoted to voter once caught up and holds the data; a
// third joins through the second (a follower, which must pass the request on); RemovePeer takes one
// node out of the member list and the others keep serving writes; then every node is stopped with
// SIGTERM and started again from its data folder: the same data, one leader, and nothing founds a
// cluster again (the cluster id each node's log reports on opening is the one founded at first).
// Method: real `dfs` processes; learner → voter is read from the leader's membership log lines
// (one per committed change) and from Status; all waits poll with a bound.

import t from 'tap';
import { mapConcurrently, TestCluster, waitFor, type TestNode } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

t.test('join, promote, remove, and restart the whole cluster from its data folders', async (t) => {
  const cluster = await TestCluster.create(1);
  t.teardown(async () => {
    await cluster.shutdown();
    cluster.cleanup(t.passing() === false);
  });
  const written = new Map<string, string>();
  const write = async (node: TestNode, prefix: string, count: number): Promise<void> => {
    const keys = Array.from({ length: count }, (_, index) => `${prefix}/${String(index).padStart(3, '0')}`);
    await mapConcurrently(keys, 8, async (key) => {
      const value = `${key} written through ${node.spec.id}`;
      await node.client.put(key, encoder.encode(value));
      written.set(key, value);
    });
  };
  /** Every written key reads back from `node`'s own applied state with its value. */
  const holdsEverything = async (node: TestNode): Promise<boolean> => {
    const wrong: string[] = [];
    await mapConcurrently([...written], 32, async ([key, value]) => {
      const data = await node.client.get(key, { consistency: 'LOCAL' }).catch(() => null);
      if (data === null || decoder.decode(data) !== value) wrong.push(key);
    });
    return wrong.length === 0;
  };

  const node1 = cluster.node('node1');
  node1.start();
  await cluster.waitForLeader(30_000);
  const clusterId = await waitFor('node1 founds a cluster', async () => /founded cluster ([0-9a-f]+)/.exec(node1.logText())?.[1]);
  t.pass(`node1, alone and empty, founded cluster ${clusterId}`);
  await write(node1, 'alone', 50);

  await t.test('a node started with -peers <node1> joins as a learner, becomes a voter, and has the data', async (t) => {
    const node2 = await cluster.addJoiner('node2', node1);
    node2.start();
    const suffrages: string[] = [];
    await waitFor('node1 reports node2 as a voter', async () => {
      const member = (await node1.status()).members.find((candidate) => candidate.id === 'node2');
      if (member !== undefined && suffrages.at(-1) !== member.suffrage) suffrages.push(member.suffrage);
      return member?.suffrage === 'VOTER';
    }, 30_000, 20);
    t.comment(`node2's suffrage as Status showed it: ${suffrages.join(' → ')}`);
    const log = await waitFor('node1 logs both membership changes', async () => {
      const text = node1.logText();
      return /node2 promoted to voter/.test(text) ? text : null;
    });
    const added = log.indexOf('node2 added as a learner');
    t.ok(added >= 0 && added < log.indexOf('node2 promoted to voter'), 'node1 committed node2 as a learner first, then promoted it');
    t.match(node2.logText(), new RegExp(`joining cluster ${clusterId} through node1`), 'node2 joined the founded cluster through node1');
    t.ok(await waitFor('node2 holds every key written before it joined', () => holdsEverything(node2)), 'node2 holds the data');
    await write(node2, 'two', 20);
    t.ok(await waitFor('node1 holds the writes made through node2', () => holdsEverything(node1)), 'writes through node2 reach node1');
  });

  await t.test('a third node joins through node2, a follower', async (t) => {
    const node2 = cluster.node('node2');
    const node3 = await cluster.addJoiner('node3', node2);
    node3.start();
    const leader = await cluster.waitForLeader(30_000);
    await waitFor('three voters', async () => {
      const members = (await leader.status()).members;
      return members.length === 3 && members.every((member) => member.suffrage === 'VOTER');
    }, 30_000);
    t.same((await node3.status()).members.map((member) => member.id).sort(), ['node1', 'node2', 'node3'], 'node3 sees all three members');
    t.ok(await waitFor('node3 holds the data', () => holdsEverything(node3)), 'node3 holds the data');
    await write(node3, 'three', 20);
  });

  await t.test('RemovePeer takes a node out; the rest keep serving writes', async (t) => {
    const leader = await cluster.waitForLeader(30_000);
    // Remove a follower, asked of the other follower (the request goes to the leader).
    const [removed, asked] = cluster.nodes.filter((node) => node !== leader);
    if (removed === undefined || asked === undefined) throw new Error('no followers');
    await asked.client.removePeer(removed.spec.id);
    const remaining = cluster.nodes.filter((node) => node !== removed);
    for (const node of remaining) {
      const members = await waitFor(`${node.spec.id} no longer lists ${removed.spec.id}`, async () => {
        const ids = (await node.status()).members.map((member) => member.id);
        return ids.includes(removed.spec.id) ? null : ids;
      });
      t.same(members.sort(), remaining.map((other) => other.spec.id).sort(), `${node.spec.id}: members are ${members.join(', ')}`);
    }
    await removed.kill();
    cluster.nodes.splice(cluster.nodes.indexOf(removed), 1);
    removed.client.close();
    for (const node of remaining) await write(node, `after-remove-${node.spec.id}`, 10);
    for (const node of remaining) t.ok(await waitFor(`${node.spec.id} holds everything`, () => holdsEverything(node)), `${node.spec.id} serves every write`);
  });

  await t.test('restart the whole cluster from its data folders', async (t) => {
    const nodes = [...cluster.nodes];
    const logLengths = new Map(nodes.map((node) => [node, node.logText().length]));
    const codes = await Promise.all(nodes.map((node) => node.stop()));
    t.same(codes, nodes.map(() => 0), 'every node exits 0 on SIGTERM');
    for (const node of nodes) node.start();
    const leader = await cluster.waitForLeader(60_000);
    const roles = await Promise.all(nodes.map(async (node) => (await node.status()).role));
    t.equal(roles.filter((role) => role === 'LEADER').length, 1, `one leader (${leader.spec.id}) among ${nodes.map((node) => node.spec.id).join(', ')}`);
    for (const node of nodes) {
      const since = node.logText().slice(logLengths.get(node) ?? 0);
      t.notMatch(since, /founded cluster|joining cluster/, `${node.spec.id} neither founds nor joins a cluster again`);
      const opened = /"clusterId":"([0-9a-f]+)"[^\n]*"msg":"opened the raft log"/.exec(since)?.[1];
      t.equal(opened, clusterId, `${node.spec.id} reopened its log as a member of cluster ${clusterId}`);
    }
    t.same((await leader.status()).members.map((member) => member.id).sort(), nodes.map((node) => node.spec.id).sort(), 'the member list survived the restart');
    for (const node of nodes) {
      t.ok(await waitFor(`${node.spec.id} holds everything after the restart`, () => holdsEverything(node)), `${node.spec.id} holds all ${written.size} keys`);
    }
    await write(leader, 'after-restart', 10);
    for (const node of nodes) {
      t.equal(decoder.decode(await node.client.get('after-restart/009')), written.get('after-restart/009'), `${node.spec.id} serves a write made after the restart`);
    }
  });
});
