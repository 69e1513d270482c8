// The deterministic simulation inside `npm test`: a bounded sweep of seeded runs plus focused
// scenarios. Goal: catch violations of Raft's safety properties (one leader per term elected by a
// majority of that term's votes, log matching, leader completeness, commitment only of the
// leader's own entries by counting, state machine safety, durable acknowledged writes,
// linearizable reads) and of liveness after healing, under every fault the simulator knows (drop,
// duplicate, reorder, long-tail delays, partitions of every shape, crash-restart, pause, election
// storms, a nemesis that crashes or cuts off leaders right after their election or commit,
// membership changes, leadership transfer). Method: each sweep seed draws its own configuration,
// intensity (calm, moderate or brutal) and fault schedule (options.ts), alternating 3- and 5-node
// clusters; the checkers run at every step, and a failure prints the seed and the trace tail
// (replay with `SEED=n npm run test:sim`). The scenarios script one classic situation each, with
// client load running, and assert what should happen beyond mere safety.
// Sweep size: SIM_SWEEP_SEEDS (default 1000: about 35-40 s of CPU, 50 s wall on a busy 2-core
// machine). When it was sized, it caught both deliberate breakages tried on scratch copies of the
// core: counting a vote granted in an earlier term (71 of the 1000 seeds, the first at seed 14) and
// committing an earlier term's entry by counting replicas (Figure 8: 378 seeds, the first at seed 2).

import t, { type Test } from 'tap';

import type { SimulatedCluster } from './cluster.js';
import { noFaults, simulationOptions, type SimulationOptions } from './options.js';
import { SimulationFailure, runSimulation } from './simulation.js';

const sweepSeeds = Number(process.env['SIM_SWEEP_SEEDS'] ?? 1000);
const electionTimeoutTicks = simulationOptions(1).electionTimeoutTicks;

/** Runs one simulation; a failure fails the test with its full report instead of a stack. */
function simulate(t: Test, options: SimulationOptions, scenario?: (cluster: SimulatedCluster) => void) {
  try {
    return runSimulation(options, scenario);
  } catch (error) {
    if (!(error instanceof SimulationFailure)) throw error;
    t.fail(error.message, { report: error.report().split('\n') });
    return null;
  }
}

/** A quiet network and no random faults: the scenario brings its own. Client load still runs. */
function scenarioOptions(seed: number, overrides: Partial<SimulationOptions> = {}): SimulationOptions {
  return simulationOptions(seed, { faults: noFaults, chaosTicks: 0, ...overrides });
}

function leaderOf(cluster: SimulatedCluster): string {
  cluster.runUntil(() => cluster.leader() !== null, 20 * electionTimeoutTicks, 'electing a leader');
  return cluster.leader() ?? '';
}

function termOf(cluster: SimulatedCluster, id: string): number {
  return cluster.nodeStatus(id)?.term ?? -1;
}

t.test('the same seed replays the same run, byte for byte', async (t) => {
  const options = simulationOptions(7, { keepFullTrace: true, chaosTicks: 300 });
  const first = simulate(t, options);
  const second = simulate(t, options);
  t.ok(first !== null && second !== null && first.traceLineCount > 1000, 'both runs finish with a substantial trace');
  t.equal(second?.traceDigest, first?.traceDigest, 'same trace digest');
  t.same(second?.trace, first?.trace, 'same trace lines');
  t.not(simulate(t, simulationOptions(8, { chaosTicks: 300 }))?.traceDigest, first?.traceDigest, 'another seed, another run');
});

