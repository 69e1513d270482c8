// What the FUSE process measures of its callbacks (src/fs/fuse-metrics.ts), without a kernel: the
// meter fed by hand (results to their labels, durations to their buckets, the cumulative report
// and its "only when something changed" rule), and the wrapper around the real fuse-native
// callbacks of mount.ts on a state store in a temporary folder, timed by a fake clock: every
// callback is measured under its own name with the result it answered, answers pass through
// unchanged, and a callback answered later (or re-entered) is measured on its own.

import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';

import { pino } from 'pino';
import t from 'tap';

import { fuseDurationBucketsSeconds, fuseOperationNames, fuseResultNames, type FuseOperationFigures, type FuseOperationsReport } from '../../src/fs/fuse-contract.js';
import { FuseOperationMeter, instrumentOperations, resultIndexOf } from '../../src/fs/fuse-metrics.js';
import { fuseOperations } from '../../src/fs/mount.js';
import { ReadOnlyFileSystem, writeOperations } from '../../src/fs/operations.js';
import { openFixture } from '../store/state-helpers.js';

const { errno } = osConstants;
const operationIndex = (name: (typeof fuseOperationNames)[number]): number => fuseOperationNames.indexOf(name);

function figuresOf(report: FuseOperationsReport | null, op: string): FuseOperationFigures | undefined {
  return report?.operations.find((figures) => figures.op === op);
}

/** The bucket a duration falls in (le: the first bound not below it). */
function bucketOf(seconds: number): number {
  const index = fuseDurationBucketsSeconds.findIndex((bound) => seconds <= bound);
  return index < 0 ? fuseDurationBucketsSeconds.length : index;
}

t.test('results map to bounded labels: ok, the listed errnos, other', async (t) => {
  t.equal(fuseResultNames[resultIndexOf(0)], 'ok');
  t.equal(fuseResultNames[resultIndexOf(4096)], 'ok', 'a read answers its byte count');
  t.equal(fuseResultNames[resultIndexOf(-errno.ENOENT)], 'ENOENT');
  t.equal(fuseResultNames[resultIndexOf(-errno.EROFS)], 'EROFS');
  t.equal(fuseResultNames[resultIndexOf(-errno.EIO)], 'EIO');
  t.equal(fuseResultNames[resultIndexOf(-errno.ENOSPC)], 'other', 'an errno outside the list');
  t.equal(fuseResultNames[resultIndexOf(-1_000_000)], 'other', 'a number no errno has');
  t.equal(fuseResultNames[resultIndexOf(-2.5)], 'other');
});

t.test('the meter: cumulative figures per operation, reported only after a change', async (t) => {
  const meter = new FuseOperationMeter('run-1');
  t.equal(meter.report(), null, 'nothing recorded: no report');
  meter.record(operationIndex('read'), 131072, 0.02);
  meter.record(operationIndex('read'), 131072, 0.3);
  meter.record(operationIndex('getattr'), -errno.ENOENT, 0.004);
  meter.record(operationIndex('getattr'), 0, 0.004);
  meter.record(operationIndex('getattr'), 0, 5_000);
  const first = meter.report();
  t.equal(first?.run, 'run-1');
  t.same(first?.operations.map((figures) => figures.op), ['getattr', 'read'], 'only operations that were called, in the list order');
  const read = figuresOf(first, 'read');
  t.same(read?.results, { ok: 2 });
  t.equal(read?.bucketCounts.length, fuseDurationBucketsSeconds.length + 1, 'one count per bound and one above them');
  t.equal(read?.bucketCounts[bucketOf(0.00002)], 1, '20 µs in its bucket');
  t.equal(read?.bucketCounts[bucketOf(0.0003)], 1, '300 µs in its bucket');
  t.equal(read?.bucketCounts.reduce((sum, count) => sum + count, 0), 2);
  t.ok(Math.abs((read?.sumSeconds ?? 0) - 0.00032) < 1e-12, 'the sum in seconds');
  const getattr = figuresOf(first, 'getattr');
  t.same(getattr?.results, { ok: 2, ENOENT: 1 });
  t.equal(getattr?.bucketCounts.at(-1), 1, '5 s: above every bound');
  t.equal(meter.report(), null, 'nothing new: no report');
  meter.record(operationIndex('read'), -errno.EIO, 0.001);
  const second = meter.report();
  t.same(figuresOf(second, 'read')?.results, { ok: 2, EIO: 1 }, 'the next report is cumulative');
  t.same(figuresOf(second, 'getattr')?.results, { ok: 2, ENOENT: 1 }, 'and carries the unchanged operations too');
  // The report is a copy: later calls do not change one already sent.
  meter.record(operationIndex('read'), 1, 0.001);
  t.same(figuresOf(second, 'read')?.results, { ok: 2, EIO: 1 });
});

