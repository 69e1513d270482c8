// The LMDB layout of the state environment (<data>/state/), shared by its one writer
// (StateMachine, in the store worker) and its readers (StateReader, in the gRPC worker and the FUSE
// process). Everything here is a pure function of bytes so that every node, and a node restored
// from a snapshot, holds byte-identical tables: values are fixed binary records or plain msgpack
// (no msgpackr records, whose shared structures depend on write history), keys are binary and
// compared bytewise.
//
// Tables (all keyEncoding 'binary', encoding 'binary'):
//
//   meta             'format' → 'dfs-state 1'; 'applied' → msgpack { index, term };
//                    'fileBytes' → u64 sum of the files' sizes (see "File bytes" below)
//   files   (dup)    path table: UTF-8 key → FileRecord (49 bytes)
//   folders (dup)    path table: UTF-8 key + '/' → FolderRecord (25 bytes); explicit folders only
//   fileChunks       u64 contentIndex ‖ u64 endOffset → sha256 of the chunk ending there
//   chunks           sha256 → the chunk's bytes (stored once however many files use it)
//   chunkReferences  sha256 → u64 referenceCount ‖ u64 orphanedIndex (0 while referenced) ‖ u64 size
//   orphanChunks     u64 orphanedIndex ‖ sha256 → '' (unreferenced chunks, oldest first)
//
// Change log tables (this node's own history, for Watch; see "Change log" below):
//
//   changes          u64 version ‖ u32 sequence → change record (see encodeChange)
//   changeLog        'start' → u64 oldest retained version; 'count' → u64 changes retained
//
// Path tables. LMDB keys are at most 4026 bytes (lmdb-js with 8 KiB pages), but a key may be 4096
// bytes and a folder entry 4097. A path table is a dupSort database whose LMDB key is the path's
// first `pathHeadBytes` bytes and whose value is the rest of the path (the tail, almost always
// empty), a 0 byte, then the record. No key contains NUL, so ordering by (head, value) is exactly
// bytewise ordering of whole paths, which every range scan and listing relies on. A path shorter
// than `pathHeadBytes` is alone in its dup group, so its lookup is one plain get.
//
// File content. A file's content is the list of its chunks, stored under the index of the entry
// that wrote it (`contentIndex`, unique forever: one entry writes at most one file's content), so a
// rename moves only the small file record. The chunk list is keyed by each chunk's end offset so
// that a read at any offset is one seek. Chunks are content-addressed and immutable: a reader that
// has found a chunk's hash reads correct bytes for as long as the chunk exists.
//
// File bytes. The sum of the sizes of every file (logical bytes: content shared by two files counts
// twice), kept by the writer in the transaction that changes the files, so a reader gets it in
// constant time. It is a pure function of the files table, so it is replicated state like the
// applied index: in snapshots and digests, the same on every node. It was added without changing
// the format marker: the writer computes it once by a scan when it opens a folder (or restores a
// snapshot) without it.
//
// Change log. The writer records, in the transaction that applies an entry, the key-level changes
// the entry made (its version is the entry's index; the sequence orders the changes of one entry)
// and drops the oldest versions past a retention limit. `start` says from which version on the log
// is complete. The change tables are not part of the replicated state: they are left out of
// snapshots and digests (a node restored from a snapshot starts a fresh log at the snapshot's index
// and would otherwise differ from its peers). They were added without changing the format marker:
// the writer creates them in an older folder on open, with an empty log starting after the
// applied index; an older dfs refuses the folder afterwards (it sees unknown tables), which is the
// safe direction.

import { createHash, type Hash } from 'node:crypto';
import * as path from 'node:path';

import type { Database, RootDatabase, RootDatabaseOptions } from 'lmdb';
import { Packr, Unpackr } from 'msgpackr';

import { DfsError } from '../errors.js';
import { checkDataFileHeader } from './lmdb-file.js';

export type BinaryDatabase = Database<Buffer, Buffer>;

/** Chunk size used when an inline put is split on apply. */
export const chunkSizeBytes = 1024 * 1024;
/** Largest chunk a putChunk may carry. */
export const maxChunkBytes = 4 * 1024 * 1024;
export const hashBytes = 32;
/** Bytes of a path stored in the LMDB key of a path table; the rest goes in the value. */
export const pathHeadBytes = 4000;
/** lmdb-js allows keys of up to 4026 bytes only when the page size is set to 8 KiB or more. */
export const pageSizeBytes = 8192;
/** Address space reserved for the map (not disk space: the file grows as data is written). */
export const defaultMapSizeBytes = 2 ** 40;
export const maxReaders = 1024;
export const formatMarker = 'dfs-state 1';

