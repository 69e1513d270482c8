// Snapshots carry a node's whole state to another node (Raft log compaction and InstallSnapshot):
// a snapshot written on one node and restored on another must give byte-identical state (equal
// digests), be consistent with the applied index it reports even while entries keep being applied,
// and a damaged file must be refused without touching the state. Method: machines fed the mixed
// workload; snapshots written, restored into fresh and into populated folders, digests compared;
// a snapshot taken while applies continue; files truncated, flipped and forged; a reader left
// open across a restore.

import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { encodeCommand } from '../../src/store/commands.js';
import { SnapshotFileReader } from '../../src/store/snapshot.js';
import { StateReader } from '../../src/store/state-reader.js';
import { openMachine, pseudoRandomBytes, removeFolder, temporaryFolder, testMapSizeBytes } from './state-helpers.js';
import { mixedWorkload } from './state-workload.js';

const entries = mixedWorkload(300, 4242);

/** Extra entries with distinct 1 MiB values, so that a snapshot spans many write blocks. */
function bulkEntries(firstIndex: number, count: number) {
  return Array.from({ length: count }, (_, number) => ({
    index: firstIndex + number,
    term: 9,
    data: encodeCommand({ type: 'put', requestId: `bulk/${number}`, key: `bulk/${number}`, data: pseudoRandomBytes(1024 * 1024, 500 + number), modeBits: 0o644, modifiedMilliseconds: 0 }),
  }));
}

t.test('a snapshot restored on another node gives identical state', async (t) => {
  const source = temporaryFolder('snapshot-source');
  const target = temporaryFolder('snapshot-target');
  const files = temporaryFolder('snapshot-files');
  t.teardown(() => [source, target, files].forEach(removeFolder));
  const writer = openMachine(source);
  writer.apply(entries.slice(0, 200));
  const snapshotPath = path.join(files, 'state-200.snapshot');
  const written = await writer.writeSnapshot(snapshotPath);
  t.match(written, { index: 200, term: 5 });
  t.equal(written.sizeBytes, fs.statSync(snapshotPath).size, 'the reported size is the file size');
  t.same(fs.readdirSync(files), ['state-200.snapshot'], 'no partial file left behind');

  // The target already holds other state: the restore replaces all of it.
  const restored = openMachine(target);
  restored.apply(mixedWorkload(50, 1));
  const reader = StateReader.open(target, { mapSizeBytes: testMapSizeBytes });
  t.equal(reader.appliedIndex(), 50);
  t.same(await restored.restoreSnapshot(snapshotPath), { index: 200, term: 5, sizeBytes: written.sizeBytes });
  t.equal(restored.appliedIndex(), 200);
  t.equal(restored.digest(), writer.digest(), 'byte-identical state');
  t.equal(reader.appliedIndex(), 200, 'an open reader sees the restored state without reopening');
  t.equal(reader.digest(), writer.digest());

  // Both go on applying the same log and stay identical.
  t.same(restored.apply(entries), writer.apply(entries), 'the same results for the rest of the log');
  t.equal(restored.digest(), writer.digest(), 'and the same state');
  await reader.close();
  await restored.close();
  await writer.close();
});

