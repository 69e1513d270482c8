// Tests of the chaos suite's file-system judgements (files.ts): checks that accept everything
// would make every --fs run pass. Method: contents built with makeBlock, then cut, mixed or moved
// by hand, and namespaces built by hand next to the cache folders' expectations; each bad case
// next to a good one of the same shape.

import t from 'tap';

import { compareEndState, FileRecorder, judgeReads, makeBlock, selfCheck, sha256, treeDifferences, type MountObservation, type ReaderStats } from './files.js';

function observe(path: string, data: Buffer): MountObservation {
  return { node: 'node1', path, sha: sha256(data), size: data.length, selfCheck: selfCheck(data), header: '', atSeconds: 0 };
}

function stats(...observations: MountObservation[]): ReaderStats {
  return { sampled: observations.length, judged: observations.length, changedDuringRead: 0, errors: 0, observations };
}

t.test('selfCheck: whole blocks pass; a cut, a flipped byte, a missing header or an empty file fail', async (t) => {
  const one = makeBlock('node1', 1, 5000);
  const two = Buffer.concat([one, makeBlock('node1', 2, 300)]);
  t.ok(selfCheck(one), 'one block');
  t.ok(selfCheck(two), 'an appended block');
  t.notOk(selfCheck(one.subarray(0, one.length - 1)), 'one byte short');
  t.notOk(selfCheck(two.subarray(0, two.length - 100)), 'the appended block cut');
  t.notOk(selfCheck(one.subarray(0, 4096)), 'a page of it');
  const flipped = Buffer.from(one);
  flipped[flipped.length - 10] = (flipped[flipped.length - 10] as number) ^ 1;
  t.notOk(selfCheck(flipped), 'a byte changed');
  t.notOk(selfCheck(Buffer.alloc(0)), 'empty');
  t.notOk(selfCheck(Buffer.concat([one.subarray(0, 2000), makeBlock('node2', 9, 100)])), 'the start of one content and the whole of another');
  t.notOk(selfCheck(Buffer.alloc(4096, 0)), 'zeros (a hole)');
});

t.test('judgeReads: recorded versions pass, moves carry every version, partial and foreign reads are told apart', async (t) => {
  const recorder = new FileRecorder();
  const v1 = makeBlock('node1', 1, 100);
  const v2 = makeBlock('node1', 2, 100);
  const appended = Buffer.concat([v2, makeBlock('node1', 3, 50)]);
  const other = makeBlock('node1', 4, 100);
  recorder.record('a.txt', sha256(v1));
  recorder.record('a.txt', sha256(v2));
  recorder.record('a.txt', sha256(appended));
  recorder.record('other.txt', sha256(other));
  recorder.moved('a.txt', 'b.txt');
  const good = judgeReads(stats(observe('a.txt', v1), observe('a.txt', appended), observe('b.txt', v1), observe('b.txt', appended)), recorder);
  t.same(good, { partial: [], foreign: [] }, 'every version, also at the path it was moved to');
  const bad = judgeReads(
    stats(
      observe('a.txt', appended.subarray(0, appended.length - 10)),
      observe('a.txt', Buffer.concat([v1, makeBlock('node1', 3, 50)])),
      observe('a.txt', other),
      observe('other.txt', v1),
      observe('never.txt', v1),
    ),
    recorder,
  );
  t.same(bad.partial.map((read) => read.path), ['a.txt', 'a.txt'], 'a cut append and intact blocks never written as a whole are partial');
  t.same(bad.foreign.map((read) => read.path), ['a.txt', 'other.txt', 'never.txt'], 'complete contents of other paths are foreign');
  t.same(recorder.pathsOf(sha256(v1)).sort(), ['a.txt', 'b.txt']);
});

t.test('compareEndState: missing, different and left-over files are problems; the shared path takes either copy', async (t) => {
  const expected = new Map([
    ['fs-node1/a.txt', new Set(['aa'])],
    ['fs-shared/both.txt', new Set(['x1', 'x2'])],
  ]);
  const good = new Map([
    ['fs-node1/a.txt', '10 aa'],
    ['fs-shared/both.txt', '10 x2'],
    ['chaos/k0', '3 kk'],
  ]);
  const none = new Map<string, number>();
  t.same(compareEndState(good, expected, none, none), { problems: [], tolerated: [] }, 'as expected; gRPC keys are not the cache folders\' business');
  t.equal(compareEndState(new Map([['fs-shared/both.txt', '1 x1']]), expected, none, none).problems.length, 1, 'a missing file');
  t.equal(compareEndState(new Map([...good, ['fs-node1/a.txt', '10 bb']]), expected, none, none).problems.length, 1, 'another content');
  t.equal(compareEndState(new Map([...good, ['fs-shared/both.txt', '10 x3']]), expected, none, none).problems.length, 1, 'a third content on the shared path');
  const leftOver = new Map([...good, ['fs-node2/gone.txt', '1 gg']]);
  const goneAt = new Map([['fs-node2/gone.txt', 1000]]);
  t.equal(compareEndState(leftOver, expected, none, goneAt).problems.length, 1, 'a file no cache folder holds');
  t.same(compareEndState(leftOver, expected, new Map([['node2', 2000]]), goneAt), { problems: [], tolerated: ['fs-node2/gone.txt'] }, 'tolerated when it left before its node was wiped');
  t.equal(compareEndState(leftOver, expected, new Map([['node2', 500]]), goneAt).problems.length, 1, 'not when it left after the wipe');
  t.equal(compareEndState(leftOver, expected, new Map([['node1', 2000]]), goneAt).problems.length, 1, 'nor for another node\'s wipe');
});

t.test('treeDifferences names what differs and nothing when equal', async (t) => {
  const left = new Map([
    ['a', '1 x'],
    ['b', '2 y'],
  ]);
  t.same(treeDifferences(left, new Map(left), 'mount', 'namespace'), []);
  t.equal(treeDifferences(left, new Map([['a', '1 z']]), 'mount', 'namespace').length, 2, 'one changed, one missing');
  t.equal(treeDifferences(new Map(), left, 'mount', 'namespace').length, 2, 'two extra');
});
