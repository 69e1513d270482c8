// What the FUSE process measures of its own callbacks, for the node's /metrics: each call's result
// (ok or its errno) and duration, counted per operation into fixed arrays, and reported about once
// a second over the IPC channel (src/fs/fuse-process.ts) as cumulative figures.
//
// The measurement sits on the read path (every getattr of an `ls -l`, every cold read), so it is
// two clock readings, a few typed-array increments and one small closure per call (next to the
// round trip through the kernel and fuse-native's thread hand-off, which each call costs anyway).
//
// instrumentOperations wraps the fuse-native callbacks in one place (mountFileSystem), so no handler
// in mount.ts knows about it. Labels stay bounded: operations from fuseOperationNames, results from
// fuseResultNames (an errno outside the list is 'other'), buckets from fuseDurationBucketsSeconds.

import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';

import type FuseNative from 'fuse-native';

import {
  fuseDurationBucketsSeconds,
  fuseOperationNames,
  fuseResultNames,
  type FuseOperationFigures,
  type FuseOperationName,
  type FuseOperationsReport,
  type FuseResultName,
} from './fuse-contract.js';
import type { WriteOperation } from './operations.js';

// Every write operation the mount answers EROFS is in the label list (a compile error otherwise).
const everyWriteOperationIsListed: FuseOperationName = '' as WriteOperation;
void everyWriteOperationIsListed;

/**
 * Where fuse-native puts the callback among each operation's arguments (its index.js calls
 * `ops.read(path, fd, buf, len, position, cb)` and so on; fgetattr as mount.ts's DfsFuse calls it).
 */
const callbackPositions: { readonly [operation in FuseOperationName]: number } = {
  getattr: 1,
  fgetattr: 2,
  readdir: 1,
  open: 2,
  read: 5,
  release: 2,
  statfs: 1,
  write: 5,
  create: 2,
  truncate: 2,
  ftruncate: 3,
  unlink: 1,
  rename: 2,
  link: 2,
  symlink: 2,
  mkdir: 2,
  rmdir: 1,
  mknod: 3,
  chmod: 2,
  chown: 3,
  utimens: 3,
  setxattr: 5,
  removexattr: 2,
};

const operationCount = fuseOperationNames.length;
const resultCount = fuseResultNames.length;
/** One more than the bounds: the last counts what is longer than every bound. */
const bucketCount = fuseDurationBucketsSeconds.length + 1;
/** The bounds in milliseconds, as the clock reads. */
const bucketBoundsMilliseconds = Float64Array.from(fuseDurationBucketsSeconds, (seconds) => seconds * 1000);
const okIndex = fuseResultNames.indexOf('ok');
const otherIndex = fuseResultNames.indexOf('other');

/** errno number → index in fuseResultNames ('other' for numbers not listed). */
const resultIndexOfErrno = (() => {
  const table = new Uint8Array(4096).fill(otherIndex);
  const errnos = constants.errno as Readonly<Record<string, number>>;
  fuseResultNames.forEach((name, index) => {
    const number = errnos[name];
    if (number !== undefined && number < table.length) table[number] = index;
  });
  return table;
})();

/** The index in fuseResultNames of what a FUSE callback answered (≥ 0: ok; < 0: minus an errno). */
export function resultIndexOf(answer: number): number {
  if (!(answer < 0)) return okIndex;
  return resultIndexOfErrno[-answer] ?? otherIndex;
}

/**
 * Counts calls by operation, result and duration since the process started. record() is the hot
 * path; report() answers the cumulative figures when anything changed since the last report.
 */
export class FuseOperationMeter {
  /** [operation * resultCount + result] */
  private readonly calls = new Float64Array(operationCount * resultCount);
  /** [operation * bucketCount + bucket], not cumulative. */
  private readonly buckets = new Float64Array(operationCount * bucketCount);
  private readonly sumsMilliseconds = new Float64Array(operationCount);
  private changed = false;

  /** @param run names this process's figures (see FuseOperationsReport.run). */
  constructor(readonly run: string) {}

