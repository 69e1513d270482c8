// The Raft log as the core sees it: what storage holds durably, plus the entries (and at most one
// received snapshot) that the core has accepted but the driver has not yet persisted.
//
// Invariants: unstable entries are consecutive from `unstableOffset`; storage entries at or after
// `unstableOffset` are stale (the driver truncates them when it appends the unstable ones); while a
// received snapshot is pending, every stored entry is stale and the log starts after it.

import { CompactedError, UnavailableError, entrySizeBytes, type LogStorage } from './storage.js';
import type { Entry, SnapshotMeta } from './types.js';

export class RaftLog {
  private unstable: Entry[] = [];
  private unstableOffset: number;
  private pendingSnapshot: SnapshotMeta | null = null;
  commitIndex: number;
  appliedIndex: number;

  constructor(readonly storage: LogStorage) {
    this.unstableOffset = storage.lastIndex() + 1;
    this.commitIndex = storage.hardState().commit;
    this.appliedIndex = storage.snapshot().index;
    if (this.commitIndex < this.appliedIndex) this.commitIndex = this.appliedIndex;
  }

  firstIndex(): number {
    return this.pendingSnapshot !== null ? this.pendingSnapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1;
    if (this.pendingSnapshot !== null) return this.pendingSnapshot.index;
    return this.storage.lastIndex();
  }

  /** The last index that is durable (what the leader may count for itself). */
  stableLastIndex(): number {
    if (this.pendingSnapshot !== null) return 0;
    return this.unstable.length > 0 ? this.unstableOffset - 1 : this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term at `index`, or null when it is compacted or beyond the log. */
  term(index: number): number | null {
    if (index >= this.unstableOffset) {
      const entry = this.unstable[index - this.unstableOffset];
      return entry === undefined ? null : entry.term;
    }
    if (this.pendingSnapshot !== null) {
      return index === this.pendingSnapshot.index ? this.pendingSnapshot.term : null;
    }
    if (index < this.storage.snapshot().index || index > this.storage.lastIndex()) return null;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /**
   * Entries in [low, high) up to about maxBytes (at least one). Throws CompactedError when low is
   * at or below the snapshot, UnavailableError when high passes the end.
   */
  entries(low: number, high: number, maxBytes: number): Entry[] {
    if (low >= high) return [];
    if (low < this.firstIndex()) throw new CompactedError(low, this.firstIndex() - 1);
    if (high > this.lastIndex() + 1) throw new UnavailableError(high - 1, this.lastIndex());
    let out: Entry[] = [];
    if (low < this.unstableOffset) {
      out = this.storage.entries(low, Math.min(high, this.unstableOffset), maxBytes);
      if (out.length < Math.min(high, this.unstableOffset) - low) return out;
    }
    let bytes = out.reduce((sum, entry) => sum + entrySizeBytes(entry), 0);
    for (let index = Math.max(low, this.unstableOffset); index < high; index++) {
      const entry = this.unstable[index - this.unstableOffset];
      if (entry === undefined) break;
      bytes += entrySizeBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourLastTerm = this.lastTerm();
    return lastTerm > ourLastTerm || (lastTerm === ourLastTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries that directly follow the last one (the leader's own proposals). */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index !== this.lastIndex() + 1) {
      throw new Error(`log: append at ${first.index} does not follow the last index ${this.lastIndex()}`);
    }
    this.truncateAndAppend(entries);
  }

  /**
   * §5.3: if the log has an entry at prevIndex with prevTerm, deletes any conflicting entries that
   * follow, appends the new ones, and returns the last index now known to match the leader's log.
   * Returns null when the consistency check fails. Returns the first replaced index too, so the
   * caller can undo configurations that were cut off.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): { lastNewIndex: number; truncatedFrom: number | null } | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNewIndex = prevIndex + entries.length;
    for (const entry of entries) {
      const ourTerm = this.term(entry.index);
      if (ourTerm === entry.term) continue;
      if (entry.index <= this.commitIndex) {
        throw new Error(`log: entry ${entry.index} conflicts with the committed log (commit ${this.commitIndex})`);
      }
      const truncatedFrom = ourTerm === null ? null : entry.index;
      this.truncateAndAppend(entries.slice(entry.index - prevIndex - 1));
      return { lastNewIndex, truncatedFrom };
    }
    return { lastNewIndex, truncatedFrom: null };
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index === this.unstableOffset + this.unstable.length) {
      this.unstable.push(...entries);
    } else if (first.index <= this.unstableOffset) {
      this.unstableOffset = first.index;
      this.unstable = [...entries];
    } else {
      this.unstable = [...this.unstable.slice(0, first.index - this.unstableOffset), ...entries];
    }
  }

  commitTo(index: number): boolean {
    if (index <= this.commitIndex) return false;
    if (index > this.lastIndex()) throw new Error(`log: commit ${index} is beyond the last index ${this.lastIndex()}`);
    this.commitIndex = index;
    return true;
  }

  /** The first index of `term`'s run of entries that contains `index`, not below commit + 1. */
  firstIndexOfTermAt(index: number): number {
    const term = this.term(index);
    let first = index;
    while (first - 1 > this.commitIndex && this.term(first - 1) === term) first--;
    return first;
  }

  /** The last index ≤ `atMost` whose term is `term`, or null if the log has none there. */
  lastIndexOfTerm(term: number, atMost: number): number | null {
    for (let index = Math.min(atMost, this.lastIndex()); index >= this.firstIndex() - 1; index--) {
      const found = this.term(index);
      if (found === null || found < term) return null;
      if (found === term) return index;
    }
    return null;
  }

  /** A snapshot received in full from the leader replaces the whole log. */
  restore(meta: SnapshotMeta): void {
    this.pendingSnapshot = meta;
    this.unstable = [];
    this.unstableOffset = meta.index + 1;
    this.commitIndex = Math.max(this.commitIndex, meta.index);
    this.appliedIndex = meta.index;
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable;
  }

  hasPendingSnapshot(): boolean {
    return this.pendingSnapshot !== null;
  }

  /** The driver made entries up to `index` (of `term`) durable. */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset || this.term(index) !== term) return;
    this.unstable = this.unstable.slice(index + 1 - this.unstableOffset);
    this.unstableOffset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.pendingSnapshot?.index === index) this.pendingSnapshot = null;
  }

  /** Committed entries that have not been handed out for applying, up to maxBytes. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.appliedIndex >= this.commitIndex) return [];
    return this.entries(this.appliedIndex + 1, this.commitIndex + 1, maxBytes);
  }
}
