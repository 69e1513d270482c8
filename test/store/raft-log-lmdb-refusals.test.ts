// A raft log folder that is not this node's, not in a format this dfs reads, not LMDB at all, or
// held by another live process is refused with DfsError 'FailedPrecondition' and a message that
// says what is wrong and what to do, and the folder is left exactly as it was. Method: each test
// builds such a folder (by writing a real log and then changing it with lmdb directly, or by
// writing garbage), takes a fingerprint of every file (size, modification time, SHA-256), calls
// openRaftLog, and checks the error and that the fingerprint is unchanged. LMDB's lock.mdb is left
// out of the fingerprint: every open writes its reader table, which holds no data.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { open } from 'lmdb';
import t, { type Test } from 'tap';

import { isDfsError } from '../../src/errors.js';
import { encodeValue } from '../../src/store/raft-log-codec.js';
import { openRaftLog } from '../../src/store/raft-log-lmdb.js';
import { entryData, fingerprint, silentLogger, startChild, temporaryFolder, waitForExit } from './raft-log-helpers.js';

/** A log of node n1 with entries, a hard state and a snapshot, closed. */
async function writtenLog(t: Test): Promise<string> {
  const folder = path.join(temporaryFolder(t), 'raft');
  const log = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  log.append([1, 2, 3, 4].map((index) => ({ index, term: 1, kind: 'normal' as const, data: entryData(index, 64) })));
  log.setHardState({ term: 1, vote: 'n1', commit: 3 });
  log.compact({ index: 2, term: 1, sizeBytes: 10, config: { voters: ['n1'], learners: [] } }, entryData(9, 10));
  log.setClusterId('c-1');
  await log.close();
  return folder;
}

/** Opens `folder` expecting a refusal whose message matches every pattern; checks nothing changed. */
async function expectRefusal(t: Test, folder: string, nodeId: string, patterns: readonly RegExp[]): Promise<string> {
  const before = fingerprint(path.dirname(folder));
  // Let a second pass: a rewrite within the same millisecond would keep the modification time.
  await new Promise((resolve) => setTimeout(resolve, 20));
  let message = '';
  try {
    const log = await openRaftLog({ path: folder, nodeId, logger: silentLogger() });
    await log.close();
    t.fail('the log opened');
  } catch (error) {
    t.ok(isDfsError(error) && error.code === 'FailedPrecondition', 'DfsError FailedPrecondition', { found: error });
    message = error instanceof Error ? error.message : String(error);
    for (const pattern of patterns) t.match(message, pattern);
  }
  t.strictSame(fingerprint(path.dirname(folder)), before, 'every file is as it was');
  return message;
}

/** Rewrites one record of the log's meta database directly. */
async function rewriteMeta(folder: string, key: string, value: unknown): Promise<void> {
  const root = open<Buffer, string>({ path: folder, noSubdir: false, encoding: 'binary', maxDbs: 4, overlappingSync: false });
  const meta = root.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
  meta.putSync(key, encodeValue(value));
  await root.close();
}

t.test('another node’s log: says whose it is and what to fix', async (t) => {
  const folder = await writtenLog(t);
  await expectRefusal(t, folder, 'n2', [/belongs to node 'n1'/, /this node is 'n2'/, /fix the node id or the data folder/, /changed nothing/]);
});

t.test('a future format version: names both versions', async (t) => {
  const folder = await writtenLog(t);
  await rewriteMeta(folder, 'identity', { formatVersion: 2, clusterId: 'c-1', nodeId: 'n1' });
  await expectRefusal(t, folder, 'n1', [/format version 2/, /reads version 1 only/, /a newer dfs/]);
});

t.test('a corrupt identity record', async (t) => {
  const folder = await writtenLog(t);
  await rewriteMeta(folder, 'identity', { nodeId: 7 });
  await expectRefusal(t, folder, 'n1', [/identity record of an unknown shape/, /corrupt/]);
});

