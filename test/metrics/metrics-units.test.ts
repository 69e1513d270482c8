// The monitoring pieces that need no cluster (src/metrics): the proposal clock's timing and its
// bounds, the readiness rule, the node metrics fed by hand (gRPC calls, a Raft report, a refresh
// from fake sources) and rendered as Prometheus text, and the HTTP server on a free port: its
// paths, methods, status codes, and the error it gives for a port in use.

import { createServer } from 'node:net';
import pino from 'pino';
import t from 'tap';
import type { NodeStatus } from '../../src/api/backend.js';
import { startMetricsServer, MetricsServerStartError } from '../../src/metrics/http-server.js';
import { NodeMetrics } from '../../src/metrics/node-metrics.js';
import { ProposalClock, type ProposalResult } from '../../src/metrics/proposal-clock.js';
import { readinessOf } from '../../src/metrics/readiness.js';

const logger = pino({ level: 'silent' });

function status(overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    nodeId: 'node1',
    role: 'follower',
    term: 3,
    leaderId: 'node2',
    leaderAddress: '127.0.0.1:12002',
    commitIndex: 40,
    appliedIndex: 40,
    snapshotIndex: 0,
    members: [
      { id: 'node1', address: 'a', role: 'follower', suffrage: 'voter', progressKnown: false, matchIndex: -1, lagEntries: -1 },
      { id: 'node2', address: 'b', role: 'leader', suffrage: 'voter', progressKnown: false, matchIndex: -1, lagEntries: -1 },
    ],
    ...overrides,
  } as NodeStatus;
}

t.test('ProposalClock times proposals until settled and stays bounded', async (t) => {
  let now = 0;
  const settled: [ProposalResult, number | null][] = [];
  const clock = new ProposalClock({ capacity: 2, expireMilliseconds: 1000, now: () => now, onSettled: (result, seconds) => settled.push([result, seconds]) });
  clock.start('a');
  now = 250;
  clock.settle('a', 'committed');
  clock.settle('unknown', 'committed');
  t.same(settled, [['committed', 0.25]], 'a committed proposal reports its latency; an unknown id is ignored');
  clock.start('b');
  clock.start('c');
  clock.start('d');
  t.equal(clock.size, 2, 'never more than capacity');
  t.same(settled.at(-1), ['expired', null], 'the oldest is given up when full');
  clock.settle('c', 'failed');
  t.same(settled.at(-1), ['failed', null]);
  now = 2000;
  clock.expire();
  t.equal(clock.size, 0, 'old proposals expire');
  t.same(settled.at(-1), ['expired', null]);
});

t.test('readinessOf: member, leader known, caught up', async (t) => {
  t.equal(readinessOf(status()).ready, true, 'a caught-up follower is ready');
  t.equal(readinessOf(status({ role: 'leader', leaderId: 'node1', appliedIndex: 0 })).ready, true, 'the leader is ready');
  const noLeader = readinessOf(status({ leaderId: '', role: 'preCandidate' }));
  t.match(noLeader, { ready: false, reason: /no leader is known/ });
  t.match(readinessOf(status({ members: [] })), { ready: false, reason: /not a member/ });
  t.match(readinessOf(status({ appliedIndex: 10, commitIndex: 500 })), { ready: false, reason: /catching up: applied 10 of 500/ });
  t.equal(readinessOf(status({ appliedIndex: 450, commitIndex: 500 })).ready, true, 'a small lag is tolerated');
});

