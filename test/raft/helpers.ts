// Helpers for the Raft rule tests: they drive RaftNode instances by hand through the public API
// only. A `Member` is one node with its MemoryStorage and a toy state machine (the list of applied
// entry texts); `drain` is the driver's Ready loop (persist, send, apply, advance) and returns what
// came out; `Network` is a small deterministic in-memory network for a handful of members that
// delivers messages in send order until nothing is left, with filters to drop messages.

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { RaftNode } from '../../src/raft/node.js';
import { seededRandom } from '../../src/raft/random.js';
import { bootstrap } from '../../src/raft/storage.js';
import type {
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftOptions,
  Ready,
  ReadState,
  SnapshotChunk,
  SoftState,
} from '../../src/raft/types.js';

export const electionTimeoutTicks = 10;
export const heartbeatIntervalTicks = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(entry: Entry): string {
  return entry.kind === 'normal' ? decoder.decode(entry.data) : `config:${entry.change.type}`;
}

/** A stable per-id seed, so every node draws different (but replayable) election timeouts. */
export function seedFor(id: NodeId, base = 1): number {
  let hash = base;
  for (const char of id) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return hash;
}

export function options(id: NodeId, overrides: Partial<RaftOptions> = {}): RaftOptions {
  return {
    id,
    electionTimeoutTicks,
    heartbeatIntervalTicks,
    maxInflightMessages: 8,
    maxMessageBytes: 64 * 1024,
    snapshotChunkBytes: 16,
    autoPromoteLearners: false,
    random: seededRandom(seedFor(id)),
    ...overrides,
  };
}

/** A normal entry for hand-built logs. */
export function entry(index: number, term: number, data = ''): Entry {
  return { index, term, kind: 'normal', data: bytes(data) };
}

/**
 * A storage that was bootstrapped with `voters` and then holds `entries` after entry 1 and the
 * given hard state: lets a test start from a log situation of the paper's figures.
 */
export function storageWith(voters: readonly NodeId[], entries: readonly Entry[] = [], hardState?: Partial<HardState>): MemoryStorage {
  const storage = new MemoryStorage();
  bootstrap(storage, voters);
  if (entries.length > 0) storage.append(entries);
  if (hardState !== undefined) storage.setHardState({ ...storage.hardState(), ...hardState });
  return storage;
}

/** One message as it left a node, with what that node had made durable when it left. */
export interface Sent {
  readonly message: Message;
  readonly durableHardState: HardState;
  readonly durableLastIndex: number;
}

/** Everything that came out of one or more Ready values. */
export interface Drained {
  readonly readies: Ready[];
  readonly sent: Sent[];
  readonly messages: Message[];
  readonly entries: Entry[];
  readonly hardStates: HardState[];
  readonly softStates: SoftState[];
  readonly committedEntries: Entry[];
  readonly readStates: ReadState[];
  readonly snapshotChunks: SnapshotChunk[];
}

function emptyDrained(): Drained {
  return {
    readies: [],
    sent: [],
    messages: [],
    entries: [],
    hardStates: [],
    softStates: [],
    committedEntries: [],
    readStates: [],
    snapshotChunks: [],
  };
}

function mergeInto(into: Drained, from: Drained): void {
  into.readies.push(...from.readies);
  into.sent.push(...from.sent);
  into.messages.push(...from.messages);
  into.entries.push(...from.entries);
  into.hardStates.push(...from.hardStates);
  into.softStates.push(...from.softStates);
  into.committedEntries.push(...from.committedEntries);
  into.readStates.push(...from.readStates);
  into.snapshotChunks.push(...from.snapshotChunks);
}

/** The toy state machine's snapshot: the applied texts and the config, as JSON bytes. */
interface MachineImage {
  readonly applied: string[];
  readonly config: ConfState;
}

