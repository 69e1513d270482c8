#!/usr/bin/env node
// `npm run cluster`: three dfs nodes on 127.0.0.1 for trying dfs out on one machine. Node N
// listens for peers on 1200N, for gRPC on 1300N and for HTTP (status page, metrics) on 1400N,
// keeps its data in ./cluster-data/nodeN, mounts the namespace read-only at
// ./cluster-data/nodeN-mount and replicates what is written into ./cluster-data/nodeN-cache, and
// lists the other two as peers (they form one cluster on first start and restart from their data
// afterwards). Their logs are shown together, one line per event; Ctrl-C stops all three
// gracefully. Where FUSE cannot run, each node says why in one line and goes on without its mount
// (the cache folders still work); DFS_CLUSTER_FUSE=false turns both off.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const nodeCount = 3;
const main = fileURLToPath(new URL('./main.js', import.meta.url));
const dataRoot = resolve(process.env['DFS_CLUSTER_DATA'] ?? 'cluster-data');
const fuse = process.env['DFS_CLUSTER_FUSE'] !== 'false';
const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function show(id: string, line: string): void {
  try {
    const record = JSON.parse(line) as { level?: number; time?: number; actor?: string; msg?: string };
    const time = new Date(record.time ?? Date.now()).toISOString().slice(11, 23);
    process.stdout.write(`${id} ${time} ${(levels[record.level ?? 30] ?? 'INFO').padEnd(5)} [${record.actor ?? '?'}] ${record.msg ?? line}\n`);
  } catch {
    process.stdout.write(`${id} ${line}\n`);
  }
}

const children: ChildProcess[] = [];
for (let index = 1; index <= nodeCount; index++) {
  const id = `node${index}`;
  const dataFolder = join(dataRoot, id);
  mkdirSync(dataFolder, { recursive: true });
  const peers = Array.from({ length: nodeCount }, (_, other) => other + 1)
    .filter((other) => other !== index)
    .map((other) => `127.0.0.1:${12000 + other}`);
  const child = spawn(
    process.execPath,
    [
      main,
      ...['-id', id, '-raft', `127.0.0.1:${12000 + index}`, '-grpc', `127.0.0.1:${13000 + index}`, '-http', `127.0.0.1:${14000 + index}`],
      ...['-data', dataFolder, '-peers', peers.join(',')],
      ...(fuse ? ['-mount', join(dataRoot, `${id}-mount`), '-cache', join(dataRoot, `${id}-cache`)] : ['-no-fuse']),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  for (const stream of [child.stdout, child.stderr]) {
    if (stream !== null) createInterface({ input: stream }).on('line', (line) => show(id, line));
  }
  child.on('exit', (code, signal) => {
    process.stdout.write(`${id} exited${code === null ? ` on ${signal}` : ` with code ${code}`}\n`);
    if (children.every((other) => other.exitCode !== null || other.signalCode !== null)) process.exit(0);
  });
  children.push(child);
}

process.stdout.write(
  `dfs: 3 nodes starting on 127.0.0.1 — gRPC on 13001, 13002, 13003; data in ${dataRoot}\n` +
    `     status pages: http://127.0.0.1:14001/, http://127.0.0.1:14002/, http://127.0.0.1:14003/ (Prometheus metrics under /metrics)\n` +
    (fuse ? `     write files into ${join(dataRoot, 'node1-cache')}, read them under ${join(dataRoot, 'node3-mount')}\n` : '') +
    `     try: grpcurl -plaintext -d '{"key":"foo","data":"YmFy"}' localhost:13001 dfs.FileService/Put\n` +
    `     or:  DFS_ENDPOINTS=127.0.0.1:13001,127.0.0.1:13002,127.0.0.1:13003 node dist/src/cli/dfsctl.js status\n` +
    `     Ctrl-C stops the cluster.\n`,
);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('dfs: stopping the cluster\n');
    for (const child of children) child.kill('SIGTERM');
  });
}
