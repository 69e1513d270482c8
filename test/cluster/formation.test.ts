// Cluster formation is a pure decision over the discover replies a new node has heard; these
// tests walk each rule with hand-made replies: a lone node founds its own cluster, a node that
// reaches a member joins, founders that agree on the members all derive the same cluster, and
// disagreement, silence or duplicate ids make the node wait with a reason that names the problem.

import t from 'tap';
import { decideFormation, discoverRequest, type DiscoverReply, type FormationSelf } from '../../src/cluster/formation.js';

function founder(nodeId: string, peers: string[]): FormationSelf {
  return { nodeId, advertise: `${nodeId}:12000`, nonce: `nonce-${nodeId}`, peers };
}

function replyFrom(self: FormationSelf, clusterId = ''): DiscoverReply {
  const request = discoverRequest(self);
  return { kind: 'discoverReply', nodeId: self.nodeId, advertise: self.advertise, nonce: self.nonce, clusterId, initialMembers: request.initialMembers };
}

const node1 = founder('node1', ['node2:12000', 'node3:12000']);
const node2 = founder('node2', ['node1:12000', 'node3:12000']);
const node3 = founder('node3', ['node1:12000', 'node2:12000']);

t.test('a node without peers founds a one-node cluster with the id it was given', async (t) => {
  const decision = decideFormation(founder('solo', []), new Map(), 'random-id');
  t.same(decision, { type: 'bootstrap', clusterId: 'random-id', voters: ['solo'], addresses: { solo: 'solo:12000' } });
});

t.test('a peer that belongs to a cluster is joined through', async (t) => {
  const joiner = founder('node4', ['node1:12000']);
  const decision = decideFormation(joiner, new Map([['node1:12000', replyFrom(founder('node1', []), 'abc')]]), 'unused');
  t.same(decision, { type: 'join', clusterId: 'abc', viaNodeId: 'node1', viaAddress: 'node1:12000' });
});

t.test('founders that list each other agree on voters, addresses and cluster id', async (t) => {
  const decisions = [
    decideFormation(node1, new Map([['node2:12000', replyFrom(node2)], ['node3:12000', replyFrom(node3)]]), 'x'),
    decideFormation(node2, new Map([['node1:12000', replyFrom(node1)], ['node3:12000', replyFrom(node3)]]), 'y'),
    decideFormation(node3, new Map([['node1:12000', replyFrom(node1)], ['node2:12000', replyFrom(node2)]]), 'z'),
  ];
  const first = decisions[0];
  t.equal(first?.type, 'bootstrap');
  for (const decision of decisions) t.same(decision, first, 'every founder decides the same');
  if (first?.type === 'bootstrap') {
    t.same(first.voters, ['node1', 'node2', 'node3']);
    t.same(first.addresses, { node1: 'node1:12000', node2: 'node2:12000', node3: 'node3:12000' });
    t.match(first.clusterId, /^[0-9a-f]{32}$/);
  }
});

t.test('a silent peer makes the node wait and says which', async (t) => {
  const decision = decideFormation(node1, new Map([['node2:12000', replyFrom(node2)]]), 'x');
  t.same(decision, { type: 'wait', reason: 'waiting for node3:12000 to answer' });
});

t.test('founders that expect different members wait with the difference spelled out', async (t) => {
  const odd = founder('node2', ['node1:12000']);
  const decision = decideFormation(node1, new Map([['node2:12000', replyFrom(odd)], ['node3:12000', replyFrom(node3)]]), 'x');
  t.equal(decision.type, 'wait');
  if (decision.type === 'wait') t.match(decision.reason, /give every founding node the same peers/);
});

t.test('two peers with one node id wait with a clear reason', async (t) => {
  const clash = { ...replyFrom(node3), nodeId: 'node2' };
  const decision = decideFormation(node1, new Map([['node2:12000', replyFrom(node2)], ['node3:12000', clash]]), 'x');
  t.equal(decision.type, 'wait');
  if (decision.type === 'wait') t.match(decision.reason, /node ids must be unique/);
});
