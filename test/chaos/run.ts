// `npm run chaos`: a chaos run against a real cluster, checked for linearizability.
//
//   node dist/test/chaos/run.js [--duration 60] [--seed N] [--nodes 3] [--faults all]
//                               [--clients 2×nodes] [--keys 6] [--report file.json] [--keep]
//
// --duration   seconds of faults (and load); then everything is healed and checked
// --seed       the fault schedule and the clients' choices (default: random, printed)
// --nodes      cluster size (3 or 5 are the interesting ones)
// --faults     comma list of fault kinds or groups: all, kill, pause, partition, membership, none,
//              kill-leader, kill-follower, kill-random, pause-leader, pause-random,
//              partition-minority, partition-leader, partition-bridge
// --clients    concurrent clients; --keys: registers they share
// --report     also write the report as JSON; --keep: keep the data folders and logs
//
// A run: start the cluster (every node behind a fault-injecting proxy), start the clients (Put,
// Get, Delete on a few keys with unique values, each call recorded with its outcome), let the
// nemesis inject faults for --duration seconds, heal everything and wait until the cluster
// serves, stop the clients, read every key through every node (linearizable, recorded too),
// check the history per key, and check that every node holds the same data (LOCAL reads once all
// have applied the same index). Exit code 0 only when the verdict is linearizable, every node
// agrees, and the cluster recovered after every fault.

import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

import { DfsClientError } from '../../src/client/client.js';
import { waitFor } from '../integration/harness.js';
import { checkHistory, type HistoryResult } from './checker.js';
import { classifyReadError, classifyWriteError, describeError, formatOperation, History, now, type Operation, type OperationKind } from './history.js';
import { ChaosCluster, Nemesis, parseFaults, Random, sleep, faultKinds, type ChaosNode, type FaultKind, type FaultRecord } from './nemesis.js';

export interface ChaosOptions {
  readonly durationSeconds: number;
  readonly seed: number;
  readonly nodes: number;
  readonly faults: readonly FaultKind[];
  readonly clients: number;
  readonly keys: number;
  readonly keep: boolean;
  readonly log: (line: string) => void;
  /** Deadline of each client call. */
  readonly callTimeoutMilliseconds?: number;
  readonly faultMilliseconds?: readonly [number, number];
  readonly gapMilliseconds?: readonly [number, number];
}

export interface ChaosReport {
  readonly seed: number;
  readonly nodes: number;
  readonly durationSeconds: number;
  readonly wallSeconds: number;
  readonly operations: Record<OperationKind, Record<Operation['outcome'], number>>;
  readonly faults: readonly FaultRecord[];
  readonly faultCounts: Partial<Record<FaultKind, number>>;
  readonly check: HistoryResult;
  /** '' when every node holds the same data, else what differs. */
  readonly divergence: string;
  readonly recovered: boolean;
  readonly finalReadsFailed: number;
  readonly passed: boolean;
  readonly folder: string;
  readonly originMilliseconds: number;
}

const keyPrefix = 'chaos';

/** One client: a loop of Put / Get / Delete on random keys through random nodes, each recorded. */
async function runClient(name: string, chaos: ChaosCluster, history: History, random: Random, keys: readonly string[], isRunning: () => boolean, callTimeoutMilliseconds: number): Promise<void> {
  let sequence = 0;
  while (isRunning()) {
    const roll = random.float();
    const kind: OperationKind = roll < 0.45 ? 'put' : roll < 0.9 ? 'get' : 'delete';
    const key = random.pick(keys);
    const member = random.pick(chaos.nodes);
    const ok = await perform(history, member, name, kind, key, `${name}-${sequence++}`, callTimeoutMilliseconds);
    // Think time keeps the load modest (2 cores, shared); after a failure, do not hammer.
    await sleep(ok ? random.between(10, 60) : random.between(100, 300));
  }
}

