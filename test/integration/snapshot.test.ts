// Catching up through a snapshot. Goal: a node that was down while the rest of the cluster
// compacted its log past everything the node has must still catch up when it returns — the
// leader can no longer send it the entries it lacks, so it must send its snapshot, and the node
// must install it (Raft §7) and then follow the log from there. Method: three real `dfs`
// processes with DFS_SNAPSHOT_ENTRIES=50 (compact every 50 applied entries); stop one follower
// with SIGTERM, write 300 keys through the other two, check that the leader's log folder holds a
// snapshot file under <data>/raft/snapshots/ and that its log now starts after the stopped node's
// last entry, restart the node and wait (bounded) until its own applied state (LOCAL reads) shows
// every key; its log must say that it installed a snapshot from the leader.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { mapConcurrently, TestCluster, waitFor } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const snapshotEntries = 50;
const keyCount = 300;

t.test('a node that missed a compacted part of the log catches up through a snapshot', async (t) => {
  const cluster = await TestCluster.started(t, 3, { env: { DFS_SNAPSHOT_ENTRIES: String(snapshotEntries) } });
  const leader = await cluster.waitForLeader(60_000);
  const [lagging, other] = cluster.nodes.filter((node) => node !== leader);
  if (lagging === undefined || other === undefined) throw new Error('no followers');

  // Something the lagging node does have, so that it restarts with data (not as a fresh node).
  await leader.client.put('before/stop', encoder.encode('seen by all three'));
  await waitFor(`${lagging.spec.id} applies the first write`, async () => (await lagging.client.get('before/stop', { consistency: 'LOCAL' }).catch(() => null)) !== null);
  const laggingLastIndex = (await lagging.status()).commitIndex;
  t.equal(await lagging.stop(), 0, `${lagging.spec.id} stops cleanly (SIGTERM)`);

  const keys = Array.from({ length: keyCount }, (_, index) => `compacted/${String(index).padStart(4, '0')}`);
  await mapConcurrently(keys, 16, async (key, index) => {
    await (index % 2 === 0 ? leader : other).client.put(key, encoder.encode(`value of ${key}`));
  });

  const snapshotsFolder = join(leader.spec.dataFolder, 'raft', 'snapshots');
  const snapshotFiles = await waitFor(`a snapshot file in ${snapshotsFolder}`, async () => {
    const names = readdirSync(snapshotsFolder);
    return names.length > 0 ? names : null;
  });
  t.ok(snapshotFiles.length >= 1, `the leader's log folder holds a snapshot: ${snapshotFiles.join(', ')}`);
  // The log line follows the file; the log reaches its file through a pipe, so poll for it too.
  const compactions = await waitFor('the leader logs the compaction', async () => {
    const found = [...leader.logText().matchAll(/compacted the log up to index (\d+)/g)].map((match) => Number(match[1]));
    return found.length > 0 ? found : null;
  });
  const compactedIndex = Math.max(...compactions);
  t.ok(compactedIndex > laggingLastIndex + 1, `the leader compacted up to ${compactedIndex}, past the stopped node's last entry ${laggingLastIndex}: it cannot catch up from the log`);

  lagging.start();
  const target = (await leader.status()).commitIndex;
  await waitFor(`${lagging.spec.id} applies up to ${target}`, async () => (await lagging.status()).appliedIndex >= target, 60_000);
  const missing: string[] = [];
  await mapConcurrently(['before/stop', ...keys], 32, async (key) => {
    const data = await lagging.client.get(key, { consistency: 'LOCAL' }).catch(() => null);
    const expected = key === 'before/stop' ? 'seen by all three' : `value of ${key}`;
    if (data === null || decoder.decode(data) !== expected) missing.push(key);
  });
  t.same(missing, [], `${lagging.spec.id}'s LOCAL reads show all ${keys.length + 1} keys`);
  await waitFor(`${lagging.spec.id}'s log says it installed a snapshot`, async () => /installed a snapshot at index \d+ from the leader/.test(lagging.logText()), 5000);
  t.match(lagging.logText(), /installed a snapshot at index \d+ from the leader/, `${lagging.spec.id}'s log says it installed a snapshot from the leader`);
  t.match(lagging.logText(), /state restored from the snapshot at index/, 'and that its state was restored from it');

  // After the install it follows the log again: a new write reaches it through AppendEntries.
  await other.client.put('after/restart', encoder.encode('after'));
  const after = await waitFor(`${lagging.spec.id} applies a write made after the install`, async () => lagging.client.get('after/restart', { consistency: 'LOCAL' }).catch(() => null));
  t.equal(decoder.decode(after), 'after');
});