t.test('every fuse-native callback of the mount is measured under its name, with its answer', async (t) => {
  const fixture = openFixture('fs-fuse-metrics');
  t.teardown(fixture.close);
  fixture.run({ type: 'put', key: 'dir/file', data: Buffer.from('content'), modeBits: 0o644, modifiedMilliseconds: 1_700_000_000_000 });
  const fileSystem = new ReadOnlyFileSystem(fixture.reader, { uid: 1, gid: 1, impliedFolderMilliseconds: 1_650_000_000_000, storedBytes: () => 4096 });
  const plain = fuseOperations(fileSystem, pino({ level: 'silent' }));
  // Each reading of the clock is 0.02 ms later: every call lasts 20 µs.
  let now = 0;
  const meter = new FuseOperationMeter('run');
  const operations = instrumentOperations(plain, meter, () => (now += 0.02));
  t.same(Object.keys(operations).sort(), Object.keys(plain).sort(), 'the same callbacks (fuse-native enables only the ones present)');
  t.ok(Object.keys(plain).every((name) => (fuseOperationNames as readonly string[]).includes(name)), 'every callback has a label');

  const answers: unknown[][] = [];
  const keep = (...answer: unknown[]): void => {
    answers.push(answer);
  };
  operations.getattr?.('/dir/file', keep);
  operations.getattr?.('/nothing', keep);
  operations.fgetattr?.('/dir/file', 1, keep);
  operations.readdir?.('/dir', keep);
  operations.readdir?.('/dir/file', keep);
  operations.open?.('/dir/file', fsConstants.O_RDONLY, keep);
  const handle = answers.at(-1)?.[1] as number;
  const buffer = Buffer.alloc(16);
  operations.read?.('/dir/file', handle, buffer, 16, 0, keep);
  operations.read?.('/dir/file', 999, buffer, 16, 0, keep);
  operations.release?.('/dir/file', handle, keep);
  operations.statfs?.('/', keep);
  const payload = Buffer.from('x');
  operations.write?.('/dir/file', handle, payload, 1, 0, keep);
  operations.create?.('/new', 0o644, keep);
  operations.truncate?.('/dir/file', 0, keep);
  operations.ftruncate?.('/dir/file', handle, 0, keep);
  operations.unlink?.('/dir/file', keep);
  operations.rename?.('/dir/file', '/other', keep);
  operations.link?.('/dir/file', '/hard', keep);
  operations.symlink?.('/dir/file', '/soft', keep);
  operations.mkdir?.('/made', 0o755, keep);
  operations.rmdir?.('/dir', keep);
  operations.mknod?.('/node', 0o644, 0, keep);
  operations.chmod?.('/dir/file', 0o600, keep);
  operations.chown?.('/dir/file', 0, 0, keep);
  operations.utimens?.('/dir/file', 0, 0, keep);
  operations.setxattr?.('/dir/file', 'user.x', payload, 0, 0, keep);
  operations.removexattr?.('/dir/file', 'user.x', keep);
  t.equal(answers.length, 26, 'every call was answered, synchronously');
  t.match(answers[0], [0, { size: 7 }], 'answers pass through unchanged');
  t.same(answers[3]?.slice(0, 2), [0, ['.', '..', 'file']], 'readdir: names (and stats) pass through');
  t.same(answers[6]?.[0], 7, 'read: the byte count');

  const report = meter.report();
  const results = Object.fromEntries(report?.operations.map((figures) => [figures.op, figures.results]) ?? []);
  t.same(results['getattr'], { ok: 1, ENOENT: 1 }, 'a missing name: getattr ENOENT (libfuse 2 looks names up with getattr)');
  t.same(results['fgetattr'], { ok: 1 });
  t.same(results['readdir'], { ok: 1, ENOTDIR: 1 });
  t.same(results['open'], { ok: 1 });
  t.same(results['read'], { ok: 1, EBADF: 1 });
  t.same(results['release'], { ok: 1 });
  t.same(results['statfs'], { ok: 1 });
  for (const name of writeOperations) t.same(results[name], { EROFS: 1 }, `${name}: EROFS`);
  const getattr = figuresOf(report, 'getattr');
  t.equal(getattr?.bucketCounts[bucketOf(0.00002)], 2, 'each call timed by the clock: 20 µs');
  t.ok(Math.abs((getattr?.sumSeconds ?? 0) - 0.00004) < 1e-12);
});

t.test('a callback answered later, while the operation is called again, is measured on its own', async (t) => {
  let now = 0;
  const meter = new FuseOperationMeter('run');
  const held: ((answer: number) => void)[] = [];
  const operations = instrumentOperations(
    {
      // Answers the first call later, the second at once.
      getattr: (_path, callback) => {
        if (held.length === 0) held.push(callback as (answer: number) => void);
        else callback(-errno.ENOENT);
      },
    },
    meter,
    () => now,
  );
  const answers: number[] = [];
  now = 1;
  operations.getattr?.('/slow', (answer) => answers.push(answer));
  now = 2;
  operations.getattr?.('/fast', (answer) => answers.push(answer));
  now = 3;
  operations.getattr?.('/fast', (answer) => answers.push(answer));
  now = 1001;
  held[0]?.(0);
  t.same(answers, [-errno.ENOENT, -errno.ENOENT, 0], 'each answer reaches its own caller');
  const getattr = figuresOf(meter.report(), 'getattr');
  t.same(getattr?.results, { ok: 1, ENOENT: 2 });
  t.equal(getattr?.bucketCounts[bucketOf(1)], 1, 'the late answer took 1000 ms');
  t.equal(getattr?.bucketCounts[0], 2, 'the quick ones took no time');
});

t.test('a callback without a label is refused when the mount is wired, not silently unmeasured', async (t) => {
  const meter = new FuseOperationMeter('run');
  const unlisted = { readlink: (_path: string, callback: (answer: number, target?: string) => void) => callback(0, 'x') } as unknown as Parameters<typeof instrumentOperations>[0];
  t.throws(() => instrumentOperations(unlisted, meter), /readlink has no metrics name/);
});
