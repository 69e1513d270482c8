// The replicated state machine's writer: applies committed log entries to the state LMDB
// environment (<data>/state/, layout in layout.ts). Only the store worker opens it; readers open
// the same folder read-only (state-reader.ts).
//
// Determinism. Every node applies the same entries in the same order and must end with
// byte-identical tables, so applying depends on nothing but the entries and the tables: no clock,
// no randomness, no configuration (limits are constants of this code), no iteration over
// unordered collections. A command that breaks a rule is rejected with a result error — decided
// before the command changes anything, so a rejected command leaves no trace but the applied index.
// An exception out of apply() is a fault of this node (disk, memory map, a bug), never a verdict
// on the command: the batch's transaction is aborted, nothing of it is applied, and the store
// worker crashes and restarts from the durable applied index.
//
// Atomicity. One LMDB write transaction per batch (split only past maxTransactionBytes of entry
// data) writes the data and the applied index together: after a crash the state is exactly that
// of some applied index, and entries at or below it are skipped when the log replays them.
//
// Durability. Each transaction commits with LMDB's sync (overlapping sync: the commit becomes
// visible to readers, then is flushed before transactionSync returns). The Raft log is the source
// of truth, so this is more than correctness needs, but it keeps the applied index that the log may
// be compacted up to on disk; the cost is one flush per batch, never per entry.
//
// Namespace rules enforced here (the same on every node, whichever way a write came in):
// - a key is a file or a folder, never both: a write under a file ('a/b' when 'a' is a file) and a
//   write onto a folder ('a' when 'a/b' exists) are rejected (FailedPrecondition);
// - folders exist implicitly while something is under them; `mkdir` makes an explicit folder that
//   exists even when empty, until `delete`/`deleteFolder` removes it or `rename` moves it;
// - `delete` removes a file or an empty explicit folder; `deleteFolder` removes a folder and all
//   below it; `rename` moves a file (replacing a file at the destination, like POSIX rename) or a
//   folder (onto nothing or an empty explicit folder). A moved file's version becomes the rename's
//   index; its content is not copied.
// - requests are not deduplicated: a retried put writes again (same content, new version).
//
// Change log (for Watch; layout.ts "Change log"). Each applied command also records what it did to
// each key — a put, a delete, an explicit folder made or removed; a rename is the deletes of the
// old keys and the puts of the new ones, a deleteFolder one delete per file and folder — under its
// entry's index, in the same transaction, so the log is exactly as durable as the state. The log
// keeps the newest `retainedChanges` changes (default 100,000; the node setting -watch-retention),
// dropping whole versions, oldest first, in the applying transaction; one version is never split,
// so a single command that changes more keys than that is kept whole until a later one pushes it
// out. A snapshot restore starts a new, empty log after the snapshot's index.
//
// File bytes. The sum of the files' sizes (layout.ts "File bytes") moves with every file written,
// overwritten, deleted or replaced by a rename, and is written with the applied index at the end of
// each transaction: a pure function of the files, so every node holds the same total.
//
// Garbage. A chunk's reference count counts the places files use it. A chunk no file uses (from
// an aborted upload, or whose last file was overwritten or deleted) is an orphan, indexed by the
// index at which it became one, and stays readable: an upload may still commit it, and readers
// that found its hash before the change can still finish. `collectGarbage { beforeIndex }` drops
// orphans older than beforeIndex (at most maxChunksPerCollection per entry, so one entry never
// stalls the applier); an upload whose chunks were collected gets FailedPrecondition at
// commitFile and must be retried. What is not done here: deciding when to collect. The leader
// should propose collectGarbage periodically with beforeIndex = the applied index of some minutes
// ago (longer than any upload may take), e.g. remembered from its own apply history.

import * as fs from 'node:fs';
import { dirname } from 'node:path';

import { open, TransactionFlags, type RootDatabase } from 'lmdb';

import { DfsError, type DfsErrorCode } from '../errors.js';
import { chunkHash, decodeCommand, type Command, type CommandResult, type Rejection } from './commands.js';
import { maxKeyBytes } from './keys.js';
import {
  appliedKey,
  changeCountKey,
  changeKey,
  changeStartKey,
  changeTableNames,
  checkStateDataFile,
  chunkSizeBytes,
  decodeApplied,
  decodeChunkReference,
  decodeFileBytes,
  decodeFileRecord,
  defaultMapSizeBytes,
  digestTables,
  encodeApplied,
  encodeChange,
  encodeChunkReference,
  encodeFileBytes,
  encodeFileRecord,
  encodeFolderRecord,
  environmentOptions,
  fileBytesKey,
  fileChunkKey,
  firstWithPrefix,
  folderPath,
  formatKey,
  formatMarker,
  getPath,
  keyBytes,
  lowestKey,
  openChangeTables,
  openTables,
  orphanKey,
  putPath,
  readUint64,
  removePath,
  scanPaths,
  startsWith,
  sumFileBytes,
  tableNames,
  writeUint64,
  type AppliedPosition,
  type ChangeTables,
  type ChangeType,
  type FileRecord,
  type Tables,
} from './layout.js';
import { SnapshotFileReader, SnapshotFileWriter } from './snapshot.js';

