// The status page's sampler (src/metrics/status-sampler.ts) with made-up sources and clock: it
// samples once at start, shares one sample among concurrent callers, takes a new one only when
// the last is older than asked (fresh), turns a source that fails into a problem sentence rather
// than a failed sample, and reads the state store's disk bytes from the data file's blocks. The
// timer interval is an hour, so only the samples the test asks for are taken.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { NodeStatus } from '../../src/api/backend.js';
import { ActivityCounters, ClusterTimeline } from '../../src/metrics/cluster-timeline.js';
import { startStatusSampler } from '../../src/metrics/status-sampler.js';

const own: NodeStatus = {
  nodeId: 'node1', role: 'leader', term: 4, leaderId: 'node1', leaderAddress: 'a', commitIndex: 9, appliedIndex: 9, snapshotIndex: 0,
  members: [{ id: 'node1', address: 'a', role: 'leader', suffrage: 'voter', progressKnown: true, matchIndex: 9, lagEntries: 0 }],
};

t.test('samples at start, shares samples, refreshes only when stale, reports failures as problems', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'dfs-sampler-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const dataFile = join(folder, 'data.mdb');
  writeFileSync(dataFile, Buffer.alloc(64 * 1024, 1));
  let now = 1_000_000;
  let asked = 0;
  let clusterFails = false;
  const counters = new ActivityCounters();
  const timeline = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: now });
  const sampler = startStatusSampler({
    timeline,
    counters,
    callsInFlight: () => 1,
    own: async () => {
      asked++;
      return own;
    },
    cluster: async () => {
      if (clusterFails) throw new Error('the leader did not answer');
      return { status: own, fromLeader: true };
    },
    store: () => ({ files: 2, logicalBytes: 10 }),
    stateDataFile: dataFile,
    intervalMilliseconds: 3_600_000,
    now: () => now,
  });
  t.teardown(() => sampler.stop());

  await sampler.fresh(0);
  t.equal(asked, 1, 'the sample taken at start is fresh enough at once');
  const first = timeline.report();
  t.equal(first.node?.term, 4);
  t.equal(first.cluster?.fromLeader, true);
  t.same({ files: first.store.files, logicalBytes: first.store.logicalBytes }, { files: 2, logicalBytes: 10 });
  t.equal(first.requests.inFlight, 1, 'the server\'s calls in flight');
  t.ok((first.store.diskBytes ?? 0) >= 64 * 1024, `disk bytes from the data file's blocks (${first.store.diskBytes})`);

  now += 400;
  await sampler.fresh(500);
  t.equal(asked, 1, 'a sample 400 ms old is fresh within 500 ms');
  now += 200;
  clusterFails = true;
  await Promise.all([sampler.fresh(500), sampler.fresh(500), sampler.sample()]);
  t.equal(asked, 2, 'concurrent callers share one new sample');
  const second = timeline.report();
  t.same(second.problems, ["the leader's view of the cluster is not available: the leader did not answer"], 'a failing source is a problem, not a failed sample');
  t.equal(second.cluster?.fromLeader, true, "without the leader's answer the page shows this node's own status (here the leader's)");
  t.equal(second.sampledAtUnixMilliseconds, now);
});
