// Cluster membership changes (Raft paper §6, dissertation §4: single-server changes with
// non-voting learners). Goal: a configuration takes effect on every server as soon as its entry
// is appended; a learner receives the log but neither votes nor counts towards a majority until it
// is promoted; a removed follower stops counting and a removed leader steps down once the removal
// commits; only one change may be pending; invalid changes are refused with a stable code.
// Method: three bootstrapped nodes (plus nodes that join with empty storage) on the deterministic
// network of helpers.ts; partitions are filters; results are read from status() and the
// members' applied state.

import t from 'tap';
import { Network, bytes, drain, electionTimeoutTicks, isCampaign, member } from './helpers.js';
import type { Result } from '../../src/raft/types.js';

function electedNetwork(): Network {
  const network = new Network(['a', 'b', 'c']);
  network.elect('a');
  if (network.node('a').status().role !== 'leader') throw new Error('a did not win');
  network.tick(2);
  return network;
}

function indexOf(result: Result<number>): number {
  if (!result.ok) throw new Error(`refused: ${result.code} ${result.message}`);
  return result.value;
}

/** Ticks the given members until `done` holds, for at most a few election timeouts. */
function tickUntil(network: Network, done: () => boolean, ids: readonly string[]): void {
  for (let tick = 0; tick < 3 * electionTimeoutTicks && !done(); tick++) network.tick(1, ids);
}

function code(result: Result<unknown>): string {
  return result.ok ? 'ok' : result.code;
}

t.test('§6 "a server always uses the latest configuration in its log, regardless of whether the entry is committed"', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  const index = indexOf(a.proposeConfChange({ type: 'addLearner', nodeId: 'd' }));
  t.same(a.status().config.learners, ['d'], 'the leader uses the new configuration as soon as it appends it');
  t.ok(a.status().commitIndex < index, 'before it commits');

  // Followers append it but no acknowledgement reaches the leader, so it does not commit.
  network.addFilter((message) => message.type === 'appendEntriesResponse' && message.to === 'a');
  network.settle();
  for (const id of ['b', 'c']) {
    const status = network.node(id).status();
    t.ok(network.get(id).storage.lastIndex() >= index, `${id} appended the config entry`);
    t.ok(status.commitIndex < index, `${id} has not seen it committed`);
    t.same(status.config, { voters: ['a', 'b', 'c'], learners: ['d'] }, `${id} uses it already`);
  }
});

t.test('§6 new servers "join the cluster as non-voting members (the leader replicates log entries to them, but they are not considered for majorities)"', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  t.ok(a.propose(bytes('before-d')).ok);
  network.settle();
  const d = network.add('d');
  const index = indexOf(a.proposeConfChange({ type: 'addLearner', nodeId: 'd' }));
  network.tick(4);
  t.ok(a.status().commitIndex >= index);
  t.same(d.node.status().config, { voters: ['a', 'b', 'c'], learners: ['d'] }, 'the learner knows the configuration');
  t.equal(d.storage.lastIndex(), network.get('a').storage.lastIndex(), 'the leader replicates the log to the learner');
  t.same(d.applied, ['before-d']);
  t.equal(d.node.status().leader, 'a');

  // With b and c cut off, a and d are two of four servers but only one of three voters.
  network.isolate('b');
  network.isolate('c');
  const proposal = a.propose(bytes('needs-a-voter-majority'));
  t.ok(proposal.ok);
  const proposedIndex = proposal.ok ? proposal.value : -1;
  network.settle();
  t.ok((a.status().progress?.get('d')?.match ?? 0) >= proposedIndex, 'the learner acknowledged the entry');
  t.ok(a.status().commitIndex < proposedIndex, 'the learner\'s acknowledgement does not make a majority');

  // A learner never campaigns, however long it hears nothing.
  const since = network.log.length;
  network.isolate('d');
  network.tick(5 * electionTimeoutTicks, ['d']);
  t.notOk(network.log.slice(since).some((each) => each.message.from === 'd' && isCampaign(each.message)), 'no (pre-)vote request from a learner');
  t.equal(d.node.status().role, 'follower');
});

