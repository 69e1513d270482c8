// The state snapshot file: the whole state environment, table by table in key order, as a stream
// of length-prefixed msgpack records, so that it is written and read with bounded memory whatever
// the size of the state, and so that restoring it on another node reproduces the tables byte for
// byte (same digest).
//
//   frame   := u32 BE payload length ‖ msgpack payload (at most maxSnapshotFrameBytes)
//   file    := header frame, one frame per table entry, end frame
//   header  := { format: 'dfs-state-snapshot', formatVersion: 1, index, term, tables: [names] }
//   entry   := [tableNumber, key (bin), value (bin)]     (tableNumber indexes header.tables)
//   end     := { end: true, entryCount, sha256 }          (sha256 of every byte before this frame)
//
// The checksum is verified before the restoring transaction commits, so a truncated or damaged
// file leaves the state as it was.

import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';

import { DfsError } from '../errors.js';
import { maxChunkBytes, packValue, unpackValue, type TableName, tableNames } from './layout.js';

export const snapshotFormat = 'dfs-state-snapshot';
export const snapshotFormatVersion = 1;
/** Largest frame: a maximal chunk with its key and framing fits with room to spare. */
export const maxSnapshotFrameBytes = 2 * maxChunkBytes;
/** Bytes gathered before one write to the file (and one read from it). */
const ioBlockBytes = 1024 * 1024;

export interface SnapshotHeader {
  readonly index: number;
  readonly term: number;
}

function frame(payload: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(4 + payload.byteLength);
  framed.writeUInt32BE(payload.byteLength, 0);
  framed.set(payload, 4);
  return framed;
}

/**
 * Writes frames to a file in blocks, hashing as it goes. `finish` appends the end frame, makes
 * the file durable and returns its size and checksum.
 */
export class SnapshotFileWriter {
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private sizeBytes = 0;
  private entryCount = 0;

  private constructor(private readonly handle: fs.promises.FileHandle) {}

  static async create(path: string, header: SnapshotHeader): Promise<SnapshotFileWriter> {
    const handle = await fs.promises.open(path, 'w');
    const writer = new SnapshotFileWriter(handle);
    writer.push(
      frame(packValue({ format: snapshotFormat, formatVersion: snapshotFormatVersion, index: header.index, term: header.term, tables: tableNames })),
    );
    return writer;
  }

  /** Adds one table entry; resolves once it is buffered (waiting for the disk every ioBlockBytes). */
  async entry(table: TableName, key: Uint8Array, value: Uint8Array): Promise<void> {
    this.entryCount++;
    this.push(frame(packValue([tableNames.indexOf(table), key, value])));
    if (this.pendingBytes >= ioBlockBytes) await this.flush();
  }

  async finish(): Promise<{ sizeBytes: number; sha256: string }> {
    await this.flush();
    const sha256 = this.hash.digest('hex');
    const end = frame(packValue({ end: true, entryCount: this.entryCount, sha256 }));
    await this.handle.write(end);
    this.sizeBytes += end.length;
    await this.handle.sync();
    await this.handle.close();
    return { sizeBytes: this.sizeBytes, sha256 };
  }

  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }

  private push(framed: Buffer): void {
    this.hash.update(framed);
    this.pending.push(framed);
    this.pendingBytes += framed.length;
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const block = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.handle.write(block);
    this.sizeBytes += block.length;
  }
}

export type SnapshotRecord =
  | { readonly kind: 'entry'; readonly table: TableName; readonly key: Buffer; readonly value: Buffer }
  | { readonly kind: 'end'; readonly entryCount: number; readonly sizeBytes: number };

/**
 * Reads a snapshot file synchronously (the restore runs inside one synchronous LMDB write
 * transaction), a block at a time. Every problem is a DfsError('InvalidArgument') naming it.
 */
export class SnapshotFileReader {
  private readonly hash: Hash = createHash('sha256');
  private block = Buffer.allocUnsafe(ioBlockBytes);
  /** block[blockStart, blockEnd) holds file bytes read but not yet consumed. */
  private blockStart = 0;
  private blockEnd = 0;
  /** Where the next read from the file starts. */
  private fileOffset = 0;
  private consumedBytes = 0;
  private entryCount = 0;
  private ended = false;
  readonly header: SnapshotHeader;

