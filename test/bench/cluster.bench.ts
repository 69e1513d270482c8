// Throughput and latency of a real three-node cluster on 127.0.0.1 (`npm run bench`): small Puts
// with 1 and 64 clients in flight, 1 MiB Puts, linearizable and local Gets, and a 64 MiB
// PutStream. Figures are printed, not asserted: they depend on the disk's fsync latency (each
// write is flushed on a majority before it is acknowledged) and on what else the machine runs.

import { performance } from 'node:perf_hooks';
import { TestCluster } from '../integration/harness.js';

const cluster = await TestCluster.create(3);
cluster.startAll();
try {
  const leader = await cluster.waitForLeader(60_000);
  const follower = cluster.nodes.find((node) => node !== leader) ?? leader;
  const client = leader.client;
  await client.put('warm', new Uint8Array(1));

  async function measure(label: string, total: number, concurrency: number, operation: (index: number) => Promise<unknown>, bytesEach = 0): Promise<void> {
    let next = 0;
    const latencies: number[] = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const index = next++;
          const begin = performance.now();
          await operation(index);
          latencies.push(performance.now() - begin);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const percentile = (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(1);
    const rate = bytesEach > 0 ? `, ${((total * bytesEach) / seconds / 1048576).toFixed(1)} MiB/s` : '';
    console.log(`${label.padEnd(44)} ${(total / seconds).toFixed(0).padStart(6)} ops/s${rate}  latency p50 ${percentile(0.5)} ms, p99 ${percentile(0.99)} ms`);
  }

  const small = new TextEncoder().encode('x'.repeat(100));
  await measure('Put 100 B, 1 client (leader)', 300, 1, (index) => client.put(`one/${index}`, small));
  await measure('Put 100 B, 64 clients (leader)', 5000, 64, (index) => client.put(`many/${index}`, small));
  await measure('Put 100 B, 64 clients (follower)', 3000, 64, (index) => follower.client.put(`forwarded/${index}`, small));
  const megabyte = new Uint8Array(1 << 20).fill(7);
  await measure('Put 1 MiB, 8 clients', 200, 8, (index) => client.put(`big/${index}`, megabyte), 1 << 20);
  await measure('Get linearizable, 64 clients (follower)', 5000, 64, (index) => follower.client.get(`many/${index}`));
  await measure('Get local, 64 clients (follower)', 5000, 64, (index) => follower.client.get(`many/${index}`, { consistency: 'LOCAL' }));
  const streamBytes = 64 << 20;
  await measure('PutStream 64 MiB, 1 client', 1, 1, async () => {
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let sent = 0; sent < streamBytes; sent += 1 << 20) yield megabyte;
    }
    await client.putStream('stream/64MiB', chunks());
  }, streamBytes);
} finally {
  await cluster.shutdown();
  cluster.cleanup(false);
}
