// Read-only access to the applied state, for the gRPC worker and the FUSE process. They open the
// state environment read-only and read it directly: LMDB readers take no lock and never wait for
// the writer, whichever thread or process they run in (DESIGN.md, "one writer, many readers").
//
// Consistency. Every call is synchronous and starts a fresh read transaction (resetReadTxn), so it
// sees one committed state, the newest at the time of the call: a file complete or not at all,
// never half of a commitFile. A caller that learned "index N is applied" from the store worker
// and then calls a reader sees at least index N.
//
// Streams. readFile does not hold a read transaction for the life of the stream (a slow client
// would pin old pages and make the file grow): it takes the file's content index once, then reads
// one stored chunk per step in a fresh transaction. Content is immutable — a chunk list belongs to
// one write of one file, and chunks are addressed by hash — so every byte it yields belongs to the
// version it started with; if that version's content is dropped meanwhile (the file was
// overwritten or deleted), the stream fails with FailedPrecondition instead of mixing versions.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { open, type RootDatabase } from 'lmdb';

import { DfsError } from '../errors.js';
import { validateKey, validatePrefix } from './keys.js';
import {
  afterPrefix,
  appliedKey,
  changeKey,
  changeStartKey,
  decodeChange,
  checkStateDataFile,
  decodeApplied,
  decodeChunkReference,
  decodeFileRecord,
  decodeFileBytes,
  decodeFolderRecord,
  defaultMapSizeBytes,
  digestTables,
  environmentOptions,
  fileBytesKey,
  fileChunkKey,
  firstWithPrefix,
  folderPath,
  formatKey,
  formatMarker,
  getPath,
  keyBytes,
  openChangeTables,
  openTables,
  readUint64,
  scanPaths,
  slashByte,
  startsWith,
  sumFileBytes,
  type BinaryDatabase,
  type Change,
  type ChangeTables,
  type ChunkReference,
  type FileRecord,
  type Tables,
} from './layout.js';

export interface FileInfo {
  readonly kind: 'file';
  readonly key: string;
  /** The last segment of the key. */
  readonly name: string;
  readonly sizeBytes: number;
  readonly modeBits: number;
  readonly modifiedMilliseconds: number;
  /** The index of the entry that last changed the file. */
  readonly version: number;
  readonly chunkCount: number;
}

export interface FolderInfo {
  readonly kind: 'folder';
  /** '' for the root. */
  readonly key: string;
  readonly name: string;
  /** What mkdir recorded; null for a folder that exists only because something is under it. */
  readonly explicit: { readonly modeBits: number; readonly modifiedMilliseconds: number; readonly version: number } | null;
}

export type PathInfo = FileInfo | FolderInfo;

export interface PageOptions {
  /** '' (or absent) for the first page, else the previous page's nextPageToken. */
  readonly pageToken?: string;
  /** 1 to maxPageSize; 0 or absent means defaultPageSize. */
  readonly pageSize?: number;
}

export interface Page<T> {
  readonly entries: readonly T[];
  /** '' on the last page. */
  readonly nextPageToken: string;
}

export interface FileStream {
  /** The version being read: every byte of `chunks` belongs to it. */
  readonly info: FileInfo;
  /** The content in order, in pieces of at most the requested chunk size. */
  readonly chunks: AsyncIterable<Uint8Array>;
}

export interface StateReaderOptions {
  readonly mapSizeBytes?: number;
}

export interface StateStatistics {
  readonly appliedIndex: number;
  readonly files: number;
  /** The sum of the sizes of all files (logical bytes: identical content counts once per file). */
  readonly fileBytes: number;
  readonly explicitFolders: number;
  readonly chunks: number;
  /** Chunks no file uses, waiting for collectGarbage. */
  readonly orphanChunks: number;
}

export type { Change, ChunkReference };

/** A place in the change log: the next change to read is the first at or after it. */
export interface ChangePosition {
  readonly version: number;
  readonly sequence: number;
}

export interface ChangePage {
  /** The changes under the prefix from the position on, in commit order. */
  readonly changes: readonly Change[];
  /** Where the next page starts. */
  readonly next: ChangePosition;
  /** The applied index of the state this page was read from. */
  readonly appliedIndex: number;
  /** True when the page reached the applied index: every change up to it was looked at. */
  readonly caughtUp: boolean;
}

