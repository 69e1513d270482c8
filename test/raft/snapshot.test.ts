// Log compaction and snapshot transfer (Raft paper §7, Figure 13). Goal: once the leader has
// discarded the entries a lagging follower (or a new learner) needs, it sends its snapshot with
// InstallSnapshot in chunks of at most snapshotChunkBytes, in order; the follower writes them,
// installs the snapshot when the last one arrives (Ready.snapshotChunk with done) and then catches
// up with ordinary AppendEntries. Method: three nodes on the deterministic network of helpers.ts;
// the toy state machine's image (JSON of the applied texts) is the snapshot, compacted through
// storage.compact exactly as core-semantics.md tells the driver to.

import t from 'tap';
import { Network, bytes, ofType, type Member } from './helpers.js';
import type { Test } from 'tap';
import type { Message } from '../../src/raft/types.js';

const snapshotChunkBytes = 16;

function electedNetwork(chunkBytes = snapshotChunkBytes): Network {
  const network = new Network(['a', 'b', 'c'], { snapshotChunkBytes: chunkBytes });
  network.elect('a');
  if (network.node('a').status().role !== 'leader') throw new Error('a did not win');
  network.tick(2);
  return network;
}

function proposeAll(network: Network, texts: readonly string[]): void {
  for (const each of texts) {
    if (!network.node('a').propose(bytes(each)).ok) throw new Error(`proposal ${each} refused`);
    network.settle();
  }
}

/** Ticks everyone until `target` has applied as far as the leader, or gives up. */
function tickUntilCaughtUp(network: Network, target: Member, limit = 100): number {
  const leader = network.get('a');
  for (let tick = 1; tick <= limit; tick++) {
    network.tick(1);
    if (target.appliedIndex === leader.appliedIndex && target.storage.lastIndex() === leader.storage.lastIndex()) return tick;
  }
  return -1;
}

function checkChunks(t: Test, messages: readonly Message[], to: string, snapshotIndex: number, sizeBytes: number): void {
  const chunks = ofType(messages, 'installSnapshot').filter((message) => message.to === to);
  t.ok(chunks.length >= Math.ceil(sizeBytes / snapshotChunkBytes), `the snapshot (${sizeBytes} bytes) went out in ${chunks.length} chunks`);
  t.ok(chunks.every((message) => message.data.byteLength <= snapshotChunkBytes), `no chunk is larger than ${snapshotChunkBytes} bytes`);
  t.ok(chunks.every((message) => message.meta.index === snapshotIndex), 'every chunk belongs to the compacted snapshot');
  // "Leaders always send chunks in order": ignoring repeats, offsets are contiguous from 0.
  let expected = 0;
  let done = false;
  for (const chunk of chunks) {
    if (chunk.offset === expected) {
      expected += chunk.data.byteLength;
      done = chunk.done;
    } else {
      t.ok(chunk.offset < expected, `chunk at ${chunk.offset} never skips ahead of ${expected}`);
    }
  }
  t.equal(expected, sizeBytes, 'the chunks cover the whole snapshot');
  t.ok(done, 'the chunk that ends the snapshot is marked done');
}

t.test('§7 "the leader must occasionally send snapshots to followers that lag behind. This happens when the leader has already discarded the next log entry that it needs to send to a follower"', async (t) => {
  const network = electedNetwork();
  const [a, b, c] = [network.get('a'), network.get('b'), network.get('c')];
  network.isolate('c');
  proposeAll(network, Array.from({ length: 10 }, (_, i) => `entry-${i}`));
  t.equal(b.applied.length, 10);
  a.compact();
  b.compact();
  const snapshot = a.storage.snapshot();
  t.ok(snapshot.sizeBytes > 3 * snapshotChunkBytes, 'the snapshot needs several chunks');
  t.ok(c.storage.lastIndex() < snapshot.index, 'c lacks entries the leader has discarded');
  proposeAll(network, ['after-1', 'after-2']);

  network.heal();
  const since = network.log.length;
  const ticks = tickUntilCaughtUp(network, c);
  t.not(ticks, -1, `c caught up (after ${ticks} ticks)`);
  const traffic = network.log.slice(since).filter((each) => !each.dropped).map((each) => each.message);
  checkChunks(t, traffic, 'c', snapshot.index, snapshot.sizeBytes);

  // Figure 13 receiver: the follower writes the chunks and installs the snapshot at the last one.
  const received = c.history.snapshotChunks;
  t.ok(received.length >= 2);
  t.equal(received.at(-1)?.done, true, 'the last Ready.snapshotChunk is marked done');
  t.ok(received.slice(0, -1).every((chunk) => !chunk.done), 'only the last is done');
  t.equal(c.storage.snapshot().index, snapshot.index, 'the follower\'s storage holds the leader\'s snapshot');
  t.equal(c.storage.snapshot().term, snapshot.term);

  // Then it catches up with AppendEntries carrying what follows the snapshot.
  const lastChunkAt = traffic.findLastIndex((message) => message.type === 'installSnapshot' && message.to === 'c');
  const appendsAfter = ofType(traffic.slice(lastChunkAt + 1), 'appendEntries').filter((message) => message.to === 'c');
  t.ok(
    appendsAfter.some((message) => message.entries.some((each) => each.index > snapshot.index)),
    'entries after the snapshot follow as AppendEntries',
  );
  t.same(c.applied, a.applied, 'c\'s state machine equals the leader\'s');
  t.same(c.applied.slice(-2), ['after-1', 'after-2']);
  t.equal(c.node.status().commitIndex, a.node.status().commitIndex);
  t.equal(c.node.status().appliedIndex, a.node.status().appliedIndex);
});

