// Tests of the simulator's checkers themselves: a checker that accepts everything would make every
// sweep pass. Method: each subtest hand-builds one bad situation (two leaders in a term, a leader
// without a majority of votes of its term, logs that share an entry but not its prefix, a leader
// missing a committed entry, a leader committing an older term's entry by counting, a replica that
// applied something else, a stale or backwards read, ...) and expects the checker to reject it with
// the right property, next to a good situation of the same shape that it must accept.

import t, { type Test } from 'tap';

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { bootstrap } from '../../src/raft/storage.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import {
  SafetyChecker,
  checkHistory,
  checkReplicasAgree,
  checkStoredLogs,
  type ReadRecord,
  type WriteRecord,
} from './checkers.js';
import { encodeCommand, entryPayload, nextDigest } from './state-machine.js';

const voters = ['n1', 'n2', 'n3'];

function put(index: number, term: number, writeId: string, key = 'k'): Entry {
  return { index, term, kind: 'normal', data: encodeCommand({ writeId, key }) };
}

/** A bootstrapped log holding `entries` after entry 1. */
function log(entries: readonly Entry[], commit = 1): MemoryStorage {
  const storage = new MemoryStorage();
  bootstrap(storage, voters);
  if (entries.length > 0) storage.append(entries);
  storage.setHardState({ term: entries.at(-1)?.term ?? 1, vote: null, commit });
  return storage;
}

function bootstrapEntry(): Entry {
  return { index: 1, term: 1, kind: 'config', change: { type: 'bootstrap' }, config: { voters, learners: [] } };
}

/** Feeds `entries` to the checker as `nodeId` applying them from scratch; returns the digest. */
function applyAll(checker: SafetyChecker, nodeId: NodeId, entries: readonly Entry[]): number {
  let digest = 0;
  let applied = 0;
  for (const entry of entries) {
    digest = nextDigest(digest, entry.index, entry.term, entryPayload(entry));
    checker.onApply(nodeId, entry.term, entry, applied, digest, null);
    applied = entry.index;
  }
  return digest;
}

function rejects(t: Test, property: string, run: () => void): void {
  t.throws(run, { name: 'SafetyViolation', property }, `rejected as ${property}`);
}

/** Each of `voters` persists a vote for `candidate` in `term`, as the driver reports hard states. */
function vote(checker: SafetyChecker, candidate: NodeId, term: number, voters: readonly NodeId[]): void {
  for (const voter of voters) checker.onHardState(voter, { term: term - 1, vote: null, commit: 1 }, { term, vote: candidate, commit: 1 });
}

/** Votes for `leader` by itself and the next node of n1..n3: a majority of the bootstrap voters. */
function elect(checker: SafetyChecker, leader: NodeId, term: number): void {
  vote(checker, leader, term, [leader, leader === 'n1' ? 'n2' : 'n1']);
}

t.test('election safety: two leaders of one term are rejected, across the whole run', (t) => {
  const checker = new SafetyChecker();
  elect(checker, 'n1', 2);
  checker.onLeader('n1', 2, log([]));
  t.doesNotThrow(() => checker.onLeader('n1', 2, log([])), 'the same leader seen twice is fine');
  elect(checker, 'n2', 3);
  t.doesNotThrow(() => checker.onLeader('n2', 3, log([])), 'another leader of a later term is fine');
  vote(checker, 'n3', 2, ['n3']);
  rejects(t, 'election safety', () => checker.onLeader('n3', 2, log([])));
  t.end();
});

t.test('election safety: a leader needs votes of a majority of its configuration, persisted in its own term', (t) => {
  const checker = new SafetyChecker();
  vote(checker, 'n1', 2, ['n1', 'n2']);
  t.doesNotThrow(() => checker.onLeader('n1', 2, log([])), 'two votes of three in the term are enough');
  // n2's vote for n3 in term 3 is the one a delayed response from an earlier election would carry.
  vote(checker, 'n3', 3, ['n3', 'n2']);
  vote(checker, 'n3', 4, ['n3']);
  vote(checker, 'n1', 4, ['n2']);
  rejects(t, 'election safety', () => checker.onLeader('n3', 4, log([])));
  // The configuration is the latest one in the leader's log: five voters need three votes.
  const fiveVoters = { voters: ['n1', 'n2', 'n3', 'n4', 'n5'], learners: [] };
  const grown: Entry = { index: 2, term: 5, kind: 'config', change: { type: 'promote', nodeId: 'n5' }, config: fiveVoters };
  vote(checker, 'n1', 5, ['n1', 'n2']);
  rejects(t, 'election safety', () => checker.onLeader('n1', 5, log([grown])));
  vote(checker, 'n1', 6, ['n1', 'n2', 'n4']);
  t.doesNotThrow(() => checker.onLeader('n1', 6, log([grown])), 'three votes of five are enough');
  t.end();
});