/** Changes one changes() call looks at, matching or not, before it returns a page. */
export const maxChangesScanned = 10_000;

export const defaultPageSize = 1000;
export const maxPageSize = 10_000;
/** Largest readRange, and the default and largest `get`. */
export const maxReadBytes = 64 * 1024 * 1024;
export const defaultStreamChunkBytes = 1024 * 1024;
/** Chunks range reads keep copies of (StateReader.recentChunks): enough for a few sequential readers. */
const maxRecentChunks = 4;
/** Smaller chunks are cheap to copy out of LMDB on every read. */
const recentChunkMinBytes = 256 * 1024;

export class StateReader {
  private closed = false;
  /**
   * Copies of the last large chunks that range reads took a part of, by hash. lmdb-js copies a
   * whole value out of the map on every get, so without them each 128 KiB FUSE read of a file in
   * 4 MiB chunks would copy 4 MiB (~350 µs, whatever the read's size). Chunks are addressed by
   * their content, so a copy can never be stale; the file record and chunk list are still read in
   * the call's own transaction. At most maxRecentChunks × 4 MiB.
   */
  private readonly recentChunks = new Map<string, Uint8Array>();
  /** Opened on first use: a reader that never watches does not depend on them. */
  private changeTables: ChangeTables | null = null;

  private constructor(
    private readonly root: RootDatabase<Buffer, Buffer>,
    private readonly tables: Tables,
  ) {}

  /**
   * Opens the state environment in `directory` read-only. It must exist (the store worker
   * creates it): Unavailable otherwise; FailedPrecondition if it is not a dfs state store.
   */
  static open(directory: string, options: StateReaderOptions = {}): StateReader {
    if (!fs.existsSync(path.join(directory, 'data.mdb'))) {
      throw new DfsError('Unavailable', `no state store in ${directory} yet (the store worker creates it)`);
    }
    // Before lmdb-js sees the file: it crashes the process on one that is not LMDB's.
    checkStateDataFile(directory);
    let root: RootDatabase<Buffer, Buffer>;
    try {
      root = open<Buffer, Buffer>(directory, environmentOptions(options.mapSizeBytes ?? defaultMapSizeBytes, true));
    } catch (error) {
      throw new DfsError('FailedPrecondition', `cannot open the state store in ${directory}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      const tables = openTables(root);
      const format = tables.meta.getBinary(formatKey);
      if (format === undefined || format.toString('utf8') !== formatMarker) {
        throw new DfsError('FailedPrecondition', `${directory} is not a dfs state store of format "${formatMarker}"`);
      }
      return new StateReader(root, tables);
    } catch (error) {
      void root.close();
      throw error instanceof DfsError ? error : new DfsError('FailedPrecondition', `cannot read the state store in ${directory}: ${String(error)}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }

  appliedIndex(): number {
    this.begin();
    return decodeApplied(this.tables.meta.getBinary(appliedKey)).index;
  }

  /** A file's metadata, a folder's (explicit or implied by what is under it), or null. */
  stat(key: string): PathInfo | null {
    this.begin();
    if (key === '') return { kind: 'folder', key: '', name: '', explicit: null };
    checkKey(key);
    const file = this.fileRecord(key);
    if (file !== undefined) return fileInfo(key, file);
    const folder = folderPath(key);
    const explicit = getPath(this.tables.folders, folder);
    if (explicit !== undefined) return folderInfo(key, explicit);
    if (firstWithPrefix(this.tables.files, folder) !== undefined || firstWithPrefix(this.tables.folders, folder) !== undefined) {
      return folderInfo(key, undefined);
    }
    return null;
  }

  /**
   * A whole file, for values small enough to hold in memory. Null if there is no file at `key`;
   * TooLarge if it is bigger than `maxBytes` (use readFile).
   */
  get(key: string, maxBytes: number = maxReadBytes): { readonly info: FileInfo; readonly data: Uint8Array } | null {
    this.begin();
    checkKey(key);
    const record = this.fileRecord(key);
    if (record === undefined) return null;
    if (record.sizeBytes > Math.min(maxBytes, maxReadBytes)) {
      throw new DfsError('TooLarge', `${JSON.stringify(key)} is ${record.sizeBytes} bytes, more than ${Math.min(maxBytes, maxReadBytes)}: read it as a stream`);
    }
    const data = Buffer.allocUnsafe(record.sizeBytes);
    this.copyContent(key, record, 0, data);
    return { info: fileInfo(key, record), data };
  }

  /**
   * Up to `length` bytes of a file from `offset` (fewer at its end, none past it), in one read
   * transaction; null if there is no file at `key`. With `expectedVersion`, FailedPrecondition if
   * the file is now another version (a FUSE handle reads the version it opened, or fails).
   */
  readRange(key: string, offset: number, length: number, expectedVersion?: number): Uint8Array | null {
    this.begin();
    checkKey(key);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new DfsError('InvalidArgument', `offset and length must be non-negative integers (${offset}, ${length})`);
    }
    if (length > maxReadBytes) throw new DfsError('TooLarge', `a range read may be at most ${maxReadBytes} bytes (${length} asked)`);
    const record = this.fileRecord(key);
    if (record === undefined) return null;
    if (expectedVersion !== undefined && record.version !== expectedVersion) {
      throw new DfsError('FailedPrecondition', `${JSON.stringify(key)} changed: version ${record.version}, not ${expectedVersion}`);
    }
    const end = Math.min(record.sizeBytes, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const data = Buffer.allocUnsafe(end - offset);
    this.copyContent(key, record, offset, data);
    return data;
  }

  /**
   * Streams a file of any size with bounded memory (one stored chunk at a time); null if there is
   * no file at `key`. See the file's comment for what a stream sees when the file changes.
   */
  readFile(key: string, options: { readonly chunkSizeBytes?: number } = {}): FileStream | null {
    this.begin();
    checkKey(key);
    const pieceBytes = options.chunkSizeBytes ?? defaultStreamChunkBytes;
    if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1 || pieceBytes > maxReadBytes) {
      throw new DfsError('InvalidArgument', `chunkSizeBytes must be from 1 to ${maxReadBytes} (${pieceBytes})`);
    }
    const found = this.fileRecord(key);
    if (found === undefined) return null;
    const record: FileRecord = found;
    const reader = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let position = 0;
      while (position < record.sizeBytes) {
        const { start, data } = reader.chunkAt(key, record, position);
        // Pieces are views of the stored chunk: at most one chunk (4 MiB) is held per step.
        for (let offset = position - start; offset < data.length; offset += pieceBytes) {
          const piece = data.subarray(offset, Math.min(offset + pieceBytes, data.length));
          position += piece.length;
          yield piece;
        }
      }
    }
    return { info: fileInfo(key, record), chunks: chunks() };
  }

