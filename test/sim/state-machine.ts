// The simulator's state machine: a key-value map written by `put(key, value)` commands. Each
// command carries a unique write id; a command whose id was already applied is a no-op, so a client
// may retry a write through another node without it taking effect twice (the write's place in the
// log is its first entry). Every replica also keeps a running digest of everything it applied
// (index, term and payload of each entry): two replicas with the same digest at the same applied
// index applied the same sequence, and the digest survives snapshots, so a restored replica is
// compared with the others without replaying anything.

import type { ConfState, Entry, SnapshotMeta } from '../../src/raft/types.js';

export interface PutCommand {
  /** Unique per client write; also its value, so a read's result names the write that made it. */
  readonly writeId: string;
  readonly key: string;
}

export interface StoredValue {
  readonly writeId: string;
  /** The log index at which this write took effect. */
  readonly index: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: PutCommand): Uint8Array {
  return encoder.encode(JSON.stringify({ writeId: command.writeId, key: command.key }));
}

/** The command in a normal entry; null for a leader's empty first entry of its term. */
export function decodeCommand(data: Uint8Array): PutCommand | null {
  if (data.byteLength === 0) return null;
  const parsed = JSON.parse(decoder.decode(data)) as { writeId?: unknown; key?: unknown };
  if (typeof parsed.writeId !== 'string' || typeof parsed.key !== 'string') {
    throw new Error(`not a put command: ${decoder.decode(data)}`);
  }
  return { writeId: parsed.writeId, key: parsed.key };
}

/** An entry's content as text, so that entries compare and print without their index and term. */
export function entryPayload(entry: Entry): string {
  if (entry.kind === 'normal') return decoder.decode(entry.data);
  return `config ${JSON.stringify(entry.change)} ${JSON.stringify(entry.config)}`;
}

/** FNV-1a (32 bits) of the previous digest and one applied entry. */
export function nextDigest(previous: number, index: number, term: number, payload: string): number {
  let hash = 0x811c9dc5 ^ previous;
  const text = `${index}/${term} ${payload}`;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

interface SnapshotContent {
  readonly digest: number;
  readonly values: ReadonlyArray<readonly [key: string, writeId: string, index: number]>;
  readonly appliedWrites: ReadonlyArray<readonly [writeId: string, index: number]>;
}

export class KeyValueMachine {
  appliedIndex: number;
  digest: number;
  /** The configuration as of appliedIndex: what a snapshot taken now must record. */
  config: ConfState;
  private readonly values = new Map<string, StoredValue>();
  /** writeId → index where it took effect: the deduplication table. */
  private readonly appliedWrites = new Map<string, number>();

  private constructor(appliedIndex: number, digest: number, config: ConfState) {
    this.appliedIndex = appliedIndex;
    this.digest = digest;
    this.config = config;
  }

  static empty(config: ConfState): KeyValueMachine {
    return new KeyValueMachine(0, 0, config);
  }

  /** Rebuilds the state a snapshot describes (the snapshot of index 0 is the empty state). */
  static restore(meta: SnapshotMeta, data: Uint8Array): KeyValueMachine {
    if (meta.index === 0) return KeyValueMachine.empty(meta.config);
    const content = JSON.parse(decoder.decode(data)) as SnapshotContent;
    const machine = new KeyValueMachine(meta.index, content.digest, meta.config);
    for (const [key, writeId, index] of content.values) machine.values.set(key, { writeId, index });
    for (const [writeId, index] of content.appliedWrites) machine.appliedWrites.set(writeId, index);
    return machine;
  }

  /** Applies the next committed entry; returns the write id it carries (null for none). */
  apply(entry: Entry): string | null {
    this.appliedIndex = entry.index;
    this.digest = nextDigest(this.digest, entry.index, entry.term, entryPayload(entry));
    if (entry.kind === 'config') {
      this.config = entry.config;
      return null;
    }
    const command = decodeCommand(entry.data);
    if (command === null) return null;
    if (!this.appliedWrites.has(command.writeId)) {
      this.appliedWrites.set(command.writeId, entry.index);
      this.values.set(command.key, { writeId: command.writeId, index: entry.index });
    }
    return command.writeId;
  }

  read(key: string): StoredValue | null {
    return this.values.get(key) ?? null;
  }

  hasApplied(writeId: string): boolean {
    return this.appliedWrites.has(writeId);
  }

  /** The snapshot data of the current state (keys sorted so equal states give equal bytes). */
  snapshot(): Uint8Array {
    const content: SnapshotContent = {
      digest: this.digest,
      values: [...this.values].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, value]) => [key, value.writeId, value.index] as const),
      appliedWrites: [...this.appliedWrites].sort(([a], [b]) => (a < b ? -1 : 1)),
    };
    return encoder.encode(JSON.stringify(content));
  }

  /** The whole state as text, to compare replicas at the end of a run. */
  describe(): string {
    return `${this.appliedIndex} ${this.digest} ${decoder.decode(this.snapshot())}`;
  }
}
