// The I/O shell of the status page: once a second (whether or not a page is open, so that an
// election or a membership change is caught when nobody watches) it asks for the node's own
// status and the cluster view, reads the store's figures and the activity counters, and hands
// the sample to the ClusterTimeline. One sample at a time: a slow answer delays the next sample,
// it never piles them up. The timer is unref'd: it never keeps the worker alive.

import { stat } from 'node:fs/promises';
import type { NodeStatus } from '../api/backend.js';
import type { ActivityCounters, ClusterTimeline } from './cluster-timeline.js';

export interface StatusSamplerOptions {
  readonly timeline: ClusterTimeline;
  readonly counters: ActivityCounters;
  /** gRPC calls being handled now. */
  readonly callsInFlight: () => number;
  /** This node's own status (bounded by the caller's deadline). */
  readonly own: () => Promise<NodeStatus>;
  /** The cluster as the leader reports it (fromLeader) or as this node sees it. */
  readonly cluster: () => Promise<{ readonly status: NodeStatus; readonly fromLeader: boolean }>;
  /** Files in the namespace and, when the store keeps it, the sum of their sizes. */
  readonly store: () => { readonly files: number; readonly logicalBytes: number | null };
  /** The state store's data file, whose allocated size is reported as its disk bytes. */
  readonly stateDataFile: string;
  readonly intervalMilliseconds?: number;
  readonly now?: () => number;
}

export interface StatusSampler {
  /** Takes one sample now (also what the timer does); resolves when it is observed. */
  sample(): Promise<void>;
  /**
   * Resolves once the last sample is at most `maxAgeMilliseconds` old, taking one if needed
   * (shared with any sample under way): what /api/status waits for, so that a page sees a
   * change within its own refresh interval rather than one plus the timer's.
   */
  fresh(maxAgeMilliseconds: number): Promise<void>;
  stop(): void;
}

export function startStatusSampler(options: StatusSamplerOptions): StatusSampler {
  const now = options.now ?? Date.now;
  const interval = options.intervalMilliseconds ?? 1000;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let running: Promise<void> | null = null;
  let sampledAt = Number.NEGATIVE_INFINITY;

  const takeSample = async (): Promise<void> => {
    const startedAt = now();
    const problems: string[] = [];
    const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));
    const [own, cluster, disk] = await Promise.allSettled([options.own(), options.cluster(), stat(options.stateDataFile)]);
    if (own.status === 'rejected') problems.push(`this node's Raft status is not available: ${reason(own.reason)}`);
    if (cluster.status === 'rejected') problems.push(`the leader's view of the cluster is not available: ${reason(cluster.reason)}`);
    let files: number | null = null;
    let logicalBytes: number | null = null;
    try {
      ({ files, logicalBytes } = options.store());
    } catch (error) {
      problems.push(`the state store could not be read: ${reason(error)}`);
    }
    options.timeline.observe(now(), {
      own: own.status === 'fulfilled' ? own.value : null,
      cluster: cluster.status === 'fulfilled' ? cluster.value : null,
      requests: options.counters.requests(options.callsInFlight()),
      proposalsCommitted: options.counters.proposalsCommitted,
      // Allocated blocks, not the apparent size: LMDB files are sparse.
      store: { files, logicalBytes, diskBytes: disk.status === 'fulfilled' ? disk.value.blocks * 512 : null },
      problems,
    });
    sampledAt = startedAt;
  };

  const sample = (): Promise<void> => {
    running ??= takeSample().finally(() => {
      running = null;
    });
    return running;
  };

  const loop = (): void => {
    // A sample never rejects (every source is settled); the catch only keeps the loop alive.
    void sample().catch(() => undefined).finally(() => {
      if (stopped) return;
      timer = setTimeout(loop, interval);
      timer.unref();
    });
  };
  loop();

  return {
    sample,
    fresh: (maxAgeMilliseconds) => (now() - sampledAt <= maxAgeMilliseconds ? Promise.resolve() : sample().catch(() => undefined)),
    stop: () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}