  /**
   * Files whose keys start with `prefix`, in bytewise key order, a page at a time. The cost is one
   * seek plus the page: the token is the last key returned, so a page starts where the previous
   * one ended even if that key has been deleted meanwhile.
   */
  list(prefix: string, options: PageOptions = {}): Page<FileInfo> {
    this.begin();
    const prefixProblem = validatePrefix(prefix);
    if (prefixProblem !== null) throw new DfsError('InvalidKey', prefixProblem);
    const pageSize = checkPageSize(options.pageSize);
    const pageToken = options.pageToken ?? '';
    if (pageToken !== '' && (validateKey(pageToken) !== null || !pageToken.startsWith(prefix))) {
      throw new DfsError('InvalidArgument', 'pageToken is not one this listing returned (it must be a key under the prefix)');
    }
    const prefixBytes = keyBytes(prefix);
    const start = pageToken === '' ? prefixBytes : keyBytes(pageToken);
    const entries: FileInfo[] = [];
    for (const { path: filePath, record } of scanPaths(this.tables.files, start, pageToken !== '')) {
      if (!startsWith(filePath, prefixBytes)) break;
      if (entries.length === pageSize) return { entries, nextPageToken: entries[entries.length - 1]?.key ?? '' };
      entries.push(fileInfo(filePath.toString('utf8'), decodeFileRecord(record)));
    }
    return { entries, nextPageToken: '' };
  }

