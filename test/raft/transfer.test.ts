// Leadership transfer asked of any node (dissertation §3.10, with the request carried to the
// leader the way a follower's proposal is). Goal: a follower checks the target against the
// configuration it knows (a stranger or a learner is refused at once, with the reason), forwards
// a valid request to the leader as a transferLeader message, and the leader hands over exactly as
// if it had been asked itself: to the target, or without one to the voter furthest along; a
// request the leader refuses, or one that reaches a node that is not the leader, is dropped (or
// passed on, never back to its sender). Method: three voters (and a learner where needed) on the
// deterministic network of helpers.ts, with some messages delivered by hand.

import t from 'tap';
import { Network, bytes, drain, electionTimeoutTicks, ofType } from './helpers.js';
import type { Message } from '../../src/raft/types.js';

function electedNetwork(): Network {
  const network = new Network(['a', 'b', 'c']);
  network.elect('a');
  if (network.node('a').status().role !== 'leader') throw new Error('a did not win');
  network.tick(2);
  return network;
}

function withLearner(): Network {
  const network = electedNetwork();
  network.add('d');
  const added = network.node('a').proposeConfChange({ type: 'addLearner', nodeId: 'd' });
  if (!added.ok) throw new Error(added.message);
  network.settle();
  network.tick(2);
  return network;
}

t.test('a follower forwards a transfer to the leader, which hands over to the target', async (t) => {
  const network = electedNetwork();
  const [a, b] = [network.get('a'), network.get('b')];
  const term = a.node.status().term;
  t.same(b.node.transferLeadership('c'), { ok: true, value: 'c' }, 'accepted: the value is the target');
  const out = drain(b);
  const forwarded = ofType(out.messages, 'transferLeader');
  t.same(
    forwarded.map(({ from, to, target }) => ({ from, to, target })),
    [{ from: 'b', to: 'a', target: 'c' }],
    'one transferLeader message to the leader, naming the target',
  );
  for (const message of out.messages) network.deliver(message);
  network.settle();
  t.same(network.leaders(), [{ id: 'c', term: term + 1 }], 'c leads the next term');
  for (const id of ['a', 'b', 'c']) t.equal(network.node(id).status().leader, 'c', `${id} follows c`);
});

t.test('a follower may ask for leadership for itself', async (t) => {
  const network = electedNetwork();
  const b = network.get('b');
  t.same(b.node.transferLeadership('b'), { ok: true, value: 'b' });
  network.settle();
  t.equal(network.leaders()[0]?.id, 'b');
});

t.test('without a target, the leader chooses the voter furthest along', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  // c falls behind: it misses a write, so b is the one caught up.
  const restore = network.isolate('c');
  t.ok(a.node.propose(bytes('c-misses-this')).ok);
  network.settle();
  const since = network.log.length;
  t.same(network.node('c').transferLeadership(null), { ok: true, value: null }, 'asked of c (lagging), the leader chooses: value null');
  network.settle();
  t.same(network.delivered(since), [], 'c is cut off: its request went nowhere');
  restore();
  t.same(network.node('c').transferLeadership(null), { ok: true, value: null });
  const out = drain(network.get('c'));
  t.same(
    ofType(out.messages, 'transferLeader').map((message) => message.target),
    [null],
    'the forwarded request carries no target',
  );
  // Deliver the request before c's log is repaired: the leader must pick b (match = last index).
  const request = out.messages.find((message) => message.type === 'transferLeader') as Message;
  network.deliver(request);
  t.equal(a.node.status().transferee, 'b', 'the leader picked b, the voter furthest along');
  network.settle();
  t.equal(network.leaders()[0]?.id, 'b');
});

t.test('on the leader, no target means the voter furthest along, and the value names it', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  const restore = network.isolate('b');
  t.ok(a.node.propose(bytes('b-misses-this')).ok);
  network.settle();
  t.same(a.node.transferLeadership(null), { ok: true, value: 'c' });
  restore();
  network.settle();
  t.equal(network.leaders()[0]?.id, 'c');
});

t.test('a follower refuses at once a stranger, a learner, or a transfer with nobody to take it', async (t) => {
  const network = withLearner();
  const b = network.node('b');
  const stranger = b.transferLeadership('x');
  t.match(stranger, { ok: false, code: 'NotMember', leader: 'a' });
  t.match(stranger.ok ? '' : stranger.message, /"x" is not a member; the members are a, b, c, d/);
  const learner = b.transferLeadership('d');
  t.match(learner, { ok: false, code: 'InvalidTransfer' });
  t.match(learner.ok ? '' : learner.message, /d is a learner: only a voter can lead/);
  const onLeader = network.node('a').transferLeadership('d');
  t.match(onLeader, { ok: false, code: 'InvalidTransfer' }, 'the leader refuses a learner the same way');
  t.same(drain(network.get('b')).messages.filter((message) => message.type === 'transferLeader'), [], 'nothing was forwarded');

  const single = new Network(['s']);
  single.elect('s');
  const alone = single.node('s').transferLeadership(null);
  t.match(alone, { ok: false, code: 'InvalidTransfer' });
  t.match(alone.ok ? '' : alone.message, /this node is the only voter/);
});

t.test('a follower with no leader known says so', async (t) => {
  const network = new Network(['a', 'b', 'c']);
  const result = network.node('b').transferLeadership('c');
  t.match(result, { ok: false, code: 'NoLeader', leader: null });
});

t.test('asking a follower to move leadership to the leader itself sends nothing', async (t) => {
  const network = electedNetwork();
  t.same(network.node('b').transferLeadership('a'), { ok: true, value: 'a' });
  t.same(ofType(drain(network.get('b')).messages, 'transferLeader'), []);
});

t.test('a transferLeader message reaching a follower goes on to its leader, never back to its sender', async (t) => {
  const network = electedNetwork();
  const term = network.node('a').status().term;
  const c = network.get('c');
  c.node.step({ type: 'transferLeader', from: 'b', to: 'c', term, target: 'b' });
  t.same(
    ofType(drain(c).messages, 'transferLeader').map(({ from, to, target }) => ({ from, to, target })),
    [{ from: 'c', to: 'a', target: 'b' }],
    'c passes it on to a',
  );
  // c believes a leads; a request "from a" must not go back to a.
  c.node.step({ type: 'transferLeader', from: 'a', to: 'c', term, target: 'b' });
  t.same(ofType(drain(c).messages, 'transferLeader'), [], 'not bounced back to its sender');
});

t.test('the leader drops a forwarded request it refuses, and keeps leading', async (t) => {
  const network = withLearner();
  const a = network.get('a');
  const term = a.node.status().term;
  for (const target of ['d', 'x']) a.node.step({ type: 'transferLeader', from: 'b', to: 'a', term, target });
  network.settle();
  t.equal(a.node.status().transferee, null, 'no transfer started');
  network.tick(electionTimeoutTicks);
  t.same(network.leaders(), [{ id: 'a', term }], 'a still leads the same term');
});

t.test('a forwarded request is not bound to a term (like a proposal): a stale one still counts', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  const term = a.node.status().term;
  a.node.step({ type: 'transferLeader', from: 'b', to: 'a', term: 0, target: 'c' });
  network.settle();
  t.same(network.leaders(), [{ id: 'c', term: term + 1 }]);
});