/** A committed log entry; `data` is null (or empty) for no-op and configuration entries. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array | null;
}

export interface StateMachineOptions {
  /** Address space reserved for the memory map (not disk space). Default 1 TiB. */
  readonly mapSizeBytes?: number;
  /**
   * A batch whose entries carry more data than this is applied in several transactions (each
   * with its own applied index), so that LMDB's dirty pages stay bounded. Default 64 MiB.
   */
  readonly maxTransactionBytes?: number;
  /**
   * Flush every commit to disk before apply() returns (default true). False opens the environment
   * with LMDB's noSync: commits survive a crash of the process but not of the machine, which may
   * then even find the environment damaged. For tests and benchmarks only.
   */
  readonly syncCommits?: boolean;
  /**
   * Changes the change log keeps (whole versions, newest first; see the file comment). Default
   * 100,000. Not replicated state, so nodes may differ.
   */
  readonly retainedChanges?: number;
}

export const defaultRetainedChanges = 100_000;

export interface SnapshotWritten {
  readonly index: number;
  readonly term: number;
  readonly sizeBytes: number;
  /** sha256 of the file's content before its end record (the value the end record carries). */
  readonly sha256: string;
}

export interface SnapshotRestored {
  readonly index: number;
  readonly term: number;
  readonly sizeBytes: number;
}

/** Files and explicit folders one deleteFolder or rename may touch (it runs in one transaction). */
export const maxEntriesPerFolderCommand = 1_000_000;
/** Orphan chunks one collectGarbage entry drops at most. */
export const maxChunksPerCollection = 4096;
const defaultMaxTransactionBytes = 64 * 1024 * 1024;
/** Entries moved or deleted per re-seek when working through a folder. */
const folderBatchSize = 1000;
/**
 * Abortable, committed before transactionSync returns, and NO_SYNC_FLUSH: with lmdb-js's
 * overlapping sync the commit becomes visible to readers first and is flushed right after, still
 * before transactionSync returns (mdb_txn_commit in lmdb's mdb.c), which measured about half the
 * latency of a plain synced commit here.
 */
const transactionFlags = TransactionFlags.ABORTABLE | TransactionFlags.SYNCHRONOUS_COMMIT | TransactionFlags.NO_SYNC_FLUSH;

/** A chunk of a file being written; `referenced` when its reference for this use is already counted. */
interface ContentChunk {
  readonly hash: Uint8Array;
  readonly sizeBytes: number;
  readonly referenced: boolean;
}

type Outcome = { readonly ok: true; readonly affectedCount: number; readonly complete: boolean } | ({ readonly ok: false } & Rejection);

const done = (affectedCount: number, complete = true): Outcome => ({ ok: true, affectedCount, complete });
const rejected = (code: DfsErrorCode, message: string): Outcome => ({ ok: false, code, message });

export class StateMachine {
  private applied: AppliedPosition;
  private closed = false;
  /** The change log's oldest retained version and its number of changes (also in changeLog). */
  private changeStart: number;
  private changeCount: number;
  /** The entry being applied and the sequence of its next change. */
  private changeVersion = 0;
  private changeSequence = 0;
  /** The sum of the files' sizes as of the applied index (or the transaction being applied). */
  private fileBytes: number;

  private constructor(
    private readonly root: RootDatabase<Buffer, Buffer>,
    private readonly tables: Tables,
    private readonly changeTables: ChangeTables,
    private readonly maxTransactionBytes: number,
    private readonly retainedChanges: number,
  ) {
    this.applied = decodeApplied(tables.meta.getBinary(appliedKey));
    const fileBytes = decodeFileBytes(tables.meta.getBinary(fileBytesKey));
    this.fileBytes = fileBytes ?? sumFileBytes(tables.files);
    if (fileBytes === undefined) {
      // A folder from before the total was kept (or a new one): counted once, here.
      root.transactionSync(() => tables.meta.putSync(fileBytesKey, encodeFileBytes(this.fileBytes)), transactionFlags);
    }
    const start = changeTables.changeLog.getBinary(changeStartKey);
    const count = changeTables.changeLog.getBinary(changeCountKey);
    this.changeStart = start === undefined ? this.applied.index + 1 : readUint64(start, 0);
    this.changeCount = count === undefined ? 0 : readUint64(count, 0);
    if (start === undefined) {
      // A folder from before the change log (or a new one): the log starts after what is applied.
      root.transactionSync(() => this.writeChangeLogPosition(), transactionFlags);
    }
  }