  /**
   * The immediate children of a folder ('' is the root): its files, and its sub-folders whether
   * explicit or implied by files further down, in bytewise order of name (a folder sorting as
   * name + '/'). The cost is proportional to the children returned: each sub-folder's subtree is
   * skipped with one seek. KeyNotFound if the folder does not exist, FailedPrecondition for a file.
   * Pages are separate read transactions (like readdir, a listing may or may not see changes
   * made between pages).
   */
  listChildren(folder: string, options: PageOptions = {}): Page<PathInfo> {
    this.begin();
    if (folder !== '') {
      checkKey(folder);
      if (this.fileRecord(folder) !== undefined) throw new DfsError('FailedPrecondition', `${JSON.stringify(folder)} is a file, not a folder`);
    }
    const pageSize = checkPageSize(options.pageSize);
    const pageToken = options.pageToken ?? '';
    const prefix = folderPath(folder);
    let start = prefix;
    let exclusive = false;
    if (pageToken !== '') {
      const name = pageToken.endsWith('/') ? pageToken.slice(0, -1) : pageToken;
      if (validateKey(name) !== null || name.includes('/')) throw new DfsError('InvalidArgument', 'pageToken is not one this listing returned');
      const position = Buffer.concat([prefix, keyBytes(pageToken)]);
      // After a folder, skip its whole subtree; after a file, just the file.
      start = pageToken.endsWith('/') ? (afterPrefix(position) ?? position) : position;
      exclusive = !pageToken.endsWith('/');
    }
    const files = children(this.tables.files, prefix, start, exclusive);
    const folders = children(this.tables.folders, prefix, start, exclusive);
    let nextFile = files.next();
    let nextFolder = folders.next();
    const entries: PathInfo[] = [];
    const tokens: string[] = [];
    while (!nextFile.done || !nextFolder.done) {
      const order = nextFile.done ? 1 : nextFolder.done ? -1 : Buffer.compare(nextFile.value.sortKey, nextFolder.value.sortKey);
      const child = order <= 0 ? (nextFile.value as Child) : (nextFolder.value as Child);
      // A folder both holds files and is explicit: one entry, with the explicit record.
      const explicit = order === 0 ? (nextFolder.value as Child).explicit : child.explicit;
      if (entries.length === pageSize) {
        files.return(undefined);
        folders.return(undefined);
        return { entries, nextPageToken: tokens[tokens.length - 1] ?? '' };
      }
      const key = child.path.toString('utf8');
      entries.push(child.kind === 'file' ? fileInfo(key, decodeFileRecord(child.record)) : folderInfo(key, explicit));
      tokens.push(child.sortKey.subarray(prefix.length).toString('utf8'));
      if (order <= 0) nextFile = files.next();
      if (order >= 0) nextFolder = folders.next();
    }
    if (folder !== '' && entries.length === 0 && pageToken === '' && getPath(this.tables.folders, prefix) === undefined) {
      throw new DfsError('KeyNotFound', `no folder ${JSON.stringify(folder)}`);
    }
    return { entries, nextPageToken: '' };
  }

  /**
   * Entry counts of the tables and the files' total size (constant time: LMDB keeps the counts,
   * the writer the total), for status, metrics and tests.
   */
  statistics(): StateStatistics {
    this.begin();
    const count = (table: BinaryDatabase): number => (table.getStats() as { entryCount?: number }).entryCount ?? 0;
    return {
      appliedIndex: decodeApplied(this.tables.meta.getBinary(appliedKey)).index,
      files: count(this.tables.files),
      // No total yet only in a folder written before it was kept that no writer has opened since
      // (the writer counts it on open): count it here meanwhile.
      fileBytes: decodeFileBytes(this.tables.meta.getBinary(fileBytesKey)) ?? sumFileBytes(this.tables.files),
      explicitFolders: count(this.tables.folders),
      chunks: count(this.tables.chunks),
      orphanChunks: count(this.tables.orphanChunks),
    };
  }

