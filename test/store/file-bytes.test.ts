// The state machine keeps the sum of the sizes of all files (StateStatistics.fileBytes, the
// dfs_store_file_bytes gauge) in the meta table, moved in the transaction of every command that
// changes a file. Goal: the total always equals what a scan of the files would give — after each
// kind of command, after refused and aborted ones, across a restart, through a snapshot restored
// on another store (also one written before the total existed), and in a folder written before
// this change (the total is counted once on open). Method: fresh state folders, commands applied
// through encoded log entries as the store worker does, the total read through a StateReader and
// compared with hand-computed sizes and with the sum of sizes of a full listing.

import * as path from 'node:path';

import { open } from 'lmdb';
import t from 'tap';

import { chunkHash } from '../../src/store/commands.js';
import { chunkSizeBytes, fileBytesKey } from '../../src/store/layout.js';
import { SnapshotFileReader, SnapshotFileWriter } from '../../src/store/snapshot.js';
import { StateMachine } from '../../src/store/state-machine.js';
import { StateReader } from '../../src/store/state-reader.js';
import { bytes, LogBuilder, openFixture, openMachine, pseudoRandomBytes, removeFolder, run, temporaryFolder, testMapSizeBytes, type CommandInput } from './state-helpers.js';
import { mixedWorkload } from './state-workload.js';

const file = (key: string, content: string | Uint8Array): CommandInput => ({
  type: 'put',
  key,
  data: typeof content === 'string' ? bytes(content) : content,
  modeBits: 0o644,
  modifiedMilliseconds: 1000,
});

