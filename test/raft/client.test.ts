// Client interaction (Raft paper §8; dissertation §3.10 leadership transfer and §6.4 ReadIndex).
// Goal: a new leader commits a no-op of its own term first; a linearizable read (ReadIndex) is
// answered only after the leader has committed an entry of its term and has confirmed with a
// majority heartbeat round that it still leads; a follower's read goes through the leader; a
// deposed leader answers no read; leadership transfer waits for the target to catch up, refuses
// proposals meanwhile, and the target campaigns at once on TimeoutNow and wins. Method: three
// nodes on the deterministic network of helpers.ts, with some exchanges delivered message by
// message to observe exactly when a ReadState appears.

import t from 'tap';
import { Network, bytes, drain, electionTimeoutTicks, ofType } from './helpers.js';
import type { Message } from '../../src/raft/types.js';

function electedNetwork(overrides = {}): Network {
  const network = new Network(['a', 'b', 'c'], overrides);
  network.elect('a');
  if (network.node('a').status().role !== 'leader') throw new Error('a did not win');
  network.tick(2);
  return network;
}

t.test('§8 "Raft handles this by having each leader commit a blank no-op entry into the log at the start of its term"', async (t) => {
  const network = new Network(['a', 'b', 'c']);
  network.elect('a');
  const a = network.get('a');
  const term = a.node.status().term;
  const ofTerm = a.history.entries.filter((each) => each.term === term);
  t.ok(ofTerm.length >= 1, 'the new leader appended an entry of its term');
  const noop = ofTerm[0];
  t.equal(noop?.kind, 'normal');
  t.equal(noop?.kind === 'normal' ? noop.data.byteLength : -1, 0, 'it is empty');
  t.equal(noop?.index, 2, 'right after the last entry of the previous term');
  network.tick(2);
  for (const id of ['a', 'b', 'c']) {
    const committed = network.get(id).history.committedEntries.find((each) => each.index === noop?.index);
    t.equal(committed?.term, term, `${id} committed the no-op`);
  }
});

t.test('§8 "Raft handles this by having the leader exchange heartbeat messages with a majority of the cluster before responding to read-only requests" (dissertation §6.4 ReadIndex)', async (t) => {
  const network = electedNetwork();
  const [a, b] = [network.get('a'), network.get('b')];
  const commitIndex = a.node.status().commitIndex;
  t.same(a.node.readIndex('r1'), { ok: true, value: null });

  const round = drain(a);
  t.same(round.readStates, [], 'no answer before any peer confirmed');
  const heartbeats = round.messages.filter((message) => message.to === 'b');
  t.ok(heartbeats.length >= 1, 'the leader contacts b to confirm its leadership');

  // Only b answers: with the leader itself that is a majority of three.
  for (const message of heartbeats) b.node.step(message);
  const answers = drain(b).messages.filter((message) => message.to === 'a');
  t.ok(answers.length >= 1);
  for (const message of answers) a.node.step(message);
  const confirmed = drain(a);
  t.same(confirmed.readStates, [{ requestId: 'r1', index: commitIndex }], 'the read index is the commit index at the time of the request');
});

t.test('dissertation §6.4 "If the leader has not yet marked an entry from its current term committed, it waits until it has done so"', async (t) => {
  const network = new Network(['a', 'b', 'c']);
  const stopCommit = network.addFilter((message) => message.type === 'appendEntriesResponse' && message.to === 'a');
  network.elect('a');
  const a = network.get('a');
  t.equal(a.node.status().role, 'leader');
  const noopIndex = a.storage.lastIndex();
  t.ok(a.node.status().commitIndex < noopIndex, 'the no-op is not committed yet');

  const result = a.node.readIndex('early');
  network.tick(4);
  t.same(a.history.readStates, [], 'no read state while no entry of the term is committed');

  stopCommit();
  network.tick(4);
  t.ok(a.node.status().commitIndex >= noopIndex, 'the no-op committed');
  if (result.ok) {
    const state = a.history.readStates.find((each) => each.requestId === 'early');
    t.ok(state !== undefined, 'the read is answered once the no-op committed');
    t.ok((state?.index ?? 0) >= noopIndex, 'with a read index that covers the no-op');
  } else {
    t.pass(`the core refused the early read (${result.code}) instead of queueing it`);
  }
});

t.test('dissertation §6.4 followers "could issue a request to the leader just to ask for a current readIndex"', async (t) => {
  const network = electedNetwork();
  t.ok(network.node('a').propose(bytes('w1')).ok);
  network.settle();
  const commitIndex = network.node('a').status().commitIndex;
  const since = network.log.length;
  t.same(network.node('b').readIndex('rb'), { ok: true, value: null });
  network.settle();
  const traffic = network.delivered(since);
  t.ok(traffic.some((message) => message.type === 'readIndex' && message.from === 'b' && message.to === 'a'), 'b asks the leader');
  t.ok(traffic.some((message) => message.type === 'readIndexResponse' && message.to === 'b'), 'the leader answers b');
  const states = network.get('b').history.readStates;
  t.same(states, [{ requestId: 'rb', index: commitIndex }], 'b gets the leader\'s read index');
  t.same(network.get('a').history.readStates, [], 'the leader does not serve b\'s read itself');
});

