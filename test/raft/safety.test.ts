// Safety (Raft paper §5.4). Goal: a voter never elects a candidate whose log is less up-to-date
// than its own (§5.4.1), and a leader never decides that an entry of an earlier term is committed
// by counting its replicas (§5.4.2, Figure 8). Method: the election restriction is checked by
// stepping hand-made RequestVote/PreVote messages into fresh voters built from hand-made logs;
// Figure 8 is rebuilt with five nodes whose storages start in the figure's state (indexes shifted
// by one for the bootstrap entry), on the deterministic network of helpers.ts, where a rewrite
// filter lets the old-term entry reach the followers while the leader's own entry does not.

import t from 'tap';
import { Member, Network, drain, electionTimeoutTicks, entry, make, ofType, options, storageWith } from './helpers.js';
import type { Message } from '../../src/raft/types.js';

const voters = ['a', 'b', 'c'];

/** A voter holding entries 1 (term 1), 2 and 3 (term 2), no leader known. */
function voter(): Member {
  const b = new Member('b', storageWith(voters, [entry(2, 2, 'x'), entry(3, 2, 'y')], { term: 2 }), options('b'));
  drain(b);
  return b;
}

function answer(b: Member, request: Message): boolean {
  b.node.step(request);
  const out = drain(b);
  const answers = out.messages.filter((message) => message.type === 'requestVoteResponse' || message.type === 'preVoteResponse');
  return answers.some((message) => (message.type === 'requestVoteResponse' || message.type === 'preVoteResponse') && message.granted);
}

t.test('§5.4.1 "the voter denies its vote if its own log is more up-to-date than that of the candidate": "If the logs have last entries with different terms, then the log with the later term is more up-to-date"', async (t) => {
  let b = voter();
  t.notOk(answer(b, make.requestVote('a', 'b', 4, 9, 1)), 'a longer log ending in an earlier term loses');
  t.not(b.storage.hardState().vote, 'a', 'no vote is recorded');
  t.equal(b.node.status().term, 4, 'the term is still adopted (§5.1)');

  b = voter();
  t.ok(answer(b, make.requestVote('a', 'b', 4, 2, 3)), 'a shorter log ending in a later term wins');
  t.match(b.storage.hardState(), { term: 4, vote: 'a' });
});

t.test('§5.4.1 "If the logs end with the same term, then whichever log is longer is more up-to-date"', async (t) => {
  let b = voter();
  t.notOk(answer(b, make.requestVote('a', 'b', 4, 2, 2)), 'a shorter log of the same last term loses');

  b = voter();
  t.ok(answer(b, make.requestVote('a', 'b', 4, 3, 2)), 'an equal log is up-to-date enough');

  b = voter();
  t.ok(answer(b, make.requestVote('a', 'b', 4, 7, 2)), 'a longer log of the same last term wins');
});

t.test('§5.4.1 and §9.6: a pre-vote is answered with the same up-to-date rule', async (t) => {
  let b = voter();
  t.notOk(answer(b, make.preVote('a', 'b', 3, 9, 1)), 'pre-vote denied to a less up-to-date log');
  t.equal(b.node.status().term, 2, 'a pre-vote never changes the voter\'s term');
  b = voter();
  t.ok(answer(b, make.preVote('a', 'b', 3, 3, 2)), 'pre-vote granted to an up-to-date log');
  t.equal(b.node.status().term, 2);
  t.equal(b.storage.hardState().vote, null, 'a pre-vote records no vote');
});

t.test('§5.4.1 end to end: a server whose log lacks a committed entry cannot become leader', async (t) => {
  const network = new Network(voters);
  network.elect('a');
  const cut = network.isolate('c');
  t.ok(network.node('a').propose(new TextEncoder().encode('committed')).ok);
  network.settle();
  t.same(network.get('b').applied, ['committed']);
  cut();
  network.isolate('a');
  // b restarts, so it knows no leader and no lease stands in the way: only its log can refuse c.
  network.get('b').restart();
  network.settle();
  // c (missing the entry) campaigns against b (which has it).
  const since = network.log.length;
  for (let i = 0; i < 30; i++) {
    network.node('c').campaign();
    network.settle();
  }
  const grantsToC = network.log
    .slice(since)
    .map((each) => each.message)
    .filter((message) => (message.type === 'requestVoteResponse' || message.type === 'preVoteResponse') && message.to === 'c' && message.granted);
  t.same(grantsToC, [], 'b never grants c a (pre-)vote');
  t.not(network.node('c').status().role, 'leader');
});