t.test('§6 a learner that is promoted votes and counts towards majorities', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  network.add('d');
  indexOf(a.proposeConfChange({ type: 'addLearner', nodeId: 'd' }));
  network.tick(4);
  const index = indexOf(a.proposeConfChange({ type: 'promote', nodeId: 'd' }));
  network.tick(2);
  t.ok(a.status().commitIndex >= index);
  for (const id of ['a', 'b', 'c', 'd']) {
    t.same(network.node(id).status().config, { voters: ['a', 'b', 'c', 'd'], learners: [] }, `${id} sees d as a voter`);
  }

  // Four voters: a and b alone are not a majority, a, b and d are.
  network.isolate('c');
  const cutD = network.isolate('d');
  const first = indexOf(a.propose(bytes('needs-three-of-four')));
  network.settle();
  t.ok(a.status().commitIndex < first, 'two of four voters do not commit');
  cutD();
  tickUntil(network, () => a.status().commitIndex >= first, ['a', 'b', 'd']);
  t.ok(a.status().commitIndex >= first, 'd\'s acknowledgement completes the majority');
  t.same(network.get('d').applied, ['needs-three-of-four']);
});

t.test('§6 removing a follower: it stops counting towards majorities, and (§4.2.3) cannot disrupt the cluster though it may never learn of its removal', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  const index = indexOf(a.proposeConfChange({ type: 'remove', nodeId: 'c' }));
  t.same(a.status().config, { voters: ['a', 'b'], learners: [] }, 'effective on append');
  network.settle();
  t.ok(a.status().commitIndex >= index);
  // (c itself may never learn of its removal: the leader stops replicating to it on append.)

  const since = network.log.length;
  network.isolate('b');
  const needsB = indexOf(a.propose(bytes('needs-b')));
  network.tick(2, ['a', 'c']);
  t.ok(a.status().commitIndex < needsB, 'with two voters, the leader alone is no majority (c does not count)');
  t.notOk(
    network.log.slice(since).some((each) => each.message.from === 'a' && each.message.to === 'c' && each.message.type === 'appendEntries'),
    'the leader no longer replicates to the removed server',
  );
  network.heal();
  tickUntil(network, () => a.status().commitIndex >= needsB, ['a', 'b']);
  t.ok(a.status().commitIndex >= needsB, 'a and b are the majority');

  // Dissertation §4.2.3: a removed server that does not know it was removed times out and
  // campaigns; pre-vote and the leader lease keep it from disrupting the cluster.
  const term = a.status().term;
  network.tick(5 * electionTimeoutTicks);
  t.same(network.leaders(), [{ id: 'a', term }], 'the removed server does not disrupt the leader');
  t.equal(network.node('b').status().term, term);
});

t.test('§6 "the cluster leader may not be part of the new configuration. In this case, the leader steps down (returns to follower state) once it has committed the Cnew log entry"', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  const index = indexOf(a.proposeConfChange({ type: 'remove', nodeId: 'a' }));
  t.same(a.status().config.voters, ['b', 'c']);
  t.equal(a.status().role, 'leader', 'the leader still manages the cluster until the removal commits');
  network.addFilter((message) => message.type === 'appendEntriesResponse' && message.to === 'a');
  network.settle();
  t.equal(a.status().role, 'leader', 'not committed yet: still leader');
  network.heal();
  tickUntil(network, () => a.status().commitIndex >= index, ['a', 'b', 'c']);
  t.ok(a.status().commitIndex >= index, 'the removal committed (with b and c, the new majority)');
  t.not(a.status().role, 'leader', 'and the removed leader stepped down');

  const since = network.log.length;
  network.tick(6 * electionTimeoutTicks);
  const leaders = network.leaders();
  t.equal(leaders.length, 1, 'the remaining voters elect a new leader');
  t.ok(leaders[0]?.id === 'b' || leaders[0]?.id === 'c');
  t.notOk(network.log.slice(since).some((each) => each.message.from === 'a' && isCampaign(each.message)), 'the removed server does not campaign');
  const newLeader = network.node(leaders[0]?.id ?? 'b');
  const after = indexOf(newLeader.propose(bytes('after-removal')));
  network.tick(2);
  t.ok(newLeader.status().commitIndex >= after);
});

t.test('§6 one change at a time: a second change is refused with ConfChangeInProgress until the first commits', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  indexOf(a.proposeConfChange({ type: 'addLearner', nodeId: 'd' }));
  const second = a.proposeConfChange({ type: 'addLearner', nodeId: 'e' });
  t.equal(code(second), 'ConfChangeInProgress');
  t.same(a.status().config.learners, ['d'], 'the refused change had no effect');
  network.settle();
  t.equal(code(a.proposeConfChange({ type: 'addLearner', nodeId: 'e' })), 'ok', 'allowed once the first committed');
  t.same(a.status().config.learners, ['d', 'e']);
});