export class Member {
  node: RaftNode;
  /** Texts of the applied non-empty normal entries, in order: the toy state machine. */
  applied: string[] = [];
  appliedIndex: number;
  /** The configuration as of appliedIndex, tracked from applied config entries or the snapshot. */
  config: ConfState;
  /** Everything every drain of this member produced, in order. */
  readonly history: Drained = emptyDrained();

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    readonly options: RaftOptions,
  ) {
    const snapshot = storage.snapshot();
    this.appliedIndex = snapshot.index;
    this.config = snapshot.config;
    if (snapshot.sizeBytes > 0) this.restore();
    this.node = new RaftNode(storage, options);
  }

  /** A crash and restart: the core and the state machine are rebuilt from what storage holds. */
  restart(): void {
    const snapshot = this.storage.snapshot();
    this.applied = [];
    this.appliedIndex = snapshot.index;
    this.config = snapshot.config;
    if (snapshot.sizeBytes > 0) this.restore();
    this.node = new RaftNode(this.storage, this.options);
  }

  /** Compacts the log at the applied index with the state machine's image (DESIGN: compaction). */
  compact(): void {
    const image: MachineImage = { applied: this.applied, config: this.config };
    const data = bytes(JSON.stringify(image));
    this.storage.compact(
      { index: this.appliedIndex, term: this.storage.term(this.appliedIndex), config: this.config, sizeBytes: data.byteLength },
      data,
    );
  }

  private restore(): void {
    const snapshot = this.storage.snapshot();
    const image = JSON.parse(decoder.decode(this.storage.snapshotData(0, snapshot.sizeBytes))) as MachineImage;
    this.applied = [...image.applied];
    this.appliedIndex = snapshot.index;
    this.config = snapshot.config;
  }

  /** Applies one committed entry; a gap or a repeat is a core bug, so it throws. */
  apply(committed: Entry): void {
    if (committed.index !== this.appliedIndex + 1) {
      throw new Error(`${this.id}: committed entry ${committed.index} does not follow applied index ${this.appliedIndex}`);
    }
    this.appliedIndex = committed.index;
    if (committed.kind === 'config') {
      this.config = committed.config;
    } else if (committed.data.byteLength > 0) {
      this.applied.push(decoder.decode(committed.data));
    }
  }

  /** Snapshot installed from the leader: the state machine is replaced by the snapshot's image. */
  installed(): void {
    this.restore();
  }
}

export function member(id: NodeId, voters: readonly NodeId[] | null, overrides: Partial<RaftOptions> = {}): Member {
  const storage = new MemoryStorage();
  if (voters !== null) bootstrap(storage, voters);
  return new Member(id, storage, options(id, overrides));
}

/**
 * The driver's Ready loop (core-semantics.md): persist the snapshot chunk, entries and hard state;
 * send (collect) the messages; install a finished snapshot; apply committed entries; collect read
 * states; advance. Repeats until the node has nothing ready.
 */
export function drain(target: Member, maxReadies = 1000): Drained {
  const out = emptyDrained();
  let count = 0;
  while (target.node.hasReady()) {
    if (++count > maxReadies) throw new Error(`${target.id}: the Ready loop does not settle`);
    const ready = target.node.ready();
    out.readies.push(ready);
    if (ready.snapshotChunk !== null) {
      target.storage.writeSnapshotChunk(ready.snapshotChunk);
      out.snapshotChunks.push(ready.snapshotChunk);
    }
    if (ready.entries.length > 0) {
      target.storage.append(ready.entries);
      out.entries.push(...ready.entries);
    }
    if (ready.hardState !== null) {
      target.storage.setHardState(ready.hardState);
      out.hardStates.push(ready.hardState);
    }
    if (ready.softState !== null) out.softStates.push(ready.softState);
    const durableHardState = target.storage.hardState();
    const durableLastIndex = target.storage.lastIndex();
    for (const message of ready.messages) {
      checkDurableBeforeSend(target, message, durableHardState, durableLastIndex);
      out.sent.push({ message, durableHardState, durableLastIndex });
      out.messages.push(message);
    }
    for (const committed of ready.committedEntries) checkCommittedIsDurable(target, committed);
    if (ready.snapshotChunk?.done === true) target.installed();
    for (const committed of ready.committedEntries) target.apply(committed);
    out.committedEntries.push(...ready.committedEntries);
    out.readStates.push(...ready.readStates);
    target.node.advance(ready);
  }
  mergeInto(target.history, out);
  return out;
}

/**
 * "Persist before you send" (DESIGN.md, Figure 2 "Updated on stable storage before responding to
 * RPCs"), checked on every message of every test: a granted vote, a vote request and a successful
 * AppendEntries reply may only claim what storage already holds. A violation is a core bug.
 */