/** The oracle: the sizes of every file in a full listing, summed. */
function listedBytes(reader: StateReader): number {
  let total = 0;
  let pageToken = '';
  do {
    const page = reader.list('', { pageSize: 1000, pageToken });
    for (const entry of page.entries) total += entry.sizeBytes;
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return total;
}

/** Removes the stored total, as in a folder an older dfs wrote. The folder's writer must be closed. */
async function dropStoredTotal(folder: string): Promise<boolean> {
  const root = open<Buffer, Buffer>(folder, { maxDbs: 16, pageSize: 8192, mapSize: testMapSizeBytes, encoding: 'binary', keyEncoding: 'binary', compression: false });
  const meta = root.openDB<Buffer, Buffer>('meta', { encoding: 'binary', keyEncoding: 'binary', compression: false });
  const removed = await meta.remove(fileBytesKey);
  await root.close();
  return removed;
}

t.test('puts, overwrites, deletes, renames and folder removals move the total', async (t) => {
  const fixture = openFixture('file-bytes');
  t.teardown(fixture.close);
  const total = (): number => fixture.reader.statistics().fileBytes;
  t.equal(total(), 0, 'a new store holds 0 bytes');
  t.equal(fixture.machine.fileBytesTotal(), 0);

  fixture.run(file('a.txt', 'hello')); // 5
  fixture.run(file('docs/b.txt', '1234567890')); // 10
  fixture.run(file('docs/same.txt', 'hello')); // 5: the same content as a.txt, counted per file
  t.equal(total(), 20, 'puts add their sizes; identical content counts once per file');

  fixture.run(file('a.txt', 'hi')); // 5 → 2
  t.equal(total(), 17, 'an overwrite with a smaller file subtracts the old size');
  fixture.run(file('a.txt', 'a longer text')); // 2 → 13
  t.equal(total(), 28, 'an overwrite with a larger one adds the difference');
  fixture.run(file('empty', ''));
  t.equal(total(), 28, 'an empty file adds nothing');

  t.match(fixture.run({ type: 'delete', key: 'docs/same.txt' }), { ok: true });
  t.equal(total(), 23, 'a delete subtracts the file');

  t.match(fixture.run({ type: 'rename', from: 'a.txt', to: 'moved.txt' }), { ok: true });
  t.equal(total(), 23, 'a rename onto nothing keeps the total');
  t.match(fixture.run({ type: 'rename', from: 'moved.txt', to: 'docs/b.txt' }), { ok: true });
  t.equal(total(), 13, 'a rename onto a file drops the replaced file (10 bytes)');

  fixture.run(file('tree/x/1', 'abc'));
  fixture.run(file('tree/x/2', 'defg'));
  fixture.run({ type: 'mkdir', key: 'tree/empty', modeBits: 0o755, modifiedMilliseconds: 1 });
  t.equal(total(), 20);
  t.match(fixture.run({ type: 'rename', from: 'tree', to: 'forest' }), { ok: true });
  t.equal(total(), 20, 'a folder rename keeps the total');
  t.match(fixture.run({ type: 'deleteFolder', key: 'forest' }), { ok: true, affectedCount: 3 });
  t.equal(total(), 13, 'a folder removal subtracts every file in it');
  t.equal(total(), listedBytes(fixture.reader), 'the total is the listing’s sum');
  t.equal(fixture.machine.fileBytesTotal(), 13, 'the writer agrees with what it stored');
});

t.test('large files: an inline put split on apply, and chunks committed by commitFile', async (t) => {
  const fixture = openFixture('file-bytes-large');
  t.teardown(fixture.close);
  const inline = pseudoRandomBytes(2 * chunkSizeBytes + 123, 7);
  fixture.run(file('inline.bin', inline));
  t.match(fixture.reader.stat('inline.bin'), { sizeBytes: inline.byteLength, chunkCount: 3 });
  t.equal(fixture.reader.statistics().fileBytes, inline.byteLength, 'an inline put counts its whole size');

  const pieces = [pseudoRandomBytes(chunkSizeBytes, 8), pseudoRandomBytes(chunkSizeBytes, 9), pseudoRandomBytes(4321, 10)];
  for (const piece of pieces) fixture.run({ type: 'putChunk', data: piece });
  t.equal(fixture.reader.statistics().fileBytes, inline.byteLength, 'uploaded chunks are not files yet');
  const sizeBytes = pieces.reduce((sum, piece) => sum + piece.byteLength, 0);
  const commit = { type: 'commitFile', key: 'uploaded.bin', chunks: pieces.map((piece) => chunkHash(piece)), sizeBytes, modeBits: 0o600, modifiedMilliseconds: 5 } as const;
  t.match(fixture.run({ ...commit, sizeBytes: sizeBytes + 1 }), { ok: false, code: 'InvalidArgument' });
  t.equal(fixture.reader.statistics().fileBytes, inline.byteLength, 'a refused commit adds nothing');
  t.match(fixture.run(commit), { ok: true });
  t.equal(fixture.reader.statistics().fileBytes, inline.byteLength + sizeBytes, 'the commit adds the file’s size');
  t.match(fixture.run({ ...commit, key: 'inline.bin' }), { ok: true });
  t.equal(fixture.reader.statistics().fileBytes, 2 * sizeBytes, 'a commit over a file replaces its size');
  t.equal(fixture.reader.statistics().fileBytes, listedBytes(fixture.reader));
});

t.test('refused, malformed and aborted commands leave the total as it was', async (t) => {
  const fixture = openFixture('file-bytes-refused');
  t.teardown(fixture.close);
  const { reader, machine, log } = fixture;
  fixture.run(file('a', 'abc'));
  fixture.run(file('dir/b', 'defgh'));
  t.equal(reader.statistics().fileBytes, 8);
  const refusals: CommandInput[] = [
    file('a/under-a-file', 'xxxxxxxx'),
    file('dir', 'onto a folder'),
    { type: 'delete', key: 'missing' },
    { type: 'delete', key: 'dir' },
    { type: 'deleteFolder', key: 'a' },
    { type: 'rename', from: 'missing', to: 'z' },
    { type: 'rename', from: 'a', to: 'dir' },
    { type: 'commitFile', key: 'c', chunks: [chunkHash(bytes('never sent'))], sizeBytes: 10, modeBits: 0o644, modifiedMilliseconds: 1 },
  ];
  for (const refusal of refusals) {
    t.match(fixture.run(refusal), { ok: false }, `${refusal.type} is refused`);
    t.equal(reader.statistics().fileBytes, 8, `…and the total is unchanged`);
  }
  machine.apply([log.raw(bytes('not a command'))]);
  t.equal(reader.statistics().fileBytes, 8, 'a malformed entry changes nothing');

  // A batch that throws (here a gap after a valid put) is aborted whole: its put is not counted.
  const put = log.command(file('counted-never', 'zzzzzzzzzz'));
  const gap = { index: put.index + 5, term: 1, data: null };
  t.throws(() => machine.apply([put, gap]), /does not follow/);
  t.equal(machine.fileBytesTotal(), 8, 'the writer’s total is rolled back with the transaction');
  t.equal(reader.statistics().fileBytes, 8, 'and nothing was stored');
  machine.apply([put]);
  t.equal(reader.statistics().fileBytes, 18, 'the same put applied again counts once');
});

t.test('the total survives a restart and matches a listing after a mixed workload', async (t) => {
  const folder = temporaryFolder('file-bytes-restart');
  t.teardown(() => removeFolder(folder));
  const entries = mixedWorkload(400, 99);
  const machine = openMachine(folder);
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  for (let start = 0; start < entries.length; start += 40) {
    machine.apply(entries.slice(start, start + 40));
    t.equal(reader.statistics().fileBytes, listedBytes(reader), `after entry ${start + 40}`);
  }
  const before = reader.statistics().fileBytes;
  t.ok(before > 0, 'the workload leaves files');
  const digest = machine.digest();
  await reader.close();
  await machine.close();

  const reopened = openMachine(folder);
  t.teardown(() => reopened.close());
  t.equal(reopened.fileBytesTotal(), before, 'the total is read back after a restart');
  t.equal(reopened.digest(), digest, 'and the state is the same');
});

t.test('a store written before the total was kept: counted once when the writer opens it', async (t) => {
  const folder = temporaryFolder('file-bytes-upgrade');
  t.teardown(() => removeFolder(folder));
  const machine = openMachine(folder);
  machine.apply(mixedWorkload(300, 5));
  const expected = machine.fileBytesTotal();
  const digest = machine.digest();
  await machine.close();
  t.ok(await dropStoredTotal(folder), 'the stored total is gone, as in a folder an older dfs wrote');

  // A reader that opens the folder before any new writer did counts by a scan meanwhile.
  const early = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  t.equal(early.statistics().fileBytes, expected, 'a reader counts the files itself while no total is stored');
  await early.close();

  const reopened = openMachine(folder);
  t.teardown(() => reopened.close());
  t.equal(reopened.fileBytesTotal(), expected, 'the writer counts the files on open');
  t.equal(reopened.digest(), digest, 'and stores the very total it would have kept: the same state as before');
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  t.teardown(() => reader.close());
  t.equal(reader.statistics().fileBytes, expected);
  run(reopened, new LogBuilder(reopened.appliedIndex() + 1, reopened.appliedTerm()), file('after-upgrade', '0123456789'));
  t.equal(reader.statistics().fileBytes, expected + 10, 'and keeps it from there on');
  t.equal(reader.statistics().fileBytes, listedBytes(reader));
});

t.test('a snapshot carries the total to another store; one without it is counted on restore', async (t) => {
  const source = temporaryFolder('file-bytes-source');
  const target = temporaryFolder('file-bytes-target');
  const files = temporaryFolder('file-bytes-snapshots');
  const writer = openMachine(source);
  const restored = openMachine(target);
  const reader = StateReader.open(target, { mapSizeBytes: testMapSizeBytes });
  t.teardown(async () => {
    await reader.close();
    await restored.close();
    await writer.close();
    [source, target, files].forEach(removeFolder);
  });
  const entries = mixedWorkload(250, 17);
  writer.apply(entries.slice(0, 200));
  restored.apply(mixedWorkload(30, 3)); // other state, replaced whole by the restore
  const expected = writer.fileBytesTotal();
  const snapshotPath = path.join(files, 'state.snapshot');
  await writer.writeSnapshot(snapshotPath);
  await restored.restoreSnapshot(snapshotPath);
  t.equal(restored.fileBytesTotal(), expected, 'the restored writer holds the snapshot’s total');
  t.equal(reader.statistics().fileBytes, expected, 'and its readers see it');
  t.equal(restored.digest(), writer.digest(), 'the total is part of the replicated state: same digest');
  const rest = entries.slice(200);
  restored.apply(rest);
  writer.apply(rest);
  t.equal(restored.fileBytesTotal(), writer.fileBytesTotal(), 'both keep the same total as they apply the same entries');
  t.equal(reader.statistics().fileBytes, listedBytes(reader));

  // A snapshot an older dfs wrote: the same entries without the total.
  const oldPath = path.join(files, 'old.snapshot');
  const copied = SnapshotFileReader.open(snapshotPath);
  const old = await SnapshotFileWriter.create(oldPath, copied.header);
  for (;;) {
    const record = copied.next();
    if (record.kind === 'end') break;
    if (record.table === 'meta' && record.key.equals(fileBytesKey)) continue;
    await old.entry(record.table, Buffer.from(record.key), Buffer.from(record.value));
  }
  copied.close();
  await old.finish();
  const third = temporaryFolder('file-bytes-third');
  t.teardown(() => removeFolder(third));
  const fromOld = StateMachine.open(third, { mapSizeBytes: testMapSizeBytes, syncCommits: false });
  t.teardown(() => fromOld.close());
  await fromOld.restoreSnapshot(oldPath);
  t.equal(fromOld.fileBytesTotal(), expected, 'a snapshot without the total is counted on restore');
  const fourth = temporaryFolder('file-bytes-fourth');
  t.teardown(() => removeFolder(fourth));
  const snapshotState = openMachine(fourth);
  t.teardown(() => snapshotState.close());
  await snapshotState.restoreSnapshot(snapshotPath);
  t.equal(fromOld.digest(), snapshotState.digest(), 'and gives the same state as the snapshot with it');
});