t.test('§8 "a leader must check whether it has been deposed before processing a read-only request": a deposed leader serves no read', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  network.isolate('a');
  t.same(a.node.readIndex('stale'), { ok: true, value: null });
  // b and c elect a new leader and commit a write that a never sees.
  network.tick(4 * electionTimeoutTicks, ['b', 'c']);
  const leaders = network.leaders().filter((each) => each.id !== 'a');
  t.equal(leaders.length, 1, 'b and c elected a new leader');
  const newLeader = network.node(leaders[0]?.id ?? 'b');
  const write = newLeader.propose(bytes('newer-write'));
  t.ok(write.ok);
  const writeIndex = write.ok ? write.value : -1;
  network.settle();
  t.ok(newLeader.status().commitIndex >= writeIndex);
  t.equal(a.node.status().role, 'leader', 'a still believes it leads (it was not ticked)');
  t.same(a.history.readStates, [], 'but it cannot confirm leadership, so it answers no read');

  network.heal();
  network.tick(4);
  t.not(a.node.status().role, 'leader', 'a learned of the new term');
  t.notOk(
    a.history.readStates.some((each) => each.requestId === 'stale' && each.index < writeIndex),
    'the stale read is never answered with an index that misses the newer write',
  );
});

t.test('dissertation §3.10 "the prior leader sends a TimeoutNow request to the target server. This request has the same effect as the target server\'s election timer firing"', async (t) => {
  const network = electedNetwork();
  const [a, b] = [network.get('a'), network.get('b')];
  const term = a.node.status().term;
  t.same(a.node.transferLeadership('b'), { ok: true, value: 'b' });
  t.equal(a.node.status().transferee, 'b');
  const out = drain(a);
  const timeoutNow = ofType(out.messages, 'timeoutNow').filter((message) => message.to === 'b');
  t.equal(timeoutNow.length, 1, 'b is caught up: TimeoutNow goes out at once');

  for (const message of timeoutNow) b.node.step(message);
  const campaign = drain(b);
  const requests = ofType(campaign.messages, 'requestVote');
  t.same(requests.map((message) => message.to).sort(), ['a', 'c'], 'b campaigns at once, without waiting for a tick');
  t.ok(requests.every((message) => message.term === term + 1 && message.transfer), 'a real election (no pre-vote) flagged as a transfer');
  t.equal(b.node.status().role, 'candidate');

  for (const message of campaign.messages) network.deliver(message);
  network.settle();
  t.same(network.leaders(), [{ id: 'b', term: term + 1 }], 'b wins and a steps down');
  t.equal(a.node.status().leader, 'b');
  t.equal(a.node.status().transferee, null);
});

t.test('dissertation §3.10 "The prior leader stops accepting new client requests" and "fully updates the target server\'s log to match its own" before TimeoutNow', async (t) => {
  const network = electedNetwork();
  const [a, c] = [network.get('a'), network.get('c')];
  const term = a.node.status().term;
  const cut = network.isolate('c');
  t.ok(a.node.propose(bytes('c-misses-this')).ok);
  network.settle();
  // Time passes with c cut off (the core resends a lost AppendEntries once the follower has made
  // no progress for an election timeout; c is not ticked, so it does not campaign).
  network.tick(electionTimeoutTicks + 1, ['a', 'b']);
  const since = network.log.length;

  t.same(a.node.transferLeadership('c'), { ok: true, value: 'c' });
  const refused = a.node.propose(bytes('during-transfer'));
  t.equal(refused.ok ? 'ok' : refused.code, 'TransferInProgress', 'proposals are refused during the transfer');
  network.settle();
  t.notOk(network.log.slice(since).some((each) => each.message.type === 'timeoutNow'), 'no TimeoutNow while c lags behind');

  cut();
  network.tick(4);
  t.same(network.leaders(), [{ id: 'c', term: term + 1 }], 'c caught up, got TimeoutNow and won');
  t.same(c.applied, ['c-misses-this'], 'the new leader has every committed entry');
  const timeoutNowAt = network.log.findIndex((each) => each.message.type === 'timeoutNow' && !each.dropped);
  const catchUp = network.log.findIndex(
    (each) => !each.dropped && each.message.type === 'appendEntries' && each.message.to === 'c' && each.message.entries.some((entry) => entry.kind === 'normal' && entry.data.byteLength > 0),
  );
  t.ok(catchUp >= 0 && catchUp < timeoutNowAt, 'the log was brought up to date before TimeoutNow');
  t.notOk(
    network.get('c').history.committedEntries.some((each) => each.kind === 'normal' && new TextDecoder().decode(each.data) === 'during-transfer'),
    'the refused proposal never committed',
  );
});

t.test('dissertation §3.10 "If the transfer does not complete within an election timeout, the prior leader aborts the transfer and resumes accepting client requests"', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  network.isolate('c');
  t.ok(a.node.propose(bytes('c-misses-this')).ok);
  network.settle();
  t.same(a.node.transferLeadership('c'), { ok: true, value: 'c' });
  t.equal(a.node.propose(bytes('refused')).ok, false);
  network.tick(electionTimeoutTicks + 2);
  t.equal(a.node.status().role, 'leader', 'a keeps leading (b is still reachable)');
  t.equal(a.node.status().transferee, null, 'the transfer was abandoned');
  t.ok(a.node.propose(bytes('accepted-again')).ok, 'proposals are accepted again');
});

t.test('§8 a follower forwards a proposal to the leader', async (t) => {
  const network = electedNetwork();
  const since = network.log.length;
  t.same(network.node('b').propose(bytes('via-b')), { ok: true, value: 0 });
  network.settle();
  const traffic: Message[] = network.delivered(since);
  t.ok(traffic.some((message) => message.type === 'propose' && message.from === 'b' && message.to === 'a'));
  for (const id of ['a', 'b', 'c']) t.same(network.get(id).applied, ['via-b'], `${id} applied the forwarded proposal`);
});