// Figure 8, indexes shifted by one (entry 1 is the bootstrap entry of term 1):
// s1 and s2 hold entry 2 of term 2; s5 holds entry 2 of term 3 and is down; s3 and s4 voted for s5
// in term 3. s1 wins term 4 with s2, s3, s4 and appends its no-op (entry 3, term 4).
const ids = ['s1', 's2', 's3', 's4', 's5'];
const longEntry = 'x'.repeat(100);

function figure8(): Network {
  const network = Network.of([
    new Member('s1', storageWith(ids, [entry(2, 2, longEntry)], { term: 3 }), options('s1')),
    new Member('s2', storageWith(ids, [entry(2, 2, longEntry)], { term: 2 }), options('s2')),
    new Member('s3', storageWith(ids, [], { term: 3, vote: 's5' }), options('s3')),
    new Member('s4', storageWith(ids, [], { term: 3, vote: 's5' }), options('s4')),
    new Member('s5', storageWith(ids, [entry(2, 3, 'from-s5')], { term: 3, vote: 's5' }), options('s5')),
  ]);
  network.isolate('s5'); // s5 is down
  return network;
}

/** Lets AppendEntries through but strips the leader's current-term entries from them. */
function withoutTerm(term: number): (message: Message) => Message {
  return (message) => {
    if (message.type !== 'appendEntries') return message;
    const cut = message.entries.findIndex((each) => each.term >= term);
    return cut < 0 ? message : { ...message, entries: message.entries.slice(0, cut) };
  };
}

function votesFromRestartedFollowers(network: Network, candidateLog: { index: number; term: number }): string[] {
  const granted: string[] = [];
  for (const id of ['s2', 's3', 's4']) {
    const follower = network.get(id);
    follower.restart(); // no leader known after a restart: no lease in the way
    drain(follower);
    const term = follower.node.status().term + 1;
    follower.node.step(make.requestVote('s5', id, term, candidateLog.index, candidateLog.term));
    if (ofType(drain(follower).messages, 'requestVoteResponse').some((message) => message.granted)) granted.push(id);
  }
  return granted;
}

t.test('§5.4.2 "a leader cannot immediately conclude that an entry from a previous term is committed once it is stored on a majority of servers" (Figure 8 c/d)', async (t) => {
  const again = figure8();
  again.addRewrite(withoutTerm(4));
  again.elect('s1');
  const leader = again.get('s1');
  t.match(leader.node.status(), { role: 'leader', term: 4 });
  t.equal(leader.storage.term(3), 4, 'the leader\'s no-op is entry 3, term 4');
  const progress = leader.node.status().progress;
  for (const id of ['s2', 's3', 's4']) {
    t.equal(progress?.get(id)?.match, 2, `${id} is known to hold entry 2 (term 2)`);
  }
  t.equal(leader.node.status().commitIndex, 1, '"Raft never commits log entries from previous terms by counting replicas"');
  for (const id of ['s1', 's2', 's3', 's4']) {
    t.notOk(again.get(id).history.committedEntries.some((each) => each.index >= 2), `${id} applied nothing past entry 1`);
  }

  // Why: if s1 crashed now, s5 (last entry of term 3) could collect votes from s2, s3 and s4 and
  // overwrite entry 2 — which must therefore not have been reported committed.
  const granted = votesFromRestartedFollowers(again, { index: 2, term: 3 });
  t.same(granted, ['s2', 's3', 's4'], 'a majority would elect s5 (Figure 8 d)');
});

t.test('§5.4.2 "Only log entries from the leader\'s current term are committed by counting replicas; once an entry from the current term has been committed in this way, then all prior entries are committed indirectly" (Figure 8 e)', async (t) => {
  const network = figure8();
  const lift = network.addRewrite(withoutTerm(4));
  network.elect('s1');
  const leader = network.get('s1');
  t.equal(leader.node.status().commitIndex, 1, 'entry 2 alone on a majority: not committed');

  // The leader's current-term entry now gets through (the core resends what was lost once a
  // follower has made no progress for an election timeout, so allow a few timeouts).
  lift();
  for (let tick = 0; tick < 3 * electionTimeoutTicks && leader.node.status().commitIndex < 3; tick++) {
    network.tick(1, ['s1', 's2', 's3', 's4']);
  }
  t.equal(leader.node.status().commitIndex, 3, 'entry 3 (term 4) on a majority commits it and entry 2');
  t.same(
    leader.history.committedEntries.map((each) => [each.index, each.term]),
    [
      [1, 1],
      [2, 2],
      [3, 4],
    ],
  );
  t.same(leader.applied, [longEntry]);

  const granted = votesFromRestartedFollowers(network, { index: 2, term: 3 });
  t.same(granted, [], 's5 can no longer win: every voter of the majority has a more up-to-date log');
});
