// The monitoring endpoints of a real three-node cluster (issue 6): each node's HTTP port serves
// /metrics in the Prometheus text format, /healthz and /readyz. The test scrapes every node and
// compares the Raft figures with what Status says (the cluster is idle then, so they must agree),
// writes through gRPC and checks that the request counters, the proposal and fsync histograms and
// the stored bytes move, asks for a snapshot and finds its size and duration, then stops two
// nodes and expects the survivor to report itself not ready with a reason. A fourth process
// started on a taken HTTP port must exit 1 naming it.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { freePort, runDfs, TestCluster, waitFor, type TestNode } from './harness.js';
import { sample } from '../metrics/exposition.js';

async function fetchText(node: TestNode, path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${node.spec.httpPort}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

t.test('each node serves /metrics, /healthz and /readyz', async (t) => {
  const cluster = await TestCluster.started(t, 3);
  const leader = await cluster.waitForLeader(30_000);

  await t.test('/healthz and /readyz answer 200 on every node; other paths and methods do not', async (t) => {
    for (const node of cluster.nodes) {
      const health = await fetchText(node, '/healthz');
      t.equal(health.status, 200, `${node.spec.id} /healthz`);
      t.equal(health.body.trim(), 'ok');
      const ready = await waitFor(`${node.spec.id} is ready`, async () => {
        const answer = await fetchText(node, '/readyz');
        return answer.status === 200 ? answer : null;
      }, 15_000);
      t.match(ready.body, /^ready: /, `${node.spec.id} /readyz says why it is ready`);
    }
    t.equal((await fetchText(leader, '/nothing')).status, 404, 'an unknown path: 404');
    t.equal((await fetchText(leader, '/metrics', { method: 'POST', body: 'x' })).status, 405, 'POST: 405');
    t.equal((await fetchText(leader, '/healthz', { method: 'HEAD' })).status, 200, 'HEAD /healthz: 200');
  });

  await t.test('the Raft figures match Status on every node', async (t) => {
    for (const node of cluster.nodes) {
      // The cluster is idle, but a scrape and a Status call are two moments: retry until one pair agrees.
      let last: { metrics: unknown; status: unknown } = { metrics: null, status: null };
      const agreed = await waitFor(`${node.spec.id} metrics agree with Status`, async () => {
        const status = await node.status();
        const text = (await fetchText(node, '/metrics')).body;
        // Status names roles as the .proto enum does (PRE_CANDIDATE); the label as the Raft core (preCandidate).
        const role = status.role.toLowerCase().replace(/_(.)/g, (_match, letter: string) => letter.toUpperCase());
        last = {
          metrics: { term: sample(text, 'dfs_raft_term'), commit: sample(text, 'dfs_raft_commit_index'), applied: sample(text, 'dfs_raft_applied_index'), role: sample(text, 'dfs_raft_role', { role }) },
          status: { term: status.term, commit: status.commitIndex, applied: status.appliedIndex, role: 1 },
        };
        return JSON.stringify(last.metrics) === JSON.stringify(last.status) ? true : null;
      }, 10_000).catch(() => false);
      t.same(last.metrics, last.status, `${node.spec.id}: role, term, commit and applied index as in Status (agreed: ${String(agreed)})`);
    }
    const text = (await fetchText(leader, '/metrics')).body;
    for (const peer of cluster.nodes.filter((node) => node !== leader)) {
      t.not(sample(text, 'dfs_raft_peer_match_index', { peer: peer.spec.id }), null, `the leader reports ${peer.spec.id}'s match index`);
      t.not(sample(text, 'dfs_raft_peer_lag_entries', { peer: peer.spec.id }), null, `the leader reports ${peer.spec.id}'s lag`);
    }
    t.equal(sample(text, 'dfs_raft_peer_lag_entries', { peer: leader.spec.id }), null, 'no lag for the leader itself');
  });

  await t.test('writes move the request counters, the proposal and fsync histograms and the stored bytes', async (t) => {
    const before = (await fetchText(leader, '/metrics')).body;
    const diskBefore = sample(before, 'dfs_store_disk_bytes', { store: 'state' }) ?? 0;
    const putsBefore = sample(before, 'dfs_grpc_requests_total', { method: 'Put', code: 'OK' }) ?? 0;
    const writes = 8;
    for (let index = 0; index < writes; index++) await leader.client.put(`metrics/${index}`, randomBytes(512 * 1024));
    await t.rejects(leader.client.get('metrics/absent'), { code: 'NOT_FOUND' });
    // The Raft actor reports its measurements once a second.
    const after = await waitFor('the fsync histogram has counts', async () => {
      const text = (await fetchText(leader, '/metrics')).body;
      return (sample(text, 'dfs_raft_fsync_seconds_count') ?? 0) > 0 && (sample(text, 'dfs_raft_persisted_entries_total') ?? 0) >= writes ? text : null;
    }, 5_000);
    t.ok((sample(after, 'dfs_raft_fsync_seconds_count') ?? 0) > 0, 'the fsync histogram has counts');
    t.equal(sample(after, 'dfs_grpc_requests_total', { method: 'Put', code: 'OK' }), putsBefore + writes, 'Put OK counted once per call');
    t.ok((sample(after, 'dfs_grpc_requests_total', { method: 'Get', code: 'NOT_FOUND' }) ?? 0) >= 1, 'a Get of a missing key counted as NOT_FOUND');
    t.ok((sample(after, 'dfs_grpc_request_duration_seconds_count', { method: 'Put', code: 'OK' }) ?? 0) >= writes, 'Put latency histogram');
    t.ok((sample(after, 'dfs_raft_proposals_total', { result: 'committed' }) ?? 0) >= writes, 'proposals committed');
    t.ok((sample(after, 'dfs_raft_proposal_commit_seconds_count') ?? 0) >= writes, 'proposal commit latency observed');
    t.ok((sample(after, 'dfs_store_disk_bytes', { store: 'state' }) ?? 0) >= diskBefore + writes * 512 * 1024, 'the state store grew by at least what was written');
    t.ok((sample(after, 'dfs_store_files') ?? 0) >= writes, 'files counted');
  });

  await t.test('a snapshot taken on request shows its size and duration', async (t) => {
    const taken = await leader.client.snapshot();
    const text = await waitFor('the snapshot is reported', async () => {
      const scraped = (await fetchText(leader, '/metrics')).body;
      return (sample(scraped, 'dfs_raft_snapshot_size_bytes_count', { kind: 'taken' }) ?? 0) >= 1 ? scraped : null;
    }, 5_000);
    t.equal(sample(text, 'dfs_raft_snapshot_size_bytes_sum', { kind: 'taken' }), taken.sizeBytes, 'the size Snapshot returned');
    t.ok((sample(text, 'dfs_raft_snapshot_duration_seconds_count', { kind: 'taken' }) ?? 0) >= 1, 'its duration');
    t.equal(sample(text, 'dfs_raft_snapshot_index'), taken.index, 'dfs_raft_snapshot_index moved to it');
  });

  await t.test('an HTTP port already in use: the node exits 1 naming it', async (t) => {
    const taken = `127.0.0.1:${leader.spec.httpPort}`;
    const result = await runDfs(
      ['-id', 'intruder', '-raft', `127.0.0.1:${await freePort()}`, '-grpc', `127.0.0.1:${await freePort()}`, '-http', taken, '-data', join(cluster.folder, 'intruder-http'), '-no-fuse'],
      { cwd: cluster.folder, timeoutMilliseconds: 15_000 },
    );
    t.equal(result.timedOut, false, 'it does not hang');
    t.equal(result.code, 1, `exit code ${result.code}`);
    t.match(result.output, new RegExp(`HTTP[^\\n]*127\\.0\\.0\\.1:${leader.spec.httpPort}[^\\n]*in use`), 'the message names the HTTP address and says it is in use');
  });

  await t.test('a node cut off from the others is not ready, and says why', async (t) => {
    const [survivor, ...others] = cluster.nodes;
    if (survivor === undefined) throw new Error('no node');
    await Promise.all(others.map((node) => node.kill()));
    const answer = await waitFor('the survivor reports not ready', async () => {
      const probe = await fetchText(survivor, '/readyz');
      return probe.status === 503 ? probe : null;
    }, 15_000);
    t.match(answer.body, /not ready: no leader is known/, `${survivor.spec.id}: ${answer.body.trim()}`);
    t.equal((await fetchText(survivor, '/healthz')).status, 200, 'it is still alive');
    t.equal(sample((await fetchText(survivor, '/metrics')).body, 'dfs_raft_leader_known'), 0, 'dfs_raft_leader_known 0');
  });
});