/** Performs one call and records it; true when it succeeded. Never retries: each attempt is its own record. */
async function perform(history: History, member: ChaosNode, client: string, kind: OperationKind, key: string, uniqueValue: string, callTimeoutMilliseconds: number): Promise<boolean> {
  const invokeMilliseconds = now();
  const base = { client, node: member.id, kind, key, invokeMilliseconds };
  const options = { timeoutMilliseconds: callTimeoutMilliseconds };
  try {
    switch (kind) {
      case 'put':
        await member.client.put(key, new TextEncoder().encode(uniqueValue), options);
        history.record({ ...base, value: uniqueValue, completeMilliseconds: now(), outcome: 'ok' });
        return true;
      case 'get': {
        const data = await member.client.get(key, options);
        history.record({ ...base, value: new TextDecoder().decode(data), completeMilliseconds: now(), outcome: 'ok' });
        return true;
      }
      case 'delete':
        await member.client.delete(key, options);
        history.record({ ...base, value: null, found: true, completeMilliseconds: now(), outcome: 'ok' });
        return true;
    }
  } catch (error) {
    const completeMilliseconds = now();
    if (error instanceof DfsClientError && error.code === 'NOT_FOUND') {
      // Not an error: the operation ran and saw no file there.
      if (kind === 'get') history.record({ ...base, value: null, completeMilliseconds, outcome: 'ok' });
      else if (kind === 'delete') history.record({ ...base, value: null, found: false, completeMilliseconds, outcome: 'ok' });
      else history.record({ ...base, value: uniqueValue, completeMilliseconds, outcome: 'unknown', error: describeError(error) });
      return true;
    }
    const outcome = kind === 'get' ? classifyReadError(error) : classifyWriteError(error);
    history.record({ ...base, value: kind === 'put' ? uniqueValue : null, completeMilliseconds, outcome, error: describeError(error) });
    return false;
  }
}

function countOperations(operations: readonly Operation[]): ChaosReport['operations'] {
  const empty = (): Record<Operation['outcome'], number> => ({ ok: 0, fail: 0, unknown: 0 });
  const counts = { put: empty(), get: empty(), delete: empty() };
  for (const operation of operations) counts[operation.kind][operation.outcome]++;
  return counts;
}

