// Replication through the file system (`npm run bench`): a real three-node cluster on 127.0.0.1,
// each node with its own mount and cache folder. A file (1 GiB; REPLICATION_BENCH_BYTES to change)
// is copied into node1's cache folder; the clock starts when `cp` has closed it and stops when
// sha256sum of the file under node3's mount (and then under every mount) matches the source. Next
// to it: a local `cp` of the same file on the same disk followed by `sync`. Meanwhile the resident
// memory of every process (each node's process with its worker threads, and its FUSE process) is
// sampled; the peaks are printed. Figures, not assertions: they depend on the disk and on what else
// the machine runs (three nodes and the client share its cores here).

import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { isMountPoint, processMemory, TestCluster, waitFor, writeRandomFile, type TestNode } from '../integration/harness.js';

const sizeBytes = Number(process.env['REPLICATION_BENCH_BYTES'] ?? 1024 * 1024 * 1024);
const mebibyte = 1024 * 1024;


function sha256sum(path: string): string {
  return execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0] ?? '';
}


const cluster = await TestCluster.create(3, { fuse: true });
cluster.startAll();
try {
  await cluster.waitForLeader(60_000);
  for (const node of cluster.nodes) await waitFor(`${node.spec.id} to mount`, async () => isMountPoint(node.spec.mountFolder ?? ''), 30_000);
  const [node1, , node3] = cluster.nodes as [TestNode, TestNode, TestNode];
  const source = join(cluster.folder, 'source.bin');
  const hash = await writeRandomFile(source, sizeBytes);
  execFileSync('sync');

  // The local baseline: cp + sync on the same disk.
  const localCopy = join(cluster.folder, 'local-copy.bin');
  let started = performance.now();
  execFileSync('cp', [source, localCopy]);
  execFileSync('sync');
  const localSeconds = (performance.now() - started) / 1000;
  rmSync(localCopy);
  execFileSync('sync');

  // Memory of every process, sampled while the file travels.
  const processes = cluster.nodes.flatMap((node) => [
    { label: `${node.spec.id} (raft, store, gRPC, watcher)`, pid: node.pid },
    { label: `${node.spec.id} FUSE process`, pid: node.fusePid },
  ]);
  const peakAnonymous = new Map<string, number>();
  const sampler = setInterval(() => {
    for (const { label, pid } of processes) {
      if (pid === null) continue;
      try {
        const memory = processMemory(pid);
        peakAnonymous.set(label, Math.max(peakAnonymous.get(label) ?? 0, memory.anonymousBytes));
      } catch {
        // The process is gone.
      }
    }
  }, 100);

  execFileSync('cp', [source, join(node1.spec.cacheFolder ?? '', 'big.bin')]);
  started = performance.now();
  const arrived = async (node: TestNode): Promise<number> => {
    const path = join(node.spec.mountFolder ?? '', 'big.bin');
    await waitFor(`${node.spec.id} to show big.bin`, async () => existsSync(path) && statSync(path).size === sizeBytes, 30 * 60_000, 50);
    if (sha256sum(path) !== hash) throw new Error(`${node.spec.id}: big.bin differs from the source`);
    return (performance.now() - started) / 1000;
  };
  const node3Seconds = await arrived(node3);
  const allSeconds = Math.max(node3Seconds, ...(await Promise.all(cluster.nodes.filter((node) => node !== node3).map(arrived))));
  clearInterval(sampler);

  const gib = sizeBytes / 1024 ** 3;
  console.log(`replication of ${(sizeBytes / mebibyte).toFixed(0)} MiB through the cache folder (3 nodes on one machine)`);
  console.log(`  local cp + sync                                  ${localSeconds.toFixed(1).padStart(6)} s  (${(sizeBytes / mebibyte / localSeconds).toFixed(0)} MiB/s)`);
  console.log(`  closed in node1's cache → verified on node3 mount ${node3Seconds.toFixed(1).padStart(6)} s  (${(node3Seconds / localSeconds).toFixed(2)}× local; target < 4×)`);
  console.log(`  closed in node1's cache → verified on all 3      ${allSeconds.toFixed(1).padStart(6)} s  (${(allSeconds / localSeconds).toFixed(2)}× local; ${(gib * 1024 / allSeconds).toFixed(0)} MiB/s)`);
  console.log('  peak anonymous memory (RssAnon, sampled every 100 ms) / peak resident (VmHWM, incl. mapped LMDB pages):');
  for (const { label, pid } of processes) {
    let hwm = '?';
    try {
      if (pid !== null) hwm = `${(processMemory(pid).peakResidentBytes / mebibyte).toFixed(0)} MiB`;
    } catch {
      // gone
    }
    console.log(`    ${label.padEnd(40)} ${(((peakAnonymous.get(label) ?? 0) / mebibyte).toFixed(0) + ' MiB').padStart(9)} / ${hwm}`);
  }
} finally {
  await cluster.shutdown();
  cluster.cleanup(false);
}
