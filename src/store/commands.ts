// The commands the Raft log carries to the state machine, their msgpack encoding, and the checks
// every decoded command passes before it is applied. A log entry may come from another node
// running other code, from a bug, or from a disk that flipped a bit, so decoding never trusts its
// input: anything that is not exactly one of the commands below, within its limits, decodes to a
// rejection with a stable code. The rejection is a pure function of the entry's bytes, so every
// node rejects the same entries the same way and their states stay identical.
//
// Encoding: one msgpack map per entry, { type, requestId, ...fields }; byte fields are msgpack
// bin; a commitFile's chunk hashes travel as one bin of 32-byte hashes back to back (no arrays,
// so no element count to trust). An empty entry is the leader's no-op and carries no command.

import { DfsError, type DfsErrorCode } from '../errors.js';
import { validateKey } from './keys.js';
import { hashBytes, maxChunkBytes, packValue, sha256, unpackValue } from './layout.js';

/** Longest request id, in UTF-16 code units. */
export const maxRequestIdLength = 256;
/** Largest value a single put may carry inline; larger files go through putChunk/commitFile. */
export const maxPutDataBytes = 64 * 1024 * 1024;
/** Most chunks in one file: 64 GiB at 1 MiB chunks, 256 GiB at the 4 MiB maximum. */
export const maxChunksPerFile = 65_536;
/** Largest permission value: the 12 POSIX mode bits (setuid, setgid, sticky, rwx × 3). */
export const maxModeBits = 0o7777;

export type Command =
  /** Writes a whole file whose content is inline (split into 1 MiB chunks on apply). */
  | {
      readonly type: 'put';
      readonly requestId: string;
      readonly key: string;
      readonly data: Uint8Array;
      readonly modeBits: number;
      readonly modifiedMilliseconds: number;
    }
  /** Stores one content chunk, addressed by its sha256 (computed by the applier); no file changes. */
  | { readonly type: 'putChunk'; readonly requestId: string; readonly data: Uint8Array }
  /** Makes a file of stored chunks visible, atomically. */
  | {
      readonly type: 'commitFile';
      readonly requestId: string;
      readonly key: string;
      readonly chunks: readonly Uint8Array[];
      readonly sizeBytes: number;
      readonly modeBits: number;
      readonly modifiedMilliseconds: number;
    }
  /** Removes a file, or an explicit folder that is empty. */
  | { readonly type: 'delete'; readonly requestId: string; readonly key: string }
  /** Removes a folder with everything under it. */
  | { readonly type: 'deleteFolder'; readonly requestId: string; readonly key: string }
  /** Moves a file, or a folder with everything under it. */
  | { readonly type: 'rename'; readonly requestId: string; readonly from: string; readonly to: string }
  /** Creates (or updates) an explicit folder, which exists even when nothing is in it. */
  | {
      readonly type: 'mkdir';
      readonly requestId: string;
      readonly key: string;
      readonly modeBits: number;
      readonly modifiedMilliseconds: number;
    }
  /** Drops chunks no file references that became unreferenced before `beforeIndex`. */
  | { readonly type: 'collectGarbage'; readonly requestId: string; readonly beforeIndex: number };

export type CommandType = Command['type'];

/**
 * The outcome of one applied command. `version` is the index of the entry (the file's new version
 * for writes). `affectedCount`: files written, moved or removed (chunks stored for putChunk, chunks
 * dropped for collectGarbage). `complete` is false only when collectGarbage stopped at its per-entry
 * limit and more garbage is eligible: propose another.
 */
export type CommandResult =
  | {
      readonly requestId: string;
      readonly index: number;
      readonly ok: true;
      readonly version: number;
      readonly affectedCount: number;
      readonly complete: boolean;
    }
  | { readonly requestId: string; readonly index: number; readonly ok: false; readonly code: DfsErrorCode; readonly message: string };

export interface Rejection {
  readonly code: DfsErrorCode;
  readonly message: string;
}

