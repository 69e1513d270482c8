// The contract suite of the Raft storage port. Every adapter (memory, LMDB) runs these same tests,
// so the core can rely on the doc comments of src/raft/storage.ts rather than on one adapter's
// behaviour. Method: each subtest opens a fresh storage from the adapter's factory, drives it only
// through the RaftStorage interface, and checks one sentence of those doc comments (quoted in the
// subtest's name). Results are compared as plain values (entry data as hex) so that an adapter may
// return Buffers or copies instead of the very objects it was given.

import type { Test } from 'tap';

import { CompactedError, UnavailableError, bootstrap, entrySizeBytes, type RaftStorage } from '../../src/raft/storage.js';
import type { ConfState, Entry, NodeId, SnapshotMeta } from '../../src/raft/types.js';

/**
 * Opens a new, empty storage. It receives the subtest so that an adapter with resources (an LMDB
 * environment in a temporary folder) can register `t.teardown` to close and remove them.
 */
export type StorageFactory = (t: Test) => RaftStorage | Promise<RaftStorage>;

const unlimitedBytes = Number.MAX_SAFE_INTEGER;

function normal(index: number, term: number, sizeBytes = 3): Entry {
  const data = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, kind: 'normal', data };
}

/**
 * A configuration with every field ConfState may carry (addresses included), so that an adapter
 * that drops a field fails the comparison. Asserted rather than annotated: the fields are the
 * type's business, the suite only needs them to round-trip.
 */
function confState(voters: readonly NodeId[], learners: readonly NodeId[]): ConfState {
  const addresses = Object.fromEntries([...voters, ...learners].map((id) => [id, `${id}.example:12000`]));
  return { voters, learners, addresses } as ConfState;
}

function configEntry(index: number, term: number, voters: readonly NodeId[]): Entry {
  return { index, term, kind: 'config', change: { type: 'bootstrap' }, config: confState(voters, []) };
}

/** Entries low..high inclusive, all of one term. */
function run(low: number, high: number, term: number, sizeBytes = 3): Entry[] {
  const out: Entry[] = [];
  for (let index = low; index <= high; index++) out.push(normal(index, term, sizeBytes));
  return out;
}

function bytes(length: number, seed: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (seed + i * 7) & 0xff;
  return data;
}

function hex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

/** Every field of a configuration, arrays and records copied; a field set to undefined is absent. */
function plainConfig(config: ConfState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? [...(value as unknown[])] : typeof value === 'object' && value !== null ? { ...value } : value;
  }
  return out;
}

function plain(entry: Entry): unknown {
  return entry.kind === 'normal'
    ? { index: entry.index, term: entry.term, kind: entry.kind, data: hex(entry.data) }
    : { index: entry.index, term: entry.term, kind: entry.kind, change: { ...entry.change }, config: plainConfig(entry.config) };
}

function plainAll(entries: readonly Entry[]): unknown[] {
  return entries.map(plain);
}

function meta(index: number, term: number, sizeBytes: number, voters: readonly NodeId[] = ['a', 'b', 'c']): SnapshotMeta {
  return { index, term, config: confState(voters, ['d']), sizeBytes };
}

function plainMeta(snapshot: SnapshotMeta): unknown {
  return { index: snapshot.index, term: snapshot.term, config: plainConfig(snapshot.config), sizeBytes: snapshot.sizeBytes };
}

/** Everything the port exposes about the log, to check that a refused call changed nothing. */
function observe(storage: RaftStorage): unknown {
  const snapshot = storage.snapshot();
  return {
    hardState: { ...storage.hardState() },
    snapshot: plainMeta(snapshot),
    snapshotData: hex(storage.snapshotData(0, unlimitedBytes)),
    firstIndex: storage.firstIndex(),
    lastIndex: storage.lastIndex(),
    entries: plainAll(storage.entries(storage.firstIndex(), storage.lastIndex() + 1, unlimitedBytes)),
  };
}