t.test('commit rule: a leader commits by counting only an entry of its own term (§5.4.2)', (t) => {
  const checker = new SafetyChecker();
  const noOp: Entry = { index: 3, term: 4, kind: 'normal', data: new Uint8Array(0) };
  const storage = log([put(2, 2, 'a'), noOp, put(4, 4, 'b')]);
  t.doesNotThrow(() => checker.onLeaderCommit('n1', 4, 1, 3, storage), 'committing its own entry (and entry 2 with it) is fine');
  t.doesNotThrow(() => checker.onLeaderCommit('n1', 4, 3, 4, storage));
  rejects(t, 'commit rule', () => checker.onLeaderCommit('n1', 4, 1, 2, storage));
  t.end();
});

t.test('log matching: the same index and term with another payload or another prefix is rejected', (t) => {
  const good = new Map([
    ['n1', log([put(2, 1, 'a'), put(3, 2, 'b')])],
    ['n2', log([put(2, 1, 'a'), put(3, 2, 'b'), put(4, 2, 'c')])],
    ['n3', log([put(2, 1, 'a'), put(3, 3, 'x')])],
  ]);
  t.doesNotThrow(() => checkStoredLogs(good), 'logs that diverge only after their last common entry are fine');
  rejects(t, 'log matching', () => checkStoredLogs(new Map([['n1', log([put(2, 1, 'a')])], ['n2', log([put(2, 1, 'b')])]])));
  // Entry 3 of term 2 is the same in both, but the entries before it differ.
  const differentPrefix = new Map([
    ['n1', log([put(2, 1, 'a'), put(3, 2, 'b')])],
    ['n2', log([put(2, 2, 'z'), put(3, 2, 'b')])],
  ]);
  rejects(t, 'log matching', () => checkStoredLogs(differentPrefix));
  t.end();
});

t.test('log matching holds over time: an entry rewritten with another prefix is rejected when appended', (t) => {
  const checker = new SafetyChecker();
  const storage = log([put(2, 1, 'a')]);
  checker.onAppend('n1', [put(3, 2, 'b')], storage);
  const other = log([put(2, 2, 'z')]);
  rejects(t, 'log matching', () => checker.onAppend('n2', [put(3, 2, 'b')], other));
  t.end();
});

t.test('no committed entry lost: overwriting an entry at or below the node\'s commit index is rejected', (t) => {
  const checker = new SafetyChecker();
  const storage = log([put(2, 1, 'a'), put(3, 1, 'b')], 2);
  t.doesNotThrow(() => checker.onAppend('n1', [put(3, 2, 'c')], storage), 'overwriting an uncommitted entry is fine');
  rejects(t, 'no committed entry lost', () => checker.onAppend('n1', [put(2, 2, 'd')], storage));
  t.end();
});

t.test('leader completeness: a leader missing a committed entry, or holding another one there, is rejected', (t) => {
  const checker = new SafetyChecker();
  applyAll(checker, 'n1', [bootstrapEntry(), put(2, 1, 'a'), put(3, 2, 'b')]);
  for (const [leader, term] of [['n2', 3], ['n3', 4], ['n1', 5], ['n3', 6], ['n3', 9]] as const) elect(checker, leader, term);
  t.doesNotThrow(() => checker.onLeader('n2', 3, log([put(2, 1, 'a'), put(3, 2, 'b'), put(4, 3, 'c')])), 'a complete leader is fine');
  rejects(t, 'leader completeness', () => checker.onLeader('n3', 4, log([put(2, 1, 'a')])));
  rejects(t, 'leader completeness', () => checker.onLeader('n1', 5, log([put(2, 1, 'a'), put(3, 4, 'x')])));
  // Entry 4 is committed in term 8; a leader of term 6 elected late (on delayed votes) may lack it.
  checker.onApply('n2', 8, put(4, 3, 'c'), 3, 0, null);
  t.doesNotThrow(() => checker.onLeader('n3', 6, log([put(2, 1, 'a'), put(3, 2, 'b')])), 'a late leader of an earlier term is fine');
  rejects(t, 'leader completeness', () => checker.onLeader('n3', 9, log([put(2, 1, 'a'), put(3, 2, 'b')])));
  t.end();
});

t.test('state machine safety: another entry at an applied index, a gap, or another state is rejected', (t) => {
  const checker = new SafetyChecker();
  const entries = [bootstrapEntry(), put(2, 1, 'a'), put(3, 2, 'b')];
  applyAll(checker, 'n1', entries);
  t.doesNotThrow(() => applyAll(checker, 'n2', entries), 'the same sequence elsewhere is fine');
  rejects(t, 'no committed entry lost', () => applyAll(checker, 'n3', [bootstrapEntry(), put(2, 1, 'a'), put(3, 3, 'b')]));
  rejects(t, 'state machine safety', () => checker.onApply('n3', 2, put(3, 2, 'b'), 1, 0, null));
  rejects(t, 'state machine safety', () => checker.onApply('n3', 2, bootstrapEntry(), 0, 12345, null));
  t.end();
});

