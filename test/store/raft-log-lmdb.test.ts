// What the LMDB raft log promises beyond the storage port's contract: everything survives a close
// and reopen; persist() writes a whole Ready in one transaction and refuses a bad batch without
// writing any of it; entries() reads only what it returns; snapshots live as files (installed from
// chunks, taken over from the state machine with compactFromFile, at most the current one kept);
// the cluster id is set once. Method: each test opens logs in its own temporary folder through
// openRaftLog and checks the port's reads, the files on disk and the log's records after reopening.
// The last test pins the lmdb-js behaviour the adapter relies on (clearSync inside transactionSync
// rolls back with it).

import * as fs from 'node:fs';
import * as path from 'node:path';

import { open } from 'lmdb';
import t from 'tap';

import type { Entry, SnapshotMeta } from '../../src/raft/types.js';
import { openRaftLog } from '../../src/store/raft-log-lmdb.js';
import { capturingLogger, entryData, openTestLog, silentLogger, temporaryFolder } from './raft-log-helpers.js';

const unlimitedBytes = Number.MAX_SAFE_INTEGER;

function normal(index: number, term: number, sizeBytes = 8): Entry {
  return { index, term, kind: 'normal', data: entryData(index, sizeBytes) };
}

function run(low: number, high: number, term: number, sizeBytes = 8): Entry[] {
  const out: Entry[] = [];
  for (let index = low; index <= high; index++) out.push(normal(index, term, sizeBytes));
  return out;
}

function meta(index: number, term: number, sizeBytes: number): SnapshotMeta {
  return { index, term, sizeBytes, config: { voters: ['n1', 'n2', 'n3'], learners: [], addresses: { n1: 'a:1', n2: 'b:1', n3: 'c:1' } } };
}

function hex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

function plain(entries: readonly Entry[]): unknown[] {
  return entries.map((entry) =>
    entry.kind === 'normal'
      ? { index: entry.index, term: entry.term, data: hex(entry.data) }
      : { index: entry.index, term: entry.term, change: entry.change, config: entry.config },
  );
}

function snapshotFiles(folder: string): string[] {
  return fs.readdirSync(path.join(folder, 'snapshots')).sort();
}

t.test('reopening after close keeps entries, hard state, snapshot, cluster id and identity', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const first = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  const config: Entry = { index: 1, term: 1, kind: 'config', change: { type: 'addLearner', nodeId: 'n4', address: 'd:1' }, config: meta(0, 1, 0).config };
  first.append([config, ...run(2, 40, 2, 100)]);
  first.setHardState({ term: 2, vote: 'n2', commit: 30 });
  const snapshotData = entryData(99, 5000);
  first.compact(meta(10, 2, snapshotData.byteLength), snapshotData);
  first.setClusterId('cluster-a');
  const before = {
    hardState: first.hardState(),
    snapshot: first.snapshot(),
    firstIndex: first.firstIndex(),
    lastIndex: first.lastIndex(),
    entries: plain(first.entries(11, 41, unlimitedBytes)),
  };
  await first.close();

  const second = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  t.teardown(() => second.close());
  t.strictSame(
    {
      hardState: second.hardState(),
      snapshot: second.snapshot(),
      firstIndex: second.firstIndex(),
      lastIndex: second.lastIndex(),
      entries: plain(second.entries(11, 41, unlimitedBytes)),
    },
    before,
  );
  t.equal(hex(second.snapshotData(0, unlimitedBytes)), hex(snapshotData), 'the snapshot bytes');
  t.equal(second.clusterId(), 'cluster-a');
  t.equal(second.term(10), 2);
  t.equal(second.nodeId(), 'n1');
});

t.test('a config entry keeps every field, addresses included', async (t) => {
  const log = await openTestLog(t);
  const entry: Entry = {
    index: 1,
    term: 1,
    kind: 'config',
    change: { type: 'addLearner', nodeId: 'n4', address: 'd.example:12000' },
    config: { voters: ['n1'], learners: ['n4'], addresses: { n1: 'a.example:12000', n4: 'd.example:12000' } },
  };
  log.append([entry]);
  t.strictSame(log.entries(1, 2, unlimitedBytes), [entry]);
});

t.test('entry data reads back as binary, a copy that later reads do not overwrite', async (t) => {
  const log = await openTestLog(t);
  log.append(run(1, 3, 1, 2000));
  const [one] = log.entries(1, 2, unlimitedBytes);
  log.entries(2, 4, unlimitedBytes);
  log.term(3);
  t.ok(one !== undefined && one.kind === 'normal' && one.data instanceof Uint8Array, 'Uint8Array data');
  if (one?.kind === 'normal') t.equal(hex(one.data), hex(entryData(1, 2000)), 'unchanged by later reads');
});

