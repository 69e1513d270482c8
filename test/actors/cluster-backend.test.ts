// The gRPC actor's backend refuses work it cannot wait for *before* proposing it: when its table of
// waiting calls is full, a write gets ResourceExhausted ("retry shortly") and nothing reaches Raft,
// so the client's retry cannot apply the write twice. Found by the chaos suite (test/chaos), which
// had to count such refusals as "unknown". Method: a ClusterBackend with a recording Raft port
// that never answers and a table of two.

import { pino } from 'pino';
import t from 'tap';

import { ClusterBackend } from '../../src/actors/grpc-actor.js';
import { emptyState } from './empty-state.js';
import type { RaftRequest } from '../../src/actors/protocol.js';
import { DfsError } from '../../src/errors.js';


t.test('a full table of waiting calls refuses a write without proposing it', async (t) => {
  const sent: RaftRequest[] = [];
  const backend = new ClusterBackend({
    nodeId: 'node1',
    state: emptyState,
    toRaft: (request) => sent.push(request),
    logger: pino({ level: 'silent' }),
    requestTimeoutMilliseconds: 60_000,
    chunkSizeBytes: 1024 * 1024,
    maxChunksInFlight: 8,
    maxPendingRequests: 2,
  });
  const context = { signal: new AbortController().signal, deadlineUnixMilliseconds: Number.POSITIVE_INFINITY };
  const waiting = [backend.put({ key: 'a', data: new Uint8Array(1), mode: 0 }, context), backend.put({ key: 'b', data: new Uint8Array(1), mode: 0 }, context)];
  for (const call of waiting) call.catch(() => undefined);
  t.equal(sent.length, 2, 'two proposals wait');
  const refused = await backend.put({ key: 'c', data: new Uint8Array(1), mode: 0 }, context).then(
    () => null,
    (error: unknown) => error,
  );
  t.ok(refused instanceof DfsError && refused.code === 'ResourceExhausted', 'the third is refused with ResourceExhausted');
  t.match(String((refused as Error).message), /nothing was done/, 'and says nothing was done');
  t.equal(sent.length, 2, 'and was not proposed');
  backend.close();
  await Promise.allSettled(waiting);
});

t.test('a large upload with every chunk in flight adds no listener-leak warning', async (t) => {
  // Each chunk in flight listens for the call's cancellation; 32 of them are expected, and Node
  // would warn (MaxListenersExceededWarning, seen in a node's log during `dfsctl cp`) at 11.
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const sent: RaftRequest[] = [];
  const backend = new ClusterBackend({
    nodeId: 'node1',
    state: emptyState,
    toRaft: (request) => sent.push(request),
    logger: pino({ level: 'silent' }),
    requestTimeoutMilliseconds: 60_000,
    chunkSizeBytes: 1024,
    maxChunksInFlight: 32,
    maxPendingRequests: 4096,
  });
  const controller = new AbortController();
  const context = { signal: controller.signal, deadlineUnixMilliseconds: Number.POSITIVE_INFINITY };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let index = 0; index < 40; index++) yield new Uint8Array(1024);
  }
  const upload = backend.putChunked('big', chunks(), { modeBits: 0o644, modifiedMilliseconds: 0 }, context);
  upload.catch(() => undefined);
  while (sent.length < 32) await new Promise((resolve) => setImmediate(resolve));
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(sent.length, 32, '32 chunks are in flight, and no more');
  controller.abort();
  await upload.then(() => t.fail('the cancelled upload succeeded'), () => undefined);
  t.same(warnings.map((warning) => warning.name), [], 'no warning was emitted');
  backend.close();
});