export const tableNames = ['meta', 'files', 'folders', 'fileChunks', 'chunks', 'chunkReferences', 'orphanChunks'] as const;
export type TableName = (typeof tableNames)[number];
/** The path tables are dupSort; the others are plain. */
export const dupSortTables: ReadonlySet<TableName> = new Set<TableName>(['files', 'folders']);

export type Tables = { readonly [name in TableName]: BinaryDatabase };

/** Tables of this node's change log: not replicated state (no snapshot, no digest). */
export const changeTableNames = ['changes', 'changeLog'] as const;
export type ChangeTableName = (typeof changeTableNames)[number];
export type ChangeTables = { readonly [name in ChangeTableName]: BinaryDatabase };

export function environmentOptions(mapSizeBytes: number, readOnly: boolean): RootDatabaseOptions {
  return {
    maxDbs: tableNames.length + changeTableNames.length + 2,
    pageSize: pageSizeBytes,
    mapSize: mapSizeBytes,
    maxReaders,
    readOnly,
    // The path is always a folder: lmdb-js would otherwise take a path whose last part has a dot
    // ('node1.state') for a file name.
    noSubdir: false,
    // Values are our own bytes: no msgpack structures or compression dictionaries in the env.
    encoding: 'binary',
    keyEncoding: 'binary',
    compression: false,
  };
}

/**
 * Refuses, with DfsError 'FailedPrecondition' and changing nothing, a data.mdb in `directory`
 * that lmdb-js would crash the process on (garbage, cut short, or empty): the writer and every
 * reader call it before opening the environment. What to do depends on the Raft log beside the
 * state folder (<data>/raft): after a restart the Raft core re-delivers the committed entries
 * after its snapshot index, so an empty state is rebuilt whole only from a log that was never
 * compacted; from a compacted one the store would stop at the first entry it lacks (its applied
 * index 0 is below the log's first entry) and the node would crash until the actors give up.
 */
export function checkStateDataFile(directory: string): void {
  const folder = path.resolve(directory);
  const raftFolder = path.join(path.dirname(folder), 'raft');
  const remedy =
    `The state store is derived from the node's Raft log (normally ${raftFolder}), which is the source of truth. ` +
    `If ${path.join(raftFolder, 'snapshots')} holds no snapshot-*.bin file, the log was never compacted and still holds ` +
    `every entry: move ${folder} away and the node rebuilds the state from the log on its next start. If it holds one, ` +
    `the log no longer has the entries before that snapshot and cannot rebuild the state: restore the data folder from ` +
    `a backup, or move the whole data folder away to start this node empty (with its peers configured it then rejoins ` +
    `as a new member and receives a snapshot from the leader; a node without peers would found a new, empty cluster).`;
  checkDataFileHeader(folder, {
    expected: 'the dfs state store',
    remedy,
    emptyFileProblem: (dataPath) =>
      `${dataPath} is empty (0 bytes): LMDB never finished creating it, or it was emptied. dfs changed nothing (the ` +
      `writer would start the state from nothing in it, and a reader would crash the process on it). ${remedy}`,
  });
}

export function openTables(root: RootDatabase<Buffer, Buffer>): Tables {
  const open = (name: TableName): BinaryDatabase =>
    root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoding: 'binary', dupSort: dupSortTables.has(name), compression: false, cache: false });
  return {
    meta: open('meta'),
    files: open('files'),
    folders: open('folders'),
    fileChunks: open('fileChunks'),
    chunks: open('chunks'),
    chunkReferences: open('chunkReferences'),
    orphanChunks: open('orphanChunks'),
  };
}

/** Opens the change log's tables; the writer creates them when missing (an older folder). */
export function openChangeTables(root: RootDatabase<Buffer, Buffer>): ChangeTables {
  const open = (name: ChangeTableName): BinaryDatabase =>
    root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoding: 'binary', compression: false, cache: false });
  return { changes: open('changes'), changeLog: open('changeLog') };
}

/** The smallest binary key: a scan from here visits every entry (LMDB keys are never empty). */
export const lowestKey = Buffer.alloc(1);

// ------------------------------------------------------------------------------------------ meta

export const formatKey = Buffer.from('format');
export const appliedKey = Buffer.from('applied');
export const fileBytesKey = Buffer.from('fileBytes');

const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export function packValue(value: unknown): Buffer {
  // msgpackr packs into a buffer it reuses: copy so the result stays valid after the next pack.
  return Buffer.from(packr.pack(value));
}