t.test('§7 a server that joins after compaction receives the snapshot, then the log', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  proposeAll(network, Array.from({ length: 6 }, (_, i) => `old-${i}`));
  for (const id of ['a', 'b', 'c']) network.get(id).compact();
  const snapshot = a.storage.snapshot();

  const d = network.add('d', { snapshotChunkBytes });
  const since = network.log.length;
  t.ok(network.node('a').proposeConfChange({ type: 'addLearner', nodeId: 'd' }).ok);
  proposeAll(network, ['new-0']);
  const ticks = tickUntilCaughtUp(network, d);
  t.not(ticks, -1, `d caught up (after ${ticks} ticks)`);
  const traffic = network.log.slice(since).filter((each) => !each.dropped).map((each) => each.message);
  checkChunks(t, traffic, 'd', snapshot.index, snapshot.sizeBytes);
  t.equal(d.history.snapshotChunks.at(-1)?.done, true);
  t.same(d.applied, a.applied, 'the learner\'s state machine equals the leader\'s');
  t.same(d.node.status().config, { voters: ['a', 'b', 'c'], learners: ['d'] }, 'it learned the configuration (snapshot + later config entry)');
});

t.test('§7 a follower that already has the snapshot\'s entries is not sent the snapshot', async (t) => {
  const network = electedNetwork();
  const a = network.get('a');
  proposeAll(network, Array.from({ length: 5 }, (_, i) => `kept-${i}`));
  a.compact();
  proposeAll(network, ['next']);
  network.tick(4);
  t.notOk(network.log.some((each) => each.message.type === 'installSnapshot'), 'up-to-date followers get AppendEntries only');
  t.same(network.get('c').applied, a.applied);
});