t.test('persist() writes entries, hard state and a snapshot chunk in one transaction', async (t) => {
  const log = await openTestLog(t);
  log.append(run(1, 5, 1));
  const data = entryData(7, 300);
  log.persist({
    snapshotChunk: { meta: meta(20, 3, data.byteLength), offset: 0, data, done: true },
    entries: run(21, 25, 3),
    hardState: { term: 3, vote: 'n2', commit: 22 },
  });
  t.equal(log.snapshot().index, 20, 'the snapshot is installed');
  t.equal(log.firstIndex(), 21);
  t.equal(log.lastIndex(), 25, 'the entries follow it');
  t.strictSame(plain(log.entries(21, 26, unlimitedBytes)), plain(run(21, 25, 3)));
  t.strictSame(log.hardState(), { term: 3, vote: 'n2', commit: 22 });
  t.equal(hex(log.snapshotData(0, unlimitedBytes)), hex(data));
  await log.flush();
});

t.test('persist() refuses a bad batch before writing any of it', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const log = await openTestLog(t, folder);
  log.append(run(1, 5, 1));
  log.setHardState({ term: 1, vote: null, commit: 2 });
  const observe = (): unknown => ({ hardState: log.hardState(), lastIndex: log.lastIndex(), snapshot: log.snapshot(), entries: plain(log.entries(1, log.lastIndex() + 1, unlimitedBytes)), files: snapshotFiles(folder) });
  const before = observe();
  t.throws(() => log.persist({ entries: run(8, 9, 2), hardState: { term: 2, vote: null, commit: 3 }, snapshotChunk: null }), /gap/, 'a gap in the entries');
  t.throws(
    () => log.persist({ entries: [normal(6, 2), normal(8, 2)], hardState: { term: 2, vote: null, commit: 3 }, snapshotChunk: null }),
    /consecutive/,
    'entries that are not consecutive',
  );
  t.throws(
    () => log.persist({ entries: run(6, 6, 2), hardState: { term: -1, vote: null, commit: 3 }, snapshotChunk: null }),
    /hard state/,
    'a hard state with a negative term',
  );
  const data = entryData(1, 10);
  t.throws(
    () => log.persist({ entries: run(6, 6, 2), hardState: null, snapshotChunk: { meta: meta(30, 2, 10), offset: 4, data, done: false } }),
    /does not continue/,
    'a chunk that does not continue a pending snapshot',
  );
  t.throws(
    () => log.persist({ entries: run(6, 6, 2), hardState: null, snapshotChunk: { meta: meta(30, 2, 10), offset: 0, data: data.subarray(0, 4), done: true } }),
    /ends at 4 bytes, but the snapshot has 10/,
    'a last chunk that ends before the snapshot does',
  );
  t.throws(
    () => log.persist({ entries: run(6, 6, 2), hardState: null, snapshotChunk: { meta: meta(30, 2, 3), offset: 0, data, done: false } }),
    /past the snapshot's size/,
    'a chunk past the snapshot size',
  );
  t.throws(
    () => log.persist({ entries: run(20, 20, 2), hardState: null, snapshotChunk: { meta: meta(30, 2, 10), offset: 0, data, done: true } }),
    { code: 'Compacted' },
    'entries at or below the snapshot the same batch installs',
  );
  t.strictSame(observe(), before, 'nothing was written');
});

t.test('entries() stops at maxBytes without reading the entry that would pass it', async (t) => {
  const log = await openTestLog(t);
  log.append([normal(1, 1, 100), normal(2, 1, 100), normal(3, 1, 5000), normal(4, 1, 1)]);
  t.strictSame(log.entries(1, 5, 250).map((entry) => entry.index), [1, 2], 'the third entry passes 250 bytes');
  t.strictSame(log.entries(1, 5, 5200).map((entry) => entry.index), [1, 2, 3], 'exactly at maxBytes');
  t.strictSame(log.entries(3, 5, 10).map((entry) => entry.index), [3], 'at least one entry');
  t.strictSame(log.entries(1, 5, 0).map((entry) => entry.index), [1], 'maxBytes 0: one entry');
  // A corrupt value of entry 3 makes decoding it throw, so a read that stops before it proves
  // that entry 3 was never decoded; its header (size) is the only part read.
  const raw = open<Buffer, number>({ path: log.path(), noSubdir: false, encoding: 'binary', maxDbs: 4 });
  t.teardown(() => raw.close());
  const entriesDatabase = raw.openDB<Buffer, number>({ name: 'entries', encoding: 'binary' });
  const header = Buffer.from([0x93, 0x01, 0x00, 0xc5, 0x13, 0x88]); // [1, 0, bin16 of 5000 bytes] cut short
  entriesDatabase.putSync(3, header);
  // lmdb-js renews a read transaction on the next macrotask after a write by another handle.
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.strictSame(log.entries(1, 5, 250).map((entry) => entry.index), [1, 2], 'entry 3 is only measured');
  t.throws(() => log.entries(1, 5, 6000), 'decoding entry 3 would have thrown');
});

