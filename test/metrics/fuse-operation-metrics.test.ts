// The FUSE process's reports as the node serves them (src/metrics/fuse-operation-metrics.ts through
// NodeMetrics), with no process: reports are fed by hand and the Prometheus text is read back. The
// claims: counters and histogram buckets add what grew since the previous report of a run; a new
// run (the FUSE process restarted and counts from 0) adds everything it carries, so no counter ever
// goes down; the histogram has the usual _bucket (cumulative, with +Inf), _sum and _count series;
// names outside the contract's lists never become series; and the watcher's queue gauge.

import t from 'tap';

import { fuseDurationBucketsSeconds, type FuseOperationFigures, type FuseOperationsReport } from '../../src/fs/fuse-contract.js';
import { NodeMetrics } from '../../src/metrics/node-metrics.js';
import { sample } from './exposition.js';

/** Figures with `counts` calls in the bucket of index `bucket`. */
function figures(op: FuseOperationFigures['op'], results: FuseOperationFigures['results'], bucket: number, sumSeconds: number): FuseOperationFigures {
  const total = Object.values(results).reduce((sum, count) => sum + (count ?? 0), 0);
  const bucketCounts = new Array<number>(fuseDurationBucketsSeconds.length + 1).fill(0);
  bucketCounts[bucket] = total;
  return { op, results, bucketCounts, sumSeconds };
}

const report = (run: string, operations: FuseOperationFigures[]): FuseOperationsReport => ({ run, operations });

t.test('reports become counters and a histogram; a restarted FUSE process never makes them go down', async (t) => {
  const metrics = new NodeMetrics({ processMetrics: false });
  const text = (): Promise<string> => metrics.exposition();
  t.equal(sample(await text(), 'dfs_fuse_operations_total'), null, 'no report yet: no series');

  metrics.applyFuseReport(report('a', [figures('read', { ok: 10 }, 3, 0.001), figures('getattr', { ok: 5, ENOENT: 2 }, 0, 0.00001)]));
  let now = await text();
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'read', result: 'ok' }), 10);
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'getattr', result: 'ENOENT' }), 2);
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_count', { op: 'read' }), 10);
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_sum', { op: 'read' }), 0.001);
  const bound = (index: number): string => String(fuseDurationBucketsSeconds[index]);
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_bucket', { op: 'read', le: bound(2) }), 0, 'below the bucket: 0');
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_bucket', { op: 'read', le: bound(3) }), 10, 'its bucket');
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_bucket', { op: 'read', le: bound(4) }), 10, 'buckets are cumulative');
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_bucket', { op: 'read', le: '+Inf' }), 10, '+Inf: every call');
  t.match(now, /# TYPE dfs_fuse_operation_duration_seconds histogram/);
  t.match(now, /# TYPE dfs_fuse_operations_total counter/);

  // The same run, later: cumulative figures, of which only the growth is added.
  metrics.applyFuseReport(report('a', [figures('read', { ok: 12, EIO: 1 }, 3, 0.0013), figures('getattr', { ok: 5, ENOENT: 2 }, 0, 0.00001)]));
  now = await text();
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'read', result: 'ok' }), 12, 'not 22: the report is cumulative');
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'read', result: 'EIO' }), 1);
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'getattr', result: 'ok' }), 5, 'unchanged');
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_count', { op: 'read' }), 13);
  t.ok(Math.abs((sample(now, 'dfs_fuse_operation_duration_seconds_sum', { op: 'read' }) ?? 0) - 0.0013) < 1e-12);

  // The FUSE process restarted: its counts start at 0 again, under a new run.
  metrics.applyFuseReport(report('b', [figures('read', { ok: 3 }, 3, 0.0003)]));
  now = await text();
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'read', result: 'ok' }), 15, 'the new run adds its 3: the counter does not go down');
  t.equal(sample(now, 'dfs_fuse_operations_total', { op: 'read', result: 'EIO' }), 1, 'series of the old run stay');
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_count', { op: 'read' }), 16);
  t.equal(sample(now, 'dfs_fuse_operation_duration_seconds_bucket', { op: 'read', le: '+Inf' }), 16);
  metrics.applyFuseReport(report('b', [figures('read', { ok: 4 }, 3, 0.0004)]));
  t.equal(sample(await text(), 'dfs_fuse_operations_total', { op: 'read', result: 'ok' }), 16, 'and goes on from there');

  // A report of the old run again would be a new start too (never expected: reports arrive in order).
  // Counts smaller than before within one run are taken as a restart, never subtracted.
  metrics.applyFuseReport(report('b', [figures('read', { ok: 1 }, 3, 0.0001)]));
  t.equal(sample(await text(), 'dfs_fuse_operations_total', { op: 'read', result: 'ok' }), 17, 'a smaller count adds itself, never a negative step');
});

t.test('names outside the contract and malformed figures never become series', async (t) => {
  const metrics = new NodeMetrics({ processMetrics: false });
  metrics.applyFuseReport({
    run: 'x',
    operations: [
      { op: 'lookup' as 'getattr', results: { ok: 1 }, bucketCounts: [1], sumSeconds: 0 },
      { op: 'read', results: { ok: 2, EWEIRD: 5 } as FuseOperationFigures['results'], bucketCounts: [1, 2], sumSeconds: 1 },
    ],
  });
  const text = await metrics.exposition();
  t.equal(sample(text, 'dfs_fuse_operations_total', { op: 'lookup' }), null, 'an unknown operation is left out');
  t.equal(sample(text, 'dfs_fuse_operations_total', { result: 'EWEIRD' }), null, 'an unknown result is left out');
  t.equal(sample(text, 'dfs_fuse_operations_total', { op: 'read', result: 'ok' }), 2, 'the rest is counted');
  t.equal(sample(text, 'dfs_fuse_operation_duration_seconds_count', { op: 'read' }), null, 'buckets of the wrong length are left out');
});

t.test('the watcher queue is read at each scrape', async (t) => {
  const metrics = new NodeMetrics({ processMetrics: false });
  const counters = { uploads: 0, uploadedBytes: 0, renames: 0, deletions: 0, folders: 0, abandonedUploads: 0, skippedUnchanged: 0 };
  const sources = (queue: { queued: number; inFlight: number }) => ({
    status: async () => {
      throw new Error('no status in this test');
    },
    storeCounts: () => ({ files: 0, fileBytes: 0, chunks: 0, orphanChunks: 0 }),
    dataFiles: {},
    watcher: () => ({ counters, problemPaths: 0, queue }),
  });
  await metrics.refresh(sources({ queued: 7, inFlight: 2 }));
  let text = await metrics.exposition();
  t.equal(sample(text, 'dfs_cache_queue_length', { state: 'queued' }), 7);
  t.equal(sample(text, 'dfs_cache_queue_length', { state: 'inFlight' }), 2);
  await metrics.refresh(sources({ queued: 0, inFlight: 0 }));
  text = await metrics.exposition();
  t.equal(sample(text, 'dfs_cache_queue_length', { state: 'queued' }), 0, 'a gauge: it goes down as the queue drains');
});