export function unpackValue(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

export interface AppliedPosition {
  readonly index: number;
  readonly term: number;
}

export function encodeApplied(position: AppliedPosition): Buffer {
  return packValue({ index: position.index, term: position.term });
}

export function decodeApplied(bytes: Buffer | undefined): AppliedPosition {
  if (bytes === undefined) return { index: 0, term: 0 };
  const value = unpackValue(bytes) as { index?: unknown; term?: unknown };
  if (typeof value !== 'object' || value === null || !isCount(value.index) || !isCount(value.term)) {
    throw new DfsError('Internal', 'the state store holds a malformed applied index record');
  }
  return { index: value.index, term: value.term };
}

export function encodeFileBytes(total: number): Buffer {
  if (!isCount(total)) throw new Error(`file bytes total ${total} is not a count`);
  const bytes = Buffer.allocUnsafe(8);
  writeUint64(bytes, 0, total);
  return bytes;
}

/** The stored total, or undefined when the folder has none yet (written before it was kept). */
export function decodeFileBytes(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined;
  if (bytes.byteLength !== 8) throw new DfsError('Internal', `the state store holds a malformed file bytes total (${bytes.byteLength} bytes)`);
  return readUint64(bytes, 0);
}

/** Sums the sizes of every file by a scan (time proportional to the number of files). */
export function sumFileBytes(files: BinaryDatabase): number {
  let total = 0;
  for (const { record } of scanPaths(files, lowestKey, false)) total += decodeFileRecord(record).sizeBytes;
  return total;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

// ------------------------------------------------------------------------------------ records

export interface FileRecord {
  readonly sizeBytes: number;
  readonly modeBits: number;
  readonly modifiedMilliseconds: number;
  /** The index of the entry that last changed this file (a write or a rename). */
  readonly version: number;
  /** The index of the entry that wrote the content: the key of its chunk list. */
  readonly contentIndex: number;
  readonly chunkCount: number;
}

const fileRecordFormat = 1;
const fileRecordBytes = 1 + 6 * 8;

export function encodeFileRecord(record: FileRecord): Buffer {
  const bytes = Buffer.allocUnsafe(fileRecordBytes);
  bytes[0] = fileRecordFormat;
  bytes.writeDoubleBE(record.sizeBytes, 1);
  bytes.writeDoubleBE(record.modeBits, 9);
  bytes.writeDoubleBE(record.modifiedMilliseconds, 17);
  bytes.writeDoubleBE(record.version, 25);
  bytes.writeDoubleBE(record.contentIndex, 33);
  bytes.writeDoubleBE(record.chunkCount, 41);
  return bytes;
}

export function decodeFileRecord(bytes: Uint8Array): FileRecord {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.length !== fileRecordBytes || view[0] !== fileRecordFormat) {
    throw new DfsError('Internal', `the state store holds a malformed file record (${view.length} bytes)`);
  }
  return {
    sizeBytes: view.readDoubleBE(1),
    modeBits: view.readDoubleBE(9),
    modifiedMilliseconds: view.readDoubleBE(17),
    version: view.readDoubleBE(25),
    contentIndex: view.readDoubleBE(33),
    chunkCount: view.readDoubleBE(41),
  };
}

export interface FolderRecord {
  readonly modeBits: number;
  readonly modifiedMilliseconds: number;
  readonly version: number;
}

const folderRecordFormat = 1;
const folderRecordBytes = 1 + 3 * 8;

export function encodeFolderRecord(record: FolderRecord): Buffer {
  const bytes = Buffer.allocUnsafe(folderRecordBytes);
  bytes[0] = folderRecordFormat;
  bytes.writeDoubleBE(record.modeBits, 1);
  bytes.writeDoubleBE(record.modifiedMilliseconds, 9);
  bytes.writeDoubleBE(record.version, 17);
  return bytes;
}

export function decodeFolderRecord(bytes: Uint8Array): FolderRecord {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.length !== folderRecordBytes || view[0] !== folderRecordFormat) {
    throw new DfsError('Internal', `the state store holds a malformed folder record (${view.length} bytes)`);
  }
  return { modeBits: view.readDoubleBE(1), modifiedMilliseconds: view.readDoubleBE(9), version: view.readDoubleBE(17) };
}

export interface ChunkReference {
  /** How many places in files use the chunk (a file using it twice counts twice). */
  readonly referenceCount: number;
  /** The index at which the count last dropped to 0 (or the chunk arrived unreferenced); 0 while referenced. */
  readonly orphanedIndex: number;
  /** The chunk's length, so that committing a file need not read its chunks. */
  readonly sizeBytes: number;
}