t.test('§6 invalid changes are refused with InvalidConfChange', async (t) => {
  const network = electedNetwork();
  const a = network.node('a');
  t.equal(code(a.proposeConfChange({ type: 'addLearner', nodeId: 'b' })), 'InvalidConfChange', 'adding an existing voter');
  t.equal(code(a.proposeConfChange({ type: 'promote', nodeId: 'b' })), 'InvalidConfChange', 'promoting a voter');
  t.equal(code(a.proposeConfChange({ type: 'promote', nodeId: 'zz' })), 'InvalidConfChange', 'promoting a non-member');
  t.equal(code(a.proposeConfChange({ type: 'remove', nodeId: 'zz' })), 'InvalidConfChange', 'removing a non-member');
  indexOf(a.proposeConfChange({ type: 'addLearner', nodeId: 'd' }));
  network.settle();
  t.equal(code(a.proposeConfChange({ type: 'addLearner', nodeId: 'd' })), 'InvalidConfChange', 'adding an existing learner');
  t.same(a.status().config, { voters: ['a', 'b', 'c'], learners: ['d'] }, 'no refused change had an effect');

  const refused = network.node('b').proposeConfChange({ type: 'addLearner', nodeId: 'c' });
  t.equal(code(refused), 'InvalidConfChange', 'a follower checks the change against the configuration it knows');
  t.equal(refused.ok ? null : refused.leader, 'a', 'with a hint where the leader is');

  const solo = member('solo', ['solo']);
  drain(solo);
  solo.node.campaign();
  drain(solo);
  t.equal(solo.node.status().role, 'leader');
  t.equal(code(solo.node.proposeConfChange({ type: 'remove', nodeId: 'solo' })), 'InvalidConfChange', 'removing the last voter');
});

t.test('§6 a follower forwards a membership change to the leader (core-semantics: value 0, the outcome shows in the configuration)', async (t) => {
  const network = electedNetwork();
  const since = network.log.length;
  t.same(network.node('b').proposeConfChange({ type: 'addLearner', nodeId: 'd' }), { ok: true, value: 0 });
  network.settle();
  t.ok(network.delivered(since).some((message) => message.type === 'proposeConfChange' && message.from === 'b' && message.to === 'a'), 'b forwards to a');
  for (const id of ['a', 'b', 'c']) {
    t.same(network.node(id).status().config.learners, ['d'], `${id} has the forwarded change`);
  }
  // A follower that knows no leader cannot forward.
  const lonely = member('lonely', ['lonely', 'other']);
  drain(lonely);
  t.equal(code(lonely.node.proposeConfChange({ type: 'addLearner', nodeId: 'x' })), 'NoLeader');
});

t.test('§6 with autoPromoteLearners the leader promotes a learner once it has caught up', async (t) => {
  const network = new Network(['a', 'b', 'c'], { autoPromoteLearners: true });
  network.elect('a');
  network.tick(2);
  network.add('d', { autoPromoteLearners: true });
  indexOf(network.node('a').proposeConfChange({ type: 'addLearner', nodeId: 'd' }));
  tickUntil(network, () => network.node('a').status().config.voters.includes('d'), ['a', 'b', 'c', 'd']);
  network.tick(2);
  for (const id of ['a', 'b', 'c', 'd']) {
    t.same(network.node(id).status().config, { voters: ['a', 'b', 'c', 'd'], learners: [] }, `${id} sees d promoted`);
  }
});

// Dissertation §4.1: "a log entry for a configuration change can be removed (if leadership changes);
// in this case, a server must be prepared to fall back to the previous configuration in its log."
t.test('§4.1 a server falls back to the previous configuration when an uncommitted configuration entry is removed from its log', async (t) => {
  const b = member('b', ['a', 'b', 'c']);
  drain(b);
  const withD = { voters: ['a', 'b', 'c'], learners: ['d'] };
  b.node.step({
    type: 'appendEntries',
    from: 'a',
    to: 'b',
    term: 2,
    prevLogIndex: 1,
    prevLogTerm: 1,
    entries: [{ index: 2, term: 2, kind: 'config', change: { type: 'addLearner', nodeId: 'd' }, config: withD }],
    leaderCommit: 1,
  });
  drain(b);
  t.same(b.node.status().config, withD, 'the appended configuration is in use');

  // c leads term 3 without that entry and overwrites index 2.
  b.node.step({
    type: 'appendEntries',
    from: 'c',
    to: 'b',
    term: 3,
    prevLogIndex: 1,
    prevLogTerm: 1,
    entries: [{ index: 2, term: 3, kind: 'normal', data: new Uint8Array(0) }],
    leaderCommit: 2,
  });
  drain(b);
  t.equal(b.storage.term(2), 3);
  t.same(b.node.status().config, { voters: ['a', 'b', 'c'], learners: [] }, 'back to the previous configuration');

  b.restart();
  drain(b);
  t.same(b.node.status().config, { voters: ['a', 'b', 'c'], learners: [] }, 'also after a restart');
});
