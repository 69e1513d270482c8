// Watch on a real cluster. Goal: a client watching a prefix on a follower sees every change made
// through any node, in commit order and with the versions the writes returned; after a
// disconnect it resumes from the version after the last one it finished and sees the rest with
// no gap and no repeat; a version the node no longer holds gets FAILED_PRECONDITION naming the
// oldest one still there; a node that stops ends its streams with UNAVAILABLE. Method: three real
// `dfs` processes compacting their Raft logs every 20 entries; writes through the leader and the
// other follower (renames and folder deletions, which the gRPC API does not offer, are covered by
// test/store/change-log.test.ts); the history a node cannot tell is that of a node that joins
// after the others compacted their logs: it starts from a snapshot, and its change log with it.

import t from 'tap';
import { DfsClientError, type WatchEvent } from '../../src/client/client.js';
import { mapConcurrently, TestCluster, waitFor, type TestNode } from './harness.js';

const encoder = new TextEncoder();

/** Reads events until `done` says so (or the time is up), then cancels the call. */
async function collect(node: TestNode, prefix: string, fromVersion: number, done: (events: WatchEvent[]) => boolean, timeoutMilliseconds = 20_000): Promise<WatchEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMilliseconds);
  const events: WatchEvent[] = [];
  try {
    for await (const event of node.client.watch(prefix, { fromVersion, signal: controller.signal })) {
      events.push(event);
      if (done(events)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return events;
}

function summary(events: readonly WatchEvent[]): string[] {
  return events.map((event) => `${event.version} ${event.type} ${event.key}${event.moreInVersion ? ' +' : ''}`);
}

t.test('Watch on a follower: order, versions, resume, compaction, shutdown', async (t) => {
  const cluster = await TestCluster.started(t, 3, { env: { DFS_SNAPSHOT_ENTRIES: '20' } });
  const leader = await cluster.waitForLeader(60_000);
  const [watched, other] = cluster.nodes.filter((node) => node !== leader);
  if (watched === undefined || other === undefined) throw new Error('no followers');

  // Writes through the leader and the other follower; `expected` is what a watcher of w/ must see.
  const expected: string[] = [];
  const first = await leader.client.put('w/start', encoder.encode('0'));
  expected.push(`${first.version} PUT w/start`);
  const a = await other.client.put('w/a', encoder.encode('a'));
  expected.push(`${a.version} PUT w/a`);
  await leader.client.put('elsewhere/x', encoder.encode('not watched'));
  const b = await leader.client.put('w/b', encoder.encode('bb'));
  expected.push(`${b.version} PUT w/b`);
  const deleted = await other.client.delete('w/a');
  expected.push(`${deleted.version} DELETE w/a`);

  await t.test('replays from a version, then follows live changes in commit order', async (t) => {
    const live = collect(watched, 'w/', first.version, (events) => events.length >= 5);
    // Given time to replay the four, the stream waits for news: the fifth arrives live.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const c = await leader.client.put('w/c', encoder.encode('c'));
    expected.push(`${c.version} PUT w/c`);
    const events = await live;
    t.same(summary(events).slice(0, 5), expected, 'every change under w/ through any node, with the versions the writes returned');
    t.equal(events[0]?.info?.sizeBytes, 1, 'a PUT carries the file as it is now');
    t.equal(events[3]?.info, undefined, 'a DELETE carries nothing more');
    t.ok(events.every((event, index) => index === 0 || (events[index - 1]?.version ?? 0) <= event.version), 'versions never go back');
  });

  await t.test('a watcher that disconnects resumes from last + 1 with no gap and no repeat', async (t) => {
    // A command may give several events of one version (renames through the cache folder, folder
    // deletions): the resume point is after the last finished version.
    const before = await collect(watched, 'w/', first.version, (events) => events.length >= 3);
    const lastFinished = [...before].reverse().find((event) => !event.moreInVersion);
    if (lastFinished === undefined) throw new Error('no finished version');
    // Changes made while nobody watches.
    const moved = await other.client.put('w/d', encoder.encode('d'));
    const total = expected.length + 1;
    const resumed = await collect(watched, 'w/', lastFinished.version + 1, (events) => before.length + events.length >= total);
    const joined = summary([...before.filter((event) => event.version <= lastFinished.version), ...resumed]);
    t.same(joined, [...expected, `${moved.version} PUT w/d`], 'the two streams together are the whole history, once');
    expected.push(`${moved.version} PUT w/d`);
  });

  await t.test('from now (0) sees only what comes after', async (t) => {
    const live = collect(watched, 'w/', 0, (events) => events.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const put = await leader.client.put('w/e', encoder.encode('e'));
    t.same(summary(await live), [`${put.version} PUT w/e`]);
  });

  await t.test('a version the node no longer holds gets FAILED_PRECONDITION naming the oldest one left', async (t) => {
    // Enough entries that the leader's log no longer reaches back to the start, then a new node:
    // it starts from the leader's snapshot, and its change log with it.
    await mapConcurrently(Array.from({ length: 100 }, (_, index) => `fill/${index}`), 16, async (key) => {
      await leader.client.put(key, encoder.encode('x'));
    });
    const joiner = await cluster.addJoiner('node4', leader, { DFS_SNAPSHOT_ENTRIES: '20' });
    joiner.start();
    await waitFor(`${joiner.spec.id} installs a snapshot from the leader`, async () => /state restored from the snapshot/.test(joiner.logText()), 60_000, 200);
    await waitFor(`${joiner.spec.id} answers gRPC`, async () => (await joiner.status()).appliedIndex > first.version);
    const error = await collect(joiner, 'w/', first.version, () => true).then(
      () => null,
      (caught: unknown) => caught,
    );
    t.ok(error instanceof DfsClientError, 'the watch fails');
    t.equal((error as DfsClientError).code, 'FAILED_PRECONDITION');
    t.match((error as DfsClientError).message, /oldest version still available is \d+.*List and Get/, (error as Error).message);
    const oldest = Number(/oldest version still available is (\d+)/.exec((error as Error).message)?.[1]);
    const put = await leader.client.put('w/after-snapshot', encoder.encode('f'));
    const events = await collect(joiner, 'w/', oldest, (seen) => seen.some((event) => event.version === put.version));
    t.same(summary(events).slice(-1), [`${put.version} PUT w/after-snapshot`], 'from the oldest version on, the log is whole');
  });

  await t.test('a node that stops ends its watches with UNAVAILABLE', async (t) => {
    const controller = new AbortController();
    const stream = watched.client.watch('w/', { fromVersion: 0, signal: controller.signal });
    const outcome = (async () => {
      try {
        for await (const event of stream) void event;
        return 'ended';
      } catch (error) {
        return error instanceof DfsClientError ? error.code : String(error);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    t.equal(await watched.stop(), 0, `${watched.spec.id} stops gracefully`);
    t.equal(await outcome, 'UNAVAILABLE');
    t.ok(Date.now() - started < 4000, `the stop did not wait for the watch (${Date.now() - started} ms)`);
  });
});