  /** How a stored chunk is used (null if it is not stored): for diagnostics and tests. */
  chunkReference(hash: Uint8Array): ChunkReference | null {
    this.begin();
    const reference = this.tables.chunkReferences.getBinary(Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength));
    return reference === undefined ? null : decodeChunkReference(reference);
  }

  /**
   * Up to `limit` changes under `prefix` from `from` on, in one read transaction. Compacted
   * (with the oldest version still available) when the log no longer holds `from`: its version
   * is older than the log's start. Looks at most maxChangesScanned changes per call, so a prefix
   * that matches little costs bounded time per call (the page may then be empty but not caught up).
   */
  changes(from: ChangePosition, prefix: string, limit: number): ChangePage {
    this.begin();
    const prefixProblem = validatePrefix(prefix);
    if (prefixProblem !== null) throw new DfsError('InvalidKey', prefixProblem);
    const tables = this.openChanges();
    const appliedIndex = decodeApplied(this.tables.meta.getBinary(appliedKey)).index;
    const startBytes = tables.changeLog.getBinary(changeStartKey);
    const startVersion = startBytes === undefined ? appliedIndex + 1 : readUint64(startBytes, 0);
    if (from.version < startVersion) {
      throw new DfsError(
        'Compacted',
        `version ${from.version} is no longer in this node's change log: the oldest version still available is ${startVersion} ` +
          `(this node is at ${appliedIndex}). Watch from version ${startVersion} or later, and re-read what changed before it with List and Get`,
      );
    }
    const changes: Change[] = [];
    let next = from;
    let scanned = 0;
    for (const { key, value } of tables.changes.getRange({ start: changeKey(from.version, from.sequence) })) {
      if (changes.length >= limit || scanned >= maxChangesScanned) return { changes, next, appliedIndex, caughtUp: false };
      scanned++;
      const change = decodeChange(key, value);
      next = { version: change.version, sequence: change.sequence + 1 };
      if (change.key.startsWith(prefix)) changes.push(change);
    }
    return { changes, next: { version: Math.max(next.version, appliedIndex + 1), sequence: next.version > appliedIndex ? next.sequence : 0 }, appliedIndex, caughtUp: true };
  }

  /** sha256 (hex) of every table: equal digests mean identical state (see StateMachine.digest). */
  digest(): string {
    this.begin();
    return digestTables(this.tables);
  }

  // ----------------------------------------------------------------------------- internals

  /** Every call starts here: a fresh read transaction, so it sees the newest committed state. */
  private begin(): void {
    if (this.closed) throw new Error('the state reader is closed');
    this.root.resetReadTxn();
  }

  private openChanges(): ChangeTables {
    if (this.changeTables === null) {
      try {
        this.changeTables = openChangeTables(this.root);
      } catch (error) {
        throw new DfsError('Unavailable', `this node's change log cannot be read yet (${error instanceof Error ? error.message : String(error)}); retry shortly`);
      }
    }
    return this.changeTables;
  }

  private fileRecord(key: string): FileRecord | undefined {
    const record = getPath(this.tables.files, keyBytes(key));
    return record === undefined ? undefined : decodeFileRecord(record);
  }

  /** Copies the file's bytes from `offset` into `target` (which ends at or before the file's end). */
  private copyContent(key: string, record: FileRecord, offset: number, target: Buffer): void {
    let written = 0;
    const contentPrefix = fileChunkKey(record.contentIndex, 0).subarray(0, 8);
    for (const { key: chunkKey, value: hash } of this.tables.fileChunks.getRange({ start: fileChunkKey(record.contentIndex, offset), exclusiveStart: true })) {
      if (written === target.length) break;
      if (!startsWith(chunkKey, contentPrefix)) break;
      const endOffset = readUint64(chunkKey, 8);
      const hashKey = hash.toString('hex');
      let chunk: Uint8Array | undefined = this.recentChunks.get(hashKey);
      if (chunk !== undefined) {
        this.recentChunks.delete(hashKey); // most recently used last
        this.recentChunks.set(hashKey, chunk);
      } else {
        const fast = this.tables.chunks.getBinaryFast(hash);
        if (fast === undefined) break;
        // getBinaryFast returns lmdb-js's shared buffer (reused by the next get, so copy out at
        // once) with `length` set to the value's size but byteLength the whole buffer's.
        chunk = new Uint8Array(fast.buffer, fast.byteOffset, fast.length);
        if (chunk.length >= recentChunkMinBytes && target.length - written < chunk.length) chunk = this.rememberChunk(hashKey, chunk);
      }
      const chunkStart = endOffset - chunk.length;
      const from = offset + written - chunkStart;
      const piece = chunk.subarray(from, Math.min(chunk.length, from + target.length - written));
      target.set(piece, written);
      written += piece.length;
    }
    if (written !== target.length) throw changedWhileReading(key);
  }

  /** Keeps a copy of a large chunk that a range read uses only part of (see recentChunks). */
  private rememberChunk(hashKey: string, chunk: Uint8Array): Uint8Array {
    const copy = chunk.slice();
    this.recentChunks.set(hashKey, copy);
    for (const oldest of this.recentChunks.keys()) {
      if (this.recentChunks.size <= maxRecentChunks) break;
      this.recentChunks.delete(oldest);
    }
    return copy;
  }

  /** The stored chunk holding byte `position` of the content, and where it starts. */
  private chunkAt(key: string, record: FileRecord, position: number): { start: number; data: Buffer } {
    this.begin();
    for (const { key: chunkKey, value: hash } of this.tables.fileChunks.getRange({ start: fileChunkKey(record.contentIndex, position), exclusiveStart: true, limit: 1 })) {
      if (readUint64(chunkKey, 0) !== record.contentIndex) break;
      const data = this.tables.chunks.getBinary(hash);
      if (data === undefined) break;
      return { start: readUint64(chunkKey, 8) - data.length, data };
    }
    throw changedWhileReading(key);
  }
}