/** Every node's data, read LOCAL once all report the same applied index; '' when identical. */
async function compareNodes(chaos: ChaosCluster, keys: readonly string[]): Promise<string> {
  let difference = '';
  try {
    await waitFor(
      'every node holding the same data',
      async () => {
        const views: { id: string; view: string }[] = [];
        const statuses = await Promise.all(chaos.nodes.map((member) => chaos.status(member)));
        const applied = new Set(statuses.map((status) => status?.appliedIndex ?? -1));
        if (applied.size !== 1) {
          difference = `applied indexes differ: ${statuses.map((status, index) => `${chaos.nodes[index]?.id}=${status?.appliedIndex ?? '?'}`).join(' ')}`;
          return null;
        }
        for (const member of chaos.nodes) {
          const listed: string[] = [];
          for await (const info of member.client.listAll('', { pageSize: 1000 })) listed.push(`${info.key}@${info.version}/${info.sizeBytes}`);
          const values: string[] = [];
          for (const key of keys) {
            const data = await member.client.get(key, { consistency: 'LOCAL', timeoutMilliseconds: 3000 }).catch((error: unknown) => {
              if (error instanceof DfsClientError && error.code === 'NOT_FOUND') return null;
              throw error;
            });
            values.push(`${key}=${data === null ? '∅' : new TextDecoder().decode(data)}`);
          }
          views.push({ id: member.id, view: `${listed.join(' ')} | ${values.join(' ')}` });
        }
        const distinct = new Set(views.map((entry) => entry.view));
        if (distinct.size === 1) return true;
        difference = views.map((entry) => `${entry.id}: ${entry.view}`).join('\n');
        return null;
      },
      60_000,
      500,
    );
    return '';
  } catch {
    return difference === '' ? 'could not read every node' : difference;
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log;
  const started = Date.now();
  const originMilliseconds = now();
  const callTimeoutMilliseconds = options.callTimeoutMilliseconds ?? 4000;
  const keys = Array.from({ length: options.keys }, (_, index) => `${keyPrefix}/k${index}`);
  log(`chaos: seed ${options.seed}, ${options.nodes} nodes, ${options.durationSeconds} s of ${options.faults.join(', ') || 'no faults'}, ${options.clients} clients on ${keys.length} keys`);
  const chaos = await ChaosCluster.create(options.nodes);
  log(`chaos: cluster folder ${chaos.folder}`);
  const history = new History();
  let recovered = true;
  let finalReadsFailed = 0;
  let passed = false;
  const nemesis = new Nemesis(chaos, {
    kinds: options.faults,
    seed: options.seed,
    faultMilliseconds: options.faultMilliseconds ?? [1500, 4000],
    gapMilliseconds: options.gapMilliseconds ?? [1000, 3000],
    recoveryTimeoutMilliseconds: 60_000,
    log,
    originMilliseconds: started,
  });
  try {
    chaos.startAll();
    await chaos.waitServing(90_000, 'chaos-probe/start');
    log(`chaos: cluster serving after ${((Date.now() - started) / 1000).toFixed(1)} s; load and faults start`);

    let clientsRunning = true;
    const clientRandom = new Random(options.seed);
    const clients = Array.from({ length: options.clients }, (_, index) =>
      runClient(`c${index}`, chaos, history, new Random(Math.floor(clientRandom.float() * 0xffffffff) || 1), keys, () => clientsRunning, callTimeoutMilliseconds),
    );
    const faultPeriodEnd = Date.now() + options.durationSeconds * 1000;
    await nemesis.run(faultPeriodEnd);
    const remaining = faultPeriodEnd - Date.now();
    if (remaining > 0) await sleep(remaining);

    // Heal, and wait until the cluster serves through every node.
    await nemesis.healAll();
    const healed = Date.now();
    try {
      await chaos.waitServing(90_000, 'chaos-probe/final');
      log(`chaos: healed; serving through every node after ${Date.now() - healed} ms`);
    } catch (error) {
      recovered = false;
      log(`chaos: the cluster did not serve again after the final heal: ${describeError(error)}`);
    }
    clientsRunning = false;
    await Promise.all(clients);
    if (nemesis.records.some((record) => record.recoveryMilliseconds === null)) recovered = false;

    // Every key through every node, linearizable; each read is part of the history.
    for (const member of chaos.nodes) {
      for (const key of keys) {
        let done = false;
        for (let attempt = 0; attempt < 5 && !done; attempt++) {
          done = await perform(history, member, 'final', 'get', key, '', 10_000);
          if (!done) await sleep(500);
        }
        if (!done) finalReadsFailed++;
      }
    }
    const divergence = await compareNodes(chaos, keys);
    if (divergence !== '') log(`chaos: nodes differ:\n${divergence}`);

    const operations = history.all();
    const checkStarted = Date.now();
    const check = checkHistory(operations);
    log(`chaos: checked ${operations.length} operations in ${Date.now() - checkStarted} ms: ${check.verdict}`);
    const faultCounts: Partial<Record<FaultKind, number>> = {};
    for (const record of nemesis.records) faultCounts[record.kind] = (faultCounts[record.kind] ?? 0) + 1;
    passed = check.verdict === 'linearizable' && divergence === '' && recovered && finalReadsFailed === 0;
    const report: ChaosReport = {
      seed: options.seed,
      nodes: options.nodes,
      durationSeconds: options.durationSeconds,
      wallSeconds: Math.round((Date.now() - started) / 100) / 10,
      operations: countOperations(operations),
      faults: nemesis.records,
      faultCounts,
      check,
      divergence,
      recovered,
      finalReadsFailed,
      passed,
      folder: chaos.folder,
      originMilliseconds,
    };
    log(formatReport(report));
    return report;
  } finally {
    await chaos.shutdown();
    chaos.cluster.cleanup(options.keep || !passed);
  }
}

export function formatReport(report: ChaosReport): string {
  const lines: string[] = [];
  lines.push(`==== chaos report: seed ${report.seed}, ${report.nodes} nodes, ${report.durationSeconds} s of faults, ${report.wallSeconds} s in all`);
  lines.push('operations (ok / fail / unknown):');
  for (const kind of ['put', 'get', 'delete'] as const) {
    const counts = report.operations[kind];
    lines.push(`  ${kind.padEnd(6)} ${counts.ok} / ${counts.fail} / ${counts.unknown}`);
  }
  lines.push(`faults injected: ${report.faults.length}`);
  for (const kind of faultKinds) {
    const records = report.faults.filter((record) => record.kind === kind);
    if (records.length === 0) continue;
    const recoveries = records.map((record) => (record.recoveryMilliseconds === null ? '∞' : `${record.recoveryMilliseconds}`));
    lines.push(`  ${kind.padEnd(19)} ×${records.length}  recovery ms: ${recoveries.join(', ')}`);
  }
  for (const record of report.faults) {
    lines.push(`  [${record.startedSeconds.toFixed(1)}s → ${record.healedSeconds.toFixed(1)}s] ${record.detail}; serving again after ${record.recoveryMilliseconds ?? '∞'} ms${record.error === undefined ? '' : ` — ${record.error}`}`);
  }
  lines.push('linearizability per key:');
  for (const key of report.check.keys) {
    lines.push(`  ${key.key}: ${key.verdict} (${key.checkedOperations} operations, ${key.steps} steps, ${key.elapsedMilliseconds} ms)`);
    if (key.proof !== undefined) for (const operation of key.proof) lines.push(`      ${formatOperation(operation, report.originMilliseconds)}`);
  }
  lines.push(`nodes hold identical data: ${report.divergence === '' ? 'yes' : `NO\n${report.divergence}`}`);
  if (report.finalReadsFailed > 0) lines.push(`final reads that failed after retries: ${report.finalReadsFailed}`);
  if (!report.recovered) lines.push('the cluster did not recover after every fault');
  lines.push(`verdict: ${report.check.verdict.toUpperCase()}${report.passed ? ' — PASS' : ' — FAIL'}`);
  if (!report.passed) lines.push(`data folders and logs kept in ${report.folder}`);
  return lines.join('\n');
}

function parseArguments(argv: readonly string[]): Omit<ChaosOptions, 'log'> & { reportPath: string | null } {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string;
    if (!argument.startsWith('--')) throw new Error(`unexpected argument ${argument}`);
    const [name, inline] = argument.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'keep' || name === 'help') {
      flags.add(name);
      continue;
    }
    const value = inline ?? argv[++index];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    values.set(name, value);
  }
  if (flags.has('help')) {
    process.stdout.write('usage: node dist/test/chaos/run.js [--duration s] [--seed n] [--nodes n] [--faults list] [--clients n] [--keys n] [--report file] [--keep]\n');
    process.exit(0);
  }
  const integer = (name: string, fallback: number): number => {
    const text = values.get(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer, got ${text}`);
    return value;
  };
  const known = new Set(['duration', 'seed', 'nodes', 'faults', 'clients', 'keys', 'report']);
  for (const name of values.keys()) if (!known.has(name)) throw new Error(`unknown option --${name}`);
  const nodes = integer('nodes', 3);
  if (nodes < 1) throw new Error('--nodes must be at least 1');
  return {
    durationSeconds: integer('duration', 60),
    seed: integer('seed', randomInt(1, 2 ** 31)),
    nodes,
    faults: parseFaults(values.get('faults') ?? 'all'),
    clients: integer('clients', 2 * nodes),
    keys: integer('keys', 6),
    keep: flags.has('keep'),
    reportPath: values.get('report') ?? null,
  };
}

async function main(): Promise<void> {
  const { reportPath, ...options } = parseArguments(process.argv.slice(2));
  const report = await runChaos({ ...options, log: (line) => process.stdout.write(`${line}\n`) });
  if (reportPath !== null) writeFileSync(reportPath, `${JSON.stringify(report, (_, value: unknown) => (value === Infinity ? 'Infinity' : value), 2)}\n`);
  process.exitCode = report.passed ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
  });
}
