// Log replication (Raft paper §5.3 and Figure 2's AppendEntries receiver rules), with the
// performance features the design asks for: fast backtracking, batching and pipelining. Goal:
// a follower accepts entries only after its log matches the leader's at prevLogIndex/prevLogTerm,
// replaces exactly the conflicting suffix, and a leader finds the point of agreement in one round
// trip per conflicting term, sends proposals that arrive together in one AppendEntries, and keeps
// a bounded number of AppendEntries in flight. Method: follower rules are checked by stepping
// hand-made AppendEntries into one node; leader behaviour by running three nodes — some built
// from hand-made logs — on the deterministic network of helpers.ts and reading its message log.

import t from 'tap';
import { Member, Network, bytes, drain, entry, make, member, ofType, storageWith, options } from './helpers.js';

const voters = ['a', 'b', 'c'];

function follower(): Member {
  const b = member('b', voters);
  drain(b);
  return b;
}

t.test('§5.3 "If the follower does not find an entry in its log with the same index and term, then it refuses the new entries"', async (t) => {
  const b = follower();
  b.node.step(make.appendEntries('a', 'b', 2, 1, 1, [entry(2, 2, 'x'), entry(3, 2, 'y')], 1));
  let out = drain(b);
  t.ok(ofType(out.messages, 'appendEntriesResponse').some((message) => message.success && message.matchIndex === 3), 'matching prevLogIndex/prevLogTerm: accepted');
  t.equal(b.storage.lastIndex(), 3);

  // prevLogIndex beyond the follower's log.
  b.node.step(make.appendEntries('a', 'b', 2, 5, 2, [entry(6, 2, 'z')], 1));
  out = drain(b);
  const missing = ofType(out.messages, 'appendEntriesResponse');
  t.equal(missing.length, 1);
  t.match(missing[0], { success: false, rejectedIndex: 5, term: 2 }, 'no entry at prevLogIndex: refused');
  t.same(out.entries, []);
  t.equal(b.storage.lastIndex(), 3);

  // An entry at prevLogIndex, but of another term (a leader of term 3 that never had b's entry 3).
  b.node.step(make.appendEntries('c', 'b', 3, 3, 3, [entry(4, 3, 'w')], 1));
  out = drain(b);
  const mismatch = ofType(out.messages, 'appendEntriesResponse');
  t.equal(mismatch.length, 1);
  t.match(mismatch[0], { success: false, rejectedIndex: 3, term: 3 }, 'term at prevLogIndex differs: refused');
  t.same(out.entries, []);
  t.equal(b.storage.lastIndex(), 3);
  t.equal(b.storage.term(3), 2, 'the follower\'s entry is untouched by a refused request');
});

t.test('§5.3 Figure 2 "If an existing entry conflicts with a new one (same index but different terms), delete the existing entry and all that follow it" and "Append any new entries not already in the log"', async (t) => {
  const b = follower();
  b.node.step(make.appendEntries('a', 'b', 2, 1, 1, [entry(2, 2, 'x'), entry(3, 2, 'y'), entry(4, 2, 'z')], 1));
  drain(b);
  t.equal(b.storage.lastIndex(), 4);

  b.node.step(make.appendEntries('c', 'b', 3, 1, 1, [entry(2, 3, 'p'), entry(3, 3, 'q')], 1));
  let out = drain(b);
  t.ok(ofType(out.messages, 'appendEntriesResponse').some((message) => message.success && message.matchIndex === 3));
  t.equal(out.entries[0]?.index, 2, 'the stored suffix is replaced from the first conflicting index');
  t.equal(b.storage.lastIndex(), 3, 'entry 4 of the old term is gone');
  t.same([b.storage.term(2), b.storage.term(3)], [3, 3]);

  // A delayed copy of an earlier, shorter AppendEntries must not cut the log (no conflict → no deletion).
  b.node.step(make.appendEntries('c', 'b', 3, 1, 1, [entry(2, 3, 'p')], 1));
  out = drain(b);
  t.same(out.entries, [], 'entries already in the log are not written again');
  t.equal(b.storage.lastIndex(), 3, 'a stale shorter request does not truncate matching entries');
  t.ok(ofType(out.messages, 'appendEntriesResponse').every((message) => message.success), 'the stale request still matches');

  // "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new entry)"
  b.node.step(make.appendEntries('c', 'b', 3, 3, 3, [], 3));
  out = drain(b);
  t.equal(b.node.status().commitIndex, 3);
  t.same(out.committedEntries.map((each) => [each.index, each.term]), [[2, 3], [3, 3]], 'the leader\'s entries are applied, never the overwritten ones');
});