export type DecodedCommand =
  | { readonly ok: true; readonly command: Command }
  /** `requestId` is '' when the entry is too broken to carry one. */
  | { readonly ok: false; readonly requestId: string; readonly code: DfsErrorCode; readonly message: string };

/** The content address of a chunk: what putChunk stores it under and commitFile names it by. */
export function chunkHash(data: Uint8Array): Uint8Array {
  return sha256(data);
}

/** Encodes a command for a log entry. Throws (a programmer error) if it breaks a rule. */
export function encodeCommand(command: Command): Uint8Array {
  const rejection = validateCommand(command);
  if (rejection !== null) throw new DfsError(rejection.code, rejection.message);
  switch (command.type) {
    case 'put':
      return packValue({
        type: command.type,
        requestId: command.requestId,
        key: command.key,
        data: command.data,
        modeBits: command.modeBits,
        modifiedMilliseconds: command.modifiedMilliseconds,
      });
    case 'putChunk':
      return packValue({ type: command.type, requestId: command.requestId, data: command.data });
    case 'commitFile': {
      const chunks = Buffer.allocUnsafe(command.chunks.length * hashBytes);
      command.chunks.forEach((hash, position) => chunks.set(hash, position * hashBytes));
      return packValue({
        type: command.type,
        requestId: command.requestId,
        key: command.key,
        chunks,
        sizeBytes: command.sizeBytes,
        modeBits: command.modeBits,
        modifiedMilliseconds: command.modifiedMilliseconds,
      });
    }
    case 'delete':
    case 'deleteFolder':
      return packValue({ type: command.type, requestId: command.requestId, key: command.key });
    case 'rename':
      return packValue({ type: command.type, requestId: command.requestId, from: command.from, to: command.to });
    case 'mkdir':
      return packValue({
        type: command.type,
        requestId: command.requestId,
        key: command.key,
        modeBits: command.modeBits,
        modifiedMilliseconds: command.modifiedMilliseconds,
      });
    case 'collectGarbage':
      return packValue({ type: command.type, requestId: command.requestId, beforeIndex: command.beforeIndex });
  }
}

/** The fields each command type carries on the wire, besides `type` and `requestId`. */
const wireFields: { readonly [type in CommandType]: readonly string[] } = {
  put: ['key', 'data', 'modeBits', 'modifiedMilliseconds'],
  putChunk: ['data'],
  commitFile: ['key', 'chunks', 'sizeBytes', 'modeBits', 'modifiedMilliseconds'],
  delete: ['key'],
  deleteFolder: ['key'],
  rename: ['from', 'to'],
  mkdir: ['key', 'modeBits', 'modifiedMilliseconds'],
  collectGarbage: ['beforeIndex'],
};

function isCommandType(value: unknown): value is CommandType {
  return typeof value === 'string' && Object.hasOwn(wireFields, value);
}

/** Decodes and checks a log entry's command. Never throws: a bad entry becomes a rejection. */
export function decodeCommand(data: Uint8Array): DecodedCommand {
  const reject = (requestId: string, code: DfsErrorCode, message: string): DecodedCommand => ({ ok: false, requestId, code, message });
  let value: unknown;
  try {
    value = unpackValue(data);
  } catch (error) {
    return reject('', 'InvalidArgument', `malformed command: not msgpack (${error instanceof Error ? error.message : String(error)})`);
  }
  // msgpack maps decode to plain objects; anything else (an array, a Date from an extension) is not a command.
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
    return reject('', 'InvalidArgument', 'malformed command: not a msgpack map');
  }
  const fields = value as Record<string, unknown>;
  const requestId = typeof fields['requestId'] === 'string' && fields['requestId'].length <= maxRequestIdLength ? fields['requestId'] : '';
  const type = fields['type'];
  if (!isCommandType(type)) return reject(requestId, 'InvalidArgument', `malformed command: unknown type ${describe(type)}`);
  const expected = new Set(['type', 'requestId', ...wireFields[type]]);
  for (const name of Object.keys(fields)) {
    if (!expected.has(name)) return reject(requestId, 'InvalidArgument', `malformed ${type} command: unknown field ${JSON.stringify(name)}`);
  }
  for (const name of expected) {
    if (!Object.hasOwn(fields, name)) return reject(requestId, 'InvalidArgument', `malformed ${type} command: missing field ${JSON.stringify(name)}`);
  }
  if (typeof fields['requestId'] !== 'string') return reject('', 'InvalidArgument', `malformed ${type} command: requestId must be a string`);

  const typeProblem = checkFieldTypes(type, fields);
  if (typeProblem !== null) return reject(requestId, 'InvalidArgument', `malformed ${type} command: ${typeProblem}`);
  if (type === 'commitFile') {
    // Checked before the hashes are split out, so a huge list costs nothing.
    const chunkCount = (fields['chunks'] as Uint8Array).byteLength / hashBytes;
    if (chunkCount > maxChunksPerFile) return reject(requestId, 'TooLarge', `a file may have at most ${maxChunksPerFile} chunks (${chunkCount} given)`);
  }
  const command = buildCommand(type, fields);
  const rejection = validateCommand(command);
  if (rejection !== null) return reject(requestId, rejection.code, rejection.message);
  return { ok: true, command };
}

