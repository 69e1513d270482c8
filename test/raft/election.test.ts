// Leader election (Raft paper §5.1 and §5.2). Goal: check, one sentence of the paper at a time,
// that a follower times out into a campaign, that a candidate votes for itself and wins with a
// majority, that a server votes at most once per term and makes that vote durable before its
// answer leaves, that a candidate yields to a legitimate leader, that timeouts are randomized and
// that terms are exchanged on every message. Method: the tests play the other servers themselves,
// stepping hand-made messages into one or a few RaftNode instances and reading what comes out of
// the Ready loop (helpers.ts `drain`) and status(). The core campaigns with a pre-vote round first
// (dissertation §9.6), so a real election starts once the pre-vote round has a majority.

import t from 'tap';
import { drain, electionTimeoutTicks, isCampaign, make, member, ofType, type Member } from './helpers.js';

const voters3 = ['a', 'b', 'c'];
const voters5 = ['a', 'b', 'c', 'd', 'e'];

/** Ticks `target` one tick at a time until it sends a campaign message; returns the tick count. */
function ticksUntilCampaign(target: Member, limit: number): number {
  for (let ticks = 1; ticks <= limit; ticks++) {
    target.node.tick();
    if (drain(target).messages.some(isCampaign)) return ticks;
  }
  return -1;
}

/** Makes `target` a candidate by granting its pre-vote round with `grantors`. */
function makeCandidate(target: Member, grantors: readonly string[]): void {
  drain(target);
  target.node.campaign();
  const preVotes = ofType(drain(target).messages, 'preVote');
  for (const grantor of grantors) {
    const preVote = preVotes.find((message) => message.to === grantor);
    if (preVote === undefined) throw new Error(`no pre-vote to ${grantor}`);
    target.node.step(make.preVoteResponse(grantor, target.id, preVote.term, true));
  }
}

t.test('§5.2 "If a follower receives no communication over a period of time called the election timeout, then it assumes there is no viable leader and begins an election"', async (t) => {
  const a = member('a', voters3);
  drain(a);
  for (let tick = 1; tick < electionTimeoutTicks; tick++) a.node.tick();
  t.same(drain(a).messages.filter(isCampaign), [], 'no campaign before the minimum election timeout');
  t.equal(a.node.status().role, 'follower');

  const more = ticksUntilCampaign(a, electionTimeoutTicks + 1);
  t.not(more, -1, 'a campaign starts within twice the election timeout');
  const campaign = a.history.messages.filter(isCampaign);
  t.same(campaign.map((message) => message.to).sort(), ['b', 'c'], 'every other voter is asked');
  for (const message of campaign) {
    t.equal(message.type, 'preVote', 'the campaign starts with a pre-vote round');
    t.equal(message.term, 2, 'pre-vote asks for the next term');
    t.match(message, { lastLogIndex: 1, lastLogTerm: 1 });
  }
  t.equal(a.node.status().role, 'preCandidate');
  t.equal(a.node.status().term, 1, 'the pre-vote round does not raise the term');
});

