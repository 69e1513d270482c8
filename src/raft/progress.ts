// The leader's view of one follower's replication (etcd's Progress): how far its log matches,
// what to send next, and the flow-control state that bounds what is in flight.
//
// probe:     the follower's log position is unknown; one AppendEntries at a time, paused until a
//            reply or a heartbeat response arrives.
// replicate: the position is known; AppendEntries are pipelined optimistically, at most
//            maxInflightMessages of them unanswered.
// snapshot:  the follower needs entries that are compacted; snapshot chunks go one at a time.

import type { NodeId } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probe: an AppendEntries is out and unanswered. */
  probeSent = false;
  /** replicate: the last index of each unanswered AppendEntries, ascending. */
  readonly inflight: number[] = [];
  /** Heard from during the current check-quorum period. */
  recentActive = false;
  /** The tick at which match last advanced (or replication (re)started): detects lost messages. */
  lastProgressTick: number;
  /** snapshot: which snapshot is being sent, the offset of the chunk in flight, when it was sent. */
  snapshot: { index: number; offset: number; sentTick: number } | null = null;

  constructor(
    readonly id: NodeId,
    next: number,
    nowTicks: number,
  ) {
    this.next = next;
    this.lastProgressTick = nowTicks;
  }

  becomeProbe(next: number): void {
    this.state = 'probe';
    this.next = Math.max(next, this.match + 1);
    this.probeSent = false;
    this.inflight.length = 0;
    this.snapshot = null;
  }

  becomeReplicate(nowTicks: number): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.inflight.length = 0;
    this.snapshot = null;
    this.lastProgressTick = nowTicks;
  }

  becomeSnapshot(snapshotIndex: number, nowTicks: number): void {
    this.state = 'snapshot';
    this.inflight.length = 0;
    this.snapshot = { index: snapshotIndex, offset: 0, sentTick: nowTicks };
  }

  /** Records a successful reply; false when it was stale (nothing new). */
  maybeUpdate(matchIndex: number, nowTicks: number): boolean {
    let updated = false;
    if (matchIndex > this.match) {
      this.match = matchIndex;
      this.lastProgressTick = nowTicks;
      updated = true;
    }
    this.next = Math.max(this.next, matchIndex + 1);
    while (this.inflight.length > 0 && (this.inflight[0] ?? 0) <= matchIndex) this.inflight.shift();
    return updated;
  }

  /** Whether another AppendEntries may be sent now. */
  canSend(maxInflightMessages: number): boolean {
    switch (this.state) {
      case 'probe':
        return !this.probeSent;
      case 'replicate':
        return this.inflight.length < maxInflightMessages;
      case 'snapshot':
        return false;
    }
  }
}