t.test(`sweep: ${sweepSeeds} seeds, 3- and 5-node clusters, every fault kind`, async (t) => {
  const started = performance.now();
  const failed: number[] = [];
  let ticks = 0;
  let acknowledged = 0;
  for (let seed = 1; seed <= sweepSeeds; seed++) {
    const result = simulate(t, simulationOptions(seed));
    if (result === null) failed.push(seed);
    else {
      ticks += result.stats.ticks;
      acknowledged += result.stats.writesAcknowledged;
    }
  }
  t.same(failed, [], 'no seed fails');
  t.comment(`${sweepSeeds} seeds, ${ticks} simulated ticks, ${acknowledged} writes acknowledged, ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

t.test('an isolated leader steps down and the majority elects another; after healing it follows', async (t) => {
  simulate(t, scenarioOptions(101, { nodeCount: 5 }), (cluster) => {
    const isolated = leaderOf(cluster);
    cluster.runTicks(50);
    cluster.isolate(isolated);
    const isolatedTerm = termOf(cluster, isolated);
    cluster.runUntil(() => (cluster.leader() ?? isolated) !== isolated, 6 * electionTimeoutTicks, 'a new leader in the majority');
    const replacement = cluster.leader() ?? '';
    t.ok(termOf(cluster, replacement) > isolatedTerm, 'the new leader has a higher term');
    cluster.runUntil(() => cluster.nodeStatus(isolated)?.role !== 'leader', 3 * electionTimeoutTicks, 'check-quorum stepping the isolated leader down');
    const acknowledgedBefore = cluster.summary().writesAcknowledged;
    cluster.runTicks(100);
    t.ok(cluster.summary().writesAcknowledged > acknowledgedBefore, 'writes commit in the majority meanwhile');
    cluster.healPartition();
    cluster.runUntil(() => cluster.nodeStatus(isolated)?.leader === cluster.leader(), 6 * electionTimeoutTicks, 'the old leader following');
  });
});

t.test('asymmetric partitions: a leader that cannot hear, or cannot be heard, is replaced', async (t) => {
  for (const direction of ['cannot hear', 'cannot be heard'] as const) {
    simulate(t, scenarioOptions(direction === 'cannot hear' ? 102 : 103, { nodeCount: 3 }), (cluster) => {
      const leader = leaderOf(cluster);
      cluster.runTicks(30);
      const others = cluster.memberIds().filter((id) => id !== leader);
      if (direction === 'cannot hear') cluster.blockOneWay(others, [leader]);
      else cluster.blockOneWay([leader], others);
      cluster.runUntil(() => (cluster.leader() ?? leader) !== leader, 8 * electionTimeoutTicks, `a new leader when the old one ${direction}`);
      const acknowledgedBefore = cluster.summary().writesAcknowledged;
      cluster.runTicks(100);
      t.ok(cluster.summary().writesAcknowledged > acknowledgedBefore, `writes commit while the old leader ${direction}`);
      t.not(cluster.nodeStatus(leader)?.role, 'leader', `the old leader that ${direction} is not leading`);
    });
  }
});

t.test('a bridge node between two halves: the leader keeps its term and writes keep committing', async (t) => {
  simulate(t, scenarioOptions(104, { nodeCount: 5 }), (cluster) => {
    const leader = leaderOf(cluster);
    cluster.runTicks(30);
    const [bridge = '', partner = '', ...farSide] = cluster.memberIds().filter((id) => id !== leader);
    cluster.bridge(bridge, [leader, partner], farSide);
    const term = termOf(cluster, leader);
    const acknowledgedBefore = cluster.summary().writesAcknowledged;
    for (let tick = 0; tick < 30 * electionTimeoutTicks; tick++) {
      cluster.step();
      if (cluster.leader() !== leader || termOf(cluster, leader) !== term) break;
    }
    t.equal(cluster.leader(), leader, 'the leader (with its partner and the bridge, a majority) stays leader');
    t.equal(termOf(cluster, leader), term, 'pre-vote keeps the cut-off half from raising the term');
    t.ok(cluster.summary().writesAcknowledged > acknowledgedBefore, 'writes commit through the bridge partition');
  });
});

t.test('the leader crashes in the middle of writes: a new leader takes over, nothing acknowledged is lost', async (t) => {
  simulate(t, scenarioOptions(105, { nodeCount: 3, writeProbability: 0.8, maxPendingOperations: 16 }), (cluster) => {
    const leader = leaderOf(cluster);
    cluster.runTicks(60);
    cluster.crash(leader);
    cluster.runUntil(() => cluster.leader() !== null, 6 * electionTimeoutTicks, 'a new leader after the crash');
    const acknowledgedBefore = cluster.summary().writesAcknowledged;
    cluster.runTicks(100);
    t.ok(cluster.summary().writesAcknowledged > acknowledgedBefore, 'writes commit with the leader down');
    cluster.restart(leader);
    cluster.runTicks(60);
  });
});

t.test('a learner added after compaction catches up through a snapshot sent in chunks', async (t) => {
  for (const autoPromoteLearners of [true, false]) {
    // Compaction rarer than one snapshot transfer takes (about 10 chunks, one per round trip): with
    // compaction every few entries the transfer starts over at every compaction (todo test below).
    const sizes = { compactionThresholdEntries: 32, snapshotChunkBytes: 256, maxMessageBytes: 1024 };
    simulate(t, scenarioOptions(106, { nodeCount: 3, autoPromoteLearners, ...sizes }), (cluster) => {
      const leader = leaderOf(cluster);
      cluster.runTicks(200);
      const before = cluster.summary();
      const learner = cluster.addNode();
      cluster.runUntil(() => cluster.committedMembers().includes(learner), 10 * electionTimeoutTicks, 'the learner joining');
      const commitIndex = cluster.nodeStatus(leader)?.commitIndex ?? 0;
      cluster.runUntil(() => (cluster.appliedIndex(learner) ?? 0) >= commitIndex, 100 * electionTimeoutTicks, 'the learner catching up');
      const after = cluster.summary();
      t.ok(after.snapshotsInstalled > before.snapshotsInstalled, 'it installed a snapshot');
      t.ok(after.snapshotChunksSent - before.snapshotChunksSent > after.snapshotsSent - before.snapshotsSent, 'the snapshot took several chunks');
      if (!autoPromoteLearners) cluster.proposeConfChange({ type: 'promote', nodeId: learner });
      cluster.runUntil(() => cluster.nodeStatus(cluster.leader() ?? learner)?.config.voters.includes(learner) === true, 20 * electionTimeoutTicks, 'the learner becoming a voter');
    });
  }
});

// Found when the seeds' network jitter changed: the core restarts a snapshot transfer from offset 0
// whenever the leader compacts again meanwhile, so a follower whose transfer takes longer than the
// leader's compaction interval (here ~44 chunks of 64 bytes, one per round trip, against a
// compaction every ~25 ticks) does not catch up for as long as the writes go on. A liveness bug of
// the core: tap does not run a todo test's body, so remove `todo` to check a fix.
t.test(
  'a learner catches up through a snapshot even when the leader compacts faster than one transfer takes',
  { todo: 'the core restarts the transfer at every compaction (snapshot transfer starvation)' },
  async (t) => {
    const options = scenarioOptions(106, { nodeCount: 3, compactionThresholdEntries: 8, snapshotChunkBytes: 64, maximumDelayTicks: 2, heartbeatIntervalTicks: 3, maxMessageBytes: 683 });
    simulate(t, options, (cluster) => {
      const leader = leaderOf(cluster);
      cluster.runTicks(200);
      const learner = cluster.addNode();
      cluster.runUntil(() => cluster.committedMembers().includes(learner), 10 * electionTimeoutTicks, 'the learner joining');
      const commitIndex = cluster.nodeStatus(leader)?.commitIndex ?? 0;
      cluster.runUntil(() => (cluster.appliedIndex(learner) ?? 0) >= commitIndex, 100 * electionTimeoutTicks, 'the learner catching up');
    });
  },
);

t.test('removing the leader: it steps down once the change commits and the others carry on', async (t) => {
  simulate(t, scenarioOptions(107, { nodeCount: 5 }), (cluster) => {
    const leader = leaderOf(cluster);
    cluster.runTicks(50);
    const result = cluster.proposeConfChange({ type: 'remove', nodeId: leader });
    t.ok(result?.ok, 'the leader accepts its own removal');
    cluster.runUntil(() => !cluster.committedMembers().includes(leader), 10 * electionTimeoutTicks, 'the removal committing');
    t.not(cluster.nodeStatus(leader)?.role, 'leader', 'the removed leader stepped down when its removal committed');
    cluster.runUntil(() => cluster.leader() !== null, 6 * electionTimeoutTicks, 'a new leader among the remaining four');
    cluster.runUntil(() => cluster.isRetired(leader), 3 * electionTimeoutTicks, 'the removed leader stopping');
    const acknowledgedBefore = cluster.summary().writesAcknowledged;
    cluster.runTicks(100);
    t.ok(cluster.summary().writesAcknowledged > acknowledgedBefore, 'writes commit after the removal');
    t.equal(cluster.committedMembers().length, 4, 'four members remain');
  });
});

// Found by the sweep (seed 6482 of 1..10000): two single-server changes made from the same
// configuration in different terms have majorities that need not overlap. The old leader, cut
// off, appends the removal of one node; the three others elect a new leader, which appends the
// removal of another before its own first entry is committed and commits both with one follower (a
// majority of its new configuration); the old leader then wins with the last node's vote (a
// majority of its own configuration) without the committed entries. Ongaro's fix (raft-dev, 2015;
// the dissertation's errata): a leader appends a configuration entry only once an entry of its own
// term is committed.
t.test(
  'a new leader changes the membership only after an entry of its term is committed',
  async (t) => {
    simulate(t, scenarioOptions(109, { nodeCount: 4, writeProbability: 0, readProbability: 0 }), (cluster) => {
      const ids = cluster.memberIds();
      const status = (id: string) => cluster.nodeStatus(id);
      /** Blocks every directed link but the listed ones. */
      const openOnly = (open: ReadonlyArray<readonly [string, string]>) => {
        cluster.network.unblockAll();
        for (const from of ids) {
          for (const to of ids) if (from !== to && !open.some((link) => link[0] === from && link[1] === to)) cluster.network.block(from, to);
        }
      };
      const bothWays = (a: string, b: string) => [[a, b] as const, [b, a] as const];
      const oldLeader = leaderOf(cluster);
      cluster.runUntil(() => ids.every((id) => status(id)?.commitIndex === status(oldLeader)?.lastIndex), 20 * electionTimeoutTicks, 'everything committed everywhere');
      const others = ids.filter((id) => id !== oldLeader);
      const [removedByOldLeader = '', second = '', third = ''] = others;
      openOnly([]);
      t.ok(cluster.proposeConfChange({ type: 'remove', nodeId: removedByOldLeader }, oldLeader)?.ok, `${oldLeader}, cut off, appends the removal of ${removedByOldLeader}`);
      cluster.runUntil(() => status(oldLeader)?.role !== 'leader', 3 * electionTimeoutTicks, `${oldLeader} stepping down`);
      // The three others elect a leader; the old leader hears them (it learns the term) but is not heard.
      openOnly([...bothWays(removedByOldLeader, second), ...bothWays(removedByOldLeader, third), ...bothWays(second, third), ...others.map((id) => [id, oldLeader] as const)]);
      cluster.runUntil(() => others.some((id) => status(id)?.role === 'leader'), 40 * electionTimeoutTicks, 'a leader among the other three');
      const newLeader = others.find((id) => status(id)?.role === 'leader') ?? '';
      const cutOff = others.find((id) => id !== newLeader && id !== removedByOldLeader) ?? '';
      const follower = others.find((id) => id !== newLeader && id !== cutOff) ?? '';
      // The cut-off node voted for the new leader but never hears from it as leader.
      openOnly([...bothWays(oldLeader, cutOff), ...bothWays(newLeader, follower)]);
      const result = cluster.proposeConfChange({ type: 'remove', nodeId: cutOff }, newLeader);
      t.not(result?.ok, true, `${newLeader} refuses to remove ${cutOff} before its first entry is committed`);
      if (result?.ok !== true) return;
      // Without the rule: the new leader commits with its follower alone, then the old leader wins
      // with the cut-off node's vote and the checkers object.
      const removal = status(newLeader)?.lastIndex ?? 0;
      cluster.runUntil(() => (status(newLeader)?.commitIndex ?? 0) >= removal, 10 * electionTimeoutTicks, `${newLeader} committing the removal of ${cutOff}`);
      cluster.runUntil(() => status(oldLeader)?.role === 'leader', 20 * electionTimeoutTicks, `${oldLeader} leading again`);
    });
  },
);

// Found by the sweep (FAULT_SCALE=3 SEED=2296). The two up-to-date nodes each hold an
// uncommitted removal of themselves: before the fix neither of the two campaigned, and if the
// third node's log is too old to win, nobody could. Dissertation §4.2.2: a server outside its own latest
// configuration must still start elections until that configuration is committed.
t.test(
  'uncommitted self-removals on the up-to-date nodes do not block elections forever',
  async (t) => {
    simulate(t, scenarioOptions(108, { nodeCount: 3, writeProbability: 0, readProbability: 0 }), (cluster) => {
      const cut = (a: string, b: string) => {
        cluster.network.block(a, b);
        cluster.network.block(b, a);
      };
      const first = leaderOf(cluster);
      const [second = '', stale = ''] = cluster.memberIds().filter((id) => id !== first);
      cut(first, stale);
      cut(second, stale);
      cluster.startWrite('k');
      const committedOnBoth = () => cluster.writeOutcome('w1') === 'ok' && cluster.nodeStatus(second)?.commitIndex === cluster.nodeStatus(second)?.lastIndex;
      cluster.runUntil(committedOnBoth, 10 * electionTimeoutTicks, 'a write committing without the stale node');
      cut(first, second);
      t.ok(cluster.proposeConfChange({ type: 'remove', nodeId: first }, first)?.ok, `${first} appends its own removal`);
      cluster.network.unblockAll();
      cut(first, second);
      cut(first, stale);
      cluster.runUntil(() => cluster.leader() === second, 40 * electionTimeoutTicks, `${second} winning with ${stale}'s vote`);
      // A new leader changes the membership only once an entry of its term is committed.
      cluster.runUntil(
        () => cluster.nodeStatus(second)?.commitIndex === cluster.nodeStatus(second)?.lastIndex,
        10 * electionTimeoutTicks,
        `${second} committing its first entry with ${stale}`,
      );
      cut(second, stale);
      t.ok(cluster.proposeConfChange({ type: 'remove', nodeId: second }, second)?.ok, `${second} appends its own removal`);
      cluster.runUntil(() => cluster.nodeStatus(second)?.role !== 'leader', 6 * electionTimeoutTicks, `${second} stepping down`);
      cluster.network.unblockAll();
      // finish() now requires a leader within electionBoundTicks.
    });
  },
);
