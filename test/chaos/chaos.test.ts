// A short chaos run in `npm test`: three real `dfs` nodes, each behind a fault-injecting proxy,
// under about 45 seconds of mixed faults (kill -9 and restart, SIGSTOP pauses, partitions of a
// minority, of the leader and across a bridge, a node removed and joining again empty) while
// concurrent clients Put, Get and Delete a few keys. Goal: the recorded history is linearizable,
// every node holds the same data afterwards, and the cluster serves again after every fault.
// Method: runChaos (run.ts) with a fixed seed, so the fault schedule is the same on every run
// (CHAOS_SEED overrides it); the whole report is printed as a comment, and on failure the data
// folders and logs are kept. Generous timeouts: CI machines are small and busy.

import t from 'tap';

import { faultKinds } from './nemesis.js';
import { runChaos } from './run.js';

const seed = Number(process.env['CHAOS_SEED'] ?? 20_261_122);
/** CI's second pass (another Node version, the same code) runs a shorter one. */
const durationSeconds = Number(process.env['CHAOS_DURATION_SECONDS'] ?? 45);

t.test('a minute of mixed faults on three nodes: linearizable, identical, recovered', async (t) => {
  const started = Date.now();
  const report = await runChaos({
    durationSeconds,
    seed,
    nodes: 3,
    faults: faultKinds,
    clients: 6,
    keys: 6,
    keep: false,
    log: (line) => t.comment(line),
    // Shorter faults and gaps than the CLI's defaults, so that a short run sees more kinds.
    faultMilliseconds: [1500, 2500],
    gapMilliseconds: [500, 1500],
  });
  t.comment(`wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.ok(report.faults.length >= 5, `${report.faults.length} faults injected`);
  t.ok(new Set(report.faults.map((record) => record.kind.split('-')[0])).size >= 3, 'of at least three families (kill, pause, partition, membership)');
  t.ok(report.operations.put.ok + report.operations.get.ok + report.operations.delete.ok > 200, 'the clients got work done');
  t.equal(report.check.verdict, 'linearizable', 'the history is linearizable');
  t.equal(report.divergence, '', 'every node holds the same data');
  t.ok(report.recovered, 'the cluster served again after every fault');
  t.equal(report.finalReadsFailed, 0, 'every key reads through every node after healing');
});