interface Child {
  /** Where the child sorts: its path, plus '/' for a folder. */
  readonly sortKey: Buffer;
  readonly path: Buffer;
  readonly kind: 'file' | 'folder';
  readonly record: Buffer;
  readonly explicit: Buffer | undefined;
}

/**
 * The immediate children under `prefix` (a folder path ending in '/', or '' for the root) found
 * in one path table, from `start`. Entries deeper down stand for the sub-folder that holds them;
 * the rest of that subtree is skipped with one seek past it.
 */
function* children(table: BinaryDatabase, prefix: Buffer, start: Buffer, startExclusive: boolean): Generator<Child, void, undefined> {
  let position = start;
  let exclusive = startExclusive;
  seeking: for (;;) {
    for (const { path: entryPath, record } of scanPaths(table, position, exclusive)) {
      if (!startsWith(entryPath, prefix)) return;
      if (entryPath.length === prefix.length) continue; // the folder's own explicit entry
      const slash = entryPath.indexOf(slashByte, prefix.length);
      if (slash < 0) {
        yield { sortKey: entryPath, path: entryPath, kind: 'file', record, explicit: undefined };
        continue;
      }
      const childFolder = entryPath.subarray(0, slash + 1);
      yield {
        sortKey: childFolder,
        path: entryPath.subarray(0, slash),
        kind: 'folder',
        record,
        explicit: entryPath.length === childFolder.length ? record : undefined,
      };
      const after = afterPrefix(childFolder);
      if (after === null) return;
      position = after;
      exclusive = false;
      continue seeking;
    }
    return;
  }
}

function fileInfo(key: string, record: FileRecord): FileInfo {
  return {
    kind: 'file',
    key,
    name: key.slice(key.lastIndexOf('/') + 1),
    sizeBytes: record.sizeBytes,
    modeBits: record.modeBits,
    modifiedMilliseconds: record.modifiedMilliseconds,
    version: record.version,
    chunkCount: record.chunkCount,
  };
}

function folderInfo(key: string, explicit: Buffer | undefined): FolderInfo {
  return { kind: 'folder', key, name: key.slice(key.lastIndexOf('/') + 1), explicit: explicit === undefined ? null : decodeFolderRecord(explicit) };
}

function checkKey(key: string): void {
  const problem = validateKey(key);
  if (problem !== null) throw new DfsError('InvalidKey', problem);
}

function checkPageSize(pageSize: number | undefined): number {
  if (pageSize === undefined || pageSize === 0) return defaultPageSize;
  if (!Number.isSafeInteger(pageSize) || pageSize < 0 || pageSize > maxPageSize) {
    throw new DfsError('InvalidArgument', `pageSize must be from 1 to ${maxPageSize} (0 for ${defaultPageSize}), not ${pageSize}`);
  }
  return pageSize;
}

function changedWhileReading(key: string): DfsError {
  return new DfsError('FailedPrecondition', `${JSON.stringify(key)} changed while it was being read: read it again`);
}
