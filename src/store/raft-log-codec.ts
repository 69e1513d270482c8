// How the LMDB Raft log stores its values. Every value is plain msgpack (no msgpackr records, whose
// shared structures would make one value depend on another), so `mdb_dump` and any msgpack tool
// can read a log by hand. An entry is the tuple [term, kind, ...payload] under the key of its index:
//   normal: [term, 0, data]            data as msgpack bin, so it stays binary
//   config: [term, 1, change, config]
// The term and the data size sit at the front in fixed msgpack forms, so `readEntryHeader` answers
// term(index) and the byte budget of entries(low, high, maxBytes) from the raw bytes without
// decoding, or copying, an entry's data: a log of 1 MiB entries is not copied to learn a term.

import { Packr, Unpackr } from 'msgpackr';

import { entrySizeBytes } from '../raft/storage.js';
import type { ConfChange, ConfState, Entry, NodeId } from '../raft/types.js';

const normalKind = 0;
const configKind = 1;

const packr = new Packr({ useRecords: false, int64AsType: 'number' });
// copyBuffers: entry data must not alias the buffer it was decoded from, which is LMDB's reused
// read buffer or a view of the memory map, both only valid until the next read.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', copyBuffers: true });

/** Encodes any plain value (meta records) as msgpack. The result is a fresh copy. */
export function encodeValue(value: unknown): Buffer {
  // msgpackr packs into a buffer it may reuse on the next call; a copy keeps the result stable.
  return Buffer.from(packr.pack(value));
}

/** Decodes msgpack written by encodeValue. Throws on bytes that are not msgpack. */
export function decodeValue(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

export function encodeEntry(entry: Entry): Buffer {
  return entry.kind === 'normal'
    ? encodeValue([entry.term, normalKind, entry.data])
    : encodeValue([entry.term, configKind, entry.change, entry.config]);
}

export class EntryFormatError extends Error {
  override readonly name = 'EntryFormatError';
  readonly code = 'EntryFormat';
}

export interface EntryHeader {
  readonly term: number;
  readonly kind: Entry['kind'];
  /** entrySizeBytes of the entry: the data length of a normal entry, a fixed size for config. */
  readonly sizeBytes: number;
}

const configSizeBytes = entrySizeBytes({
  index: 0,
  term: 0,
  kind: 'config',
  change: { type: 'bootstrap' },
  config: { voters: [], learners: [] },
});

/** Reads term, kind and size of an encoded entry from its first bytes. */
export function readEntryHeader(bytes: Uint8Array): EntryHeader {
  const reader = new HeaderReader(bytes);
  const length = reader.arrayLength();
  const term = reader.unsignedInteger();
  const kind = reader.unsignedInteger();
  if (kind === normalKind && length === 3) {
    return { term, kind: 'normal', sizeBytes: reader.binaryLength() };
  }
  if (kind === configKind && length === 4) return { term, kind: 'config', sizeBytes: configSizeBytes };
  throw new EntryFormatError(`an entry of kind ${kind} with ${length} fields is not one this version writes`);
}

/** Decodes an encoded entry stored under `index`; its data is a copy. */
export function decodeEntry(index: number, bytes: Uint8Array): Entry {
  const value = decodeValue(bytes);
  if (!Array.isArray(value)) throw new EntryFormatError(`entry ${index} is not a msgpack array`);
  const [term, kind, first, second] = value as unknown[];
  if (typeof term !== 'number' || !Number.isSafeInteger(term) || term < 0) {
    throw new EntryFormatError(`entry ${index} has no valid term`);
  }
  if (kind === normalKind && value.length === 3 && first instanceof Uint8Array) {
    return { index, term, kind: 'normal', data: first };
  }
  if (kind === configKind && value.length === 4 && isConfChange(first) && isConfState(second)) {
    return { index, term, kind: 'config', change: first, config: second };
  }
  throw new EntryFormatError(`entry ${index} is neither a normal nor a config entry this version writes`);
}

function isNodeIdList(value: unknown): value is NodeId[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** voters and learners, and where present the members' addresses (whatever else a newer core adds is kept). */
export function isConfState(value: unknown): value is ConfState {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const addresses = record['addresses'];
  const addressesValid =
    addresses === undefined ||
    (typeof addresses === 'object' && addresses !== null && Object.values(addresses).every((address) => typeof address === 'string'));
  return isNodeIdList(record['voters']) && isNodeIdList(record['learners']) && addressesValid;
}

function isConfChange(value: unknown): value is ConfChange {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  switch (record['type']) {
    case 'bootstrap':
      return true;
    case 'addLearner':
    case 'promote':
    case 'remove':
      return typeof record['nodeId'] === 'string';
    default:
      return false;
  }
}

/** Reads the few msgpack forms an entry's header can take (see msgpack's spec, "Formats"). */
class HeaderReader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  arrayLength(): number {
    const tag = this.byte();
    if (tag >= 0x90 && tag <= 0x9f) return tag & 0x0f;
    throw this.unexpected('an array');
  }

  unsignedInteger(): number {
    const tag = this.byte();
    if (tag <= 0x7f) return tag;
    switch (tag) {
      case 0xcc:
        return this.bigEndian(1);
      case 0xcd:
        return this.bigEndian(2);
      case 0xce:
        return this.bigEndian(4);
      case 0xcf: {
        const value = this.bigEndian(8);
        if (!Number.isSafeInteger(value)) throw this.unexpected('a safe integer');
        return value;
      }
      case 0xcb: {
        // msgpackr writes integers past 32 bits as float64.
        this.need(8);
        const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.offset, 8);
        const value = view.getFloat64(0);
        this.offset += 8;
        if (!Number.isSafeInteger(value) || value < 0) throw this.unexpected('a non-negative integer');
        return value;
      }
      default:
        throw this.unexpected('a non-negative integer');
    }
  }

  binaryLength(): number {
    const tag = this.byte();
    switch (tag) {
      case 0xc4:
        return this.bigEndian(1);
      case 0xc5:
        return this.bigEndian(2);
      case 0xc6:
        return this.bigEndian(4);
      default:
        throw this.unexpected('binary data');
    }
  }

  private byte(): number {
    this.need(1);
    return this.bytes[this.offset++] ?? 0;
  }

  private bigEndian(length: number): number {
    this.need(length);
    let value = 0;
    for (let i = 0; i < length; i++) value = value * 256 + (this.bytes[this.offset++] ?? 0);
    return value;
  }

  private need(length: number): void {
    if (this.offset + length > this.bytes.byteLength) {
      throw new EntryFormatError(`an entry ends after ${this.bytes.byteLength} bytes, inside its header`);
    }
  }

  private unexpected(what: string): EntryFormatError {
    return new EntryFormatError(`an entry's header holds something other than ${what} at byte ${this.offset - 1}`);
  }
}