t.test('§5.3 "the leader can decrement nextIndex to bypass all of the conflicting entries in that term; one AppendEntries RPC will be required for each term with conflicting entries, rather than one RPC per entry"', async (t) => {
  // a and c hold entries 2..8 of term 3; b holds entries 2..11 of term 2 that were never committed.
  const leaderLog = [2, 3, 4, 5, 6, 7, 8].map((index) => entry(index, 3, `t3-${index}`));
  const staleLog = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((index) => entry(index, 2, `t2-${index}`));
  const a = new Member('a', storageWith(voters, leaderLog, { term: 3 }), options('a'));
  const b = new Member('b', storageWith(voters, staleLog, { term: 2 }), options('b'));
  const c = new Member('c', storageWith(voters, leaderLog, { term: 3 }), options('c'));
  const network = Network.of([a, b, c]);
  network.elect('a');
  t.equal(a.node.status().role, 'leader');
  const term = a.node.status().term;

  const toB = network.log.map((each) => each.message).filter((message) => (message.to === 'b' && message.type === 'appendEntries') || (message.from === 'b' && message.type === 'appendEntriesResponse'));
  const rejections = ofType(toB, 'appendEntriesResponse').filter((message) => !message.success);
  t.equal(rejections.length, 1, `one rejection for the one conflicting term (got ${rejections.length})`);
  const appends = ofType(toB, 'appendEntries');
  const afterRejection = appends[1];
  t.equal(afterRejection?.prevLogIndex, 1, 'the second AppendEntries skips the whole conflicting term at once');

  t.equal(b.storage.lastIndex(), a.storage.lastIndex(), 'b\'s log has the leader\'s length');
  for (let index = 1; index <= a.storage.lastIndex(); index++) {
    t.equal(b.storage.term(index), a.storage.term(index), `entry ${index} agrees`);
  }
  t.equal(a.storage.term(a.storage.lastIndex()), term, 'the leader\'s own entry ends both logs');
  network.tick(2);
  t.equal(b.node.status().commitIndex, a.node.status().commitIndex);
});

t.test('batching (design: "proposals that arrive together go out in one AppendEntries and one fsync"): several proposals between two ready() calls leave in one AppendEntries per follower', async (t) => {
  const network = new Network(voters);
  network.elect('a');
  network.tick(2);
  const a = network.get('a');
  const firstIndex = a.storage.lastIndex() + 1;
  for (let i = 0; i < 5; i++) t.ok(a.node.propose(bytes(`p${i}`)).ok);
  const out = drain(a);

  const withEntries = out.readies.filter((ready) => ready.entries.length > 0);
  t.equal(withEntries.length, 1, 'one Ready (one fsync) holds all five entries');
  t.same(withEntries[0]?.entries.map((each) => each.index), [0, 1, 2, 3, 4].map((i) => firstIndex + i));
  for (const peer of ['b', 'c']) {
    const appends = ofType(out.messages, 'appendEntries').filter((message) => message.to === peer);
    t.equal(appends.length, 1, `one AppendEntries to ${peer}`);
    t.same(appends[0]?.entries.map((each) => each.index), [0, 1, 2, 3, 4].map((i) => firstIndex + i), `it carries all five entries to ${peer}`);
  }
  for (const sent of out.sent) {
    t.ok(sent.durableLastIndex >= firstIndex + 4, 'the leader\'s entries are durable before its AppendEntries leave');
  }
  for (const message of out.messages) network.deliver(message);
  network.settle();
  t.same(network.get('c').applied, ['p0', 'p1', 'p2', 'p3', 'p4']);
});

