// Shared fixtures of the state-machine tests: throwaway state folders and a log builder that
// numbers entries the way Raft would (consecutive indexes, one term), so tests read as sequences
// of commands.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Packr } from 'msgpackr';

import { encodeCommand, type Command, type CommandResult } from '../../src/store/commands.js';
import { StateMachine, type AppliedEntry } from '../../src/store/state-machine.js';
import { StateReader } from '../../src/store/state-reader.js';

/** Small maps: a test process opens many environments and each reserves its address space. */
export const testMapSizeBytes = 2 ** 34;

export function temporaryFolder(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `dfs-${label}-`));
}

export function removeFolder(folder: string): void {
  fs.rmSync(folder, { recursive: true, force: true });
}

/**
 * Without a flush per commit: these tests are about what is applied, not about the disk, and a
 * flush costs milliseconds here. The crash test opens machines as the node does.
 */
export const testMachineOptions = { mapSizeBytes: testMapSizeBytes, syncCommits: false } as const;

export function openMachine(folder: string): StateMachine {
  return StateMachine.open(folder, testMachineOptions);
}

/** Commands without their request id: the log builder numbers them. */
export type CommandInput = Command extends infer C ? (C extends Command ? Omit<C, 'requestId'> : never) : never;

/** Builds consecutive log entries, like a Raft log of one term. */
export class LogBuilder {
  private nextIndex: number;
  readonly entries: AppliedEntry[] = [];

  constructor(firstIndex = 1, private readonly term = 1) {
    this.nextIndex = firstIndex;
  }

  command(input: CommandInput, requestId = `test/${this.nextIndex}`): AppliedEntry {
    return this.raw(encodeCommand({ ...input, requestId } as Command));
  }

  raw(data: Uint8Array | null): AppliedEntry {
    const entry: AppliedEntry = { index: this.nextIndex++, term: this.term, data };
    this.entries.push(entry);
    return entry;
  }
}

/** Applies one command as its own batch and returns its result. */
export function run(machine: StateMachine, log: LogBuilder, input: CommandInput): CommandResult {
  const results = machine.apply([log.command(input)]);
  const result = results[0];
  if (results.length !== 1 || result === undefined) throw new Error(`expected one result, got ${results.length}`);
  return result;
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(data: Uint8Array | null | undefined): string | null {
  return data === null || data === undefined ? null : new TextDecoder().decode(data);
}

/** Deterministic pseudo-random bytes (xorshift32), so failures replay exactly. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil(length / 4) * 4);
  let state = seed >>> 0 || 1;
  for (let offset = 0; offset < out.length; offset += 4) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out.writeUInt32LE(state, offset);
  }
  return out.subarray(0, length);
}

export interface Fixture {
  readonly folder: string;
  readonly machine: StateMachine;
  readonly reader: StateReader;
  readonly log: LogBuilder;
  /** Applies one command and returns its result. */
  run(input: CommandInput): CommandResult;
  close(): Promise<void>;
}

/** A fresh state folder with its writer, a reader of it, and a log; closed and removed by `close`. */
export function openFixture(label: string): Fixture {
  const folder = temporaryFolder(label);
  const machine = openMachine(folder);
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  const log = new LogBuilder();
  return {
    folder,
    machine,
    reader,
    log,
    run: (input) => run(machine, log, input),
    close: async () => {
      await reader.close();
      await machine.close();
      removeFolder(folder);
    },
  };
}

const uncheckedPackr = new Packr({ useRecords: false });

/** Packs fields as a command entry without any check: what a buggy or hostile node could log. */
export function packUnchecked(fields: Record<string, unknown>): Uint8Array {
  return Uint8Array.from(uncheckedPackr.pack(fields));
}
