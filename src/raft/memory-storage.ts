// In-memory adapter of the storage port, used by the simulator and unit tests. It holds exactly
// what a real adapter would have made durable: the simulator's crash keeps this object and drops
// the core, so whatever the driver did not write here is lost.

import { CompactedError, UnavailableError, entrySizeBytes, type RaftStorage } from './storage.js';
import type { ConfState, Entry, HardState, SnapshotChunk, SnapshotMeta } from './types.js';

const emptyConfig: ConfState = { voters: [], learners: [] };

export class MemoryStorage implements RaftStorage {
  private hard: HardState = { term: 0, vote: null, commit: 0 };
  private snap: SnapshotMeta = { index: 0, term: 0, config: emptyConfig, sizeBytes: 0 };
  private snapBytes: Uint8Array = new Uint8Array(0);
  /** log[i] has index snap.index + 1 + i. */
  private log: Entry[] = [];
  private pending: { meta: SnapshotMeta; parts: Uint8Array[]; nextOffset: number } | null = null;

  hardState(): HardState {
    return this.hard;
  }

  snapshot(): SnapshotMeta {
    return this.snap;
  }

  firstIndex(): number {
    return this.snap.index + 1;
  }

  lastIndex(): number {
    return this.snap.index + this.log.length;
  }

  term(index: number): number {
    if (index < this.snap.index) throw new CompactedError(index, this.snap.index);
    if (index === this.snap.index) return this.snap.term;
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return this.at(index).term;
  }

  entries(low: number, high: number, maxBytes: number): Entry[] {
    if (low <= this.snap.index) throw new CompactedError(low, this.snap.index);
    if (high > this.lastIndex() + 1) throw new UnavailableError(high - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let index = low; index < high; index++) {
      const entry = this.at(index);
      bytes += entrySizeBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshotData(offset: number, maxBytes: number): Uint8Array {
    return this.snapBytes.subarray(offset, offset + maxBytes);
  }

  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.snap.index) {
      throw new CompactedError(first.index, this.snap.index);
    }
    if (first.index > this.lastIndex() + 1) {
      throw new Error(`append at ${first.index} leaves a gap after last index ${this.lastIndex()}`);
    }
    entries.forEach((entry, i) => {
      if (entry.index !== first.index + i) throw new Error(`append: entries are not consecutive at ${entry.index}`);
    });
    this.log.length = first.index - this.snap.index - 1;
    this.log.push(...entries);
  }

  setHardState(hardState: HardState): void {
    this.hard = hardState;
  }

  writeSnapshotChunk(chunk: SnapshotChunk): void {
    if (chunk.offset === 0) {
      this.pending = { meta: chunk.meta, parts: [], nextOffset: 0 };
    }
    const pending = this.pending;
    if (pending === null || pending.meta.index !== chunk.meta.index || pending.nextOffset !== chunk.offset) {
      throw new Error(`snapshot chunk at offset ${chunk.offset} of snapshot ${chunk.meta.index} does not continue the pending one`);
    }
    pending.parts.push(chunk.data.slice());
    pending.nextOffset += chunk.data.byteLength;
    if (!chunk.done) return;
    const data = new Uint8Array(pending.nextOffset);
    let offset = 0;
    for (const part of pending.parts) {
      data.set(part, offset);
      offset += part.byteLength;
    }
    this.pending = null;
    this.snap = { ...chunk.meta, sizeBytes: data.byteLength };
    this.snapBytes = data;
    this.log = [];
  }

  compact(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index <= this.snap.index) throw new CompactedError(meta.index, this.snap.index);
    if (meta.index > this.lastIndex()) throw new UnavailableError(meta.index, this.lastIndex());
    if (this.term(meta.index) !== meta.term) {
      throw new Error(`compact: snapshot term ${meta.term} differs from the entry's term at ${meta.index}`);
    }
    this.log = this.log.slice(meta.index - this.snap.index);
    this.snap = { ...meta, sizeBytes: data.byteLength };
    this.snapBytes = data.slice();
  }

  private at(index: number): Entry {
    const entry = this.log[index - this.snap.index - 1];
    if (entry === undefined) throw new UnavailableError(index, this.lastIndex());
    return entry;
  }
}