t.test('pipelining (dissertation §10.2.1): several AppendEntries are in flight to one follower before any response, at most maxInflightMessages', async (t) => {
  const maxInflightMessages = 3;
  const network = new Network(voters, { maxInflightMessages });
  network.elect('a');
  network.tick(2);
  const a = network.get('a');
  t.equal(a.node.status().progress?.get('b')?.state, 'replicate', 'b is in steady replication');

  const held: ReturnType<typeof drain>['messages'] = [];
  const proposed: number[] = [];
  for (let i = 0; i < 6; i++) {
    const result = a.node.propose(bytes(`q${i}`));
    if (result.ok) proposed.push(result.value);
    held.push(...drain(a).messages);
  }
  t.equal(proposed.length, 6);
  const toB = ofType(held, 'appendEntries').filter((message) => message.to === 'b' && message.entries.length > 0);
  t.equal(toB.length, maxInflightMessages, `${maxInflightMessages} AppendEntries to b are in flight without any response`);
  t.same(toB.map((message) => message.entries[0]?.index), proposed.slice(0, maxInflightMessages), 'each carries the next proposal');

  // b acknowledges the first one: the window opens and the rest leave.
  const first = toB[0];
  if (first === undefined) throw new Error('no AppendEntries');
  const b = network.get('b');
  b.node.step(first);
  const answer = ofType(drain(b).messages, 'appendEntriesResponse');
  t.equal(answer.length, 1);
  for (const message of answer) a.node.step(message);
  const resumed = ofType(drain(a).messages, 'appendEntries').filter((message) => message.to === 'b');
  const resumedIndexes = resumed.flatMap((message) => message.entries.map((each) => each.index));
  t.equal(resumed.length, 1, 'one slot freed: one more AppendEntries');
  t.ok(resumedIndexes.includes(proposed[maxInflightMessages] ?? -1), 'it carries the first proposal that waited');
});

t.test('design "Put a limit on everything": one AppendEntries carries at most maxMessageBytes of entry data (or a single larger entry)', async (t) => {
  const maxMessageBytes = 250;
  const network = new Network(voters, { maxMessageBytes });
  network.elect('a');
  network.tick(2);
  const a = network.node('a');
  for (let i = 0; i < 10; i++) t.ok(a.propose(bytes(`${i}`.padEnd(100, '.'))).ok);
  t.ok(a.propose(bytes('x'.repeat(400))).ok, 'an entry larger than the limit');
  const since = network.log.length;
  network.settle();
  const appends = ofType(network.delivered(since), 'appendEntries').filter((message) => message.entries.length > 0);
  for (const message of appends) {
    const size = message.entries.reduce((sum, each) => sum + (each.kind === 'normal' ? each.data.byteLength : 64), 0);
    t.ok(message.entries.length === 1 || size <= maxMessageBytes, `AppendEntries to ${message.to} carries ${size} bytes in ${message.entries.length} entries`);
  }
  for (const id of ['b', 'c']) t.equal(network.get(id).applied.length, 11, `${id} applied everything`);
});

// Dissertation §10.2.1 lets the leader write its log in parallel with replicating it: it may
// count a majority of followers that stored an entry, but it may count itself only once its own
// write is durable (a Ready's entries become durable when the driver calls advance()).
t.test('dissertation §10.2.1: the leader counts its own copy of an entry towards a majority only once it is durable', async (t) => {
  const network = new Network(voters);
  network.elect('a');
  network.tick(2);
  const [a, b] = [network.get('a'), network.get('b')];
  const index = a.node.propose(bytes('parallel'));
  t.ok(index.ok);
  const entryIndex = index.ok ? index.value : -1;
  const ready = a.node.ready(); // the leader's write is not done yet
  t.ok(ready.entries.some((each) => each.index === entryIndex));
  const toB = ready.messages.filter((message) => message.to === 'b');
  t.ok(toB.length >= 1, 'replication to b starts with the same Ready');
  for (const message of toB) b.node.step(message);
  for (const message of drain(b).messages) if (message.to === 'a') a.node.step(message);
  t.ok(a.node.status().commitIndex < entryIndex, 'b alone plus a\'s unwritten copy is not a majority');

  a.storage.append(ready.entries);
  if (ready.hardState !== null) a.storage.setHardState(ready.hardState);
  a.node.advance(ready);
  t.ok(a.node.status().commitIndex >= entryIndex, 'once a\'s copy is durable, a and b are a majority');
  const out = drain(a);
  t.ok(out.committedEntries.some((each) => each.index === entryIndex), 'and the entry is applied');
});