t.test('term() and entries() with terms and sizes of every msgpack width', async (t) => {
  const log = await openTestLog(t);
  const terms = [1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER];
  const sizes = [0, 1, 255, 256, 65535, 65536, 70000];
  const entries: Entry[] = [];
  let index = 1;
  for (const term of terms) for (const sizeBytes of sizes) entries.push(normal(index++, term, sizeBytes));
  log.append(entries);
  for (const entry of entries) {
    if (log.term(entry.index) !== entry.term) t.fail(`term(${entry.index})`);
    if (entry.kind === 'normal') {
      const [read] = log.entries(entry.index, entry.index + 1, 0);
      if (read?.kind !== 'normal' || read.data.byteLength !== entry.data.byteLength) t.fail(`size of ${entry.index}`);
    }
  }
  t.strictSame(plain(log.entries(1, index, unlimitedBytes)), plain(entries), 'every entry reads back');
});

t.test('a snapshot installed from chunks: incoming file, then current file, older ones deleted', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const { logger, records } = capturingLogger();
  const log = await openRaftLog({ path: folder, nodeId: 'n1', logger });
  t.teardown(() => log.close());
  const first = entryData(1, 1000);
  log.writeSnapshotChunk({ meta: meta(10, 2, first.byteLength), offset: 0, data: first, done: true });
  t.strictSame(snapshotFiles(folder), ['snapshot-10-2-1.bin']);
  const firstPath = log.snapshotPath();
  t.equal(firstPath, path.join(folder, 'snapshots', 'snapshot-10-2-1.bin'), 'snapshotPath() names the current file');

  const second = entryData(2, 2500);
  const secondMeta = meta(50, 4, second.byteLength);
  log.writeSnapshotChunk({ meta: secondMeta, offset: 0, data: second.subarray(0, 1000), done: false });
  t.strictSame(snapshotFiles(folder), ['incoming-50-4.part', 'snapshot-10-2-1.bin'], 'the current file and the incoming one');
  t.equal(log.snapshot().index, 10, 'still the first snapshot');
  t.equal(hex(log.snapshotData(0, unlimitedBytes)), hex(first), 'serving the first snapshot meanwhile');
  log.writeSnapshotChunk({ meta: secondMeta, offset: 1000, data: second.subarray(1000, 2000), done: false });
  log.writeSnapshotChunk({ meta: secondMeta, offset: 2000, data: second.subarray(2000), done: true });
  t.strictSame(snapshotFiles(folder), ['snapshot-50-4-2.bin'], 'the first snapshot file is deleted');
  t.equal(hex(fs.readFileSync(log.snapshotPath() ?? '')), hex(second), 'the file at snapshotPath() is the snapshot');
  t.equal(hex(log.snapshotData(1500, 600)), hex(second.subarray(1500, 2100)), 'positioned reads');
  t.ok(records.some((record) => record.msg === 'snapshot installed' && record['snapshotIndex'] === 50), 'logged');

  // A transfer dropped by a new one from offset 0 leaves no file behind.
  log.writeSnapshotChunk({ meta: meta(60, 4, 10), offset: 0, data: entryData(3, 5), done: false });
  log.writeSnapshotChunk({ meta: meta(70, 5, 10), offset: 0, data: entryData(4, 5), done: false });
  t.strictSame(snapshotFiles(folder), ['incoming-70-5.part', 'snapshot-50-4-2.bin'], 'only the newest incoming file');
  await log.close();
  t.strictSame(snapshotFiles(folder), ['snapshot-50-4-2.bin'], 'close drops the incoming file: a restarted transfer begins at 0');
});

