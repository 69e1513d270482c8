// ClusterBackend.watch, the loop behind Watch. Goal: it turns pages of the change log into events
// in commit order, marks every event but the last of a version with moreInVersion (across page
// boundaries too), waits for the store's next applied index instead of polling, reads the log only
// as fast as its consumer pulls, ends quietly when the call is aborted and with Unavailable when
// the node closes, and refuses a bad prefix or version. Method: a ClusterBackend over an in-memory
// change log behind the StatePort (pages of the backend's 256 changes), and store events sent by the test.

import { pino } from 'pino';
import t from 'tap';

import { ClusterBackend, type ChangePage, type StatePort } from '../../src/actors/grpc-actor.js';
import type { WatchEvent } from '../../src/api/backend.js';
import { DfsError } from '../../src/errors.js';

type Change = ChangePage['changes'][number];

class MemoryLog {
  changes: { version: number; sequence: number; change: Change }[] = [];
  applied = 0;
  start = 1;
  pagesRead = 0;

  apply(version: number, ...keys: string[]): void {
    keys.forEach((key, sequence) => this.changes.push({ version, sequence, change: { version, type: 'put', key, info: null } }));
    this.applied = version;
  }

  state(): StatePort {
    return {
      encode: () => new Uint8Array([1]),
      chunkHash: () => new Uint8Array(32),
      validateKey: () => null,
      validatePrefix: (prefix) => (prefix.includes('//') ? 'a prefix may not contain an empty segment' : null),
      stat: () => null,
      get: () => null,
      openRead: () => null,
      list: () => ({ entries: [], nextPageToken: '' }),
      appliedIndex: () => this.applied,
      changes: (from, prefix, limit) => {
        this.pagesRead++;
        if (from.version < this.start) throw new DfsError('Compacted', `the oldest version still available is ${this.start}`);
        const after = this.changes.filter((entry) => entry.version > from.version || (entry.version === from.version && entry.sequence >= from.sequence));
        const page = after.slice(0, limit);
        const last = page[page.length - 1];
        const caughtUp = page.length === after.length;
        const next = caughtUp ? { version: Math.max(from.version, this.applied + 1), sequence: 0 } : { version: last?.version ?? 0, sequence: (last?.sequence ?? 0) + 1 };
        return { changes: page.filter((entry) => entry.change.key.startsWith(prefix)).map((entry) => entry.change), next, appliedIndex: this.applied, caughtUp };
      },
    };
  }
}

function backendOver(log: MemoryLog): ClusterBackend {
  return new ClusterBackend({
    nodeId: 'node1',
    state: log.state(),
    toRaft: () => undefined,
    logger: pino({ level: 'silent' }),
    requestTimeoutMilliseconds: 1000,
    chunkSizeBytes: 1024,
    maxChunksInFlight: 2,
    maxPendingRequests: 16,
  });
}

function context(controller = new AbortController()): { signal: AbortSignal; deadlineUnixMilliseconds: number } {
  return { signal: controller.signal, deadlineUnixMilliseconds: Number.POSITIVE_INFINITY };
}

const label = (event: WatchEvent): string => `${event.version} ${event.key}${event.moreInVersion ? ' +' : ''}`;

t.test('events in order, moreInVersion across pages, then live after the next applied index', async (t) => {
  const log = new MemoryLog();
  log.apply(1, 'a');
  // One version of 300 changes: more than a page (256), so the page boundary falls inside it.
  log.apply(2, ...Array.from({ length: 300 }, (_, index) => `b${index}`));
  log.apply(3, 'other');
  const backend = backendOver(log);
  backend.handleStoreEvent({ type: 'applied', index: 3, results: [] });
  const controller = new AbortController();
  const iterator = backend.watch({ prefix: '', fromVersion: 1 }, context(controller))[Symbol.asyncIterator]();
  const seen: string[] = [];
  for (let count = 0; count < 302; count++) {
    const next = await iterator.next();
    if (next.done === true) break;
    seen.push(label(next.value));
  }
  const expected = ['1 a', ...Array.from({ length: 299 }, (_, index) => `2 b${index} +`), '2 b299', '3 other'];
  t.same(seen, expected, 'every change once, in order; the last of a version has no moreInVersion, across pages');

  const waiting = iterator.next();
  let settled = false;
  void waiting.then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.notOk(settled, 'caught up: the watch waits');
  const pagesBefore = log.pagesRead;
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(log.pagesRead, pagesBefore, 'without polling the log');
  log.apply(4, 'd');
  backend.handleStoreEvent({ type: 'applied', index: 4, results: [] });
  t.same(label((await waiting).value as WatchEvent), '4 d', 'the next applied index wakes it');

  const after = iterator.next();
  controller.abort();
  t.same(await after, { done: true, value: undefined }, 'an aborted call ends the iteration quietly');
});

t.test('the log is read only as fast as the consumer pulls', async (t) => {
  const log = new MemoryLog();
  for (let version = 1; version <= 2000; version++) log.apply(version, `k${version}`);
  const backend = backendOver(log);
  backend.handleStoreEvent({ type: 'applied', index: 2000, results: [] });
  const iterator = backend.watch({ prefix: '', fromVersion: 1 }, context())[Symbol.asyncIterator]();
  await iterator.next();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(log.pagesRead, 1, 'one page read for one event taken; nothing read ahead while the consumer waits');
  await iterator.return(undefined);
});

t.test('from now, a prefix, a compacted version, a bad request, a closing node', async (t) => {
  const log = new MemoryLog();
  log.apply(1, 'x/a');
  log.apply(2, 'y/b');
  log.start = 2;
  const backend = backendOver(log);
  backend.handleStoreEvent({ type: 'applied', index: 2, results: [] });

  const fromNow = backend.watch({ prefix: 'x/', fromVersion: 0 }, context())[Symbol.asyncIterator]();
  const next = fromNow.next();
  log.apply(3, 'y/c', 'x/d');
  backend.handleStoreEvent({ type: 'applied', index: 3, results: [] });
  t.same(label((await next).value as WatchEvent), '3 x/d', 'from now: only later changes, and only under the prefix');

  await t.rejects(backend.watch({ prefix: '', fromVersion: 1 }, context())[Symbol.asyncIterator]().next(), { code: 'Compacted' }, 'a compacted version');
  await t.rejects(backend.watch({ prefix: 'a//', fromVersion: 0 }, context())[Symbol.asyncIterator]().next(), { code: 'InvalidKey', message: /empty segment/ }, 'a bad prefix names the rule');
  await t.rejects(backend.watch({ prefix: '', fromVersion: -1 }, context())[Symbol.asyncIterator]().next(), { code: 'InvalidArgument' }, 'a negative version');

  const waiting = fromNow.next();
  backend.close();
  await t.rejects(waiting, { code: 'Unavailable', message: /resume the watch on another node/ }, 'closing the node ends waiting watches with Unavailable');
});