const stringFields = new Set(['key', 'from', 'to']);
const bytesFields = new Set(['data', 'chunks']);
const numberFields = new Set(['modeBits', 'modifiedMilliseconds', 'sizeBytes', 'beforeIndex']);

function checkFieldTypes(type: CommandType, fields: Record<string, unknown>): string | null {
  for (const name of wireFields[type]) {
    const field = fields[name];
    if (stringFields.has(name) && typeof field !== 'string') return `${name} must be a string, not ${describe(field)}`;
    if (bytesFields.has(name) && !(field instanceof Uint8Array)) return `${name} must be bytes, not ${describe(field)}`;
    if (numberFields.has(name) && typeof field !== 'number') return `${name} must be a number, not ${describe(field)}`;
  }
  if (type === 'commitFile') {
    const chunks = fields['chunks'] as Uint8Array;
    if (chunks.byteLength % hashBytes !== 0) return `chunks must be whole ${hashBytes}-byte hashes (${chunks.byteLength} bytes)`;
  }
  return null;
}

/** Builds the typed command from fields whose types checkFieldTypes has confirmed. */
function buildCommand(type: CommandType, fields: Record<string, unknown>): Command {
  const requestId = fields['requestId'] as string;
  const text = (name: string): string => fields[name] as string;
  const number = (name: string): number => fields[name] as number;
  const bytes = (name: string): Uint8Array => fields[name] as Uint8Array;
  switch (type) {
    case 'put':
      return { type, requestId, key: text('key'), data: bytes('data'), modeBits: number('modeBits'), modifiedMilliseconds: number('modifiedMilliseconds') };
    case 'putChunk':
      return { type, requestId, data: bytes('data') };
    case 'commitFile': {
      const packed = bytes('chunks');
      const chunks: Uint8Array[] = [];
      // Views, not copies: the hashes live as long as the entry's bytes. decodeCommand has checked the count.
      for (let offset = 0; offset < packed.byteLength; offset += hashBytes) chunks.push(packed.subarray(offset, offset + hashBytes));
      return { type, requestId, key: text('key'), chunks, sizeBytes: number('sizeBytes'), modeBits: number('modeBits'), modifiedMilliseconds: number('modifiedMilliseconds') };
    }
    case 'delete':
    case 'deleteFolder':
      return { type, requestId, key: text('key') };
    case 'rename':
      return { type, requestId, from: text('from'), to: text('to') };
    case 'mkdir':
      return { type, requestId, key: text('key'), modeBits: number('modeBits'), modifiedMilliseconds: number('modifiedMilliseconds') };
    case 'collectGarbage':
      return { type, requestId, beforeIndex: number('beforeIndex') };
  }
}

/**
 * The rules a command must satisfy whatever the state: valid keys, sizes within limits, integers
 * where integers are meant. Proposers call it to refuse bad input before it reaches the log; the
 * applier calls it (through decodeCommand) on every entry. Null when the command is fine.
 */
