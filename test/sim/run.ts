// The simulator's command line. `SEED=n npm run test:sim` replays one run exactly;
// `SEEDS=a..b npm run test:sim` runs a range. Environment:
//   SEED, SEEDS       one seed, or an inclusive range a..b (default 1..20)
//   TICKS             chaos ticks per run before healing (default: options.ts)
//   NODES             3, 5 or mixed (default mixed: even seeds 3 nodes, odd seeds 5)
//   INTENSITY         calm, moderate or brutal for every seed (default: drawn from each seed, see options.ts)
//   FAULTS            all, none, or a comma list of drop,duplicate,reorder,delay,partition,crash,pause,
//                     storm,nemesis,membership,transfer (delay: the long tail of message delays;
//                     storm: election storms; nemesis: crashing or cutting off a leader right after
//                     its election, or right after its commit index moves, before it sends anything)
//   FAULT_SCALE       multiplies every fault probability (default 1; each is capped at 0.5)
//   TRACE_LINES       trace lines shown for a failure (default 60)
//   TRACE_FILE        write the full trace of a single seed to this file (same seed, same bytes)
// A failure prints the seed, the tick, the checker's message and the trace tail; the exit code is
// then 1. Every run's configuration comes from its seed (options.ts) and these knobs, so the seed
// (with the same knobs) is all a replay needs.

import { writeFileSync } from 'node:fs';

import type { SimulationStats } from './cluster.js';
import { faultKinds, intensities, onlyFaults, scaleFaults, simulationOptions, type FaultKind, type Intensity, type SimulationOptions } from './options.js';
import { SimulationFailure, runSimulation } from './simulation.js';

function parseSeeds(): number[] {
  const single = process.env['SEED'];
  if (single !== undefined && single !== '') return [parseInteger('SEED', single)];
  const range = process.env['SEEDS'] ?? '1..20';
  const match = /^(\d+)\.\.(\d+)$/.exec(range);
  if (match === null) throw new Error(`SEEDS must look like 1..100, got ${range}`);
  const first = parseInteger('SEEDS', match[1] ?? '');
  const last = parseInteger('SEEDS', match[2] ?? '');
  const seeds: number[] = [];
  for (let seed = first; seed <= last; seed++) seeds.push(seed);
  return seeds;
}

function parseInteger(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${text}`);
  return value;
}

function parseFaults(text: string): readonly FaultKind[] {
  if (text === 'all') return faultKinds;
  if (text === 'none') return [];
  const kinds = text.split(',').map((kind) => kind.trim());
  for (const kind of kinds) {
    if (!(faultKinds as readonly string[]).includes(kind)) throw new Error(`unknown fault kind ${kind}; known: ${faultKinds.join(', ')}`);
  }
  return kinds as FaultKind[];
}

function optionsFor(seed: number, traceFile: string | undefined): SimulationOptions {
  const overrides: { -readonly [K in keyof SimulationOptions]?: SimulationOptions[K] } = {};
  const nodes = process.env['NODES'] ?? 'mixed';
  if (nodes !== 'mixed') overrides.nodeCount = parseInteger('NODES', nodes);
  const intensity = process.env['INTENSITY'];
  if (intensity !== undefined) {
    if (!Object.hasOwn(intensities, intensity)) throw new Error(`INTENSITY must be one of ${Object.keys(intensities).join(', ')}, got ${intensity}`);
    overrides.intensity = intensity as Intensity;
  }
  const ticks = process.env['TICKS'];
  if (ticks !== undefined) overrides.chaosTicks = parseInteger('TICKS', ticks);
  const traceLines = process.env['TRACE_LINES'];
  if (traceLines !== undefined) overrides.traceTailLines = parseInteger('TRACE_LINES', traceLines);
  if (traceFile !== undefined) overrides.keepFullTrace = true;
  const options = simulationOptions(seed, overrides);
  let faults = onlyFaults(options.faults, parseFaults(process.env['FAULTS'] ?? 'all'));
  const scale = process.env['FAULT_SCALE'];
  if (scale !== undefined) {
    const factor = Number(scale);
    if (!(factor >= 0)) throw new Error(`FAULT_SCALE must be a non-negative number, got ${scale}`);
    faults = scaleFaults(faults, factor);
  }
  return { ...options, faults };
}

function main(): number {
  const seeds = parseSeeds();
  const traceFile = process.env['TRACE_FILE'];
  if (traceFile !== undefined && seeds.length !== 1) throw new Error('TRACE_FILE needs a single SEED');
  const started = performance.now();
  const totals = new Map<keyof SimulationStats, number>();
  const failures: SimulationFailure[] = [];
  for (const seed of seeds) {
    try {
      const result = runSimulation(optionsFor(seed, traceFile));
      for (const [name, value] of Object.entries(result.stats) as Array<[keyof SimulationStats, number]>) totals.set(name, (totals.get(name) ?? 0) + value);
      if (seeds.length === 1) console.log(`seed ${seed}: trace digest ${result.traceDigest.toString(16)} (${result.traceLineCount} lines, ${result.stats.ticks} ticks)`);
      if (traceFile !== undefined && result.trace !== null) writeFileSync(traceFile, `${result.trace.join('\n')}\n`);
    } catch (error) {
      if (!(error instanceof SimulationFailure)) throw error;
      if (traceFile !== undefined && error.trace !== null) writeFileSync(traceFile, `${error.trace.join('\n')}\n`);
      console.log(failures.length === 0 ? error.report() : error.message);
      failures.push(error);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const total = (name: keyof SimulationStats) => totals.get(name) ?? 0;
  console.log(
    [
      `seeds ${seeds.length} (${seeds[0]}..${seeds[seeds.length - 1]}), failed ${failures.length}${failures.length > 0 ? `: ${failures.map((failure) => failure.seed).join(' ')} (totals below are of the others)` : ''}`,
      `simulated ticks ${total('ticks')}, wall time ${seconds.toFixed(1)} s`,
      `messages sent ${total('messagesSent')}, delivered ${total('messagesDelivered')}, dropped ${total('messagesDropped')}, duplicated ${total('messagesDuplicated')}, delayed long ${total('messagesDelayed')}`,
      `crashes ${total('crashes')}, pauses ${total('pauses')}, partitions ${total('partitions')}, storms ${total('storms')}, leaders hit by the nemesis ${total('leaderDisruptions')}, membership changes ${total('membershipChanges')}, transfers ${total('transfers')}, elections ${total('leaderElections')}`,
      `compactions ${total('compactions')}, snapshots sent ${total('snapshotsSent')} (${total('snapshotChunksSent')} chunks), installed ${total('snapshotsInstalled')}`,
      `writes acknowledged ${total('writesAcknowledged')} (unknown before healing ${total('writesUnknown')}), reads completed ${total('readsCompleted')} (unknown ${total('readsUnknown')})`,
    ].join('\n'),
  );
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = main();
