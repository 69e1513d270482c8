// Deterministic command workloads for the determinism and crash tests: the same seed (or index)
// always gives the same entries, so a test can rebuild exactly what another process applied.

import { chunkHash, encodeCommand, type Command } from '../../src/store/commands.js';
import type { AppliedEntry } from '../../src/store/state-machine.js';
import { packUnchecked, pseudoRandomBytes } from './state-helpers.js';

/** A small seeded generator (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` entries of every kind over a small namespace, so that commands collide: overwrites,
 * renames onto existing names, deletes of missing keys, writes under files, shared content,
 * uploads committed and abandoned, garbage collection, plus no-op and malformed entries.
 */
export function mixedWorkload(count: number, seed: number): AppliedEntry[] {
  const random = seededRandom(seed);
  const pick = <T>(choices: readonly T[]): T => choices[Math.floor(random() * choices.length)] as T;
  // The last name is 4004 bytes: longer than an LMDB key, so its tail lives in the value.
  const names = ['a', 'b', 'c', 'a/x', 'a/y', 'b/x', 'b/x/deep', 'c/d/e', `long/${Array.from({ length: 16 }, () => 'n'.repeat(249)).join('/')}`];
  const contents = [pseudoRandomBytes(10, 1), pseudoRandomBytes(3000, 2), pseudoRandomBytes(1024 * 1024 + 17, 3), new Uint8Array(0)];
  const uploaded: Uint8Array[] = [];
  const entries: AppliedEntry[] = [];
  for (let index = 1; index <= count; index++) {
    const requestId = `workload/${index}`;
    const roll = random();
    let command: Command | null = null;
    let raw: Uint8Array | null = null;
    if (roll < 0.3) {
      command = { type: 'put', requestId, key: pick(names), data: pick(contents), modeBits: 0o644, modifiedMilliseconds: index };
    } else if (roll < 0.42) {
      const data = pseudoRandomBytes(1 + Math.floor(random() * 5000), Math.floor(random() * 6) + 10);
      uploaded.push(data);
      command = { type: 'putChunk', requestId, data };
    } else if (roll < 0.5 && uploaded.length > 0) {
      const chunks = [pick(uploaded), pick(uploaded)];
      command = {
        type: 'commitFile',
        requestId,
        key: pick(names),
        chunks: chunks.map((chunk) => chunkHash(chunk)),
        sizeBytes: chunks.reduce((total, chunk) => total + chunk.byteLength, 0),
        modeBits: 0o600,
        modifiedMilliseconds: index,
      };
    } else if (roll < 0.6) {
      command = { type: 'delete', requestId, key: pick(names) };
    } else if (roll < 0.65) {
      command = { type: 'deleteFolder', requestId, key: pick(['a', 'b', 'c', 'long']) };
    } else if (roll < 0.75) {
      const from = pick(names);
      const to = pick(names);
      command = from === to || to.startsWith(`${from}/`) ? null : { type: 'rename', requestId, from, to };
    } else if (roll < 0.82) {
      command = { type: 'mkdir', requestId, key: pick(['a', 'empty', 'c/d', 'b/x/deep', 'z/z']), modeBits: 0o755, modifiedMilliseconds: index };
    } else if (roll < 0.86) {
      command = { type: 'collectGarbage', requestId, beforeIndex: Math.max(0, index - 1 - Math.floor(random() * 20)) };
    } else if (roll < 0.93) {
      raw = null; // a no-op entry (a new leader's first entry, a configuration change)
    } else {
      raw = pick([Uint8Array.from([0xc1]), packUnchecked({ type: 'put', requestId, key: '..', data: new Uint8Array(1), modeBits: 0, modifiedMilliseconds: 0 })]);
    }
    entries.push({ index, term: 1 + Math.floor(index / 50), data: command === null ? raw : encodeCommand(command) });
  }
  return entries;
}

/** The crash test's log: entry `index` alone decides its command, so any process can rebuild it. */
export function crashWorkloadEntry(index: number): AppliedEntry {
  const requestId = `crash/${index}`;
  let command: Command;
  if (index % 7 === 0) {
    command = { type: 'delete', requestId, key: `k/${index - 3}` };
  } else {
    // Every 25th value spans two chunks, so a file's visibility depends on several tables.
    const size = index % 25 === 0 ? 1024 * 1024 + 100 : 64 + (index % 100);
    command = { type: 'put', requestId, key: `k/${index}`, data: contentFor(index, size), modeBits: 0o644, modifiedMilliseconds: index };
  }
  return { index, term: 1, data: encodeCommand(command) };
}

/** The content written at `index`: its first bytes name the index, so a reader can check a file. */
export function contentFor(index: number, size: number): Uint8Array {
  const data = pseudoRandomBytes(size, index);
  data.write(`value ${index};`, 0, 'latin1');
  return data;
}