export function validateCommand(command: Command): Rejection | null {
  if (typeof command.requestId !== 'string' || command.requestId.length > maxRequestIdLength) {
    return { code: 'InvalidArgument', message: `requestId must be a string of at most ${maxRequestIdLength} characters` };
  }
  switch (command.type) {
    case 'put':
      return (
        checkKey('key', command.key) ??
        checkBytes('data', command.data, 0, maxPutDataBytes) ??
        checkFileMetadata(command.modeBits, command.modifiedMilliseconds)
      );
    case 'putChunk':
      return checkBytes('data', command.data, 1, maxChunkBytes);
    case 'commitFile': {
      const keyProblem = checkKey('key', command.key);
      if (keyProblem !== null) return keyProblem;
      if (!Array.isArray(command.chunks)) return { code: 'InvalidArgument', message: 'chunks must be a list of hashes' };
      if (command.chunks.length > maxChunksPerFile) {
        return { code: 'TooLarge', message: `a file may have at most ${maxChunksPerFile} chunks (${command.chunks.length} given)` };
      }
      for (const hash of command.chunks) {
        if (!(hash instanceof Uint8Array) || hash.byteLength !== hashBytes) {
          return { code: 'InvalidArgument', message: `every chunk hash must be ${hashBytes} bytes (sha256)` };
        }
      }
      if (!isCount(command.sizeBytes)) return { code: 'InvalidArgument', message: `sizeBytes must be a non-negative integer (${describe(command.sizeBytes)})` };
      return checkFileMetadata(command.modeBits, command.modifiedMilliseconds);
    }
    case 'delete':
    case 'deleteFolder':
      return checkKey('key', command.key);
    case 'rename': {
      const problem = checkKey('from', command.from) ?? checkKey('to', command.to);
      if (problem !== null) return problem;
      if (command.from === command.to) return { code: 'InvalidArgument', message: `rename from and to are the same key (${JSON.stringify(command.from)})` };
      if (command.to.startsWith(`${command.from}/`)) {
        return { code: 'InvalidArgument', message: `cannot move ${JSON.stringify(command.from)} into itself (${JSON.stringify(command.to)})` };
      }
      return null;
    }
    case 'mkdir':
      return checkKey('key', command.key) ?? checkFileMetadata(command.modeBits, command.modifiedMilliseconds);
    case 'collectGarbage':
      return isCount(command.beforeIndex) ? null : { code: 'InvalidArgument', message: `beforeIndex must be a non-negative integer (${describe(command.beforeIndex)})` };
    default:
      return { code: 'InvalidArgument', message: `unknown command type ${describe((command as { type?: unknown }).type)}` };
  }
}

function checkKey(field: string, key: string): Rejection | null {
  const problem = validateKey(key);
  return problem === null ? null : { code: 'InvalidKey', message: field === 'key' ? problem : `${field}: ${problem}` };
}

function checkBytes(field: string, data: Uint8Array, minimumBytes: number, maximumBytes: number): Rejection | null {
  if (!(data instanceof Uint8Array)) return { code: 'InvalidArgument', message: `${field} must be bytes` };
  if (data.byteLength > maximumBytes) return { code: 'TooLarge', message: `${field} is ${data.byteLength} bytes, more than the ${maximumBytes}-byte limit` };
  if (data.byteLength < minimumBytes) return { code: 'InvalidArgument', message: `${field} must not be empty` };
  return null;
}

function checkFileMetadata(modeBits: number, modifiedMilliseconds: number): Rejection | null {
  if (!Number.isInteger(modeBits) || modeBits < 0 || modeBits > maxModeBits) {
    return { code: 'InvalidArgument', message: `modeBits must be an integer from 0 to 0o7777 (${describe(modeBits)})` };
  }
  if (!Number.isSafeInteger(modifiedMilliseconds)) {
    return { code: 'InvalidArgument', message: `modifiedMilliseconds must be an integer number of milliseconds (${describe(modifiedMilliseconds)})` };
  }
  return null;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}