  /**
   * Opens (creating when missing) the state environment in `directory`. Refuses, with a
   * FailedPrecondition that says why, a folder holding another LMDB environment or a state of
   * another format. Open the writer before any reader in the same process: lmdb-js shares one
   * environment per file within a process, opened with the first opener's flags.
   */
  static open(directory: string, options: StateMachineOptions = {}): StateMachine {
    // Before lmdb-js sees the file: it crashes the process on one that is not LMDB's.
    checkStateDataFile(directory);
    let root: RootDatabase<Buffer, Buffer>;
    try {
      const environment = environmentOptions(options.mapSizeBytes ?? defaultMapSizeBytes, false);
      root = open<Buffer, Buffer>(directory, options.syncCommits === false ? { ...environment, noSync: true, overlappingSync: false } : environment);
    } catch (error) {
      throw new DfsError('FailedPrecondition', `cannot open the state store in ${directory}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      // The main database lists the named databases: anything but ours means another environment.
      const foreign = [...root.getKeys({ start: lowestKey })]
        .map((key) => Buffer.from(key).toString('utf8').replace(/\0$/, '')) // lmdb-js stores names NUL-terminated
        .filter((name) => !(tableNames as readonly string[]).includes(name) && !(changeTableNames as readonly string[]).includes(name));
      if (foreign.length > 0) {
        throw new DfsError('FailedPrecondition', `${directory} holds another LMDB environment (databases ${foreign.slice(0, 5).join(', ')}), not a dfs state store`);
      }
      const tables = openTables(root);
      const format = tables.meta.getBinary(formatKey);
      if (format === undefined) {
        const nonEmpty = tableNames.filter((name) => tables[name].getKeysCount({ start: lowestKey, limit: 1 }) > 0);
        if (nonEmpty.length > 0) throw new DfsError('FailedPrecondition', `${directory} holds state tables without a format marker (damaged?)`);
        root.transactionSync(() => tables.meta.putSync(formatKey, Buffer.from(formatMarker)), transactionFlags);
      } else if (format.toString('utf8') !== formatMarker) {
        throw new DfsError('FailedPrecondition', `${directory} holds state of format "${format.toString('utf8')}", this dfs reads "${formatMarker}"`);
      }
      const retainedChanges = options.retainedChanges ?? defaultRetainedChanges;
      if (!Number.isSafeInteger(retainedChanges) || retainedChanges < 1) throw new Error(`retainedChanges must be a positive integer, got ${retainedChanges}`);
      return new StateMachine(root, tables, openChangeTables(root), options.maxTransactionBytes ?? defaultMaxTransactionBytes, retainedChanges);
    } catch (error) {
      void root.close();
      throw error;
    }
  }

  appliedIndex(): number {
    return this.applied.index;
  }

  appliedTerm(): number {
    return this.applied.term;
  }

  /**
   * Applies committed entries in order and returns one result per command they carry (no-op
   * entries carry none). Entries at or below the applied index are skipped: they were applied
   * before a restart. Every other entry must follow the applied index without a gap (a gap is a
   * driver bug and throws before anything is written).
   */
  apply(entries: readonly AppliedEntry[]): CommandResult[] {
    this.checkOpen();
    const results: CommandResult[] = [];
    let position = 0;
    while (position < entries.length) {
      let end = position;
      let batchBytes = 0;
      while (end < entries.length) {
        const sizeBytes = entries[end]?.data?.byteLength ?? 0;
        if (end > position && batchBytes + sizeBytes > this.maxTransactionBytes) break;
        batchBytes += sizeBytes;
        end++;
      }
      const batch = entries.slice(position, end);
      position = end;
      if (batch.every((entry) => entry.index <= this.applied.index)) continue;
      const batchResults: CommandResult[] = [];
      let applied = this.applied;
      const changeLogBefore = { start: this.changeStart, count: this.changeCount };
      const fileBytesBefore = this.fileBytes;
      try {
        this.root.transactionSync(() => {
          for (const entry of batch) {
            if (entry.index <= applied.index) continue;
            if (entry.index !== applied.index + 1) {
              throw new Error(`apply: entry ${entry.index} does not follow the applied index ${applied.index}`);
            }
            if (entry.term < applied.term) throw new Error(`apply: entry ${entry.index} has term ${entry.term}, below the applied term ${applied.term}`);
            applied = { index: entry.index, term: entry.term };
            this.changeVersion = entry.index;
            this.changeSequence = 0;
            const result = this.applyEntry(entry);
            if (result !== null) batchResults.push(result);
          }
          this.pruneChanges(applied.index);
          this.writeChangeLogPosition();
          this.tables.meta.putSync(fileBytesKey, encodeFileBytes(this.fileBytes));
          this.tables.meta.putSync(appliedKey, encodeApplied(applied));
        }, transactionFlags);
      } catch (error) {
        // The transaction was aborted: so were the change log's moves and the total's.
        this.changeStart = changeLogBefore.start;
        this.changeCount = changeLogBefore.count;
        this.fileBytes = fileBytesBefore;
        throw error;
      }
      // Only a committed transaction moves the applied index (an exception above skips this).
      this.applied = applied;
      results.push(...batchResults);
    }
    return results;
  }

  /** The change log's oldest retained version (it holds every change from there on) and its size. */
  changeLog(): { readonly startVersion: number; readonly changeCount: number } {
    return { startVersion: this.changeStart, changeCount: this.changeCount };
  }

  /** The sum of the sizes of every file as of the applied index (logical bytes; see the file comment). */
  fileBytesTotal(): number {
    this.checkOpen();
    return this.fileBytes;
  }

  /** sha256 (hex) of every table, applied index and file bytes included: equal digests mean identical state. */
  digest(): string {
    this.checkOpen();
    this.root.resetReadTxn();
    return digestTables(this.tables);
  }

  /**
   * Writes the whole state to `path` from one read transaction (so it is exactly the state at the
   * index it reports, however many entries are applied meanwhile), streaming with bounded memory.
   * The file appears at `path` only when complete and flushed (written as `path`.partial first).
   */
  async writeSnapshot(path: string): Promise<SnapshotWritten> {
    this.checkOpen();
    this.root.resetReadTxn();
    const transaction = this.root.useReadTransaction();
    const partialPath = `${path}.partial`;
    let writer: SnapshotFileWriter | null = null;
    try {
      const position = decodeApplied(this.tables.meta.get(appliedKey, { transaction }));
      writer = await SnapshotFileWriter.create(partialPath, position);
      for (const name of tableNames) {
        for (const { key, value } of this.tables[name].getRange({ start: lowestKey, transaction })) {
          await writer.entry(name, key, value);
        }
      }
      const { sizeBytes, sha256 } = await writer.finish();
      writer = null;
      await fs.promises.rename(partialPath, path);
      await syncFolderOf(path);
      return { index: position.index, term: position.term, sizeBytes, sha256 };
    } catch (error) {
      if (writer !== null) await writer.abandon();
      await fs.promises.rm(partialPath, { force: true });
      throw error;
    } finally {
      transaction.done();
    }
  }

  /**
   * Replaces the entire state with a snapshot file, in one write transaction: the file is
   * checked (format, framing, entry count, checksum) while it is loaded and the transaction
   * commits only if all of it is right, so a bad file leaves the state untouched (DfsError
   * InvalidArgument). Readers in this and other processes need not reopen anything: their next
   * read transaction sees the new state whole, and one already open keeps seeing the old state
   * until it ends (a stream reading a file that the restore removed fails cleanly).
   * Memory: LMDB keeps the transaction's dirty pages in memory until it spills them (up to about
   * 128 Ki pages, 1 GiB with 8 KiB pages), so restoring a state larger than that peaks there.
   */
  async restoreSnapshot(path: string): Promise<SnapshotRestored> {
    this.checkOpen();
    const reader = SnapshotFileReader.open(path);
    try {
      let sizeBytes = 0;
      let fileBytes = 0;
      this.root.transactionSync(() => {
        for (const name of tableNames) this.tables[name].clearSync();
        for (;;) {
          const record = reader.next();
          if (record.kind === 'end') {
            sizeBytes = record.sizeBytes;
            break;
          }
          this.tables[record.table].putSync(record.key, record.value);
        }
        const format = this.tables.meta.getBinary(formatKey);
        if (format === undefined || format.toString('utf8') !== formatMarker) throw reader.problem('its state has no valid format marker');
        const position = decodeApplied(this.tables.meta.getBinary(appliedKey));
        if (position.index !== reader.header.index || position.term !== reader.header.term) {
          throw reader.problem(`its header says index ${reader.header.index}, its state says ${position.index}`);
        }
        // A snapshot from a dfs that did not keep the total yet: counted once, here.
        const stored = this.tables.meta.getBinary(fileBytesKey);
        if (stored !== undefined && stored.length !== 8) throw reader.problem(`its file bytes total is malformed (${stored.length} bytes)`);
        fileBytes = decodeFileBytes(stored) ?? sumFileBytes(this.tables.files);
        if (stored === undefined) this.tables.meta.putSync(fileBytesKey, encodeFileBytes(fileBytes));
        // The history before the snapshot is not this node's to tell: a new log starts after it.
        this.changeTables.changes.clearSync();
        this.changeStart = reader.header.index + 1;
        this.changeCount = 0;
        this.writeChangeLogPosition();
      }, transactionFlags);
      this.applied = { index: reader.header.index, term: reader.header.term };
      this.fileBytes = fileBytes;
      return { index: reader.header.index, term: reader.header.term, sizeBytes };
    } finally {
      reader.close();
    }
  }

  /** Closes the environment (after which every method throws). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the state machine is closed');
  }

  // ------------------------------------------------------------------------------ applying

  private applyEntry(entry: AppliedEntry): CommandResult | null {
    if (entry.data === null || entry.data.byteLength === 0) return null;
    const decoded = decodeCommand(entry.data);
    if (!decoded.ok) return { requestId: decoded.requestId, index: entry.index, ok: false, code: decoded.code, message: decoded.message };
    const outcome = this.execute(decoded.command, entry.index);
    if (!outcome.ok) return { requestId: decoded.command.requestId, index: entry.index, ok: false, code: outcome.code, message: outcome.message };
    return {
      requestId: decoded.command.requestId,
      index: entry.index,
      ok: true,
      version: entry.index,
      affectedCount: outcome.affectedCount,
      complete: outcome.complete,
    };
  }

  private execute(command: Command, index: number): Outcome {
    switch (command.type) {
      case 'put':
        return this.put(command.key, command.data, command.modeBits, command.modifiedMilliseconds, index);
      case 'putChunk':
        return this.putChunk(command.data, index);
      case 'commitFile':
        return this.commitFile(command.key, command.chunks, command.sizeBytes, command.modeBits, command.modifiedMilliseconds, index);
      case 'delete':
        return this.delete(command.key, index);
      case 'deleteFolder':
        return this.deleteFolder(command.key, index);
      case 'rename':
        return this.rename(command.from, command.to, index);
      case 'mkdir':
        return this.mkdir(command.key, command.modeBits, command.modifiedMilliseconds, index);
      case 'collectGarbage':
        return this.collectGarbage(command.beforeIndex, index);
    }
  }

  private put(key: string, data: Uint8Array, modeBits: number, modifiedMilliseconds: number, index: number): Outcome {
    const conflict = this.checkFileTarget(key);
    if (conflict !== null) return conflict;
    const chunks: ContentChunk[] = [];
    for (let offset = 0; offset < data.byteLength; offset += chunkSizeBytes) {
      const piece = data.subarray(offset, Math.min(offset + chunkSizeBytes, data.byteLength));
      const hash = Buffer.from(chunkHash(piece));
      if (this.tables.chunkReferences.getBinary(hash) === undefined) {
        // New content: stored already referenced, skipping the orphan index it would leave at once.
        this.tables.chunks.putSync(hash, Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
        this.tables.chunkReferences.putSync(hash, encodeChunkReference({ referenceCount: 1, orphanedIndex: 0, sizeBytes: piece.byteLength }));
        chunks.push({ hash, sizeBytes: piece.byteLength, referenced: true });
      } else {
        chunks.push({ hash, sizeBytes: piece.byteLength, referenced: false });
      }
    }
    this.writeFile(key, chunks, data.byteLength, modeBits, modifiedMilliseconds, index);
    return done(1);
  }

  private putChunk(data: Uint8Array, index: number): Outcome {
    return done(this.storeChunk(data, index).stored ? 1 : 0);
  }

  private commitFile(key: string, hashes: readonly Uint8Array[], sizeBytes: number, modeBits: number, modifiedMilliseconds: number, index: number): Outcome {
    const conflict = this.checkFileTarget(key);
    if (conflict !== null) return conflict;
    const chunks: ContentChunk[] = [];
    let totalBytes = 0;
    for (const [position, hash] of hashes.entries()) {
      const reference = this.tables.chunkReferences.getBinary(Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength));
      if (reference === undefined) {
        return rejected(
          'FailedPrecondition',
          `chunk ${position + 1} of ${hashes.length} (${Buffer.from(hash).toString('hex')}) is not stored: its upload expired or never reached the log; upload the file again`,
        );
      }
      const chunkBytes = decodeChunkReference(reference).sizeBytes;
      chunks.push({ hash, sizeBytes: chunkBytes, referenced: false });
      totalBytes += chunkBytes;
    }
    if (totalBytes !== sizeBytes) {
      return rejected('InvalidArgument', `sizeBytes is ${sizeBytes}, but the ${hashes.length} chunks hold ${totalBytes} bytes`);
    }
    this.writeFile(key, chunks, sizeBytes, modeBits, modifiedMilliseconds, index);
    return done(1);
  }

  private delete(key: string, index: number): Outcome {
    const path = keyBytes(key);
    const file = getPath(this.tables.files, path);
    if (file !== undefined) {
      removePath(this.tables.files, path);
      const record = decodeFileRecord(file);
      this.releaseContent(record, index);
      this.fileBytes -= record.sizeBytes;
      this.recordChange('delete', path, null);
      return done(1);
    }
    const folder = folderPath(key);
    const explicit = getPath(this.tables.folders, folder) !== undefined;
    const hasFiles = firstWithPrefix(this.tables.files, folder) !== undefined;
    const hasFolders = this.firstFolderBelow(folder) !== undefined;
    if (!explicit && !hasFiles && !hasFolders) return rejected('KeyNotFound', `no file or folder ${JSON.stringify(key)}`);
    if (hasFiles || hasFolders) {
      return rejected('FailedPrecondition', `folder ${JSON.stringify(key)} is not empty: delete what is in it first, or delete the whole folder`);
    }
    removePath(this.tables.folders, folder);
    this.recordChange('removeFolder', folder, null);
    return done(1);
  }

  private deleteFolder(key: string, index: number): Outcome {
    if (getPath(this.tables.files, keyBytes(key)) !== undefined) return rejected('FailedPrecondition', `${JSON.stringify(key)} is a file, not a folder`);
    const folder = folderPath(key);
    if (!this.folderExists(key)) return rejected('KeyNotFound', `no folder ${JSON.stringify(key)}`);
    const { count } = this.measureFolder(folder, maxEntriesPerFolderCommand);
    if (count > maxEntriesPerFolderCommand) {
      return rejected('ResourceExhausted', `folder ${JSON.stringify(key)} holds more than ${maxEntriesPerFolderCommand} entries: delete its subfolders first`);
    }
    let removed = 0;
    for (;;) {
      const batch = this.takeWithPrefix(this.tables.files, folder);
      if (batch.length === 0) break;
      for (const { path, record } of batch) {
        removePath(this.tables.files, path);
        const file = decodeFileRecord(record);
        this.releaseContent(file, index);
        this.fileBytes -= file.sizeBytes;
        this.recordChange('delete', path, null);
        removed++;
      }
    }
    for (;;) {
      const batch = this.takeWithPrefix(this.tables.folders, folder);
      if (batch.length === 0) break;
      for (const { path } of batch) {
        removePath(this.tables.folders, path);
        this.recordChange('removeFolder', path, null);
      }
      removed += batch.length;
    }
    return done(removed);
  }

  private rename(from: string, to: string, index: number): Outcome {
    const ancestor = this.fileAncestor(to);
    if (ancestor !== null) return rejected('FailedPrecondition', `cannot move to ${JSON.stringify(to)}: ${JSON.stringify(ancestor)} is a file`);
    const fromPath = keyBytes(from);
    const toPath = keyBytes(to);
    const file = getPath(this.tables.files, fromPath);
    if (file !== undefined) {
      if (this.folderExists(to)) return rejected('FailedPrecondition', `cannot move file ${JSON.stringify(from)} onto folder ${JSON.stringify(to)}`);
      const replaced = getPath(this.tables.files, toPath);
      if (replaced !== undefined) {
        removePath(this.tables.files, toPath);
        const replacedRecord = decodeFileRecord(replaced);
        this.releaseContent(replacedRecord, index);
        this.fileBytes -= replacedRecord.sizeBytes;
      }
      removePath(this.tables.files, fromPath);
      const moved = encodeFileRecord({ ...decodeFileRecord(file), version: index });
      putPath(this.tables.files, toPath, moved);
      this.recordChange('delete', fromPath, null);
      this.recordChange('put', toPath, moved);
      return done(1);
    }
    if (!this.folderExists(from)) return rejected('KeyNotFound', `no file or folder ${JSON.stringify(from)}`);
    if (getPath(this.tables.files, toPath) !== undefined) return rejected('FailedPrecondition', `cannot move folder ${JSON.stringify(from)} onto file ${JSON.stringify(to)}`);
    const fromFolder = folderPath(from);
    const toFolder = folderPath(to);
    if (firstWithPrefix(this.tables.files, toFolder) !== undefined || this.firstFolderBelow(toFolder) !== undefined) {
      return rejected('FailedPrecondition', `cannot move folder ${JSON.stringify(from)} onto ${JSON.stringify(to)}: it is a folder that is not empty`);
    }
    const { count, longestPathBytes } = this.measureFolder(fromFolder, maxEntriesPerFolderCommand);
    if (count > maxEntriesPerFolderCommand) {
      return rejected('ResourceExhausted', `folder ${JSON.stringify(from)} holds more than ${maxEntriesPerFolderCommand} entries: move its subfolders one at a time`);
    }
    // Folder entries end with '/', one byte longer than the key they stand for.
    if (longestPathBytes - fromFolder.length + toFolder.length > maxKeyBytes + 1) {
      return rejected('InvalidKey', `moving ${JSON.stringify(from)} to ${JSON.stringify(to)} would make a key longer than ${maxKeyBytes} bytes`);
    }
    // An empty explicit folder at the destination is replaced, like POSIX rename of directories.
    if (removePath(this.tables.folders, toFolder)) this.recordChange('removeFolder', toFolder, null);
    const moved = this.moveWithPrefix('files', fromFolder, toFolder, (record) => encodeFileRecord({ ...decodeFileRecord(record), version: index }));
    const movedFolders = this.moveWithPrefix('folders', fromFolder, toFolder, (record) => record);
    return done(moved + movedFolders);
  }

  private mkdir(key: string, modeBits: number, modifiedMilliseconds: number, index: number): Outcome {
    if (getPath(this.tables.files, keyBytes(key)) !== undefined) return rejected('AlreadyExists', `a file exists at ${JSON.stringify(key)}`);
    const ancestor = this.fileAncestor(key);
    if (ancestor !== null) return rejected('FailedPrecondition', `cannot create folder ${JSON.stringify(key)}: ${JSON.stringify(ancestor)} is a file`);
    const record = encodeFolderRecord({ modeBits, modifiedMilliseconds, version: index });
    putPath(this.tables.folders, folderPath(key), record);
    this.recordChange('makeFolder', folderPath(key), record);
    return done(1);
  }

  private collectGarbage(beforeIndex: number, index: number): Outcome {
    if (beforeIndex > index) return rejected('InvalidArgument', `beforeIndex ${beforeIndex} is after this entry's index ${index}`);
    const eligible: Buffer[] = [];
    let complete = true;
    for (const key of this.tables.orphanChunks.getKeys({ start: lowestKey })) {
      if (readUint64(key, 0) >= beforeIndex) break;
      if (eligible.length === maxChunksPerCollection) {
        complete = false;
        break;
      }
      eligible.push(Buffer.from(key));
    }
    for (const key of eligible) {
      const hash = key.subarray(8);
      const reference = this.tables.chunkReferences.getBinary(hash);
      if (reference === undefined || decodeChunkReference(reference).referenceCount !== 0) {
        throw new Error(`collectGarbage: orphan index lists chunk ${hash.toString('hex')}, which is referenced or missing`);
      }
      this.tables.chunks.removeSync(hash);
      this.tables.chunkReferences.removeSync(hash);
      this.tables.orphanChunks.removeSync(key);
    }
    return done(eligible.length, complete);
  }

  // ----------------------------------------------------------------------------- change log

  /** Appends one change of the entry being applied. Must run inside the apply transaction. */
  private recordChange(type: ChangeType, path: Buffer, record: Buffer | null): void {
    this.changeTables.changes.putSync(changeKey(this.changeVersion, this.changeSequence), encodeChange(type, changedKey(path, type), record));
    this.changeSequence++;
    this.changeCount++;
  }

  /**
   * Drops the oldest versions while more than `retainedChanges` changes are kept, whole versions
   * only and never `newestVersion` (what was just applied). Amortised one removal per change.
   */
  private pruneChanges(newestVersion: number): void {
    if (this.changeCount <= this.retainedChanges) return;
    let droppedVersion = -1;
    for (;;) {
      const keys = [...this.changeTables.changes.getKeys({ start: lowestKey, limit: folderBatchSize })].map((key) => Buffer.from(key));
      if (keys.length === 0) break;
      let stop = false;
      for (const key of keys) {
        const version = readUint64(key, 0);
        if (version !== droppedVersion) {
          if (this.changeCount <= this.retainedChanges || version >= newestVersion) {
            stop = true;
            break;
          }
          droppedVersion = version;
        }
        this.changeTables.changes.removeSync(key);
        this.changeCount--;
      }
      if (stop) break;
    }
    if (droppedVersion >= 0) this.changeStart = Math.max(this.changeStart, droppedVersion + 1);
  }

  private writeChangeLogPosition(): void {
    const start = Buffer.allocUnsafe(8);
    writeUint64(start, 0, this.changeStart);
    const count = Buffer.allocUnsafe(8);
    writeUint64(count, 0, this.changeCount);
    this.changeTables.changeLog.putSync(changeStartKey, start);
    this.changeTables.changeLog.putSync(changeCountKey, count);
  }

  // --------------------------------------------------------------------------- file content

  /**
   * Stores a chunk unless it is already there. A new chunk starts unreferenced (an orphan as of
   * `index`); an orphan that is stored again is refreshed to `index`, so an upload in progress
   * keeps its chunks from collection however old their first copy is.
   */
  private storeChunk(data: Uint8Array, index: number): { hash: Buffer; stored: boolean } {
    const hash = Buffer.from(chunkHash(data));
    const existing = this.tables.chunkReferences.getBinary(hash);
    if (existing !== undefined) {
      const reference = decodeChunkReference(existing);
      if (reference.referenceCount === 0 && reference.orphanedIndex !== index) {
        this.tables.orphanChunks.removeSync(orphanKey(reference.orphanedIndex, hash));
        this.tables.orphanChunks.putSync(orphanKey(index, hash), Buffer.alloc(0));
        this.tables.chunkReferences.putSync(hash, encodeChunkReference({ ...reference, orphanedIndex: index }));
      }
      return { hash, stored: false };
    }
    this.tables.chunks.putSync(hash, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    this.tables.chunkReferences.putSync(hash, encodeChunkReference({ referenceCount: 0, orphanedIndex: index, sizeBytes: data.byteLength }));
    this.tables.orphanChunks.putSync(orphanKey(index, hash), Buffer.alloc(0));
    return { hash, stored: true };
  }

  /** Points `key` at new content (chunks already stored), releasing the content it replaces. */
  private writeFile(
    key: string,
    chunks: readonly ContentChunk[],
    sizeBytes: number,
    modeBits: number,
    modifiedMilliseconds: number,
    index: number,
  ): void {
    const path = keyBytes(key);
    const previous = getPath(this.tables.files, path);
    // References first, release second: a chunk shared by the old and new content never
    // passes through zero (and the orphan index).
    let endOffset = 0;
    for (const chunk of chunks) {
      endOffset += chunk.sizeBytes;
      const hash = Buffer.from(chunk.hash.buffer, chunk.hash.byteOffset, chunk.hash.byteLength);
      this.tables.fileChunks.putSync(fileChunkKey(index, endOffset), hash);
      if (!chunk.referenced) this.addReference(hash);
    }
    if (previous !== undefined) {
      const previousRecord = decodeFileRecord(previous);
      this.releaseContent(previousRecord, index);
      this.fileBytes -= previousRecord.sizeBytes;
    }
    this.fileBytes += sizeBytes;
    const record: FileRecord = { sizeBytes, modeBits, modifiedMilliseconds, version: index, contentIndex: index, chunkCount: chunks.length };
    const encoded = encodeFileRecord(record);
    putPath(this.tables.files, path, encoded);
    this.recordChange('put', path, encoded);
  }

  /** Drops a file content's chunk list and its references (the file record is the caller's). */
  private releaseContent(record: FileRecord, index: number): void {
    if (record.chunkCount === 0) return;
    const start = fileChunkKey(record.contentIndex, 0);
    const prefix = start.subarray(0, 8);
    // Collected first, then changed: the list is bounded by maxChunksPerFile.
    const entries = [...this.tables.fileChunks.getRange({ start })].filter(({ key }) => startsWith(key, prefix));
    if (entries.length !== record.chunkCount) {
      throw new Error(`releaseContent: content ${record.contentIndex} lists ${entries.length} chunks, its file says ${record.chunkCount}`);
    }
    for (const { key, value } of entries) {
      this.tables.fileChunks.removeSync(key);
      this.dropReference(value, index);
    }
  }

  private addReference(hash: Buffer): void {
    const existing = this.tables.chunkReferences.getBinary(hash);
    if (existing === undefined) throw new Error(`addReference: chunk ${hash.toString('hex')} is not stored`);
    const reference = decodeChunkReference(existing);
    if (reference.referenceCount === 0) this.tables.orphanChunks.removeSync(orphanKey(reference.orphanedIndex, hash));
    this.tables.chunkReferences.putSync(hash, encodeChunkReference({ ...reference, referenceCount: reference.referenceCount + 1, orphanedIndex: 0 }));
  }

  private dropReference(hash: Buffer, index: number): void {
    const existing = this.tables.chunkReferences.getBinary(hash);
    if (existing === undefined) throw new Error(`dropReference: chunk ${hash.toString('hex')} is not stored`);
    const reference = decodeChunkReference(existing);
    if (reference.referenceCount < 1) throw new Error(`dropReference: chunk ${hash.toString('hex')} has no references`);
    const referenceCount = reference.referenceCount - 1;
    if (referenceCount === 0) this.tables.orphanChunks.putSync(orphanKey(index, hash), Buffer.alloc(0));
    this.tables.chunkReferences.putSync(hash, encodeChunkReference({ ...reference, referenceCount, orphanedIndex: referenceCount === 0 ? index : 0 }));
  }

  // ----------------------------------------------------------------------------- namespace

  /** A write of a file at `key` is possible: no ancestor is a file and `key` is not a folder. */
  private checkFileTarget(key: string): Outcome | null {
    const ancestor = this.fileAncestor(key);
    if (ancestor !== null) return rejected('FailedPrecondition', `cannot write ${JSON.stringify(key)}: ${JSON.stringify(ancestor)} is a file`);
    if (this.folderExists(key)) return rejected('FailedPrecondition', `cannot write ${JSON.stringify(key)}: it is a folder`);
    return null;
  }

  /** The nearest ancestor of `key` that is a file, or null. One lookup per path segment. */
  private fileAncestor(key: string): string | null {
    for (let slash = key.indexOf('/'); slash >= 0; slash = key.indexOf('/', slash + 1)) {
      const ancestor = key.slice(0, slash);
      if (getPath(this.tables.files, keyBytes(ancestor)) !== undefined) return ancestor;
    }
    return null;
  }

  private folderExists(key: string): boolean {
    const folder = folderPath(key);
    return firstWithPrefix(this.tables.files, folder) !== undefined || firstWithPrefix(this.tables.folders, folder) !== undefined;
  }

  /** The first explicit folder strictly below `folder` (a path ending in '/'). */
  private firstFolderBelow(folder: Buffer): Buffer | undefined {
    for (const { path } of scanPaths(this.tables.folders, folder, true)) return startsWith(path, folder) ? path : undefined;
    return undefined;
  }

  /** Counts files and explicit folders under `folder` (stopping past `limit`) and their longest path. */
  private measureFolder(folder: Buffer, limit: number): { count: number; longestPathBytes: number } {
    let count = 0;
    let longestPathBytes = 0;
    for (const table of [this.tables.files, this.tables.folders]) {
      for (const { path } of scanPaths(table, folder, false)) {
        if (!startsWith(path, folder) || count > limit) break;
        count++;
        longestPathBytes = Math.max(longestPathBytes, path.length);
      }
    }
    return { count, longestPathBytes };
  }

  /** Up to folderBatchSize entries starting with `prefix`, copied so that the caller may change the table. */
  private takeWithPrefix(table: Tables['files'], prefix: Buffer): { path: Buffer; record: Buffer }[] {
    const batch: { path: Buffer; record: Buffer }[] = [];
    for (const { path, record } of scanPaths(table, prefix, false)) {
      if (!startsWith(path, prefix) || batch.length === folderBatchSize) break;
      batch.push({ path: Buffer.from(path), record: Buffer.from(record) });
    }
    return batch;
  }

  /** Moves every entry of a path table from under `fromFolder` to under `toFolder`. */
  private moveWithPrefix(name: 'files' | 'folders', fromFolder: Buffer, toFolder: Buffer, update: (record: Buffer) => Buffer): number {
    const table = this.tables[name];
    let moved = 0;
    for (;;) {
      // Destinations never start with fromFolder (to is not inside from), so re-seeking at
      // fromFolder finds only what is left to move.
      const batch = this.takeWithPrefix(table, fromFolder);
      if (batch.length === 0) return moved;
      for (const { path, record } of batch) {
        removePath(table, path);
        const destination = Buffer.concat([toFolder, path.subarray(fromFolder.length)]);
        const updated = update(record);
        putPath(table, destination, updated);
        this.recordChange(name === 'files' ? 'delete' : 'removeFolder', path, null);
        this.recordChange(name === 'files' ? 'put' : 'makeFolder', destination, updated);
      }
      moved += batch.length;
    }
  }
}

/** Folder paths end with '/'; a change names the folder by its key. */
function changedKey(path: Buffer, type: ChangeType): Buffer {
  const folder = type === 'makeFolder' || type === 'removeFolder';
  return folder && path[path.length - 1] === 0x2f ? path.subarray(0, path.length - 1) : path;
}

/** Makes a rename in the folder of `path` durable (the folder's entry, not just the file's data). */
async function syncFolderOf(path: string): Promise<void> {
  const folder = await fs.promises.open(dirname(path), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