function checkDurableBeforeSend(target: Member, message: Message, durable: HardState, durableLastIndex: number): void {
  const fail = (what: string) => {
    throw new Error(`${target.id}: ${message.type} to ${message.to} sent before ${what} was durable (durable ${JSON.stringify(durable)}, last index ${durableLastIndex})`);
  };
  if (message.type === 'requestVoteResponse' && message.granted && (durable.term !== message.term || durable.vote !== message.to)) {
    fail(`the vote for ${message.to} in term ${message.term}`);
  }
  if (message.type === 'requestVote' && (durable.term !== message.term || durable.vote !== target.id)) {
    fail(`the self-vote in term ${message.term}`);
  }
  if (message.type === 'appendEntriesResponse' && message.success && message.matchIndex > durableLastIndex) {
    fail(`entry ${message.matchIndex}`);
  }
}

/** An entry handed out for applying must be the durable one at its index. */
function checkCommittedIsDurable(target: Member, committed: Entry): void {
  let term: number | null = null;
  try {
    term = target.storage.term(committed.index);
  } catch {
    term = null;
  }
  if (term !== committed.term) {
    throw new Error(`${target.id}: committed entry ${committed.index} (term ${committed.term}) is not the durable one (term ${term})`);
  }
}

/** Messages of one type, narrowed. */
export function ofType<T extends Message['type']>(messages: readonly Message[], type: T): Array<Extract<Message, { type: T }>> {
  return messages.filter((message): message is Extract<Message, { type: T }> => message.type === type);
}

/** A copy as the wire would make it: the receiver never shares objects with the sender. */
export function wire(message: Message): Message {
  return structuredClone(message);
}

export type Filter = (message: Message) => boolean;
/** Rewrites a message in flight: returns the message to deliver, or null to drop it. */
export type Rewrite = (message: Message) => Message | null;

export interface Delivery {
  readonly message: Message;
  readonly dropped: boolean;
}

/**
 * A deterministic network of members. `settle()` drains every member (in id order) and delivers
 * the collected messages in send order, until no member has anything ready and no message is in
 * flight. A message is dropped when any filter returns true for it or its target is unknown.
 */
export class Network {
  readonly members = new Map<NodeId, Member>();
  /** Every message handed to the network, in order, and whether it was dropped. */
  readonly log: Delivery[] = [];
  private readonly rewrites = new Set<Rewrite>();

  constructor(ids: readonly NodeId[], overrides: Partial<RaftOptions> = {}) {
    for (const id of ids) this.members.set(id, member(id, ids, overrides));
  }

  /** A network over members built elsewhere (hand-made storages). */
  static of(members: readonly Member[]): Network {
    const network = new Network([]);
    for (const each of members) network.members.set(each.id, each);
    return network;
  }

  get(id: NodeId): Member {
    const found = this.members.get(id);
    if (found === undefined) throw new Error(`no member ${id}`);
    return found;
  }

  node(id: NodeId): RaftNode {
    return this.get(id).node;
  }

  /** Adds a member with empty storage (no bootstrap): a server that joins later. */
  add(id: NodeId, overrides: Partial<RaftOptions> = {}): Member {
    const joined = member(id, null, overrides);
    this.members.set(id, joined);
    return joined;
  }

  /** Drops every message for which `filter` is true until the returned function is called. */
  addFilter(filter: Filter): () => void {
    return this.addRewrite((message) => (filter(message) ? null : message));
  }

  /** Rewrites (or drops, by returning null) messages in flight until the returned function is called. */
  addRewrite(rewrite: Rewrite): () => void {
    this.rewrites.add(rewrite);
    return () => this.rewrites.delete(rewrite);
  }

  isolate(id: NodeId): () => void {
    return this.addFilter((message) => message.from === id || message.to === id);
  }

  /** Cuts the link between a and b in both directions. */
  cut(a: NodeId, b: NodeId): () => void {
    return this.addFilter((message) => (message.from === a && message.to === b) || (message.from === b && message.to === a));
  }

  heal(): void {
    this.rewrites.clear();
  }

  /** Index → term of every entry any member applied: State Machine Safety across the network. */
  private readonly appliedTerms = new Map<number, number>();
  /** Term → the member that led it: Election Safety across the network. */
  private readonly leaderOfTerm = new Map<number, NodeId>();

  /** Drains every member once; returns the messages they sent. */
  flush(): Message[] {
    const out: Message[] = [];
    for (const id of [...this.members.keys()].sort()) {
      const drained = drain(this.get(id));
      out.push(...drained.messages);
      this.checkSafety(id, drained);
    }
    return out;
  }

