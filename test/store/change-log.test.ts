// The change log behind Watch. Goal: every applied command leaves, in its own transaction, the
// key-level changes it made, in the order it made them and under its entry's index; the log keeps
// only its newest changes (whole versions) and says from which version on it is complete; a
// snapshot restore starts a fresh log; an older data folder without the log opens with an empty
// one; and none of it touches the replicated state (digests and snapshots stay as they were).
// Method: real state machines on throwaway folders, commands built with the LogBuilder, the log
// read back through a read-only StateReader as the gRPC worker reads it.

import { open } from 'lmdb';
import * as path from 'node:path';
import t from 'tap';

import { DfsError } from '../../src/errors.js';
import type { Change } from '../../src/store/layout.js';
import { StateMachine } from '../../src/store/state-machine.js';
import { StateReader } from '../../src/store/state-reader.js';
import { bytes, LogBuilder, openMachine, removeFolder, run, temporaryFolder, testMachineOptions, testMapSizeBytes } from './state-helpers.js';

const file = { modeBits: 0o644, modifiedMilliseconds: 1_700_000_000_000 };

function summary(changes: readonly Change[]): string[] {
  return changes.map((change) => `${change.version}.${change.sequence} ${change.type} ${change.key}`);
}

/** The DfsError `action` throws (fails the test when it throws nothing or something else). */
function dfsErrorOf(action: () => unknown): DfsError {
  try {
    action();
  } catch (error) {
    if (error instanceof DfsError) return error;
    throw error;
  }
  throw new Error('expected a DfsError, nothing was thrown');
}

function readAll(reader: StateReader, fromVersion: number, prefix = ''): Change[] {
  const all: Change[] = [];
  let position = { version: fromVersion, sequence: 0 };
  for (;;) {
    const page = reader.changes(position, prefix, 3);
    all.push(...page.changes);
    position = page.next;
    if (page.caughtUp) return all;
  }
}

t.test('each command records what it did to each key, in order, under its version', async (t) => {
  const folder = temporaryFolder('change-log');
  const machine = openMachine(folder);
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  t.teardown(async () => {
    await reader.close();
    await machine.close();
    removeFolder(folder);
  });
  const log = new LogBuilder();
  run(machine, log, { type: 'put', key: 'docs/a.txt', data: bytes('a'), ...file }); // 1
  run(machine, log, { type: 'put', key: 'docs/b.txt', data: bytes('bb'), ...file }); // 2
  t.equal(run(machine, log, { type: 'delete', key: 'docs/missing' }).ok, false, 'a rejected command…'); // 3
  run(machine, log, { type: 'rename', from: 'docs/a.txt', to: 'docs/c.txt' }); // 4
  run(machine, log, { type: 'mkdir', key: 'docs/empty', ...file }); // 5
  run(machine, log, { type: 'rename', from: 'docs', to: 'archive' }); // 6
  run(machine, log, { type: 'put', key: 'other', data: bytes('o'), ...file }); // 7
  run(machine, log, { type: 'deleteFolder', key: 'archive' }); // 8
  run(machine, log, { type: 'delete', key: 'other' }); // 9

  const changes = readAll(reader, 1);
  t.same(
    summary(changes),
    [
      '1.0 put docs/a.txt',
      '2.0 put docs/b.txt',
      '4.0 delete docs/a.txt',
      '4.1 put docs/c.txt',
      '5.0 makeFolder docs/empty',
      '6.0 delete docs/b.txt',
      '6.1 put archive/b.txt',
      '6.2 delete docs/c.txt',
      '6.3 put archive/c.txt',
      '6.4 removeFolder docs/empty',
      '6.5 makeFolder archive/empty',
      '7.0 put other',
      '8.0 delete archive/b.txt',
      '8.1 delete archive/c.txt',
      '8.2 removeFolder archive/empty',
      '9.0 delete other',
    ],
    '…records nothing; a folder rename is deletes and puts per entry; deleteFolder one delete per entry',
  );
  const put = changes.find((change) => change.key === 'archive/b.txt' && change.type === 'put');
  t.equal(put?.file?.sizeBytes, 2, 'a put carries the file record');
  t.equal(put?.file?.version, 6, 'with the version the rename gave it');
  t.equal(changes.find((change) => change.type === 'makeFolder')?.folder?.modeBits, 0o644, 'a makeFolder carries the folder record');

  t.same(summary(readAll(reader, 1, 'archive/')), ['6.1 put archive/b.txt', '6.3 put archive/c.txt', '6.5 makeFolder archive/empty', '8.0 delete archive/b.txt', '8.1 delete archive/c.txt', '8.2 removeFolder archive/empty'], 'a prefix selects keys byte for byte');
  t.same(summary(readAll(reader, 7)), ['7.0 put other', '8.0 delete archive/b.txt', '8.1 delete archive/c.txt', '8.2 removeFolder archive/empty', '9.0 delete other'], 'reading starts at the version asked for');
  const caughtUp = reader.changes({ version: 10, sequence: 0 }, '', 100);
  t.same({ changes: caughtUp.changes.length, next: caughtUp.next, caughtUp: caughtUp.caughtUp, applied: caughtUp.appliedIndex }, { changes: 0, next: { version: 10, sequence: 0 }, caughtUp: true, applied: 9 }, 'after the applied index: nothing yet, caught up');
  t.same(machine.changeLog(), { startVersion: 1, changeCount: 16 }, 'the log is complete from version 1');
  t.equal(dfsErrorOf(() => reader.changes({ version: 1, sequence: 0 }, 'a//b', 10)).code, 'InvalidKey', 'a bad prefix is refused');
});

