// One simulated run from start to verdict: the chaos phase, then healing and the end checks. Any
// error (a checker's SafetyViolation, or an exception from the core or the driver) becomes a
// SimulationFailure that carries what is needed to replay and read it: the seed, the tick, the
// message and the last lines of the trace.

import { SimulatedCluster, type SimulationStats } from './cluster.js';
import type { SimulationOptions } from './options.js';

export interface SimulationResult {
  readonly seed: number;
  readonly stats: SimulationStats;
  readonly traceDigest: number;
  readonly traceLineCount: number;
  /** Every trace line, when options.keepFullTrace. */
  readonly trace: readonly string[] | null;
}

export class SimulationFailure extends Error {
  constructor(
    readonly seed: number,
    readonly tick: number,
    readonly error: unknown,
    readonly traceTail: readonly string[],
    readonly trace: readonly string[] | null,
  ) {
    super(`seed ${seed} failed at tick ${tick}: ${error instanceof Error ? error.message : String(error)}`);
    this.name = 'SimulationFailure';
  }

  report(): string {
    const stack = this.error instanceof Error && this.error.name !== 'SafetyViolation' ? `\n${this.error.stack ?? ''}` : '';
    return `${this.message}${stack}\nlast ${this.traceTail.length} trace lines:\n${this.traceTail.join('\n')}\nreplay: SEED=${this.seed} npm run test:sim`;
  }
}

export function runSimulation(options: SimulationOptions, scenario?: (cluster: SimulatedCluster) => void): SimulationResult {
  let cluster: SimulatedCluster | null = null;
  try {
    cluster = new SimulatedCluster(options);
    if (scenario === undefined) cluster.runTicks(options.chaosTicks);
    else scenario(cluster);
    cluster.finish();
    return {
      seed: options.seed,
      stats: cluster.summary(),
      traceDigest: cluster.trace.digest,
      traceLineCount: cluster.trace.lineCount,
      trace: cluster.trace.all,
    };
  } catch (error) {
    throw new SimulationFailure(options.seed, cluster?.tick ?? 0, error, cluster?.trace.tail() ?? [], cluster?.trace.all ?? null);
  }
}