  private constructor(
    private readonly fd: number,
    private readonly path: string,
  ) {
    const payload = this.nextPayload();
    if (payload === null) throw this.problem('the file is empty or truncated');
    this.hashFrame(payload);
    const value = unpack(payload, 'header', this);
    const fields = value as { format?: unknown; formatVersion?: unknown; index?: unknown; term?: unknown; tables?: unknown };
    if (typeof value !== 'object' || value === null || fields.format !== snapshotFormat) throw this.problem('it is not a dfs state snapshot');
    if (fields.formatVersion !== snapshotFormatVersion) throw this.problem(`unsupported snapshot format version ${String(fields.formatVersion)}`);
    if (!isCount(fields.index) || !isCount(fields.term)) throw this.problem('the header has no valid index and term');
    if (!Array.isArray(fields.tables) || fields.tables.join(',') !== tableNames.join(',')) {
      throw this.problem('its tables do not match this version of dfs');
    }
    this.header = { index: fields.index, term: fields.term };
  }

  static open(path: string): SnapshotFileReader {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (error) {
      throw new DfsError('InvalidArgument', `cannot open the snapshot ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      return new SnapshotFileReader(fd, path);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /**
   * The next record. An entry's key and value are views valid until the next call. The end
   * record is returned only once its count and checksum match and nothing follows it.
   */
  next(): SnapshotRecord {
    if (this.ended) throw this.problem('read past the end record');
    const payload = this.nextPayload();
    if (payload === null) throw this.problem('the file ends without an end record (truncated?)');
    const value = unpack(payload, 'record', this);
    if (Array.isArray(value)) {
      this.hashFrame(payload);
      const [tableNumber, key, data] = value as unknown[];
      const table = typeof tableNumber === 'number' ? tableNames[tableNumber] : undefined;
      if (value.length !== 3 || table === undefined || !(key instanceof Uint8Array) || !(data instanceof Uint8Array) || key.byteLength === 0) {
        throw this.problem(`malformed entry record ${this.entryCount + 1}`);
      }
      this.entryCount++;
      return { kind: 'entry', table, key: asBuffer(key), value: asBuffer(data) };
    }
    const end = value as { end?: unknown; entryCount?: unknown; sha256?: unknown };
    if (typeof value !== 'object' || value === null || end.end !== true) throw this.problem('malformed record');
    if (end.entryCount !== this.entryCount) throw this.problem(`the end record counts ${String(end.entryCount)} entries, the file holds ${this.entryCount}`);
    if (end.sha256 !== this.hash.digest('hex')) throw this.problem('its checksum does not match its content (damaged?)');
    if (!this.atEndOfFile()) throw this.problem('bytes follow the end record');
    this.ended = true;
    return { kind: 'end', entryCount: this.entryCount, sizeBytes: this.consumedBytes };
  }

  problem(message: string): DfsError {
    return new DfsError('InvalidArgument', `snapshot ${this.path}: ${message}`);
  }

  private hashFrame(payload: Buffer): void {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(payload.length, 0);
    this.hash.update(length);
    this.hash.update(payload);
  }

  /** The next frame's payload (a view valid until the next call); null if the file ends first. */
  private nextPayload(): Buffer | null {
    const lengthBytes = this.take(4);
    if (lengthBytes === null) return null;
    const length = lengthBytes.readUInt32BE(0);
    if (length > maxSnapshotFrameBytes) throw this.problem(`a frame of ${length} bytes exceeds the ${maxSnapshotFrameBytes}-byte limit`);
    const payload = this.take(length);
    if (payload === null) throw this.problem('the file ends inside a frame (truncated?)');
    this.consumedBytes += 4 + length;
    return payload;
  }

  /** The next `length` bytes of the file, or null if it ends first. */
  private take(length: number): Buffer | null {
    if (this.blockEnd - this.blockStart < length) {
      // Move the unconsumed rest to the front (into a larger block for a frame bigger than the
      // current one; frames are bounded by maxSnapshotFrameBytes) and fill up from the file.
      const rest = this.block.subarray(this.blockStart, this.blockEnd);
      const target = length > this.block.length ? Buffer.allocUnsafe(length) : this.block;
      rest.copy(target, 0);
      this.block = target;
      this.blockEnd = rest.length;
      this.blockStart = 0;
      while (this.blockEnd < length) {
        const read = fs.readSync(this.fd, this.block, this.blockEnd, this.block.length - this.blockEnd, this.fileOffset);
        if (read === 0) return null;
        this.blockEnd += read;
        this.fileOffset += read;
      }
    }
    const bytes = this.block.subarray(this.blockStart, this.blockStart + length);
    this.blockStart += length;
    return bytes;
  }

  private atEndOfFile(): boolean {
    if (this.blockEnd > this.blockStart) return false;
    return fs.readSync(this.fd, Buffer.allocUnsafe(1), 0, 1, this.fileOffset) === 0;
  }
}

function unpack(payload: Buffer, what: string, reader: SnapshotFileReader): unknown {
  try {
    return unpackValue(payload);
  } catch (error) {
    throw reader.problem(`malformed ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
