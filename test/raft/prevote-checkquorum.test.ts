// Pre-vote, leader lease and check-quorum (Ongaro's dissertation §4.2.3, §6.2 and §9.6). Goal:
// a server cut off from the cluster must not be able to disturb it — its pre-votes never raise
// its term, and when it rejoins the healthy leader keeps leading — while a leader that has lost
// its majority steps down by itself within an election timeout, and a follower that hears from a
// leader ignores vote requests. Method: three nodes on the deterministic in-memory network of
// helpers.ts; partitions are filters on that network; every tick is followed by delivering all
// traffic until the network is quiet.

import t from 'tap';
import { Network, drain, electionTimeoutTicks, isCampaign, make, ofType } from './helpers.js';

function electedNetwork(): Network {
  const network = new Network(['a', 'b', 'c']);
  network.elect('a');
  if (network.node('a').status().role !== 'leader') throw new Error('a did not win the first election');
  network.tick(2);
  return network;
}

t.test('§9.6 "a candidate only increments its term if it first learns from a majority of the cluster that they would be willing to grant the candidate their votes": a partitioned server\'s pre-votes do not raise its term', async (t) => {
  const network = electedNetwork();
  const term = network.node('a').status().term;
  const since = network.log.length;
  network.isolate('c');
  network.tick(10 * electionTimeoutTicks);

  const fromC = network.log.slice(since).map((each) => each.message).filter((message) => message.from === 'c');
  t.ok(fromC.some((message) => message.type === 'preVote'), 'the isolated server did try (pre-vote)');
  t.notOk(fromC.some((message) => message.type === 'requestVote'), 'it never started a real election');
  t.equal(network.node('c').status().term, term, 'its term is unchanged');
  t.equal(network.get('c').storage.hardState().term, term, 'its durable term is unchanged');
  t.match(network.node('a').status(), { role: 'leader', term }, 'the majority side keeps its leader');
});

t.test('§9.6 a server that rejoins the cluster does not depose a healthy leader (pre-vote plus §4.2.3 "if a server receives a RequestVote request within the minimum election timeout of hearing from a current leader, it does not update its term or grant its vote")', async (t) => {
  const network = electedNetwork();
  const term = network.node('a').status().term;
  network.isolate('c');
  network.tick(6 * electionTimeoutTicks);
  network.heal();
  const since = network.log.length;
  network.tick(6 * electionTimeoutTicks);

  t.same(network.leaders(), [{ id: 'a', term }], 'a is still the only leader, in the same term');
  t.match(network.node('c').status(), { role: 'follower', leader: 'a', term }, 'the rejoined server follows the leader');
  const votes = network.log.slice(since).map((each) => each.message).filter((message) => message.type === 'requestVote');
  t.same(votes, [], 'no real election took place');

  t.ok(network.node('a').propose(new TextEncoder().encode('after-rejoin')).ok);
  network.settle();
  t.same(network.get('c').applied, ['after-rejoin'], 'the rejoined server replicates again');
});

t.test('§6.2 "a leader ... steps down if an election timeout elapses without a successful round of heartbeats to a majority of its cluster"', async (t) => {
  const network = electedNetwork();
  const term = network.node('a').status().term;
  network.isolate('a');
  let steppedDownAfter = -1;
  for (let tick = 1; tick <= 3 * electionTimeoutTicks; tick++) {
    network.tick(1, ['a']);
    if (network.node('a').status().role !== 'leader') {
      steppedDownAfter = tick;
      break;
    }
  }
  t.not(steppedDownAfter, -1, 'the isolated leader stepped down');
  t.ok(steppedDownAfter >= electionTimeoutTicks, `not before one election timeout (after ${steppedDownAfter} ticks)`);
  t.ok(steppedDownAfter <= 2 * electionTimeoutTicks + 1, `within two election timeouts (after ${steppedDownAfter} ticks)`);
  t.equal(network.node('a').status().role, 'follower');
  t.equal(network.node('a').status().term, term, 'stepping down does not change the term');
  t.equal(network.node('a').status().leader, null, 'it no longer names a leader');
});

t.test('§6.2 check-quorum keeps a leader that still reaches a majority', async (t) => {
  const network = electedNetwork();
  const term = network.node('a').status().term;
  network.isolate('c');
  network.tick(10 * electionTimeoutTicks, ['a', 'b']);
  t.match(network.node('a').status(), { role: 'leader', term }, 'a with b is a majority of three');
});

t.test('§4.2.3 "if a server receives a RequestVote request within the minimum election timeout of hearing from a current leader, it does not update its term or grant its vote"', async (t) => {
  const network = electedNetwork();
  const b = network.get('b');
  const status = b.node.status();
  t.equal(status.leader, 'a');
  const lastIndex = b.storage.lastIndex();
  const lastTerm = b.storage.term(lastIndex);

  b.node.step(make.requestVote('c', 'b', status.term + 1, lastIndex, lastTerm));
  let out = drain(b);
  t.notOk(ofType(out.messages, 'requestVoteResponse').some((message) => message.granted), 'no vote while the leader is heard');
  t.equal(b.node.status().term, status.term, 'the term is not raised');
  t.equal(b.storage.hardState().term, status.term);
  t.equal(b.node.status().leader, 'a', 'the follower keeps its leader');

  b.node.step(make.preVote('c', 'b', status.term + 1, lastIndex, lastTerm));
  out = drain(b);
  t.notOk(ofType(out.messages, 'preVoteResponse').some((message) => message.granted), 'no pre-vote either');
  t.equal(b.node.status().term, status.term);
});

t.test('§3.10 a RequestVote caused by leadership transfer (TimeoutNow) is exempt from the leader lease', async (t) => {
  const network = electedNetwork();
  const b = network.get('b');
  const status = b.node.status();
  const lastIndex = b.storage.lastIndex();
  const lastTerm = b.storage.term(lastIndex);

  b.node.step(make.requestVote('c', 'b', status.term + 1, lastIndex, lastTerm, true));
  const out = drain(b);
  t.ok(
    ofType(out.messages, 'requestVoteResponse').some((message) => message.to === 'c' && message.granted && message.term === status.term + 1),
    'the vote is granted in the new term',
  );
  t.match(b.storage.hardState(), { term: status.term + 1, vote: 'c' });
});

t.test('§9.6 pre-vote: "only increments its term" after a majority — a pre-candidate refused by everyone stays in its term', async (t) => {
  const network = electedNetwork();
  const term = network.node('a').status().term;
  // c campaigns now, while a and b still hear from each other: both refuse the pre-vote.
  const since = network.log.length;
  network.elect('c');
  const traffic = network.log.slice(since).map((each) => each.message);
  t.ok(traffic.some((message) => message.from === 'c' && message.type === 'preVote'));
  t.notOk(traffic.some((message) => message.type === 'preVoteResponse' && message.to === 'c' && message.granted), 'nobody grants');
  t.notOk(traffic.some((message) => message.from === 'c' && isCampaign(message) && message.type === 'requestVote'));
  t.equal(network.node('c').status().term, term);
  t.same(network.leaders(), [{ id: 'a', term }]);
});
