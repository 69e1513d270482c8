// The knobs of one simulated run. `simulationOptions(seed)` draws the per-run parameters (how hard
// the run is hit, fault intensities, batching limits, snapshot chunk size, compaction threshold)
// from the seed itself, so a sweep over seeds also sweeps configurations, and one seed always
// means one configuration. Some seeds are calm and some brutal on purpose: a bug that needs a long
// chain of bad luck (a vote that arrives two elections late, a leader that dies the tick after it
// commits) only shows under brutal schedules, while calm ones exercise the paths where replication
// actually makes progress (compaction, snapshots, membership changes that commit).

import { seededRandom } from '../../src/raft/random.js';

export const faultKinds = ['drop', 'duplicate', 'reorder', 'delay', 'partition', 'crash', 'pause', 'storm', 'nemesis', 'membership', 'transfer'] as const;
export type FaultKind = (typeof faultKinds)[number];

/**
 * How hard a seed hits, as factors on the fault probabilities drawn for it: `network` scales
 * drops, duplicates, reordering and long delays; `partitions` the partitions and storms; `leaders`
 * crashes, pauses, the nemesis and leadership transfers. A brutal seed goes after leaders above
 * all: blocking everything would only stop the cluster, while killing leaders makes elections, and
 * elections (with the commits between them) are where Raft's safety is decided.
 */
export const intensities = {
  calm: { network: 0.3, partitions: 0.3, leaders: 0.3 },
  moderate: { network: 1, partitions: 1, leaders: 1 },
  brutal: { network: 1.5, partitions: 1, leaders: 3 },
} as const;
export type Intensity = keyof typeof intensities;

/** Probabilities: per message for the network faults, per tick for the others. */
export interface FaultMix {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly reorderProbability: number;
  /** Chance per message that it is held for longDelayTicks: the long tail of a real network. */
  readonly longDelayProbability: number;
  /** Chance per tick that a partition starts (one at a time). */
  readonly partitionProbability: number;
  readonly crashProbability: number;
  readonly pauseProbability: number;
  /** Chance per tick that an election storm begins (see SimulationOptions.stormTicks). */
  readonly stormProbability: number;
  /** Chance, per leader elected, that it is crashed or cut off within a few ticks. */
  readonly newLeaderDisruptionProbability: number;
  /** Chance, per advance of a leader's commit index, that it crashes before telling anyone. */
  readonly crashAfterCommitProbability: number;
  /** The same for the first advance in a leader's term: the one that commits what earlier leaders left behind. */
  readonly crashAfterFirstCommitProbability: number;
  readonly membershipProbability: number;
  readonly transferProbability: number;
}

export const noFaults: FaultMix = {
  dropProbability: 0,
  duplicateProbability: 0,
  reorderProbability: 0,
  longDelayProbability: 0,
  partitionProbability: 0,
  crashProbability: 0,
  pauseProbability: 0,
  stormProbability: 0,
  newLeaderDisruptionProbability: 0,
  crashAfterCommitProbability: 0,
  crashAfterFirstCommitProbability: 0,
  membershipProbability: 0,
  transferProbability: 0,
};

export interface SimulationOptions {
  readonly seed: number;
  readonly nodeCount: number;
  /** How hard the run is hit: the factors (intensities) that scaled the fault probabilities drawn. */
  readonly intensity: Intensity;
  /** Ticks of faults and client load before everything heals. */
  readonly chaosTicks: number;
  readonly faults: FaultMix;

  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly maxInflightMessages: number;
  readonly maxMessageBytes: number;
  readonly snapshotChunkBytes: number;
  readonly autoPromoteLearners: boolean;
  /** A node compacts once it has applied this many entries past its snapshot. */
  readonly compactionThresholdEntries: number;

  readonly minimumDelayTicks: number;
  readonly maximumDelayTicks: number;
  readonly reorderDelayTicks: number;
  /** The long tail: one to four election timeouts, so a message can outlive the election it was sent in. */
  readonly longDelayTicks: readonly [minimum: number, maximum: number];
  readonly maxQueuedMessagesPerNode: number;
  readonly crashDownTicks: readonly [minimum: number, maximum: number];
  readonly pauseTicks: readonly [minimum: number, maximum: number];
  readonly partitionTicks: readonly [minimum: number, maximum: number];
  /**
   * An election storm lasts this long. Meanwhile, about every other election timeout, the cluster
   * is shattered (every link cut) or its leader is cut off, paused or crashed, each briefly: many
   * nodes time out together, so several candidates run in the same term and votes cross.
   */
  readonly stormTicks: readonly [minimum: number, maximum: number];
  /** A leader picked by the nemesis (newLeaderDisruptionProbability) is hit this many ticks after its election. */
  readonly newLeaderDisruptionDelayTicks: readonly [minimum: number, maximum: number];
  /** Members (voters and learners) the cluster may grow to by membership changes. */
  readonly maxMembers: number;
  readonly maxMembershipChanges: number;

  /** Chance per tick that a client starts a write / a read. */
  readonly writeProbability: number;
  readonly readProbability: number;
  readonly keyCount: number;
  readonly maxPendingOperations: number;
  readonly maxOperations: number;
  /** One attempt of a client operation waits this long before the client retries elsewhere. */
  readonly attemptTimeoutTicks: number;
  /** Before healing; after healing writes are retried until the convergence bound. */
  readonly maxAttempts: number;
  readonly retryBackoffTicks: number;

