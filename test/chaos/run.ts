// `npm run chaos`: a chaos run against a real cluster, checked for linearizability.
//
//   node dist/test/chaos/run.js [--duration 60] [--seed N] [--nodes 3] [--faults all]
//                               [--clients 2×nodes] [--keys 6] [--fs] [--report file.json] [--keep]
//
// --duration   seconds of faults (and load); then everything is healed and checked
// --seed       the fault schedule and the clients' choices (default: random, printed)
// --nodes      cluster size (3 or 5 are the interesting ones)
// --faults     comma list of fault kinds or groups: all, kill, pause, partition, membership, none,
//              kill-leader, kill-follower, kill-random, pause-leader, pause-random,
//              partition-minority, partition-leader, partition-bridge, kill-fuse (needs --fs;
//              part of all with --fs)
// --clients    concurrent clients; --keys: registers they share
// --fs         the file system too: every node mounts and watches a cache folder; a file client
//              per node writes into its cache folder, a reader samples files under the mounts,
//              and the nemesis also kills FUSE processes; checked after healing (files.ts)
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
import { compareEndState, expectedFromCacheFolders, FileClient, FileRecorder, judgeReads, mountReadable, mountTree, namespaceTree, runMountReader, treeDifferences, type EndStateResult, type FileOperationKind, type MountObservation, type ReaderStats } from './files.js';
import { ChaosCluster, everyFaultKind, Nemesis, parseFaults, Random, sleep, type ChaosNode, type FaultKind, type FaultRecord } from './nemesis.js';

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
  /** The file system too: mounts, cache folders, file clients, a mount reader (see files.ts). */
  readonly fs?: boolean;
  /** Size of the one larger file (--fs), bytes; default 4 MiB. */
  readonly largeFileBytes?: number;
  /** (--fs) How long a wrong end state must stay unchanged before it is final; default 15 s. */
  readonly settleMilliseconds?: number;
  /** (--fs) The longest wait for the file system to settle after the load stops; default 120 s. */
  readonly settleTimeoutMilliseconds?: number;
}