t.test('§5.2 "To begin an election, a follower increments its current term and transitions to candidate state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other servers"', async (t) => {
  const a = member('a', voters3);
  makeCandidate(a, ['b']);
  const out = drain(a);
  const status = a.node.status();
  t.equal(status.role, 'candidate');
  t.equal(status.term, 2);
  t.equal(status.vote, 'a', 'the candidate votes for itself');
  t.match(a.storage.hardState(), { term: 2, vote: 'a' }, 'the self-vote is durable');
  const requests = out.sent.filter((sent) => sent.message.type === 'requestVote');
  t.same(requests.map((sent) => sent.message.to).sort(), ['b', 'c'], 'RequestVote goes to every other voter');
  for (const sent of requests) {
    t.match(sent.message, { term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    t.match(sent.durableHardState, { term: 2, vote: 'a' }, 'term and self-vote are durable before the request leaves');
  }
});

t.test('§5.2 "A candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term"', async (t) => {
  const a = member('a', voters5);
  makeCandidate(a, ['b', 'c']);
  drain(a);
  t.equal(a.node.status().role, 'candidate');
  const term = a.node.status().term;

  a.node.step(make.requestVoteResponse('b', 'a', term, true));
  drain(a);
  t.equal(a.node.status().role, 'candidate', 'two votes of five (its own and b) are not a majority');

  a.node.step(make.requestVoteResponse('c', 'a', term - 1, true));
  drain(a);
  t.equal(a.node.status().role, 'candidate', 'a vote from an earlier term does not count');

  a.node.step(make.requestVoteResponse('d', 'a', term, false));
  drain(a);
  t.equal(a.node.status().role, 'candidate', 'a rejection does not count');

  a.node.step(make.requestVoteResponse('c', 'a', term, true));
  const out = drain(a);
  t.equal(a.node.status().role, 'leader', 'three votes of five are a majority');
  t.equal(a.node.status().leader, 'a');
  t.equal(a.node.status().term, term, 'winning does not change the term');
  // "It then sends heartbeat messages to all of the other servers to establish its authority"
  const authority = out.messages.filter((message) => message.type === 'appendEntries' || message.type === 'heartbeat');
  t.same([...new Set(authority.map((message) => message.to))].sort(), ['b', 'c', 'd', 'e'], 'the new leader contacts every other server');
});

t.test('§5.2 a one-server cluster: "It then votes for itself" and that vote is a majority', async (t) => {
  const solo = member('solo', ['solo']);
  drain(solo);
  solo.node.campaign();
  drain(solo);
  t.equal(solo.node.status().role, 'leader');
  t.equal(solo.node.status().term, 2);
});

t.test('§5.2 "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis"; Figure 2: currentTerm and votedFor are "Updated on stable storage before responding to RPCs"', async (t) => {
  const b = member('b', voters3);
  drain(b);

  b.node.step(make.requestVote('a', 'b', 2, 1, 1));
  const first = drain(b);
  const granted = first.sent.filter((sent) => sent.message.type === 'requestVoteResponse' && sent.message.to === 'a');
  t.equal(granted.length, 1, 'one answer to a');
  t.match(granted[0]?.message, { granted: true, term: 2 }, 'the first candidate of term 2 gets the vote');
  t.match(granted[0]?.durableHardState, { term: 2, vote: 'a' }, 'the vote is durable before the answer leaves');
  const readyWithAnswer = first.readies.find((ready) => ready.messages.some((message) => message.type === 'requestVoteResponse'));
  t.match(readyWithAnswer?.hardState, { term: 2, vote: 'a' }, 'the hard state with the vote is in the same Ready as the answer');

  b.node.step(make.requestVote('c', 'b', 2, 1, 1));
  const second = drain(b);
  t.notOk(
    ofType(second.messages, 'requestVoteResponse').some((message) => message.granted),
    'a second candidate of the same term gets no vote',
  );
  t.equal(b.node.status().vote, 'a');

  // The vote survives a crash: after a restart from storage, c still gets nothing in term 2.
  b.restart();
  drain(b);
  t.equal(b.node.status().term, 2);
  t.equal(b.node.status().vote, 'a', 'the vote is read back from storage');
  b.node.step(make.requestVote('c', 'b', 2, 1, 1));
  t.notOk(
    ofType(drain(b).messages, 'requestVoteResponse').some((message) => message.granted),
    'no second vote in term 2 after a restart',
  );
});

t.test('§5.2 "If the leader\'s term (included in its RPC) is at least as large as the candidate\'s current term, then the candidate recognizes the leader as legitimate and returns to follower state"', async (t) => {
  const a = member('a', voters3);
  makeCandidate(a, ['b']);
  drain(a);
  t.equal(a.node.status().role, 'candidate');
  t.equal(a.node.status().term, 2);

  a.node.step(make.appendEntries('c', 'a', 2, 1, 1, [], 1));
  const out = drain(a);
  const status = a.node.status();
  t.equal(status.role, 'follower');
  t.equal(status.leader, 'c');
  t.equal(status.term, 2);
  t.ok(
    ofType(out.messages, 'appendEntriesResponse').some((message) => message.to === 'c' && message.success),
    'the AppendEntries of the legitimate leader is accepted',
  );
});

t.test('§5.2 "If the term in the RPC is smaller than the candidate\'s current term, then the candidate rejects the RPC and continues in candidate state"', async (t) => {
  const a = member('a', voters3);
  makeCandidate(a, ['b']);
  drain(a);
  t.equal(a.node.status().role, 'candidate');

  a.node.step(make.appendEntries('c', 'a', 1, 1, 1, [], 1));
  const out = drain(a);
  t.equal(a.node.status().role, 'candidate');
  t.equal(a.node.status().term, 2);
  t.notOk(
    ofType(out.messages, 'appendEntriesResponse').some((message) => message.success),
    'the stale AppendEntries is not accepted',
  );
});

t.test('§5.2 "election timeouts are chosen randomly from a fixed interval": different servers time out after different numbers of ticks', async (t) => {
  const firstTimeouts = voters5.map((id) => {
    const each = member(id, voters5);
    drain(each);
    return ticksUntilCampaign(each, 2 * electionTimeoutTicks + 1);
  });
  for (const ticks of firstTimeouts) {
    t.ok(ticks >= electionTimeoutTicks && ticks <= 2 * electionTimeoutTicks, `timeout ${ticks} lies in [base, 2·base]`);
  }
  t.ok(new Set(firstTimeouts).size > 1, `the five servers do not all time out together (${firstTimeouts.join(', ')})`);
});

t.test('§5.1 "If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state" (leader, through a response)', async (t) => {
  const a = member('a', voters3);
  makeCandidate(a, ['b']);
  a.node.step(make.requestVoteResponse('b', 'a', 2, true));
  drain(a);
  t.equal(a.node.status().role, 'leader');

  a.node.step({
    type: 'appendEntriesResponse',
    from: 'b',
    to: 'a',
    term: 5,
    success: false,
    matchIndex: 0,
    rejectedIndex: 1,
    conflictIndex: 0,
    conflictTerm: 0,
  });
  const out = drain(a);
  const status = a.node.status();
  t.equal(status.role, 'follower', 'a response with a higher term deposes the leader');
  t.equal(status.term, 5, '"it updates its current term to the larger value"');
  t.equal(a.storage.hardState().term, 5, 'the new term is durable');
  t.equal(a.storage.hardState().vote, null, 'no vote yet in the new term');
  t.same(out.messages.filter((message) => message.type === 'appendEntries'), [], 'a deposed leader replicates nothing');
});

t.test('§5.1 "If a candidate or leader discovers that its term is out of date, it immediately reverts to follower state" (candidate, through a vote request)', async (t) => {
  const a = member('a', voters3);
  makeCandidate(a, ['b']);
  drain(a);
  t.equal(a.node.status().role, 'candidate');

  a.node.step(make.requestVote('c', 'a', 3, 1, 1));
  const out = drain(a);
  t.equal(a.node.status().role, 'follower');
  t.equal(a.node.status().term, 3);
  t.ok(
    ofType(out.messages, 'requestVoteResponse').some((message) => message.to === 'c' && message.granted && message.term === 3),
    'the former candidate may vote in the new term (c\'s log is as up-to-date)',
  );
});

t.test('§5.1 "Current terms are exchanged whenever servers communicate" and "If a server receives a request with a stale term number, it rejects the request"', async (t) => {
  const b = member('b', voters3);
  drain(b);
  // c leads term 3 and b follows it.
  b.node.step(make.appendEntries('c', 'b', 3, 1, 1, [], 1));
  drain(b);
  t.equal(b.node.status().term, 3);
  t.equal(b.node.status().leader, 'c');

  // a still believes it leads term 2 and tries to append.
  b.node.step(make.appendEntries('a', 'b', 2, 1, 1, [{ index: 2, term: 2, kind: 'normal', data: new Uint8Array([1]) }], 1));
  const out = drain(b);
  t.same(out.entries, [], 'the stale leader\'s entries are not appended');
  t.equal(b.storage.lastIndex(), 1);
  t.equal(b.node.status().term, 3);
  t.equal(b.node.status().leader, 'c', 'the stale leader is not followed');
  const answers = out.messages.filter((message) => message.to === 'a');
  t.notOk(
    ofType(answers, 'appendEntriesResponse').some((message) => message.success),
    'no success is reported to the stale leader',
  );
  t.ok(answers.every((message) => message.term === 3), 'any answer carries the current term so the stale leader learns it');

  b.node.step(make.requestVote('a', 'b', 2, 5, 2));
  const vote = drain(b);
  t.notOk(
    ofType(vote.messages, 'requestVoteResponse').some((message) => message.granted),
    'a vote request of a stale term is rejected',
  );
  t.equal(b.node.status().vote, b.storage.hardState().vote);
  t.not(b.node.status().vote, 'a');
});
