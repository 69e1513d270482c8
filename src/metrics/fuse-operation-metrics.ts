// The FUSE process's operation figures as Prometheus metrics: dfs_fuse_operations_total{op,result}
// and the histogram dfs_fuse_operation_duration_seconds{op}. The FUSE process counts (src/fs/
// fuse-metrics.ts) and reports cumulative figures per run about once a second; they reach the gRPC
// worker through the supervisor. Here each report adds only what grew since the previous report of
// the same run; a report of a new run (the FUSE process was restarted and counts from 0 again) adds
// everything it carries. So the counters never go down, across FUSE restarts too.
//
// The histogram arrives as bucket counts, not as observations: prom-client's Histogram can only
// observe one value at a time, so DurationHistogram keeps the counts itself and renders them in
// the Histogram's exposition format (same _bucket/_sum/_count series, le labels, +Inf).
//
// Labels are bounded by the contract's lists: a report naming another operation or result (a FUSE
// process of another version) has that part left out, never turned into a new series.

import { Counter, Histogram, type Registry } from 'prom-client';

import {
  fuseDurationBucketsSeconds,
  fuseOperationNames,
  fuseResultNames,
  type FuseOperationName,
  type FuseOperationsReport,
  type FuseResultName,
} from '../fs/fuse-contract.js';

const bucketCount = fuseDurationBucketsSeconds.length + 1;
const durationName = 'dfs_fuse_operation_duration_seconds';
const durationHelp = 'Duration of each FUSE operation the mount answered, from the callback being called to its answer, by operation (measured in the FUSE process)';

type HistogramData = Awaited<ReturnType<Histogram<'op'>['get']>>;

/** Bucket counts per operation, rendered as a Prometheus histogram. */
class DurationHistogram extends Histogram<'op'> {
  private readonly counts = new Map<FuseOperationName, { buckets: Float64Array; sumSeconds: number }>();

  constructor(registry: Registry) {
    super({
      name: durationName,
      help: durationHelp,
      labelNames: ['op'],
      buckets: [...fuseDurationBucketsSeconds],
      registers: [registry],
    });
  }

  /** Adds per-bucket (not cumulative) counts and their durations' sum. */
  add(op: FuseOperationName, bucketCounts: readonly number[], sumSeconds: number): void {
    let entry = this.counts.get(op);
    if (entry === undefined) {
      entry = { buckets: new Float64Array(bucketCount), sumSeconds: 0 };
      this.counts.set(op, entry);
    }
    for (let bucket = 0; bucket < bucketCount; bucket++) entry.buckets[bucket] = (entry.buckets[bucket] as number) + (bucketCounts[bucket] as number);
    entry.sumSeconds += sumSeconds;
  }

  override async get(): Promise<HistogramData> {
    return this.render();
  }

  // The registry renders the text exposition from getForPromString when a metric has one
  // (prom-client's Histogram does; its type declarations leave it out).
  async getForPromString(): Promise<HistogramData> {
    return this.render();
  }

  override reset(): void {
    // (prom-client's constructor calls reset before this class's fields exist.)
    if (this.counts !== undefined) this.counts.clear();
  }

  private render(): HistogramData {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    const name = durationName;
    for (const op of fuseOperationNames) {
      const entry = this.counts.get(op);
      if (entry === undefined) continue;
      let cumulative = 0;
      for (let bucket = 0; bucket < bucketCount; bucket++) {
        cumulative += entry.buckets[bucket] as number;
        const le = fuseDurationBucketsSeconds[bucket] ?? '+Inf';
        values.push({ metricName: `${name}_bucket`, labels: { le, op }, value: cumulative });
      }
      values.push({ metricName: `${name}_sum`, labels: { op }, value: entry.sumSeconds });
      values.push({ metricName: `${name}_count`, labels: { op }, value: cumulative });
    }
    // The shape prom-client's Histogram gives (its declarations do not allow the le label).
    return { name, help: durationHelp, type: 'histogram', values, aggregator: 'sum' } as unknown as HistogramData;
  }
}

interface Baseline {
  /** `${op} ${result}` → count in the last report of the run. */
  readonly calls: Map<string, number>;
  /** op → per-bucket counts and sum in the last report of the run. */
  readonly durations: Map<string, { readonly bucketCounts: readonly number[]; readonly sumSeconds: number }>;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

export class FuseOperationMetrics {
  private readonly operations: Counter<'op' | 'result'>;
  private readonly durations: DurationHistogram;
  private run: string | null = null;
  private baseline: Baseline = { calls: new Map(), durations: new Map() };

  constructor(registry: Registry) {
    this.operations = new Counter({
      name: 'dfs_fuse_operations_total',
      help: 'FUSE operations the mount answered, by operation (op) and result (ok, or the errno answered: ENOENT, EROFS, ...; other for the rest); a lookup of a name is a getattr',
      labelNames: ['op', 'result'],
      registers: [registry],
    });
    this.durations = new DurationHistogram(registry);
  }

  /** Adds what `report` counts beyond the previous report of its run (everything, for a new run). */
  apply(report: FuseOperationsReport): void {
    if (report.run !== this.run) {
      this.run = report.run;
      this.baseline = { calls: new Map(), durations: new Map() };
    }
    const { calls, durations } = this.baseline;
    for (const figures of report.operations) {
      const op = figures.op;
      if (!(fuseOperationNames as readonly string[]).includes(op)) continue;
      for (const [result, count] of Object.entries(figures.results) as [FuseResultName, unknown][]) {
        if (!(fuseResultNames as readonly string[]).includes(result) || !isCount(count)) continue;
        const key = `${op} ${result}`;
        // Within a run the counts only grow; a smaller one (never expected) is taken as a new start.
        const before = calls.get(key) ?? 0;
        const grown = count >= before ? count - before : count;
        calls.set(key, count);
        if (grown > 0) this.operations.inc({ op, result }, grown);
      }
      const { bucketCounts, sumSeconds } = figures;
      if (!Array.isArray(bucketCounts) || bucketCounts.length !== bucketCount || !bucketCounts.every(isCount) || !isCount(sumSeconds)) continue;
      const previous = durations.get(op);
      const restarted = previous === undefined || bucketCounts.some((count, bucket) => count < (previous.bucketCounts[bucket] as number));
      const grownBuckets = restarted ? bucketCounts : bucketCounts.map((count, bucket) => count - (previous.bucketCounts[bucket] as number));
      const grownSum = restarted ? sumSeconds : Math.max(0, sumSeconds - previous.sumSeconds);
      durations.set(op, { bucketCounts: [...bucketCounts], sumSeconds });
      this.durations.add(op, grownBuckets, grownSum);
    }
  }
}
