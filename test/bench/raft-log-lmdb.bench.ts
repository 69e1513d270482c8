// Benchmark of the LMDB raft log's durable writes, not a test (tap does not run *.bench.js).
//   npm run build && node dist/test/bench/raft-log-lmdb.bench.js [--seconds N] [--no-strace]
// (about 30 s with the defaults).
// For batches of 1, 16 and 256 entries of 1 KiB it calls persist({ entries, hardState }) and then
// awaits flush(), as the raft driver does once per Ready, and prints batches/s (one durable commit
// each), fsyncs/s and entries/s, for the two commit modes DESIGN.md asks to compare:
//   overlappingSync off  (the adapter's default) the sync is paid inside the transactionSync commit;
//   overlappingSync on   lmdb-js's default on Linux, with flush() awaiting db.flushed.
// "fsyncs per batch" is counted, not assumed: when strace is installed, each case is rerun in a
// child process under `strace -f -c -e trace=fsync,fdatasync` and the calls of an empty run (the
// open and close) are subtracted. LMDB also writes its meta page through an O_DSYNC descriptor
// after the fdatasync, a second device flush per commit that strace -c does not count as a sync.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';

import type { Entry } from '../../src/raft/types.js';
import { openRaftLog } from '../../src/store/raft-log-lmdb.js';

const entryBytes = 1024;
const batchSizes = [1, 16, 256] as const;
const modes = [
  { name: 'overlappingSync off (default)', overlappingSync: false },
  { name: 'overlappingSync on + db.flushed', overlappingSync: true },
] as const;
/** Timed runs per case; the median is printed. */
const rounds = 3;
/** Batches per strace run: enough to average out the open's own syncs. */
const tracedBatches = 40;
/** Upper bound of batches per timed run, so that a fast disk does not fill the temporary folder. */
const maxBatchesPerRun = 20_000;

interface RunResult {
  readonly batches: number;
  readonly seconds: number;
}

/** Persists batches until `seconds` pass (or `batchLimit` batches are done). */
async function run(overlappingSync: boolean, batchEntries: number, seconds: number, batchLimit: number): Promise<RunResult> {
  const folder = fs.mkdtempSync(path.join(tmpdir(), 'dfs-raft-bench-'));
  try {
    const log = await openRaftLog({ path: path.join(folder, 'raft'), nodeId: 'bench', logger: pino({ level: 'silent' }), overlappingSync });
    const data = new Uint8Array(entryBytes).fill(7);
    const started = performance.now();
    let batches = 0;
    while (batches < batchLimit && (performance.now() - started) / 1000 < seconds) {
      const first = log.lastIndex() + 1;
      const entries: Entry[] = [];
      for (let index = first; index < first + batchEntries; index++) entries.push({ index, term: 1, kind: 'normal', data });
      log.persist({ entries, hardState: { term: 1, vote: 'bench', commit: first - 1 }, snapshotChunk: null });
      await log.flush();
      batches++;
    }
    const elapsed = (performance.now() - started) / 1000;
    await log.close();
    return { batches, seconds: elapsed };
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

/** fsync + fdatasync calls of a child run of `batches` batches, or null without strace. */
function countSyncs(overlappingSync: boolean, batchEntries: number, batches: number): number | null {
  const output = path.join(fs.mkdtempSync(path.join(tmpdir(), 'dfs-raft-strace-')), 'summary.txt');
  try {
    const result = spawnSync(
      'strace',
      ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-o', output, process.execPath, fileURLToPath(import.meta.url), '--child', String(overlappingSync), String(batchEntries), String(batches)],
      { stdio: 'ignore', timeout: 120_000 },
    );
    if (result.error !== undefined || result.status !== 0) return null;
    let calls = 0;
    for (const line of fs.readFileSync(output, 'utf8').split('\n')) {
      const columns = line.trim().split(/\s+/);
      const syscall = columns[columns.length - 1];
      // Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
      if ((syscall === 'fsync' || syscall === 'fdatasync') && columns[3] !== undefined) calls += Number(columns[3]);
    }
    return calls;
  } finally {
    fs.rmSync(path.dirname(output), { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function argument(name: string): string | undefined {
  const position = process.argv.indexOf(name);
  return position >= 0 ? process.argv[position + 1] : undefined;
}

async function main(): Promise<void> {
  const childPosition = process.argv.indexOf('--child');
  if (childPosition >= 0) {
    const [overlapping, batchEntries, batches] = process.argv.slice(childPosition + 1);
    await run(overlapping === 'true', Number(batchEntries), Number.POSITIVE_INFINITY, Number(batches));
    return;
  }
  const seconds = Number(argument('--seconds') ?? '1');
  const traced = !process.argv.includes('--no-strace') && spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
  console.log(
    `raft log durable writes: batches of ${batchSizes.join(', ')} entries of ${entryBytes} bytes in ${tmpdir()}; ` +
      `median of ${rounds} runs of ${seconds} s per case, the two modes taking turns so that a disk that changes speed affects both`,
  );
  console.log(`${'mode'.padEnd(34)}${'batch'.padStart(6)}${'batches/s'.padStart(11)}${'fsyncs/batch'.padStart(14)}${'fsyncs/s'.padStart(10)}${'entries/s'.padStart(11)}${'MiB/s'.padStart(8)}`);
  for (const batchEntries of batchSizes) {
    const rates = modes.map((): number[] => []);
    for (let round = 0; round < rounds; round++) {
      for (const [position, mode] of modes.entries()) {
        const result = await run(mode.overlappingSync, batchEntries, seconds, maxBatchesPerRun);
        rates[position]?.push(result.batches / result.seconds);
      }
    }
    for (const [position, mode] of modes.entries()) {
      const batchesPerSecond = median(rates[position] ?? []);
      let syncsPerBatch: number | null = null;
      if (traced) {
        const baseline = countSyncs(mode.overlappingSync, batchEntries, 0);
        const loaded = countSyncs(mode.overlappingSync, batchEntries, tracedBatches);
        if (baseline !== null && loaded !== null) syncsPerBatch = (loaded - baseline) / tracedBatches;
      }
      const entriesPerSecond = batchesPerSecond * batchEntries;
      console.log(
        `${mode.name.padEnd(34)}${String(batchEntries).padStart(6)}${batchesPerSecond.toFixed(0).padStart(11)}` +
          `${(syncsPerBatch === null ? 'n/a' : syncsPerBatch.toFixed(2)).padStart(14)}` +
          `${(syncsPerBatch === null ? 'n/a' : (batchesPerSecond * syncsPerBatch).toFixed(0)).padStart(10)}` +
          `${entriesPerSecond.toFixed(0).padStart(11)}${((entriesPerSecond * entryBytes) / 1024 / 1024).toFixed(1).padStart(8)}`,
      );
    }
  }
  if (!traced) console.log('fsyncs/batch not measured: strace is not installed (apt-get install strace) or --no-strace was given');
}

await main();
