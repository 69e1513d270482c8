// RaftNode: the pure, deterministic Raft state machine (API skeleton; implementation follows).

import type { LogStorage } from './storage.js';
import type { ConfChange, ConfState, Message, NodeId, RaftOptions, Ready, Result, Role } from './types.js';

export interface PeerProgress {
  readonly match: number;
  readonly next: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly config: ConfState;
  /** Only on the leader: every other member's replication progress. */
  readonly progress: ReadonlyMap<NodeId, PeerProgress> | null;
  readonly transferee: NodeId | null;
}

export class RaftNode {
  constructor(_storage: LogStorage, _options: RaftOptions) {
    throw new Error('not implemented yet');
  }
  /** Advances logical time by one tick (elections, heartbeats, check-quorum, transfer timeout). */
  tick(): void {}
  /** Handles one peer message. Messages for another node or of unknown type are dropped. */
  step(_message: Message): void {}
  /** Leader: appends; follower: forwards to the known leader. Value: the index on the leader, else 0. */
  propose(_data: Uint8Array): Result<number> {
    throw new Error('not implemented yet');
  }
  /** Leader only. One change at a time; takes effect when appended. Value: the entry's index. */
  proposeConfChange(_change: ConfChange): Result<number> {
    throw new Error('not implemented yet');
  }
  /** Starts a linearizable read; its ReadState (same requestId) arrives in a later Ready. */
  readIndex(_requestId: string): Result<null> {
    throw new Error('not implemented yet');
  }
  /** Leader only: hands leadership to `to` once it is caught up (TimeoutNow). */
  transferLeadership(_to: NodeId): Result<null> {
    throw new Error('not implemented yet');
  }
  /** Starts an election now (pre-vote first), as if the election timeout had elapsed. */
  campaign(): void {}
  hasReady(): boolean {
    return false;
  }
  ready(): Ready {
    throw new Error('not implemented yet');
  }
  advance(_ready: Ready): void {}
  status(): RaftStatus {
    throw new Error('not implemented yet');
  }
}