t.test('retention drops the oldest whole versions and says where the log starts', async (t) => {
  const folder = temporaryFolder('change-log-retention');
  const machine = StateMachine.open(folder, { ...testMachineOptions, retainedChanges: 4 });
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  t.teardown(async () => {
    await reader.close();
    await machine.close();
    removeFolder(folder);
  });
  const log = new LogBuilder();
  for (let index = 1; index <= 6; index++) run(machine, log, { type: 'put', key: `f${index}`, data: bytes(String(index)), ...file }); // 1..6
  t.same(machine.changeLog(), { startVersion: 3, changeCount: 4 }, 'six single-change versions, four kept: the log starts at 3');
  t.same(summary(readAll(reader, 3)), ['3.0 put f3', '4.0 put f4', '5.0 put f5', '6.0 put f6']);
  const compacted = dfsErrorOf(() => reader.changes({ version: 2, sequence: 0 }, '', 10));
  t.equal(compacted.code, 'Compacted', 'an older version gets Compacted…');
  t.match(compacted.message, /oldest version still available is 3.*Watch from version 3 or later.*List and Get/, '…naming the oldest one still there and what to do');
  run(machine, log, { type: 'rename', from: 'f6', to: 'g6' }); // 7: two changes
  t.same(machine.changeLog(), { startVersion: 5, changeCount: 4 }, 'whole versions go: 3 and 4 leave for the two changes of 7');
  run(machine, log, { type: 'mkdir', key: 'big', ...file }); // 8
  for (let index = 1; index <= 5; index++) run(machine, log, { type: 'put', key: `big/f${index}`, data: bytes('x'), ...file }); // 9..13
  run(machine, log, { type: 'deleteFolder', key: 'big' }); // 14: six changes, more than the limit
  t.same(machine.changeLog(), { startVersion: 14, changeCount: 6 }, 'a version larger than the limit is kept whole, alone');
  t.equal(readAll(reader, 14).length, 6);
  run(machine, log, { type: 'put', key: 'after', data: bytes('y'), ...file }); // 15
  t.same(machine.changeLog(), { startVersion: 15, changeCount: 1 }, 'and goes whole when the next version arrives');

  await machine.close();
  const reopened = StateMachine.open(folder, { ...testMachineOptions, retainedChanges: 4 });
  t.same(reopened.changeLog(), { startVersion: 15, changeCount: 1 }, 'the log and its start survive a restart');
  await reopened.close();
});

t.test('a snapshot restore starts a fresh log; the log is no part of digests or snapshots', async (t) => {
  const source = temporaryFolder('change-log-source');
  const target = temporaryFolder('change-log-target');
  const snapshotPath = path.join(source, 'state.snap');
  const writer = openMachine(source);
  const restored = openMachine(target);
  t.teardown(async () => {
    await writer.close();
    await restored.close();
    removeFolder(source);
    removeFolder(target);
  });
  const log = new LogBuilder();
  for (let index = 1; index <= 5; index++) run(writer, log, { type: 'put', key: `k${index}`, data: bytes('v'), ...file });
  await writer.writeSnapshot(snapshotPath);
  await restored.restoreSnapshot(snapshotPath);
  t.equal(restored.digest(), writer.digest(), 'the restored state has the same digest though its log is empty');
  t.same(restored.changeLog(), { startVersion: 6, changeCount: 0 }, 'its log starts after the snapshot');
  const entry = new LogBuilder(6).command({ type: 'delete', key: 'k1' });
  restored.apply([entry]);
  writer.apply([entry]);
  t.equal(restored.digest(), writer.digest(), 'after the same entry, still the same digest (5 vs 6 changes in the logs)');
  t.same(restored.changeLog(), { startVersion: 6, changeCount: 1 });
});

t.test('a data folder from before the change log opens with an empty log after its applied index', async (t) => {
  const folder = temporaryFolder('change-log-old');
  t.teardown(() => removeFolder(folder));
  const machine = openMachine(folder);
  const log = new LogBuilder();
  for (let index = 1; index <= 3; index++) run(machine, log, { type: 'put', key: `k${index}`, data: bytes('v'), ...file });
  const digest = machine.digest();
  await machine.close();
  // What an older dfs left: the same environment without the change tables.
  const root = open<Buffer, Buffer>(folder, { maxDbs: 16, pageSize: 8192, mapSize: testMapSizeBytes, encoding: 'binary', keyEncoding: 'binary', compression: false });
  for (const name of ['changes', 'changeLog']) root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoding: 'binary', compression: false }).dropSync();
  await root.close();

  const reopened = openMachine(folder);
  t.teardown(() => reopened.close());
  t.same(reopened.changeLog(), { startVersion: 4, changeCount: 0 }, 'the log starts after the applied index 3');
  t.equal(reopened.digest(), digest, 'the state is untouched');
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  t.teardown(() => reader.close());
  t.equal(dfsErrorOf(() => reader.changes({ version: 1, sequence: 0 }, '', 10)).code, 'Compacted', 'the versions before it are not in the log');
  run(reopened, new LogBuilder(4), { type: 'put', key: 'k4', data: bytes('v'), ...file });
  t.same(summary(readAll(reader, 4)), ['4.0 put k4'], 'and records from there on');
});