  /**
   * Figure 3's Election Safety ("at most one leader can be elected in a given term") and State
   * Machine Safety ("no other server will ever apply a different log entry for the same index"),
   * checked after every drain of every networked test. A violation is a core bug.
   */
  private checkSafety(id: NodeId, drained: Drained): void {
    for (const committed of drained.committedEntries) {
      const term = this.appliedTerms.get(committed.index);
      if (term === undefined) this.appliedTerms.set(committed.index, committed.term);
      else if (term !== committed.term) {
        throw new Error(`State Machine Safety: ${id} applied entry ${committed.index} of term ${committed.term}, another member applied term ${term}`);
      }
    }
    const status = this.get(id).node.status();
    if (status.role === 'leader') {
      const other = this.leaderOfTerm.get(status.term);
      if (other === undefined) this.leaderOfTerm.set(status.term, id);
      else if (other !== id) throw new Error(`Election Safety: ${id} and ${other} both led term ${status.term}`);
    }
  }

  /** Delivers one message (unless filtered); returns whether it was delivered. */
  deliver(message: Message): boolean {
    const target = this.members.get(message.to);
    let delivered: Message | null = message;
    for (const rewrite of this.rewrites) {
      if (delivered === null) break;
      delivered = rewrite(delivered);
    }
    const dropped = target === undefined || delivered === null;
    this.log.push({ message, dropped });
    if (target !== undefined && delivered !== null) target.node.step(wire(delivered));
    return !dropped;
  }

  /** Messages the network carried (not dropped), optionally of one type, from index `since` of the log. */
  delivered(since = 0): Message[] {
    return this.log.slice(since).filter((each) => !each.dropped).map((each) => each.message);
  }

  /** Runs every Ready loop and delivers until quiet; returns every message sent meanwhile. */
  settle(maxRounds = 10_000): Message[] {
    const sent: Message[] = [];
    for (let round = 0; round < maxRounds; round++) {
      const batch = this.flush();
      if (batch.length === 0) return sent;
      sent.push(...batch);
      for (const message of batch) this.deliver(message);
    }
    throw new Error('the network does not settle');
  }

  /** Ticks the given members (all by default) `count` times, settling after every tick. */
  tick(count = 1, ids: readonly NodeId[] = [...this.members.keys()]): Message[] {
    const sent: Message[] = [];
    for (let i = 0; i < count; i++) {
      for (const id of ids) this.node(id).tick();
      sent.push(...this.settle());
    }
    return sent;
  }

  /** `id` campaigns now and the network settles; returns the messages sent meanwhile. */
  elect(id: NodeId): Message[] {
    this.node(id).campaign();
    return this.settle();
  }

  /** Members that believe they lead, with their terms. */
  leaders(): Array<{ id: NodeId; term: number }> {
    return [...this.members.values()]
      .map((each) => each.node.status())
      .filter((status) => status.role === 'leader')
      .map((status) => ({ id: status.id, term: status.term }));
  }
}

/** Vote traffic: pre-vote and vote requests. */
export function isCampaign(message: Message): boolean {
  return message.type === 'preVote' || message.type === 'requestVote';
}

/** Hand-made peer messages, for tests that play the other servers themselves. */
export const make = {
  preVote(from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number): Message {
    return { type: 'preVote', from, to, term, lastLogIndex, lastLogTerm };
  },
  preVoteResponse(from: NodeId, to: NodeId, term: number, granted: boolean): Message {
    return { type: 'preVoteResponse', from, to, term, granted };
  },
  requestVote(from: NodeId, to: NodeId, term: number, lastLogIndex: number, lastLogTerm: number, transfer = false): Message {
    return { type: 'requestVote', from, to, term, lastLogIndex, lastLogTerm, transfer };
  },
  requestVoteResponse(from: NodeId, to: NodeId, term: number, granted: boolean): Message {
    return { type: 'requestVoteResponse', from, to, term, granted };
  },
  appendEntries(
    from: NodeId,
    to: NodeId,
    term: number,
    prevLogIndex: number,
    prevLogTerm: number,
    entries: readonly Entry[],
    leaderCommit: number,
  ): Message {
    return { type: 'appendEntries', from, to, term, prevLogIndex, prevLogTerm, entries, leaderCommit };
  },
  appendEntriesSuccess(from: NodeId, to: NodeId, term: number, matchIndex: number): Message {
    return { type: 'appendEntriesResponse', from, to, term, success: true, matchIndex, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 };
  },
  heartbeatResponse(from: NodeId, to: NodeId, term: number, readRound = 0): Message {
    return { type: 'heartbeatResponse', from, to, term, readRound };
  },
};