export interface FsReport {
  readonly fileOperations: Record<FileOperationKind, number>;
  /** File operations that threw (a bug of the client, not of dfs; reported). */
  readonly fileOperationErrors: number;
  readonly fileOperationLastError: string;
  readonly mountReadsSampled: number;
  /** Reads of a file that did not change while it was read: each must be a complete version. */
  readonly mountReadsJudged: number;
  readonly mountReadsChangedWhileRead: number;
  readonly mountReadErrors: number;
  readonly partialReads: readonly (MountObservation & { readonly knownAt: readonly string[] })[];
  /** What differs between the namespace and what the cache folders call for; [] when none. */
  readonly partialReadCount: number;
  /** Complete contents read at a path they were never written at (or moved to). */
  readonly foreignReads: readonly (MountObservation & { readonly knownAt: readonly string[] })[];
  readonly foreignReadCount: number;
  readonly endStateProblems: readonly string[];
  /** Namespace files no cache folder holds, tolerated because they left it before their node was wiped. */
  readonly toleratedStale: readonly string[];
  /** Per node: what differs between its mount and the namespace; [] when identical. */
  readonly mountDifferences: readonly string[];
  readonly filesInNamespace: number;
  /** Nodes whose mount is not mounted or cannot be listed at the end. */
  readonly unreadableMounts: readonly string[];
  readonly fuseKillsByNode: Record<string, number>;
  readonly passed: boolean;
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
  readonly fs?: FsReport;
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

/**
 * The file-system checks after healing (--fs): the namespace holds what the cache folders call
 * for, every mount shows exactly the namespace and is readable, and no read under a mount was
 * partial. Waits (bounded) for the cache watchers and the mounts to settle.
 */
async function checkFileSystem(chaos: ChaosCluster, nemesis: Nemesis, clients: readonly FileClient[], recorder: FileRecorder, readerStats: ReaderStats, log: (line: string) => void, settleMilliseconds: number, settleTimeoutMilliseconds: number): Promise<FsReport> {
  const expected = expectedFromCacheFolders(clients);
  let endState: EndStateResult = { problems: ['not checked'], tolerated: [] };
  let namespace = new Map<string, string>();
  let mountDifferences: string[] = ['not checked'];
  let unreadableMounts: string[] = [];
  const started = Date.now();
  // Settled: the namespace is what the cache folders call for and every mount shows it; or, when
  // it is not, nothing (namespace, mounts) changed for `stableMilliseconds` (no retry pending).
  const stableMilliseconds = settleMilliseconds;
  let fingerprint = '';
  let unchangedSince = Date.now();
  let settled = false;
  while (Date.now() - started < settleTimeoutMilliseconds) {
    try {
      const through = chaos.nodes[Math.floor(Math.random() * chaos.nodes.length)] as ChaosNode;
      namespace = await namespaceTree(through);
      endState = compareEndState(namespace, expected, nemesis.wiped, recorder.goneAt);
      unreadableMounts = chaos.nodes.filter((member) => !mountReadable(member.node.spec.mountFolder as string)).map((member) => member.id);
      mountDifferences = [];
      for (const member of chaos.nodes) {
        let tree: Map<string, string>;
        try {
          tree = mountTree(member.node.spec.mountFolder as string);
        } catch (error) {
          mountDifferences.push(`${member.id}: cannot read its mount: ${describeError(error)}`);
          continue;
        }
        for (const line of treeDifferences(tree, namespace, `${member.id}'s mount`, `the namespace (via ${through.id})`, 5)) mountDifferences.push(line);
      }
      if (endState.problems.length === 0 && mountDifferences.length === 0 && unreadableMounts.length === 0) {
        settled = true;
        break;
      }
      const now = JSON.stringify([[...namespace].sort(), mountDifferences, unreadableMounts]);
      if (now !== fingerprint) {
        fingerprint = now;
        unchangedSince = Date.now();
      } else if (Date.now() - unchangedSince >= stableMilliseconds) break;
    } catch (error) {
      mountDifferences = [`cannot read the namespace: ${describeError(error)}`];
      fingerprint = '';
    }
    await sleep(1000);
  }
  log(`chaos: file system ${settled ? 'settled' : 'did not settle into the expected state'} ${Date.now() - started} ms after the load stopped (${namespace.size} files in the namespace)`);
  const { partial, foreign } = judgeReads(readerStats, recorder);
  const fuseKillsByNode = Object.fromEntries(nemesis.fuseKills);
  const passed = partial.length === 0 && foreign.length === 0 && endState.problems.length === 0 && mountDifferences.length === 0 && unreadableMounts.length === 0 && readerStats.judged > 0;
  return {
    fileOperations: { ...recorder.counts },
    fileOperationErrors: recorder.errors,
    fileOperationLastError: recorder.lastError,
    mountReadsSampled: readerStats.sampled,
    mountReadsJudged: readerStats.judged,
    mountReadsChangedWhileRead: readerStats.changedDuringRead,
    mountReadErrors: readerStats.errors,
    partialReads: partial.slice(0, 20).map((read) => ({ ...read, knownAt: recorder.pathsOf(read.sha) })),
    partialReadCount: partial.length,
    foreignReads: foreign.slice(0, 20).map((read) => ({ ...read, knownAt: recorder.pathsOf(read.sha) })),
    foreignReadCount: foreign.length,
    endStateProblems: endState.problems.slice(0, 30),
    toleratedStale: endState.tolerated,
    mountDifferences: mountDifferences.slice(0, 30),
    filesInNamespace: namespace.size,
    unreadableMounts,
    fuseKillsByNode,
    passed,
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log;
  const started = Date.now();
  const originMilliseconds = now();
  const callTimeoutMilliseconds = options.callTimeoutMilliseconds ?? 4000;
  const keys = Array.from({ length: options.keys }, (_, index) => `${keyPrefix}/k${index}`);
  const fs = options.fs === true;
  log(`chaos: seed ${options.seed}, ${options.nodes} nodes, ${options.durationSeconds} s of ${options.faults.join(', ') || 'no faults'}, ${options.clients} clients on ${keys.length} keys${fs ? `, ${options.nodes} file clients and a mount reader` : ''}`);
  const chaos = await ChaosCluster.create(options.nodes, 50, { fuse: fs });
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
    if (fs) {
      for (const member of chaos.nodes) await waitFor(`${member.id} to mount`, async () => chaos.mountServed(member), 60_000, 100);
    }
    log(`chaos: cluster serving${fs ? ' and mounted' : ''} after ${((Date.now() - started) / 1000).toFixed(1)} s; load and faults start`);

    let clientsRunning = true;
    const clientRandom = new Random(options.seed);
    const clients = Array.from({ length: options.clients }, (_, index) =>
      runClient(`c${index}`, chaos, history, new Random(Math.floor(clientRandom.float() * 0xffffffff) || 1), keys, () => clientsRunning, callTimeoutMilliseconds),
    );
    const recorder = new FileRecorder();
    const readerStats: ReaderStats = { sampled: 0, judged: 0, changedDuringRead: 0, errors: 0, observations: [] };
    let filesRunning = fs;
    const fileRandom = new Random(options.seed ^ 0x5f5f5f5f);
    const fileClients = fs
      ? chaos.nodes.map((member, index) => new FileClient(member, recorder, new Random(Math.floor(fileRandom.float() * 0xffffffff) || 1), index < 2, index === 0, options.largeFileBytes ?? 4 * 1024 * 1024))
      : [];
    const fileLoops = [
      ...fileClients.map((client) => client.run(() => filesRunning, (options.durationSeconds * 1000) / 3)),
      ...(fs ? [runMountReader(chaos.nodes, new Random(Math.floor(fileRandom.float() * 0xffffffff) || 1), readerStats, () => filesRunning, started)] : []),
    ];
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
    filesRunning = false;
    await Promise.all(clients);
    await Promise.all(fileLoops);
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
    const fsReport = fs ? await checkFileSystem(chaos, nemesis, fileClients, recorder, readerStats, log, options.settleMilliseconds ?? 15_000, options.settleTimeoutMilliseconds ?? 120_000) : undefined;
    const divergence = await compareNodes(chaos, keys);
    if (divergence !== '') log(`chaos: nodes differ:\n${divergence}`);

    const operations = history.all();
    const checkStarted = Date.now();
    const check = checkHistory(operations);
    log(`chaos: checked ${operations.length} operations in ${Date.now() - checkStarted} ms: ${check.verdict}`);
    const faultCounts: Partial<Record<FaultKind, number>> = {};
    for (const record of nemesis.records) faultCounts[record.kind] = (faultCounts[record.kind] ?? 0) + 1;
    passed = check.verdict === 'linearizable' && divergence === '' && recovered && finalReadsFailed === 0 && (fsReport?.passed ?? true);
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
      ...(fsReport === undefined ? {} : { fs: fsReport }),
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
  for (const kind of everyFaultKind) {
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
  if (report.fs !== undefined) lines.push(...formatFsReport(report.fs));
  if (report.finalReadsFailed > 0) lines.push(`final reads that failed after retries: ${report.finalReadsFailed}`);
  if (!report.recovered) lines.push('the cluster did not recover after every fault');
  lines.push(`verdict: ${report.check.verdict.toUpperCase()}${report.passed ? ' — PASS' : ' — FAIL'}`);
  if (!report.passed) lines.push(`data folders and logs kept in ${report.folder}`);
  return lines.join('\n');
}

function formatFsReport(fs: FsReport): string[] {
  const lines: string[] = [];
  const total = Object.values(fs.fileOperations).reduce((sum, count) => sum + count, 0);
  lines.push(`file operations: ${total} (${Object.entries(fs.fileOperations).map(([kind, count]) => `${kind} ${count}`).join(', ')})${fs.fileOperationErrors > 0 ? `, ${fs.fileOperationErrors} failed (last: ${fs.fileOperationLastError})` : ''}`);
  lines.push(`mount reads: ${fs.mountReadsSampled} sampled, ${fs.mountReadsJudged} judged, ${fs.mountReadsChangedWhileRead} changed while read (not judged), ${fs.mountReadErrors} errors (gone, remounting)`);
  const describeRead = (read: FsReport['partialReads'][number]): string =>
    `  [${read.atSeconds.toFixed(1)}s] ${read.node}: ${read.path} ${read.size} bytes sha256 ${read.sha.slice(0, 16)} "${read.header.slice(0, 60)}": ${read.selfCheck ? (read.knownAt.length > 0 ? `written at ${read.knownAt.join(', ')}, never at this path` : 'intact blocks, but never written as a whole (mixed)') : 'broken blocks (partial or mixed)'}`;
  lines.push(`partial reads: ${fs.partialReadCount}`);
  for (const read of fs.partialReads) lines.push(describeRead(read));
  lines.push(`foreign reads (a complete content of another path): ${fs.foreignReadCount}`);
  for (const read of fs.foreignReads) lines.push(describeRead(read));
  lines.push(`FUSE processes killed: ${Object.entries(fs.fuseKillsByNode).map(([node, count]) => `${node} ×${count}`).join(', ') || 'none'}`);
  lines.push(`namespace as the cache folders call for (${fs.filesInNamespace} files): ${fs.endStateProblems.length === 0 ? 'yes' : 'NO'}${fs.toleratedStale.length > 0 ? ` (tolerated: ${fs.toleratedStale.length} files removed or renamed away before their node was wiped)` : ''}`);
  for (const line of fs.endStateProblems) lines.push(`  ${line}`);
  lines.push(`every mount shows the namespace: ${fs.mountDifferences.length === 0 ? 'yes' : 'NO'}`);
  for (const line of fs.mountDifferences) lines.push(`  ${line}`);
  lines.push(`every mount mounted and readable: ${fs.unreadableMounts.length === 0 ? 'yes' : `NO: ${fs.unreadableMounts.join(', ')}`}`);
  lines.push(`file system: ${fs.passed ? 'PASS' : 'FAIL'}`);
  return lines;
}

function parseArguments(argv: readonly string[]): Omit<ChaosOptions, 'log'> & { reportPath: string | null } {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string;
    if (!argument.startsWith('--')) throw new Error(`unexpected argument ${argument}`);
    const [name, inline] = argument.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'keep' || name === 'help' || name === 'fs') {
      flags.add(name);
      continue;
    }
    const value = inline ?? argv[++index];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    values.set(name, value);
  }
  if (flags.has('help')) {
    process.stdout.write('usage: node dist/test/chaos/run.js [--duration s] [--seed n] [--nodes n] [--faults list] [--clients n] [--keys n] [--fs] [--report file] [--keep]\n');
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
    faults: parseFaults(values.get('faults') ?? 'all', { fs: flags.has('fs') }),
    fs: flags.has('fs'),
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