t.test('persistent state: a term going back, a second vote in a term, a commit index going back are rejected', (t) => {
  const checker = new SafetyChecker();
  t.doesNotThrow(() => checker.onHardState('n1', { term: 2, vote: null, commit: 3 }, { term: 2, vote: 'n2', commit: 4 }));
  rejects(t, 'persistent state', () => checker.onHardState('n1', { term: 3, vote: null, commit: 3 }, { term: 2, vote: null, commit: 3 }));
  rejects(t, 'persistent state', () => checker.onHardState('n1', { term: 3, vote: 'n2', commit: 3 }, { term: 3, vote: 'n3', commit: 3 }));
  rejects(t, 'persistent state', () => checker.onHardState('n1', { term: 3, vote: null, commit: 5 }, { term: 3, vote: null, commit: 4 }));
  t.end();
});

t.test('replicas agree: a missing acknowledged write or a different state is rejected', (t) => {
  const replica = (nodeId: NodeId, state: string, writes: readonly string[]) => ({
    nodeId,
    appliedIndex: 9,
    state,
    hasApplied: (writeId: string) => writes.includes(writeId),
  });
  t.doesNotThrow(() => checkReplicasAgree([replica('n1', 's', ['w1']), replica('n2', 's', ['w1'])], ['w1']));
  rejects(t, 'durability', () => checkReplicasAgree([replica('n1', 's', ['w1']), replica('n2', 's', [])], ['w1']));
  rejects(t, 'state machine safety', () => checkReplicasAgree([replica('n1', 's', ['w1']), replica('n2', 't', ['w1'])], ['w1']));
  t.end();
});

t.test('linearizable reads', async (t) => {
  // w1 (index 3) and w2 (index 5) write k; w3 was never committed.
  const indexes = new Map([
    ['w1', 3],
    ['w2', 5],
  ]);
  const writeIndex = (writeId: string) => indexes.get(writeId);
  const write = (writeId: string, invokeTime: number, completeTime: number | null, outcome: WriteRecord['outcome'] = 'ok'): WriteRecord => ({
    writeId,
    key: 'k',
    invokeTime,
    completeTime,
    outcome,
  });
  const read = (readId: string, invokeTime: number, completeTime: number, writeId: string | null, key = 'k'): ReadRecord => ({
    readId,
    key,
    invokeTime,
    completeTime,
    outcome: 'ok',
    writeId,
  });
  const writes = [write('w1', 1, 2), write('w2', 10, 20), write('w3', 11, 12, 'unknown')];

  t.test('a history that respects real time is accepted', async (t) => {
    const reads = [
      read('r1', 0, 1, null),
      read('r2', 3, 4, 'w1'),
      read('r3', 15, 16, 'w2'), // w2 is concurrent with r3: it may be seen
      read('r4', 15, 17, 'w1'), // ... or not, by a read that did not follow r3
      read('r5', 21, 22, 'w2'),
      read('r6', 0, 1, null, 'other'),
    ];
    t.doesNotThrow(() => checkHistory(writes, reads, writeIndex));
  });
  t.test('a read invoked after a write was acknowledged must see it (or a later one)', async (t) => {
    rejects(t, 'linearizable reads', () => checkHistory(writes, [read('r1', 3, 4, null)], writeIndex));
    rejects(t, 'linearizable reads', () => checkHistory(writes, [read('r1', 21, 22, 'w1')], writeIndex));
  });
  t.test('reads of a key do not go backwards in real time', async (t) => {
    rejects(t, 'linearizable reads', () => checkHistory(writes, [read('r1', 15, 16, 'w2'), read('r2', 17, 18, 'w1')], writeIndex));
  });
  t.test('a read returns only committed writes to its key, invoked before it completed', async (t) => {
    rejects(t, 'linearizable reads', () => checkHistory(writes, [read('r1', 13, 14, 'w3')], writeIndex));
    rejects(t, 'linearizable reads', () => checkHistory(writes, [read('r1', 5, 6, 'w2')], writeIndex));
    rejects(t, 'linearizable reads', () => checkHistory(writes, [read('r1', 3, 4, 'w1', 'other')], writeIndex));
  });
  t.test('an acknowledged write that is not committed is rejected', async (t) => {
    rejects(t, 'durability', () => checkHistory([write('w9', 1, 2)], [read('r1', 3, 4, null)], writeIndex));
  });
});