t.test('a snapshot is the state at its index, however much is applied while it is written', async (t) => {
  const source = temporaryFolder('snapshot-concurrent');
  const target = temporaryFolder('snapshot-concurrent-target');
  const files = temporaryFolder('snapshot-concurrent-files');
  t.teardown(() => [source, target, files].forEach(removeFolder));
  const machine = openMachine(source);
  machine.apply([...entries, ...bulkEntries(entries.length + 1, 24)]);
  const indexBefore = machine.appliedIndex();
  const digestBefore = machine.digest();
  const snapshotPath = path.join(files, 'moving.snapshot');
  const writing = machine.writeSnapshot(snapshotPath);
  // Applied while the snapshot is being written (it awaits the disk every MiB).
  const more = bulkEntries(indexBefore + 1, 8);
  for (const entry of more) {
    machine.apply([entry]);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const written = await writing;
  t.equal(written.index, indexBefore, 'the snapshot reports the index it started at');
  t.ok(written.sizeBytes > 24 * 1024 * 1024, `it holds the bulk content (${written.sizeBytes} bytes)`);
  t.not(machine.digest(), digestBefore, 'the source moved on meanwhile');
  const restored = openMachine(target);
  await restored.restoreSnapshot(snapshotPath);
  t.equal(restored.digest(), digestBefore, 'the restored state is exactly the state at that index');
  await restored.close();
  await machine.close();
});

t.test('the empty state has a snapshot too', async (t) => {
  const source = temporaryFolder('snapshot-empty');
  const target = temporaryFolder('snapshot-empty-target');
  t.teardown(() => [source, target].forEach(removeFolder));
  const empty = openMachine(source);
  const written = await empty.writeSnapshot(path.join(source, '..', `${path.basename(source)}.snapshot`));
  t.match(written, { index: 0, term: 0 });
  const other = openMachine(target);
  other.apply(entries.slice(0, 20));
  await other.restoreSnapshot(path.join(source, '..', `${path.basename(source)}.snapshot`));
  t.equal(other.digest(), empty.digest());
  t.equal(other.appliedIndex(), 0);
  fs.rmSync(path.join(source, '..', `${path.basename(source)}.snapshot`));
  await other.close();
  await empty.close();
});

t.test('damaged or foreign snapshot files are refused and the state is untouched', async (t) => {
  const source = temporaryFolder('snapshot-damaged');
  const target = temporaryFolder('snapshot-damaged-target');
  const files = temporaryFolder('snapshot-damaged-files');
  t.teardown(() => [source, target, files].forEach(removeFolder));
  const machine = openMachine(source);
  machine.apply(entries.slice(0, 120));
  const good = path.join(files, 'good.snapshot');
  await machine.writeSnapshot(good);
  const bytes = fs.readFileSync(good);

  const victim = openMachine(target);
  victim.apply(entries.slice(0, 40));
  const digest = victim.digest();
  const variants: [string, Buffer, RegExp][] = [
    ['truncated in the middle', bytes.subarray(0, Math.floor(bytes.length / 2)), /truncated/],
    ['without its end record', bytes.subarray(0, bytes.length - 90), /truncated|ends/],
    ['one byte flipped in an entry', flip(bytes, Math.floor(bytes.length * 0.6)), /checksum|malformed|frame/],
    ['with bytes after the end', Buffer.concat([bytes, Buffer.from([0])]), /bytes follow the end record/],
    ['empty', Buffer.alloc(0), /empty or truncated/],
    ['not a snapshot at all', pseudoRandomBytes(5000, 3), /exceeds|malformed|not a dfs state snapshot/],
    ['a frame announcing 4 GiB', Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), /exceeds the \d+-byte limit/],
  ];
  for (const [label, content, message] of variants) {
    const file = path.join(files, 'bad.snapshot');
    fs.writeFileSync(file, content);
    await t.rejects(victim.restoreSnapshot(file), { code: 'InvalidArgument', message }, label);
    t.equal(victim.digest(), digest, `${label}: the state is untouched`);
    t.equal(victim.appliedIndex(), 40);
  }
  await t.rejects(victim.restoreSnapshot(path.join(files, 'missing.snapshot')), { code: 'InvalidArgument', message: /cannot open/ });
  t.equal(SnapshotFileReader.open(good).header.index, 120, 'the good file still reads');
  await t.rejects(machine.writeSnapshot(path.join(files, 'no-such-folder', 'x.snapshot')), /ENOENT/);
  await victim.close();
  await machine.close();
});

function flip(bytes: Buffer, position: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[position] = (copy[position] ?? 0) ^ 0x40;
  return copy;
}