function throwsInstance(t: Test, fn: () => unknown, errorClass: typeof CompactedError | typeof UnavailableError, message: string): void {
  try {
    fn();
    t.fail(`${message}: did not throw`);
  } catch (error) {
    t.ok(error instanceof errorClass, message, { found: error, wanted: errorClass.name });
  }
}

/** Entries 1..10 of terms 1 (1-4), 2 (5-7), 3 (8-10). */
function fillTen(storage: RaftStorage): void {
  storage.append([...run(1, 4, 1), ...run(5, 7, 2), ...run(8, 10, 3)]);
}

export async function storageContract(t: Test, name: string, makeStorage: StorageFactory): Promise<void> {
  await t.test(`${name} satisfies the RaftStorage contract`, async (t) => {
    const open = async (t: Test): Promise<RaftStorage> => makeStorage(t);

    await t.test('hardState(): term 0, no vote, commit 0 on a new node', async (t) => {
      const storage = await open(t);
      t.strictSame({ ...storage.hardState() }, { term: 0, vote: null, commit: 0 });
    });

    await t.test('setHardState(): hardState() returns what was set last', async (t) => {
      const storage = await open(t);
      storage.setHardState({ term: 3, vote: 'b', commit: 0 });
      t.strictSame({ ...storage.hardState() }, { term: 3, vote: 'b', commit: 0 });
      storage.setHardState({ term: 4, vote: null, commit: 2 });
      t.strictSame({ ...storage.hardState() }, { term: 4, vote: null, commit: 2 }, 'a later hard state replaces the earlier one');
    });

    await t.test('snapshot(): index 0 and term 0 when there is none', async (t) => {
      const storage = await open(t);
      t.equal(storage.snapshot().index, 0);
      t.equal(storage.snapshot().term, 0);
      t.equal(storage.snapshotData(0, unlimitedBytes).byteLength, 0, 'no snapshot data');
    });

    await t.test('firstIndex(): snapshot().index + 1', async (t) => {
      const storage = await open(t);
      t.equal(storage.firstIndex(), 1, 'new storage');
      fillTen(storage);
      t.equal(storage.firstIndex(), 1, 'entries do not move the first index');
      storage.compact(meta(4, 1, 2), bytes(2, 1));
      t.equal(storage.firstIndex(), 5, 'after compact');
      storage.writeSnapshotChunk({ meta: meta(20, 5, 1), offset: 0, data: bytes(1, 2), done: true });
      t.equal(storage.firstIndex(), 21, 'after installing a snapshot');
    });

    await t.test('lastIndex(): the last stored entry, or snapshot().index when there is none', async (t) => {
      const storage = await open(t);
      t.equal(storage.lastIndex(), 0, 'new storage');
      storage.append(run(1, 3, 1));
      t.equal(storage.lastIndex(), 3);
      storage.compact(meta(3, 1, 0), bytes(0, 0));
      t.equal(storage.lastIndex(), 3, 'every entry compacted: the snapshot index');
      storage.append(run(4, 6, 2));
      t.equal(storage.lastIndex(), 6);
    });

    await t.test('term(): the term of the entry at index; at snapshot().index the snapshot term', async (t) => {
      const storage = await open(t);
      t.equal(storage.term(0), 0, 'index 0 of a new storage has term 0');
      fillTen(storage);
      const terms = [1, 1, 1, 1, 2, 2, 2, 3, 3, 3];
      terms.forEach((term, i) => t.equal(storage.term(i + 1), term, `term(${i + 1})`));
      storage.compact(meta(6, 2, 1), bytes(1, 0));
      t.equal(storage.term(6), 2, 'at the snapshot index: the snapshot term');
      t.equal(storage.term(7), 2);
      t.equal(storage.term(10), 3);
      storage.writeSnapshotChunk({ meta: meta(15, 7, 1), offset: 0, data: bytes(1, 0), done: true });
      t.equal(storage.term(15), 7, 'at an installed snapshot index: its term');
    });

    await t.test('term(): CompactedError if index < snapshot().index, UnavailableError if index > lastIndex()', async (t) => {
      const storage = await open(t);
      throwsInstance(t, () => storage.term(1), UnavailableError, 'new storage: term(1) is unavailable');
      fillTen(storage);
      throwsInstance(t, () => storage.term(11), UnavailableError, 'term(lastIndex + 1)');
      throwsInstance(t, () => storage.term(1000), UnavailableError, 'term far past the end');
      storage.compact(meta(5, 2, 1), bytes(1, 0));
      throwsInstance(t, () => storage.term(4), CompactedError, 'term(snapshot index - 1)');
      throwsInstance(t, () => storage.term(1), CompactedError, 'term(1) after compaction');
      throwsInstance(t, () => storage.term(0), CompactedError, 'term(0) after compaction');
      t.equal(storage.term(5), 2, 'the snapshot index itself is not compacted for term()');
      throwsInstance(t, () => storage.term(11), UnavailableError, 'term(lastIndex + 1) after compaction');
    });

    await t.test('errors carry a stable code', async (t) => {
      const storage = await open(t);
      fillTen(storage);
      storage.compact(meta(5, 2, 1), bytes(1, 0));
      t.throws(() => storage.term(1), { code: 'Compacted' });
      t.throws(() => storage.entries(5, 6, unlimitedBytes), { code: 'Compacted' });
      t.throws(() => storage.term(11), { code: 'Unavailable' });
      t.throws(() => storage.entries(6, 12, unlimitedBytes), { code: 'Unavailable' });
    });

    await t.test('entries(): the entries in [low, high)', async (t) => {
      const storage = await open(t);
      const stored = [...run(1, 4, 1), configEntry(5, 2, ['a', 'b']), ...run(6, 8, 2, 0)];
      storage.append(stored);
      t.strictSame(plainAll(storage.entries(1, 9, unlimitedBytes)), plainAll(stored), 'everything');
      t.strictSame(plainAll(storage.entries(3, 6, unlimitedBytes)), plainAll(stored.slice(2, 5)), '[3, 6)');
      t.strictSame(plainAll(storage.entries(8, 9, unlimitedBytes)), plainAll(stored.slice(7)), 'the last entry alone');
      t.strictSame(storage.entries(4, 4, unlimitedBytes), [], 'low = high: nothing');
      t.strictSame(storage.entries(9, 9, unlimitedBytes), [], 'low = high = lastIndex + 1: nothing');
      storage.compact(meta(3, 1, 0), bytes(0, 0));
      t.strictSame(plainAll(storage.entries(4, 9, unlimitedBytes)), plainAll(stored.slice(3)), 'after compaction');
    });

    await t.test('entries(): CompactedError if low ≤ snapshot().index, UnavailableError if high > lastIndex() + 1', async (t) => {
      const storage = await open(t);
      throwsInstance(t, () => storage.entries(0, 1, unlimitedBytes), CompactedError, 'new storage: low 0 is the snapshot index');
      throwsInstance(t, () => storage.entries(1, 2, unlimitedBytes), UnavailableError, 'new storage: nothing is stored');
      fillTen(storage);
      throwsInstance(t, () => storage.entries(1, 12, unlimitedBytes), UnavailableError, 'high = lastIndex + 2');
      throwsInstance(t, () => storage.entries(11, 12, unlimitedBytes), UnavailableError, 'wholly past the end');
      t.equal(storage.entries(1, 11, unlimitedBytes).length, 10, 'high = lastIndex + 1 is allowed');
      storage.compact(meta(5, 2, 1), bytes(1, 0));
      throwsInstance(t, () => storage.entries(5, 7, unlimitedBytes), CompactedError, 'low = snapshot index');
      throwsInstance(t, () => storage.entries(2, 7, unlimitedBytes), CompactedError, 'low below the snapshot index');
      throwsInstance(t, () => storage.entries(5, 5, unlimitedBytes), CompactedError, 'low = high = snapshot index');
      t.strictSame(storage.entries(6, 6, unlimitedBytes), [], 'low = high = firstIndex is allowed');
      throwsInstance(t, () => storage.entries(6, 12, unlimitedBytes), UnavailableError, 'high past the end after compaction');
    });

    await t.test('entries(): stops before the total data size passes maxBytes', async (t) => {
      const storage = await open(t);
      storage.append(run(1, 5, 1, 10)); // five entries of 10 bytes
      const indexes = (entries: readonly Entry[]): number[] => entries.map((entry) => entry.index);
      t.strictSame(indexes(storage.entries(1, 6, 25)), [1, 2], '25 bytes: two entries (20), not three (30)');
      t.strictSame(indexes(storage.entries(1, 6, 30)), [1, 2, 3], 'a total exactly at maxBytes does not pass it');
      t.strictSame(indexes(storage.entries(1, 6, 29)), [1, 2], 'one byte less: the third entry passes it');
      t.strictSame(indexes(storage.entries(2, 6, 50)), [2, 3, 4, 5], 'the range ends first');
      t.strictSame(indexes(storage.entries(3, 5, 25)), [3, 4], 'counted from low');
    });

    await t.test('entries(): stops at the first entry that passes maxBytes, even if later ones would fit', async (t) => {
      const storage = await open(t);
      storage.append([normal(1, 1, 10), normal(2, 1, 30), normal(3, 1, 1), normal(4, 1, 1)]);
      t.strictSame(
        storage.entries(1, 5, 15).map((entry) => entry.index),
        [1],
        'the result is a prefix of [low, high): nothing is skipped',
      );
    });

    await t.test('entries(): always at least one entry when low < high', async (t) => {
      const storage = await open(t);
      storage.append(run(1, 3, 1, 10));
      t.strictSame(plainAll(storage.entries(1, 4, 0)), plainAll([normal(1, 1, 10)]), 'maxBytes 0');
      t.strictSame(plainAll(storage.entries(2, 4, 5)), plainAll([normal(2, 1, 10)]), 'the first entry alone passes maxBytes');
    });

    await t.test('entries(): the data size counts every entry by entrySizeBytes (config entries too)', async (t) => {
      const storage = await open(t);
      const config = configEntry(2, 1, ['a', 'b', 'c']);
      storage.append([normal(1, 1, 0), config, normal(3, 1, 0), normal(4, 1, 0)]);
      const configBytes = entrySizeBytes(config);
      t.ok(configBytes > 0, 'a config entry has a size');
      t.equal(storage.entries(1, 5, configBytes - 1).length, 1, 'the config entry passes a smaller limit');
      t.equal(storage.entries(1, 5, configBytes).length, 4, 'empty normal entries add nothing');
      t.equal(storage.entries(3, 5, 0).length, 2, 'entries of zero bytes never pass maxBytes 0');
    });

    await t.test('append(): stores entries; they read back as given', async (t) => {
      const storage = await open(t);
      const first = [configEntry(1, 1, ['c', 'a']), ...run(2, 3, 1, 5)];
      storage.append(first);
      const second = run(4, 6, 2, 100);
      storage.append(second);
      t.equal(storage.lastIndex(), 6);
      t.strictSame(plainAll(storage.entries(1, 7, unlimitedBytes)), plainAll([...first, ...second]));
    });

    await t.test('append(): first discards every stored entry at or after entries[0].index', async (t) => {
      const storage = await open(t);
      fillTen(storage);
      storage.append(run(6, 7, 4));
      t.equal(storage.lastIndex(), 7, 'the stored suffix past the new entries is gone too');
      t.strictSame(plainAll(storage.entries(1, 8, unlimitedBytes)), plainAll([...run(1, 4, 1), normal(5, 2), ...run(6, 7, 4)]));
      throwsInstance(t, () => storage.term(8), UnavailableError, 'entry 8 no longer exists');
      storage.append(run(7, 12, 5));
      t.equal(storage.lastIndex(), 12, 'a longer replacement extends the log');
      t.equal(storage.term(7), 5);
      t.equal(storage.term(6), 4, 'entries before entries[0].index are kept');
      storage.append(run(1, 2, 6));
      t.equal(storage.lastIndex(), 2, 'replacing from index 1 discards the whole log');
      t.strictSame(plainAll(storage.entries(1, 3, unlimitedBytes)), plainAll(run(1, 2, 6)));
    });

    await t.test('append(): throws if entries[0].index > lastIndex() + 1', async (t) => {
      const storage = await open(t);
      t.throws(() => storage.append(run(2, 3, 1)), 'new storage: the log must start at 1');
      t.equal(storage.lastIndex(), 0, 'nothing was stored');
      storage.append(run(1, 3, 1));
      const before = observe(storage);
      t.throws(() => storage.append(run(5, 6, 1)), 'a gap after the last index');
      t.strictSame(observe(storage), before, 'the refused append changed nothing');
      storage.append(run(4, 4, 1));
      t.equal(storage.lastIndex(), 4, 'lastIndex + 1 is accepted');
    });

    await t.test('append(): throws if entries[0].index ≤ snapshot().index', async (t) => {
      const storage = await open(t);
      fillTen(storage);
      storage.compact(meta(5, 2, 1), bytes(1, 0));
      const before = observe(storage);
      t.throws(() => storage.append(run(5, 7, 9)), 'at the snapshot index');
      t.throws(() => storage.append(run(2, 7, 9)), 'below the snapshot index');
      t.strictSame(observe(storage), before, 'the refused appends changed nothing');
      storage.append(run(6, 6, 9));
      t.equal(storage.lastIndex(), 6, 'snapshot index + 1 is accepted (and truncates)');
      t.equal(storage.term(6), 9);
    });

    await t.test('writeSnapshotChunk(): with done, the pending snapshot becomes the current one', async (t) => {
      const storage = await open(t);
      storage.append(run(1, 3, 1));
      const data = bytes(10, 5);
      const snapshotMeta = meta(8, 3, data.byteLength);
      storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 0, data: data.subarray(0, 4), done: false });
      t.equal(storage.snapshot().index, 0, 'not current before done');
      t.equal(storage.lastIndex(), 3, 'the log is intact before done');
      t.equal(storage.snapshotData(0, unlimitedBytes).byteLength, 0, 'no data before done');
      storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 4, data: data.subarray(4, 7), done: false });
      t.equal(storage.snapshot().index, 0, 'still not current');
      storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 7, data: data.subarray(7), done: true });
      t.strictSame(plainMeta(storage.snapshot()), plainMeta(snapshotMeta), 'snapshot() is the installed meta');
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(data), 'the chunks in order are the data');
      t.equal(storage.term(8), 3, 'term at the snapshot index');
    });

    await t.test('writeSnapshotChunk(): with done, every log entry is discarded', async (t) => {
      const behind = await open(t);
      behind.append(run(1, 3, 1));
      behind.writeSnapshotChunk({ meta: meta(8, 3, 2), offset: 0, data: bytes(2, 0), done: true });
      t.equal(behind.lastIndex(), 8, 'a snapshot past the log: lastIndex is its index');
      t.equal(behind.firstIndex(), 9);
      throwsInstance(t, () => behind.term(3), CompactedError, 'old entries are gone');
      throwsInstance(t, () => behind.term(9), UnavailableError, 'nothing after the snapshot');

      const ahead = await open(t);
      fillTen(ahead);
      ahead.writeSnapshotChunk({ meta: meta(6, 2, 2), offset: 0, data: bytes(2, 0), done: true });
      t.equal(ahead.lastIndex(), 6, 'entries past the snapshot index are discarded as well');
      t.equal(ahead.firstIndex(), 7);
      t.equal(ahead.term(6), 2);
      throwsInstance(t, () => ahead.term(7), UnavailableError, 'entry 7 is gone');
      throwsInstance(t, () => ahead.entries(6, 7, unlimitedBytes), CompactedError, 'entry 6 is the snapshot');
      t.strictSame(ahead.entries(7, 7, unlimitedBytes), [], 'an empty log');

      ahead.append(run(7, 8, 4));
      t.equal(ahead.lastIndex(), 8, 'the log continues at snapshot index + 1');
      t.throws(() => ahead.append(run(6, 6, 4)), 'and not at the snapshot index');
    });

    await t.test('writeSnapshotChunk(): a single done chunk, and an empty snapshot', async (t) => {
      const storage = await open(t);
      storage.writeSnapshotChunk({ meta: meta(4, 2, 0), offset: 0, data: new Uint8Array(0), done: true });
      t.equal(storage.snapshot().index, 4);
      t.equal(storage.snapshot().sizeBytes, 0);
      t.equal(storage.snapshotData(0, unlimitedBytes).byteLength, 0);
      t.equal(storage.lastIndex(), 4);
    });

    await t.test('writeSnapshotChunk(): a chunk must start where the previous one ended', async (t) => {
      const storage = await open(t);
      storage.append(run(1, 3, 1));
      const data = bytes(9, 3);
      const snapshotMeta = meta(7, 2, data.byteLength);
      t.throws(
        () => storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 3, data: data.subarray(3, 6), done: false }),
        'a first chunk past offset 0 (nothing pending)',
      );
      storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 0, data: data.subarray(0, 3), done: false });
      t.throws(
        () => storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 4, data: data.subarray(4, 6), done: false }),
        'a gap is refused',
      );
      t.throws(
        () => storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 2, data: data.subarray(2, 6), done: false }),
        'an overlap is refused',
      );
      t.throws(
        () => storage.writeSnapshotChunk({ meta: meta(9, 2, 9), offset: 3, data: data.subarray(3, 6), done: false }),
        "a chunk of another snapshot does not continue the pending one",
      );
      t.equal(storage.snapshot().index, 0, 'refused chunks install nothing');
      t.equal(storage.lastIndex(), 3, 'refused chunks leave the log alone');
      storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 3, data: data.subarray(3, 6), done: false });
      storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 6, data: data.subarray(6), done: true });
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(data), 'the pending snapshot survived the refusals');
      t.throws(
        () => storage.writeSnapshotChunk({ meta: snapshotMeta, offset: 9, data: bytes(1, 0), done: true }),
        'after done nothing is pending: a chunk past offset 0 is refused',
      );
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(data), 'the installed snapshot is unchanged');
    });

    await t.test('writeSnapshotChunk(): offset 0 starts a new pending snapshot, dropping any other', async (t) => {
      const storage = await open(t);
      const first = bytes(8, 1);
      const second = bytes(6, 2);
      storage.writeSnapshotChunk({ meta: meta(5, 1, 8), offset: 0, data: first.subarray(0, 4), done: false });
      storage.writeSnapshotChunk({ meta: meta(9, 2, 6), offset: 0, data: second.subarray(0, 3), done: false });
      t.throws(
        () => storage.writeSnapshotChunk({ meta: meta(5, 1, 8), offset: 4, data: first.subarray(4), done: true }),
        'the dropped snapshot cannot be continued',
      );
      storage.writeSnapshotChunk({ meta: meta(9, 2, 6), offset: 3, data: second.subarray(3), done: true });
      t.equal(storage.snapshot().index, 9);
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(second), 'only the new snapshot’s bytes');

      const restarted = await open(t);
      const data = bytes(8, 4);
      const snapshotMeta = meta(5, 1, 8);
      restarted.writeSnapshotChunk({ meta: snapshotMeta, offset: 0, data: data.subarray(0, 4), done: false });
      restarted.writeSnapshotChunk({ meta: snapshotMeta, offset: 0, data: data.subarray(0, 4), done: false });
      restarted.writeSnapshotChunk({ meta: snapshotMeta, offset: 4, data: data.subarray(4), done: true });
      t.equal(hex(restarted.snapshotData(0, unlimitedBytes)), hex(data), 'the same snapshot restarted at 0 is not doubled');
      t.equal(restarted.snapshot().sizeBytes, 8);
    });

    await t.test('compact(): records the snapshot and discards the entries up to and including meta.index', async (t) => {
      const storage = await open(t);
      fillTen(storage);
      const data = bytes(5, 9);
      const snapshotMeta = meta(6, 2, data.byteLength);
      storage.compact(snapshotMeta, data);
      t.strictSame(plainMeta(storage.snapshot()), plainMeta(snapshotMeta), 'snapshot() is the meta');
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(data), 'snapshotData() is the data');
      t.equal(storage.firstIndex(), 7);
      t.equal(storage.lastIndex(), 10, 'later entries stay');
      t.equal(storage.term(6), 2, 'term at the snapshot index');
      throwsInstance(t, () => storage.term(5), CompactedError, 'term below the snapshot index');
      throwsInstance(t, () => storage.entries(6, 8, unlimitedBytes), CompactedError, 'the snapshot index is compacted');
      t.strictSame(plainAll(storage.entries(7, 11, unlimitedBytes)), plainAll([normal(7, 2), ...run(8, 10, 3)]), 'the rest is intact');

      storage.compact(meta(10, 3, 1), bytes(1, 0));
      t.equal(storage.lastIndex(), 10, 'compacting at lastIndex leaves no entries');
      t.equal(storage.firstIndex(), 11);
      t.strictSame(storage.entries(11, 11, unlimitedBytes), []);
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(bytes(1, 0)), 'a later compaction replaces the data');
    });

    await t.test('compact(): throws if meta.index ≤ snapshot().index or meta.index > lastIndex()', async (t) => {
      const storage = await open(t);
      t.throws(() => storage.compact(meta(0, 0, 0), bytes(0, 0)), 'new storage: index 0 is the snapshot index');
      t.throws(() => storage.compact(meta(1, 1, 0), bytes(0, 0)), 'new storage: nothing to compact');
      fillTen(storage);
      t.throws(() => storage.compact(meta(11, 3, 0), bytes(0, 0)), 'past lastIndex');
      storage.compact(meta(5, 2, 1), bytes(1, 1));
      const before = observe(storage);
      t.throws(() => storage.compact(meta(5, 2, 1), bytes(1, 2)), 'at the snapshot index');
      t.throws(() => storage.compact(meta(3, 1, 1), bytes(1, 2)), 'below the snapshot index');
      t.throws(() => storage.compact(meta(11, 3, 1), bytes(1, 2)), 'past lastIndex after a compaction');
      t.strictSame(observe(storage), before, 'the refused compactions changed nothing');
    });

    await t.test('compact(): throws if meta.term is not the term of the entry at meta.index', async (t) => {
      const storage = await open(t);
      fillTen(storage);
      const before = observe(storage);
      t.throws(() => storage.compact(meta(6, 3, 1), bytes(1, 0)), 'a later term');
      t.throws(() => storage.compact(meta(6, 1, 1), bytes(1, 0)), 'an earlier term');
      t.strictSame(observe(storage), before, 'the refused compactions changed nothing');
      storage.compact(meta(6, 2, 1), bytes(1, 0));
      t.equal(storage.snapshot().index, 6, 'the matching term is accepted');
    });

    await t.test('snapshotData(): bytes [offset, offset + maxBytes), fewer at its end', async (t) => {
      const storage = await open(t);
      storage.append(run(1, 2, 1));
      const data = bytes(10, 11);
      storage.compact(meta(2, 1, data.byteLength), data);
      t.equal(hex(storage.snapshotData(0, 4)), hex(data.subarray(0, 4)), '[0, 4)');
      t.equal(hex(storage.snapshotData(4, 4)), hex(data.subarray(4, 8)), '[4, 8)');
      t.equal(hex(storage.snapshotData(8, 4)), hex(data.subarray(8)), '[8, 10): fewer at the end');
      t.equal(storage.snapshotData(10, 4).byteLength, 0, 'at the end: nothing');
      t.equal(storage.snapshotData(3, 0).byteLength, 0, 'maxBytes 0: nothing');
      t.equal(hex(storage.snapshotData(0, unlimitedBytes)), hex(data), 'everything');
      const parts: string[] = [];
      for (let offset = 0; offset < data.byteLength; offset += 3) parts.push(hex(storage.snapshotData(offset, 3)));
      t.equal(parts.join(''), hex(data), 'chunks of 3 bytes reassemble the data');
    });

    await t.test('snapshotData(): serves a snapshot installed from chunks', async (t) => {
      const sender = await open(t);
      fillTen(sender);
      const data = bytes(23, 4);
      sender.compact(meta(8, 3, data.byteLength), data);
      // Transfer the sender's snapshot in 5-byte chunks, as the leader does.
      const receiver = await open(t);
      const chunkSizeBytes = 5;
      for (let offset = 0; ; offset += chunkSizeBytes) {
        const chunk = sender.snapshotData(offset, chunkSizeBytes);
        const done = offset + chunk.byteLength >= sender.snapshot().sizeBytes;
        receiver.writeSnapshotChunk({ meta: sender.snapshot(), offset, data: chunk, done });
        if (done) break;
      }
      t.strictSame(plainMeta(receiver.snapshot()), plainMeta(sender.snapshot()));
      t.equal(hex(receiver.snapshotData(0, unlimitedBytes)), hex(data));
      t.equal(hex(receiver.snapshotData(20, 5)), hex(data.subarray(20)), 'fewer at its end');
    });

    await t.test('bootstrap(): entry 1 (term 1) holds the first configuration and is committed', async (t) => {
      const storage = await open(t);
      bootstrap(storage, ['c', 'a', 'b', 'a']);
      t.equal(storage.lastIndex(), 1);
      t.strictSame(
        plainAll(storage.entries(1, 2, unlimitedBytes)),
        [{ index: 1, term: 1, kind: 'config', change: { type: 'bootstrap' }, config: { voters: ['a', 'b', 'c'], learners: [] } }],
        'voters sorted and without duplicates',
      );
      t.strictSame({ ...storage.hardState() }, { term: 1, vote: null, commit: 1 });
      t.equal(storage.snapshot().index, 0, 'no snapshot');
    });

    await t.test('bootstrap(): founding members given the same voters agree on entry 1', async (t) => {
      const one = await open(t);
      const two = await open(t);
      bootstrap(one, ['n1', 'n2', 'n3']);
      bootstrap(two, ['n3', 'n1', 'n2']);
      t.strictSame(plainAll(two.entries(1, 2, unlimitedBytes)), plainAll(one.entries(1, 2, unlimitedBytes)));
      t.strictSame({ ...two.hardState() }, { ...one.hardState() });
    });

    await t.test('bootstrap(): refuses storage that is not empty, and an empty voter list', async (t) => {
      const twice = await open(t);
      bootstrap(twice, ['a']);
      const before = observe(twice);
      t.throws(() => bootstrap(twice, ['a']), 'bootstrapped already');
      t.strictSame(observe(twice), before, 'unchanged');

      const withEntries = await open(t);
      withEntries.append(run(1, 1, 1));
      t.throws(() => bootstrap(withEntries, ['a']), 'holds entries');

      const withTerm = await open(t);
      withTerm.setHardState({ term: 2, vote: 'b', commit: 0 });
      t.throws(() => bootstrap(withTerm, ['a']), 'holds a term');
      t.equal(withTerm.lastIndex(), 0, 'nothing appended');

      const withSnapshot = await open(t);
      withSnapshot.writeSnapshotChunk({ meta: meta(4, 2, 1), offset: 0, data: bytes(1, 0), done: true });
      t.throws(() => bootstrap(withSnapshot, ['a']), 'holds a snapshot');

      const noVoters = await open(t);
      t.throws(() => bootstrap(noVoters, []), 'no voters');
      t.strictSame({ ...noVoters.hardState() }, { term: 0, vote: null, commit: 0 }, 'left empty');
      t.equal(noVoters.lastIndex(), 0, 'left empty');
    });
  });
}