t.test('NodeMetrics renders calls, Raft reports and polled figures', async (t) => {
  const metrics = new NodeMetrics({ processMetrics: false });
  metrics.observeCall('Put', 0, 0.002);
  metrics.observeCall('Get', 5, 0.001);
  metrics.observeProposal('committed', 0.003);
  metrics.applyRaftReport({ type: 'raftMetrics', fsyncSeconds: [0.001, 0.002], fsyncsNotReported: 3, persistedEntries: 5, committedEntries: 4, snapshots: [{ kind: 'taken', sizeBytes: 5000, seconds: 0.2 }], campaigns: 1 });
  await metrics.refresh({
    status: async () => status({
      role: 'leader',
      leaderId: 'node1',
      members: [
        { id: 'node1', address: 'a', role: 'leader', suffrage: 'voter', progressKnown: true, matchIndex: 40, lagEntries: 0 },
        { id: 'node2', address: 'b', role: 'follower', suffrage: 'voter', progressKnown: true, matchIndex: 37, lagEntries: 3 },
      ],
    }),
    storeCounts: () => ({ files: 7, fileBytes: 12345, chunks: 9, orphanChunks: 1 }),
    dataFiles: { state: '/nonexistent/data.mdb' },
    watcher: () => ({ counters: { uploads: 2, uploadedBytes: 100, renames: 0, deletions: 1, folders: 0, abandonedUploads: 0, skippedUnchanged: 0 }, problemPaths: 0 }),
    callsInFlight: () => 4,
  });
  const text = await metrics.exposition();
  t.match(text, /dfs_grpc_calls_in_flight 4/);
  t.match(text, /dfs_grpc_requests_total\{method="Put",code="OK"\} 1/);
  t.match(text, /dfs_grpc_requests_total\{method="Get",code="NOT_FOUND"\} 1/);
  t.match(text, /dfs_grpc_request_duration_seconds_count\{method="Put",code="OK"\} 1/);
  t.match(text, /dfs_raft_fsync_seconds_count 2/);
  t.match(text, /dfs_raft_fsyncs_not_observed_total 3/);
  t.match(text, /dfs_raft_snapshot_size_bytes_sum\{kind="taken"\} 5000/);
  t.match(text, /dfs_raft_role\{role="leader"\} 1/);
  t.match(text, /dfs_raft_peer_lag_entries\{peer="node2"\} 3/);
  t.notMatch(text, /dfs_raft_peer_lag_entries\{peer="node1"\}/, 'no lag for the node itself');
  t.match(text, /dfs_store_files 7/);
  t.match(text, /dfs_store_file_bytes 12345/);
  t.match(text, /dfs_cache_replicated_total\{kind="upload"\} 2/);
  t.match(text, /dfs_metrics_refresh_failures_total\{source="disk"\} 1/, 'a data file that cannot be read is counted, not fatal');
  // A later refresh without the peer removes its series.
  await metrics.refresh({ status: async () => status(), storeCounts: () => ({ files: 7, fileBytes: 12345, chunks: 9, orphanChunks: 1 }), dataFiles: {}, watcher: () => null });
  t.notMatch(await metrics.exposition(), /dfs_raft_peer_lag_entries\{/, 'a follower reports no peer lag');
});

t.test('the HTTP server answers its three paths and refuses the rest', async (t) => {
  let ready = true;
  let scrapes = 0;
  const server = await startMetricsServer({
    address: { host: '127.0.0.1', port: 0 },
    logger,
    metrics: async () => {
      scrapes++;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { body: 'dfs_up 1\n', contentType: 'text/plain; version=0.0.4' };
    },
    readiness: async () => (ready ? { ready: true, detail: 'fine' } : { ready: false, reason: 'no leader is known' }),
  });
  t.teardown(() => server.close());
  const get = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: string; allow: string | null }> => {
    const response = await fetch(`http://${server.address}${path}`, init);
    return { status: response.status, body: await response.text(), allow: response.headers.get('allow') };
  };
  t.same(await get('/healthz'), { status: 200, body: 'ok\n', allow: null });
  t.match(await get('/readyz'), { status: 200, body: /^ready: fine/ });
  ready = false;
  t.match(await get('/readyz'), { status: 503, body: /^not ready: no leader is known/ });
  const [first, second] = await Promise.all([get('/metrics'), get('/metrics?x=1')]);
  t.same([first?.body, second?.body], ['dfs_up 1\n', 'dfs_up 1\n']);
  t.equal(scrapes, 1, 'concurrent scrapes share one collection');
  t.equal((await get('/other')).status, 404);
  t.match(await get('/metrics', { method: 'DELETE' }), { status: 405, allow: 'GET, HEAD' });
  t.match(await get('/metrics', { method: 'HEAD' }), { status: 200, body: '' });
});

t.test('a port in use is a start error naming the address', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const error = await startMetricsServer({ address: { host: '127.0.0.1', port }, logger, metrics: async () => ({ body: '', contentType: 'text/plain' }), readiness: async () => ({ ready: true, detail: '' }) })
    .then(async (server) => {
      await server.close();
      return null;
    }, (caught: unknown) => caught);
  t.ok(error instanceof MetricsServerStartError, 'a MetricsServerStartError');
  t.match(error, { reason: 'addressInUse', message: new RegExp(`127\\.0\\.0\\.1:${port}.*already in use.*-http`) });
});