t.test('compactFromFile() takes over the state machine’s file: renamed in place, later replaced', async (t) => {
  const base = temporaryFolder(t);
  const folder = path.join(base, 'raft');
  const log = await openTestLog(t, folder);
  log.append(run(1, 30, 2));
  const written = path.join(base, 'state-snapshot.tmp');
  const data = entryData(5, 4096);
  fs.writeFileSync(written, data);
  log.compactFromFile({ ...meta(12, 2, 0) }, written);
  t.notOk(fs.existsSync(written), 'the file is moved, not copied');
  t.strictSame(snapshotFiles(folder), ['snapshot-12-2-1.bin']);
  t.equal(log.snapshot().sizeBytes, data.byteLength, 'sizeBytes is the file’s size');
  t.equal(log.firstIndex(), 13, 'entries up to the snapshot are discarded');
  t.equal(log.lastIndex(), 30, 'later entries stay');
  t.equal(hex(log.snapshotData(0, unlimitedBytes)), hex(data));

  const refused = path.join(base, 'refused.tmp');
  fs.writeFileSync(refused, data);
  t.throws(() => log.compactFromFile(meta(12, 2, 0), refused), 'at the snapshot index');
  t.throws(() => log.compactFromFile(meta(20, 9, 0), refused), 'a term that is not the entry’s');
  t.ok(fs.existsSync(refused), 'a refused file is left where it was');

  const next = path.join(base, 'state-snapshot-2.tmp');
  fs.writeFileSync(next, entryData(6, 100));
  log.compactFromFile(meta(25, 2, 0), next);
  t.strictSame(snapshotFiles(folder), ['snapshot-25-2-2.bin'], 'the previous snapshot file is deleted');

  log.compact(meta(28, 2, 3), entryData(7, 3));
  t.strictSame(snapshotFiles(folder), ['snapshot-28-2-3.bin'], 'compact() writes a file the same way');
  t.equal(hex(log.snapshotData(0, unlimitedBytes)), hex(entryData(7, 3)));
});

t.test('snapshotData() refuses a single read larger than its limit', async (t) => {
  const log = await openTestLog(t);
  log.append(run(1, 2, 1));
  log.compact(meta(2, 1, 10), entryData(1, 10));
  t.throws(() => log.snapshotData(-1, 4), RangeError);
  t.equal(log.snapshotData(8, unlimitedBytes).byteLength, 2, 'an unlimited read is clamped to the file');
});

t.test('open removes snapshot files an interrupted transfer or compaction left, and nothing else', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const first = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  first.append(run(1, 5, 1));
  first.compact(meta(3, 1, 4), entryData(1, 4));
  await first.close();
  const snapshots = path.join(folder, 'snapshots');
  for (const name of ['incoming-9-2.part', 'compact-4-1.tmp', 'snapshot-9-2-7.bin', 'notes.txt']) fs.writeFileSync(path.join(snapshots, name), 'x');
  const { logger, records } = capturingLogger();
  const second = await openRaftLog({ path: folder, nodeId: 'n1', logger });
  t.teardown(() => second.close());
  t.strictSame(snapshotFiles(folder), ['notes.txt', 'snapshot-3-1-1.bin'], 'leftovers gone, the current snapshot and foreign files kept');
  t.equal(records.filter((record) => record.msg.startsWith('removed a snapshot file')).length, 3, 'each removal logged');
});

t.test('the cluster id is set once: the same id again is fine, another is refused', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const log = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  t.equal(log.clusterId(), null, 'none on a new node');
  log.setClusterId('c-1');
  log.setClusterId('c-1');
  t.throws(
    () => log.setClusterId('c-2'),
    { name: 'DfsError', code: 'FailedPrecondition', message: /belongs to cluster c-1/ },
  );
  t.throws(() => log.setClusterId(''), { name: 'DfsError', code: 'InvalidArgument' });
  await log.close();
  const reopened = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  t.teardown(() => reopened.close());
  t.equal(reopened.clusterId(), 'c-1', 'kept across a reopen');
});

t.test('a closed log refuses every call, and close() twice is fine', async (t) => {
  const log = await openRaftLog({ path: path.join(temporaryFolder(t), 'raft'), nodeId: 'n1', logger: silentLogger() });
  await log.close();
  await log.close();
  t.throws(() => log.lastIndex(), /closed/);
  t.throws(() => log.append(run(1, 1, 1)), /closed/);
});

t.test('a folder whose name has a dot is a folder, not an LMDB file name', async (t) => {
  const folder = path.join(temporaryFolder(t), 'node.raft');
  const log = await openTestLog(t, folder);
  log.append(run(1, 1, 1));
  t.ok(fs.existsSync(path.join(folder, 'data.mdb')), 'data.mdb inside the folder');
});

t.test('lmdb-js: clearSync inside transactionSync rolls back with the transaction', async (t) => {
  // persist() installs a received snapshot with entries.clearSync() inside its transaction; this
  // pins that lmdb-js runs it in that transaction rather than committing it on its own.
  const root = open<Buffer, number>({ path: temporaryFolder(t), noSubdir: false, encoding: 'binary', maxDbs: 2, overlappingSync: false });
  t.teardown(() => root.close());
  const database = root.openDB<Buffer, number>({ name: 'entries', encoding: 'binary' });
  database.putSync(1, Buffer.from([1]));
  t.throws(() =>
    root.transactionSync(() => {
      database.clearSync();
      throw new Error('abort');
    }),
  );
  t.equal(database.get(1)?.[0], 1, 'the entry is still there');
  root.transactionSync(() => database.clearSync());
  t.equal(database.get(1), undefined, 'and a committed clearSync removes it');
});