t.test('data.mdb full of garbage: explained, not a crash (lmdb-js would segfault on it)', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, 'data.mdb'), Buffer.alloc(20_000, 0x5a));
  await expectRefusal(t, folder, 'n1', [/data\.mdb is not a valid LMDB file/, /magic number 0x5a5a5a5a/, /move it away to start this node empty/]);
});

t.test('data.mdb shorter than an LMDB meta page', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, 'data.mdb'), 'hello');
  await expectRefusal(t, folder, 'n1', [/has 5 bytes, fewer than one LMDB meta page/]);
});

t.test('data.mdb cut after its first page', async (t) => {
  const folder = await writtenLog(t);
  const dataPath = path.join(folder, 'data.mdb');
  fs.truncateSync(dataPath, 4096);
  await expectRefusal(t, folder, 'n1', [/fewer than its two meta pages/]);
});

t.test('data.mdb whose second meta page is garbage', async (t) => {
  const folder = await writtenLog(t);
  const descriptor = fs.openSync(path.join(folder, 'data.mdb'), 'r+');
  fs.writeSync(descriptor, Buffer.alloc(64, 0xff), 0, 64, 4096);
  fs.closeSync(descriptor);
  await expectRefusal(t, folder, 'n1', [/second meta page/]);
});

t.test('an LMDB environment that is not a dfs raft log (e.g. the state store’s)', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const root = open<Buffer, string>({ path: folder, noSubdir: false, encoding: 'binary', maxDbs: 4 });
  root.openDB<Buffer, string>({ name: 'files', encoding: 'binary' }).putSync('a', Buffer.from('b'));
  await root.close();
  await expectRefusal(t, folder, 'n1', [/not a dfs raft log/, /'files'/]);
});

t.test('a folder of other files and no data.mdb', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, 'photo.jpg'), 'not a log');
  await expectRefusal(t, folder, 'n1', [/holds 'photo\.jpg' but no data\.mdb/, /not a dfs raft log folder/]);
});

t.test('a path that is a file', async (t) => {
  const file = path.join(temporaryFolder(t), 'raft');
  fs.writeFileSync(file, 'x');
  await expectRefusal(t, file, 'n1', [/is not a folder/]);
});

t.test('a snapshot file that is missing or truncated', async (t) => {
  const folder = await writtenLog(t);
  const snapshotPath = path.join(folder, 'snapshots', 'snapshot-2-1-1.bin');
  fs.truncateSync(snapshotPath, 3);
  await expectRefusal(t, folder, 'n1', [/records a snapshot at index 2/, /of 10 bytes, but that file has 3 bytes/]);
  fs.unlinkSync(snapshotPath);
  await expectRefusal(t, folder, 'n1', [/that file is missing/]);
});

t.test('an emptied data.mdb beside a snapshots folder: the log was lost', async (t) => {
  const folder = await writtenLog(t);
  fs.truncateSync(path.join(folder, 'data.mdb'), 0);
  await expectRefusal(t, folder, 'n1', [/data\.mdb is empty but has a snapshots\/ folder beside it: its log was lost/, /forget the node's vote/]);
});

t.test('a folder held by another live process: names its pid; free again once it is gone', async (t) => {
  const folder = await writtenLog(t);
  const { child, waitForLine } = startChild(t, ['hold', folder, 'n1']);
  await waitForLine((line) => line.startsWith('ready '));
  const message = await expectRefusal(t, folder, 'n1', [new RegExp(`in use by process ${child.pid ?? 0}`), /Stop that process first/, /dfs\.lock/]);
  t.match(message, /two dfs processes on one folder would corrupt/);
  child.kill('SIGKILL');
  await waitForExit(child);
  const log = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  t.teardown(() => log.close());
  t.equal(log.lastIndex(), 4, 'the stale lock of the killed process is taken over');
});

t.test('the same folder opened twice in one process', async (t) => {
  const folder = await writtenLog(t);
  const log = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  t.teardown(() => log.close());
  await expectRefusal(t, folder, 'n1', [new RegExp(`in use by process ${process.pid}`)]);
});