// Figure 13, InstallSnapshot receiver step 6: "If existing log entry has same index and term as
// snapshot's last included entry, retain log entries following it and reply". The scenario needs
// only reordering (allowed by Raft's network model): the leader decides to send c a snapshot
// because of a rejection that overtook two pipelined AppendEntries; those then reach c, which
// acknowledges entries past the snapshot index, and the leader counts the acknowledgement towards
// commitment. When the snapshot arrives, c must not throw those entries away, or a committed
// entry sits on a minority of servers.
t.test('§7 Figure 13 "If existing log entry has same index and term as snapshot\'s last included entry, retain log entries following it": entries a follower acknowledged survive a late snapshot', async (t) => {
  // The snapshot fits in one chunk, so the one InstallSnapshot in flight is the whole of it.
  const network = electedNetwork(64 * 1024);
  const [a, c] = [network.get('a'), network.get('c')];
  const held: Message[] = [];
  const take = (match: (message: Message) => boolean): Message[] => {
    const taken = held.filter(match);
    for (const message of taken) held.splice(held.indexOf(message), 1);
    return taken;
  };
  const deliverAll = (messages: readonly Message[]) => {
    for (const message of messages) network.deliver(message);
    held.push(...network.flush());
  };
  const appendsTo = (id: string) => take((message) => message.to === id && message.type === 'appendEntries');

  for (const text of ['e3', 'e4', 'e5']) t.ok(a.node.propose(bytes(text)).ok);
  held.push(...network.flush()); // AppendEntries(prev 2, entries 3..5) to b and c
  for (const text of ['e6', 'e7']) t.ok(a.node.propose(bytes(text)).ok);
  held.push(...network.flush()); // AppendEntries(prev 5, entries 6..7) to b and c
  const pipelined = appendsTo('c');
  t.same(pipelined.map((message) => (message.type === 'appendEntries' ? message.prevLogIndex : -1)), [2, 5], 'two AppendEntries to c in flight');

  // b gets only the first one; the leader commits 5, applies it and compacts there.
  deliverAll(appendsTo('b').slice(0, 1));
  deliverAll(take((message) => message.to === 'a'));
  t.equal(a.node.status().commitIndex, 5);
  t.equal(a.appliedIndex, 5);
  a.compact();
  t.equal(a.storage.snapshot().index, 5);

  // The leader's commit notice to c (an empty AppendEntries after entry 7) overtakes both: c lacks
  // entry 7 and rejects; entry 2 being compacted, the leader can only answer with its snapshot.
  const notice = appendsTo('c');
  t.same(notice.map((message) => (message.type === 'appendEntries' ? [message.prevLogIndex, message.entries.length] : [])), [[7, 0]]);
  held.length = 0;
  deliverAll(notice);
  deliverAll(take((message) => message.to === 'a'));
  t.equal(a.node.status().progress?.get('c')?.state, 'snapshot', 'the leader is sending c its snapshot');
  const snapshotChunks = take((message) => message.to === 'c' && message.type === 'installSnapshot');
  t.equal(snapshotChunks.length, 1);
  t.equal(snapshotChunks[0]?.type === 'installSnapshot' && snapshotChunks[0].done, true, 'one chunk holds the whole snapshot');

  // Then the two delayed AppendEntries reach c: it holds 3..7 and says so.
  deliverAll(pipelined);
  t.equal(c.storage.lastIndex(), 7, 'c holds entries 3..7');
  deliverAll(take((message) => message.to === 'a'));
  const commitIndex = a.node.status().commitIndex;

  // Finally the snapshot (index 5) reaches c; b is cut off, so c is the only other copy.
  held.length = 0;
  network.isolate('b');
  for (const message of snapshotChunks) network.deliver(message);
  network.settle();
  network.tick(2);

  const holders = ['a', 'b', 'c'].filter((id) => {
    const storage = network.get(id).storage;
    return storage.lastIndex() >= commitIndex && storage.term(commitIndex) === a.storage.term(commitIndex);
  });
  t.ok(holders.length >= 2, `entry ${commitIndex}, committed by the leader, is stored on a majority (on ${holders.join(', ')})`);
  t.ok(c.storage.lastIndex() >= 7, `c kept the entries it had acknowledged after the snapshot index (last index ${c.storage.lastIndex()})`);

  // And c is not left behind for good.
  network.tick(30);
  t.equal(c.storage.lastIndex(), a.storage.lastIndex(), 'c catches up with the leader');
});

t.test('§7 a follower that crashes in the middle of a snapshot transfer still gets the whole snapshot after it restarts', async (t) => {
  const network = electedNetwork();
  const [a, c] = [network.get('a'), network.get('c')];
  const cut = network.isolate('c');
  proposeAll(network, Array.from({ length: 10 }, (_, i) => `entry-${i}`));
  a.compact();
  const snapshot = a.storage.snapshot();
  cut();
  // Let only the first two chunks through, then crash c.
  let chunks = 0;
  const stop = network.addFilter((message) => message.type === 'installSnapshot' && ++chunks > 2);
  for (let tick = 0; tick < 30 && chunks <= 2; tick++) network.tick(1);
  t.ok(chunks > 2, 'the transfer started (two chunks arrived, the rest were lost)');
  t.equal(c.storage.snapshot().index, 0, 'c has not installed anything yet');
  c.restart();
  stop();
  const ticks = tickUntilCaughtUp(network, c);
  t.not(ticks, -1, `c caught up after its restart (after ${ticks} ticks)`);
  t.equal(c.storage.snapshot().index, snapshot.index);
  t.same(c.applied, a.applied);
});

t.test('§7 the leader compacts again while a snapshot is on its way: the follower ends up with the newer snapshot', async (t) => {
  const network = electedNetwork();
  const [a, b, c] = [network.get('a'), network.get('b'), network.get('c')];
  const cut = network.isolate('c');
  proposeAll(network, Array.from({ length: 6 }, (_, i) => `first-${i}`));
  a.compact();
  cut();
  let chunks = 0;
  const stop = network.addFilter((message) => message.type === 'installSnapshot' && ++chunks > 2);
  for (let tick = 0; tick < 30 && chunks <= 2; tick++) network.tick(1);
  t.ok(chunks > 2, 'the transfer of the first snapshot started (two chunks arrived, the rest were lost)');
  // More entries commit (with b) and the leader compacts again.
  const cutAgain = network.isolate('c');
  proposeAll(network, Array.from({ length: 4 }, (_, i) => `second-${i}`));
  t.equal(b.applied.length, 10);
  a.compact();
  const newer = a.storage.snapshot();
  cutAgain();
  stop();
  const ticks = tickUntilCaughtUp(network, c);
  t.not(ticks, -1, `c caught up (after ${ticks} ticks)`);
  t.ok(c.storage.snapshot().index >= newer.index, 'c holds the newer snapshot');
  t.same(c.applied, a.applied);
});