export function encodeChunkReference(reference: ChunkReference): Buffer {
  const bytes = Buffer.allocUnsafe(24);
  writeUint64(bytes, 0, reference.referenceCount);
  writeUint64(bytes, 8, reference.orphanedIndex);
  writeUint64(bytes, 16, reference.sizeBytes);
  return bytes;
}

export function decodeChunkReference(bytes: Uint8Array): ChunkReference {
  if (bytes.byteLength !== 24) throw new DfsError('Internal', 'the state store holds a malformed chunk reference');
  return { referenceCount: readUint64(bytes, 0), orphanedIndex: readUint64(bytes, 8), sizeBytes: readUint64(bytes, 16) };
}

// --------------------------------------------------------------------------------- binary keys

/** Writes a safe non-negative integer as 8 big-endian bytes (so byte order is numeric order). */
export function writeUint64(bytes: Uint8Array, offset: number, value: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(offset, Math.floor(value / 2 ** 32));
  view.setUint32(offset + 4, value >>> 0);
}

export function readUint64(bytes: Uint8Array, offset: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(offset) * 2 ** 32 + view.getUint32(offset + 4);
}

export function fileChunkKey(contentIndex: number, endOffset: number): Buffer {
  const key = Buffer.allocUnsafe(16);
  writeUint64(key, 0, contentIndex);
  writeUint64(key, 8, endOffset);
  return key;
}