  /** Counts one call: `operation` an index in fuseOperationNames, `answer` as the callback got it. */
  record(operation: number, answer: number, milliseconds: number): void {
    const call = operation * resultCount + resultIndexOf(answer);
    this.calls[call] = (this.calls[call] as number) + 1;
    let bucket = 0;
    while (bucket < bucketBoundsMilliseconds.length && milliseconds > (bucketBoundsMilliseconds[bucket] as number)) bucket++;
    const slot = operation * bucketCount + bucket;
    this.buckets[slot] = (this.buckets[slot] as number) + 1;
    this.sumsMilliseconds[operation] = (this.sumsMilliseconds[operation] as number) + milliseconds;
    this.changed = true;
  }

  /** The figures since start, or null when nothing was recorded since the last report. */
  report(): FuseOperationsReport | null {
    if (!this.changed) return null;
    this.changed = false;
    const operations: FuseOperationFigures[] = [];
    for (let operation = 0; operation < operationCount; operation++) {
      const results: Partial<Record<FuseResultName, number>> = {};
      let total = 0;
      for (let result = 0; result < resultCount; result++) {
        const count = this.calls[operation * resultCount + result] as number;
        if (count > 0) results[fuseResultNames[result] as FuseResultName] = count;
        total += count;
      }
      if (total === 0) continue;
      operations.push({
        op: fuseOperationNames[operation] as FuseOperationName,
        results,
        bucketCounts: Array.from(this.buckets.subarray(operation * bucketCount, (operation + 1) * bucketCount)),
        sumSeconds: (this.sumsMilliseconds[operation] as number) / 1000,
      });
    }
    return { run: this.run, operations };
  }
}

type Callback = (answer: number, second?: unknown, third?: unknown) => void;
type AnyOperation = (...parameters: unknown[]) => void;

/** A clock in milliseconds (performance.now; tests give their own). */
export type Clock = () => number;

/** One operation, measured: the same arguments, with a callback that records before answering. */
function instrument(name: FuseOperationName, operation: AnyOperation, meter: FuseOperationMeter, clock: Clock): AnyOperation {
  const index = fuseOperationNames.indexOf(name);
  /** The callback to hand the operation for this call: records, then answers. */
  const answerFor = (callback: Callback): Callback => {
    const started = clock();
    return (answer, second, third) => {
      meter.record(index, answer, clock() - started);
      callback(answer, second, third);
    };
  };
  // One wrapper per callback position, with named parameters: no arguments array per call.
  type C = Callback;
  switch (callbackPositions[name]) {
    case 1:
      return (a: unknown, callback: unknown) => operation(a, answerFor(callback as C));
    case 2:
      return (a: unknown, b: unknown, callback: unknown) => operation(a, b, answerFor(callback as C));
    case 3:
      return (a: unknown, b: unknown, c: unknown, callback: unknown) => operation(a, b, c, answerFor(callback as C));
    case 5:
      return (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, callback: unknown) => operation(a, b, c, d, e, answerFor(callback as C));
    default:
      throw new Error(`no wrapper for a callback at position ${callbackPositions[name]} (${name})`);
  }
}

/**
 * `operations` with every callback measured into `meter`. Every operation must be one of
 * fuseOperationNames (a new callback in mount.ts needs its name and callback position here).
 */
export function instrumentOperations(operations: FuseNative.Operations, meter: FuseOperationMeter, clock: Clock = () => performance.now()): FuseNative.Operations {
  const measured: Record<string, AnyOperation> = {};
  for (const [name, operation] of Object.entries(operations) as [string, AnyOperation | undefined][]) {
    if (operation === undefined) continue;
    if (!(fuseOperationNames as readonly string[]).includes(name)) throw new Error(`the FUSE operation ${name} has no metrics name (src/fs/fuse-contract.ts fuseOperationNames)`);
    measured[name] = instrument(name as FuseOperationName, operation, meter, clock);
  }
  return measured as FuseNative.Operations;
}
