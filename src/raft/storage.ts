// The storage port of the Raft core. The core only reads through `LogStorage`; the driver writes
// what a Ready asks for through `RaftStorage` and then advances the core. Every adapter (memory,
// LMDB) runs the contract suite in test/raft/storage-contract.ts.

import type { ConfState, Entry, HardState, NodeId, SnapshotChunk, SnapshotMeta } from './types.js';

/** Thrown when a request reaches at or below the snapshot index: those entries are gone. */
export class CompactedError extends Error {
  readonly code = 'Compacted';
  constructor(index: number, snapshotIndex: number) {
    super(`index ${index} is compacted (snapshot index ${snapshotIndex})`);
  }
}

/** Thrown when a request reaches past the last stored entry. */
export class UnavailableError extends Error {
  readonly code = 'Unavailable';
  constructor(index: number, lastIndex: number) {
    super(`index ${index} is beyond the last stored index ${lastIndex}`);
  }
}

export interface LogStorage {
  /** The persisted hard state (term 0, no vote, commit 0 on a new node). */
  hardState(): HardState;
  /** The metadata of the current snapshot; index 0 and term 0 when there is none. */
  snapshot(): SnapshotMeta;
  /** snapshot().index + 1: the first index that may hold an entry. */
  firstIndex(): number;
  /** The index of the last stored entry, or snapshot().index when there is none. */
  lastIndex(): number;
  /**
   * The term of the entry at `index`; at `snapshot().index` the snapshot's term.
   * Throws CompactedError if index < snapshot().index, UnavailableError if index > lastIndex().
   */
  term(index: number): number;
  /**
   * Entries in [low, high), stopping before the total data size passes `maxBytes` (but always at
   * least one entry when low < high). Throws CompactedError if low ≤ snapshot().index and
   * UnavailableError if high > lastIndex() + 1.
   */
  entries(low: number, high: number, maxBytes: number): Entry[];
  /** Bytes [offset, offset + maxBytes) of the current snapshot's data (fewer at its end). */
  snapshotData(offset: number, maxBytes: number): Uint8Array;
}

export interface RaftStorage extends LogStorage {
  /**
   * Stores `entries` (consecutive indexes), first discarding every stored entry at or after
   * entries[0].index. Throws if entries[0].index > lastIndex() + 1 or ≤ snapshot().index.
   */
  append(entries: readonly Entry[]): void;
  setHardState(hardState: HardState): void;
  /**
   * Writes a chunk of a snapshot received from the leader. Offset 0 starts a new pending snapshot
   * (dropping any other); a chunk must start where the previous one ended. With `done`, the
   * pending snapshot becomes the current one and every log entry is discarded.
   */
  writeSnapshotChunk(chunk: SnapshotChunk): void;
  /**
   * Records a snapshot the application took of its state at `meta.index` (≤ the applied index)
   * and discards the entries up to and including it. Throws if meta.index ≤ snapshot().index,
   * meta.index > lastIndex(), or meta.term is not term(meta.index).
   */
  compact(meta: SnapshotMeta, data: Uint8Array): void;
}

export function entrySizeBytes(entry: Entry): number {
  return entry.kind === 'normal' ? entry.data.byteLength : 64;
}

/**
 * Writes the first configuration of a new cluster: entry 1 (term 1) holds it and is committed.
 * Every founding member is bootstrapped with the same voters, so their logs agree on entry 1.
 */
export function bootstrap(storage: RaftStorage, voters: readonly NodeId[], addresses?: Readonly<Record<NodeId, string>>): void {
  if (storage.lastIndex() !== 0 || storage.hardState().term !== 0) {
    throw new Error('bootstrap: storage is not empty');
  }
  if (voters.length === 0) throw new Error('bootstrap: at least one voter is needed');
  const sorted = [...new Set(voters)].sort();
  const config: ConfState =
    addresses === undefined
      ? { voters: sorted, learners: [] }
      : { voters: sorted, learners: [], addresses: Object.fromEntries(sorted.map((id) => [id, addresses[id] ?? ''])) };
  storage.append([{ index: 1, term: 1, kind: 'config', change: { type: 'bootstrap' }, config }]);
  storage.setHardState({ term: 1, vote: null, commit: 1 });
}