  /** After healing, a leader must be elected within this many ticks. */
  readonly electionBoundTicks: number;
  /** After that, every retried write must commit and every member catch up within this many. */
  readonly convergenceBoundTicks: number;

  /** Trace lines kept for a failure report. */
  readonly traceTailLines: number;
  /** Keep every trace line (for TRACE_FILE). */
  readonly keepFullTrace: boolean;
}

/** The default configuration of `seed`, drawn from the seed; `overrides` win. */
export function simulationOptions(seed: number, overrides: Partial<SimulationOptions> = {}): SimulationOptions {
  const random = seededRandom(seed ^ 0x5eed5eed);
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const nodeCount = overrides.nodeCount ?? (seed % 2 === 0 ? 3 : 5);
  const electionTimeoutTicks = 10;
  // Drawn even when overridden, so that the other draws of the seed stay the same.
  const intensityDraw = random();
  const intensity: Intensity = overrides.intensity ?? (intensityDraw < 0.25 ? 'calm' : intensityDraw < 0.6 ? 'moderate' : 'brutal');
  const factors = intensities[intensity];
  const faults: FaultMix = {
    dropProbability: random() * 0.1 * factors.network,
    duplicateProbability: random() * 0.05 * factors.network,
    reorderProbability: random() * 0.2 * factors.network,
    longDelayProbability: random() * 0.05 * factors.network,
    partitionProbability: (0.004 + random() * 0.01) * factors.partitions,
    crashProbability: (0.002 + random() * 0.006) * factors.leaders,
    pauseProbability: random() * 0.004 * factors.leaders,
    stormProbability: random() * 0.002 * factors.partitions,
    newLeaderDisruptionProbability: Math.min(0.6, random() * 0.3 * factors.leaders),
    crashAfterCommitProbability: random() * 0.03 * factors.leaders,
    crashAfterFirstCommitProbability: Math.min(0.6, random() * 0.3 * factors.leaders),
    membershipProbability: 0.005 + random() * 0.01,
    transferProbability: random() * 0.004 * factors.leaders,
  };
  return {
    seed,
    nodeCount,
    intensity,
    chaosTicks: 1000,
    faults,
    electionTimeoutTicks,
    heartbeatIntervalTicks: between(1, 3),
    maxInflightMessages: between(1, 8),
    // A third of the seeds send one entry per AppendEntries: a follower can then acknowledge an
    // old leader's entry without the new leader's first entry behind it (Figure 8's situation).
    maxMessageBytes: random() < 1 / 3 ? 1 : between(64, 1024),
    snapshotChunkBytes: between(64, 512),
    autoPromoteLearners: random() < 0.5,
    compactionThresholdEntries: between(8, 64),
    minimumDelayTicks: 1,
    maximumDelayTicks: between(1, 3),
    reorderDelayTicks: between(2, 40),
    longDelayTicks: [electionTimeoutTicks, 4 * electionTimeoutTicks],
    maxQueuedMessagesPerNode: 2000,
    crashDownTicks: [5, 60],
    pauseTicks: [5, 40],
    partitionTicks: [10, 120],
    stormTicks: [5 * electionTimeoutTicks, 20 * electionTimeoutTicks],
    newLeaderDisruptionDelayTicks: [0, 3],
    maxMembers: nodeCount + 1,
    maxMembershipChanges: 8,
    writeProbability: 0.3,
    readProbability: 0.2,
    keyCount: 4,
    maxPendingOperations: 8,
    maxOperations: 400,
    attemptTimeoutTicks: 4 * electionTimeoutTicks,
    maxAttempts: 3,
    retryBackoffTicks: 5,
    electionBoundTicks: 15 * electionTimeoutTicks,
    convergenceBoundTicks: 3000,
    traceTailLines: 60,
    keepFullTrace: false,
    ...overrides,
  };
}

/** Keeps only the probabilities of the named fault kinds. */
export function onlyFaults(faults: FaultMix, kinds: readonly FaultKind[]): FaultMix {
  const keep = new Set(kinds);
  return {
    dropProbability: keep.has('drop') ? faults.dropProbability : 0,
    duplicateProbability: keep.has('duplicate') ? faults.duplicateProbability : 0,
    reorderProbability: keep.has('reorder') ? faults.reorderProbability : 0,
    longDelayProbability: keep.has('delay') ? faults.longDelayProbability : 0,
    partitionProbability: keep.has('partition') ? faults.partitionProbability : 0,
    crashProbability: keep.has('crash') ? faults.crashProbability : 0,
    pauseProbability: keep.has('pause') ? faults.pauseProbability : 0,
    stormProbability: keep.has('storm') ? faults.stormProbability : 0,
    newLeaderDisruptionProbability: keep.has('nemesis') ? faults.newLeaderDisruptionProbability : 0,
    crashAfterCommitProbability: keep.has('nemesis') ? faults.crashAfterCommitProbability : 0,
    crashAfterFirstCommitProbability: keep.has('nemesis') ? faults.crashAfterFirstCommitProbability : 0,
    membershipProbability: keep.has('membership') ? faults.membershipProbability : 0,
    transferProbability: keep.has('transfer') ? faults.transferProbability : 0,
  };
}

/** Multiplies every probability by `factor` (at most 0.5 each, so a run still makes progress). */
export function scaleFaults(faults: FaultMix, factor: number): FaultMix {
  const scaled = Object.entries(faults).map(([name, probability]) => [name, Math.min(0.5, probability * factor)]);
  return Object.fromEntries(scaled) as unknown as FaultMix;
}