export function orphanKey(orphanedIndex: number, hash: Uint8Array): Buffer {
  const key = Buffer.allocUnsafe(8 + hashBytes);
  writeUint64(key, 0, orphanedIndex);
  key.set(hash, 8);
  return key;
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

// ---------------------------------------------------------------------------------- path tables

const emptyTail = Buffer.alloc(0);

function pathValue(tail: Uint8Array, record: Uint8Array): Buffer {
  const value = Buffer.allocUnsafe(tail.byteLength + 1 + record.byteLength);
  value.set(tail, 0);
  value[tail.byteLength] = 0;
  value.set(record, tail.byteLength + 1);
  return value;
}

/** Splits a stored value into its path tail and its record. */
function splitValue(value: Buffer): { tail: Buffer; record: Buffer } {
  const separator = value[0] === 0 ? 0 : value.indexOf(0);
  if (separator < 0) throw new DfsError('Internal', 'the state store holds a malformed path entry');
  return { tail: separator === 0 ? emptyTail : value.subarray(0, separator), record: value.subarray(separator + 1) };
}

/** The stored value of `path` in its dup group (with the record), or undefined. */
function findPathValue(table: BinaryDatabase, path: Buffer): Buffer | undefined {
  if (path.length < pathHeadBytes) return table.getBinary(path);
  const head = path.subarray(0, pathHeadBytes);
  const tail = path.subarray(pathHeadBytes);
  for (const value of table.getValues(head)) {
    if (splitValue(value).tail.equals(tail)) return value;
  }
  return undefined;
}

export function getPath(table: BinaryDatabase, path: Buffer): Buffer | undefined {
  const value = findPathValue(table, path);
  return value === undefined ? undefined : splitValue(value).record;
}

/** Stores `record` at `path`, replacing what was there. Must run inside a write transaction. */
export function putPath(table: BinaryDatabase, path: Buffer, record: Buffer): void {
  removePath(table, path);
  if (path.length <= pathHeadBytes) table.putSync(path, pathValue(emptyTail, record));
  else table.putSync(path.subarray(0, pathHeadBytes), pathValue(path.subarray(pathHeadBytes), record));
}

/** Removes `path`; false if it was not there. Must run inside a write transaction. */
export function removePath(table: BinaryDatabase, path: Buffer): boolean {
  // Without a value, LMDB deletes every duplicate of the key: right only when the group holds
  // nothing but this path.
  if (path.length < pathHeadBytes) return table.removeSync(path);
  const value = findPathValue(table, path);
  if (value === undefined) return false;
  return table.removeSync(path.subarray(0, pathHeadBytes), value);
}

export interface PathEntry {
  readonly path: Buffer;
  readonly record: Buffer;
}

/**
 * Paths in bytewise order from the first one ≥ `start` (> `start` when `exclusive`). Lazy: the
 * caller stops when it has enough, so the cost is proportional to what it takes.
 */
export function* scanPaths(table: BinaryDatabase, start: Buffer, exclusive: boolean): Generator<PathEntry> {
  const head = start.length > pathHeadBytes ? start.subarray(0, pathHeadBytes) : start.length === 0 ? lowestKey : start;
  for (const { key, value } of table.getRange({ start: head })) {
    const { tail, record } = splitValue(value);
    const path = tail.length === 0 ? key : Buffer.concat([key, tail]);
    // Only the first dup group can hold paths before `start` (a start longer than a head).
    const order = Buffer.compare(path, start);
    if (order < 0 || (order === 0 && exclusive)) continue;
    yield { path, record };
  }
}

/** The first path starting with `prefix`, or undefined: one seek. */
export function firstWithPrefix(table: BinaryDatabase, prefix: Buffer): PathEntry | undefined {
  for (const entry of scanPaths(table, prefix, false)) {
    return startsWith(entry.path, prefix) ? entry : undefined;
  }
  return undefined;
}

export function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** The first byte string after every string that starts with `prefix` ('a/' → 'a0'). */
export function afterPrefix(prefix: Buffer): Buffer | null {
  const next = Buffer.from(prefix);
  for (let position = next.length - 1; position >= 0; position--) {
    const byte = next[position] ?? 0;
    if (byte < 0xff) {
      next[position] = byte + 1;
      return next.subarray(0, position + 1);
    }
  }
  return null;
}

export const slashByte = 0x2f;

export function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

export function folderPath(key: string): Buffer {
  return key === '' ? emptyTail : Buffer.from(`${key}/`, 'utf8');
}

// ----------------------------------------------------------------------------------- change log

/** What one applied entry did to one key. Files: put, delete; explicit folders: makeFolder, removeFolder. */
export type ChangeType = 'put' | 'delete' | 'makeFolder' | 'removeFolder';

export interface Change {
  readonly version: number;
  /** Position among the changes of its version, from 0. */
  readonly sequence: number;
  readonly type: ChangeType;
  readonly key: string;
  /** The file's record after a put. */
  readonly file: FileRecord | null;
  /** The folder's record after a makeFolder. */
  readonly folder: FolderRecord | null;
}

const changeTypeCodes: Readonly<Record<ChangeType, number>> = { put: 1, delete: 2, makeFolder: 3, removeFolder: 4 };
const changeTypes: readonly (ChangeType | undefined)[] = [undefined, 'put', 'delete', 'makeFolder', 'removeFolder'];

export const changeStartKey = Buffer.from('start');
export const changeCountKey = Buffer.from('count');

export function changeKey(version: number, sequence: number): Buffer {
  const key = Buffer.allocUnsafe(12);
  writeUint64(key, 0, version);
  key.writeUInt32BE(sequence, 8);
  return key;
}

/** type byte ‖ the record (file 49 bytes, folder 25 bytes, none for deletes) ‖ the key's UTF-8. */
export function encodeChange(type: ChangeType, key: Buffer, record: Buffer | null): Buffer {
  const recordBytes = record?.length ?? 0;
  const bytes = Buffer.allocUnsafe(1 + recordBytes + key.length);
  bytes[0] = changeTypeCodes[type];
  if (record !== null) record.copy(bytes, 1);
  key.copy(bytes, 1 + recordBytes);
  return bytes;
}

export function decodeChange(key: Uint8Array, value: Uint8Array): Change {
  const view = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const type = changeTypes[view[0] ?? 0];
  if (key.byteLength !== 12 || type === undefined) throw new DfsError('Internal', 'the state store holds a malformed change record');
  const version = readUint64(key, 0);
  const sequence = Buffer.from(key.buffer, key.byteOffset, key.byteLength).readUInt32BE(8);
  const recordBytes = type === 'put' ? fileRecordBytes : type === 'makeFolder' ? folderRecordBytes : 0;
  const record = view.subarray(1, 1 + recordBytes);
  return {
    version,
    sequence,
    type,
    key: view.subarray(1 + recordBytes).toString('utf8'),
    file: type === 'put' ? decodeFileRecord(record) : null,
    folder: type === 'makeFolder' ? decodeFolderRecord(record) : null,
  };
}

// --------------------------------------------------------------------------------------- digest

/**
 * A hash of every table, entry by entry in key order (lengths framed so that no two different
 * states hash the same stream). Two nodes with equal digests hold byte-identical state, applied
 * index included. Reads in the caller's current read transaction.
 */
export function digestTables(tables: Tables): string {
  const hash: Hash = createHash('sha256');
  const lengths = Buffer.allocUnsafe(8);
  for (const name of tableNames) {
    hash.update(`table ${name}\n`);
    for (const { key, value } of tables[name].getRange({ start: lowestKey })) {
      lengths.writeUInt32BE(key.length, 0);
      lengths.writeUInt32BE(value.length, 4);
      hash.update(lengths);
      hash.update(key);
      hash.update(value);
    }
  }
  return hash.digest('hex');
}
