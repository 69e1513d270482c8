// The LMDB adapter of the Raft storage port, used by the raft worker. It owns one folder (e.g.
// <data>/raft) holding its own LMDB environment, separate from the state machine's, so that the
// log's write transactions never wait on the state store's and vice versa:
//
//   <folder>/data.mdb, lock.mdb     LMDB: database `entries` (index → entry) and `meta`
//   <folder>/dfs.lock               the process lock (src/store/process-lock.ts)
//   <folder>/snapshots/             snapshot-<index>-<term>-<generation>.bin (the current one)
//                                   incoming-<index>-<term>.part (being received from the leader)
//
// Snapshots are files, not LMDB values: they can be gigabytes, and LMDB would copy a value that
// large into one transaction and keep it in the memory map forever after.
//
// Durability. lmdb-js opens environments with overlappingSync on Linux, and DESIGN.md warns that a
// commit may then be visible before it is on disk. That holds for its asynchronous writes, not
// for transactionSync: reading write.js and mdb.c of lmdb 3.5.6 and tracing with strace shows that
// a transactionSync commit calls fdatasync() and then writes the meta page through an O_DSYNC
// descriptor before it returns, with overlappingSync on or off. `db.flushed` does not track
// transactionSync commits at all (it resolves at once), so it cannot be the durability point here.
// This adapter therefore opens the environment without overlappingSync (plain LMDB commits, no
// boot-id based recovery to reason about) and pays the sync inside the commit: persist() returns
// only once the whole batch is durable, with one sync per batch, never one per entry, and flush()
// has nothing left to wait for. test/bench/raft-log-lmdb.bench.ts measures both settings.
//
// Reads are synchronous because the Raft core calls them synchronously; lmdb-js serves them from
// the memory map in a read transaction that it renews after every commit of this process.

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';

import { DfsError } from '../errors.js';
import { CompactedError, UnavailableError, type RaftStorage } from '../raft/storage.js';
import type { ConfState, Entry, HardState, NodeId, SnapshotChunk, SnapshotMeta } from '../raft/types.js';
import { checkDataFileHeader, dataFileName, lmdbLockFileName, type DataFileWording } from './lmdb-file.js';
import { acquireProcessLock, errorCode, lockFileName, type ProcessLock } from './process-lock.js';
import { decodeEntry, decodeValue, encodeEntry, encodeValue, isConfState, readEntryHeader } from './raft-log-codec.js';

/** The layout of the records below; a folder written with another version is refused. */
export const raftLogFormatVersion = 1;

/** Upper bound of one entry's data: entries are file chunks, far below this. */
export const maxEntryDataBytes = 64 * 1024 * 1024;
/** Upper bound of one received snapshot chunk. */
export const maxSnapshotChunkBytes = 64 * 1024 * 1024;
/** Upper bound of one snapshotData() result, which is held in memory whole. */
export const maxSnapshotReadBytes = 64 * 1024 * 1024;
/** Upper bound of a node id and a cluster id. */
export const maxIdentifierLength = 256;

export type RaftLogLogger = Pick<Logger, 'info' | 'warn'>;

/** A new cluster id, for the node that bootstraps a cluster (the others adopt it). */
export function newClusterId(): string {
  return randomUUID();
}

export interface OpenRaftLogOptions {
  /** The log's own folder, e.g. <data>/raft; created when missing. */
  readonly path: string;
  /** This node's id: a folder holding another node's log is refused. */
  readonly nodeId: NodeId;
  readonly logger: RaftLogLogger;
  /**
   * Opens LMDB with overlappingSync (lmdb-js's default on Linux). Off by default: see the file's
   * comment. Exists so that the benchmark can measure both settings.
   */
  readonly overlappingSync?: boolean;
  /**
   * Take the folder's process lock (default). The node's supervisor passes false: it holds the
   * lock of the whole data folder for the process's lifetime, so that a Raft worker restarted
   * after a crash does not find its own process's lock in the way.
   */
  readonly lockFolder?: boolean;
}

/** Stands in for the process lock when the caller holds a lock of an enclosing folder. */
const unlocked: ProcessLock = { path: '', release() {} };

/** What the driver persists of one Ready, at once; a Ready itself has this shape. */
export interface PersistBatch {
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  readonly snapshotChunk: SnapshotChunk | null;
}

/** The identity record: whose log this is and in which layout. */
interface Identity {
  readonly formatVersion: number;
  readonly clusterId: string | null;
  readonly nodeId: NodeId;
}

/** The snapshot record: the port's meta plus where its bytes are. */
interface SnapshotRecord {
  readonly meta: SnapshotMeta;
  /** The file in snapshots/, null when there is no snapshot (index 0). */
  readonly fileName: string | null;
  /** Counts installed snapshots, so that a new file never takes the current one's name. */
  readonly generation: number;
}

/** A snapshot being received in chunks. */
interface PendingSnapshot {
  readonly meta: SnapshotMeta;
  readonly path: string;
  readonly descriptor: number;
  nextOffset: number;
}

/** A snapshot file already renamed into place, waiting for its record to commit. */
interface PreparedSnapshot {
  readonly record: SnapshotRecord;
  readonly path: string;
  /** `through`: a compaction drops the entries up to meta.index; `all`: an installed one drops every entry. */
  readonly discard: 'through' | 'all';
}

const entriesDatabaseName = 'entries';
const metaDatabaseName = 'meta';
const identityKey = 'identity';
const hardStateKey = 'hardState';
const snapshotKey = 'snapshot';
const snapshotsFolderName = 'snapshots';
/** Names of the files this adapter writes in snapshots/; anything else there is left alone. */
const ownSnapshotFilePattern = /^(snapshot-\d+-\d+-\d+\.bin|incoming-\d+-\d+\.part|compact-\d+-\d+\.tmp)$/;

const emptyConfig: ConfState = { voters: [], learners: [] };
const noSnapshot: SnapshotRecord = { meta: { index: 0, term: 0, config: emptyConfig, sizeBytes: 0 }, fileName: null, generation: 0 };
const initialHardState: HardState = { term: 0, vote: null, commit: 0 };

/** Entries by index. */
type EntriesDatabase = Database<Buffer, number>;
/** Identity, hard state and snapshot records by name. */
type MetaDatabase = Database<Buffer, string>;
type Environment = RootDatabase<Buffer, string>;

/**
 * Opens (or creates) the Raft log in `options.path`. Refuses with DfsError 'FailedPrecondition',
 * changing nothing in the folder, when it holds another node's log, a log of an unknown format
 * version, something that is not an LMDB environment or not a dfs raft log, or is locked by a
 * live process.
 */
export async function openRaftLog(options: OpenRaftLogOptions): Promise<LmdbRaftLog> {
  checkIdentifier('node id', options.nodeId);
  const folder = path.resolve(options.path);
  prepareFolder(folder);
  const lock = options.lockFolder === false ? unlocked : await acquireProcessLock({ folder, logger: options.logger });
  let root: Environment | null = null;
  try {
    const state = inspectFolder(folder);
    if (state === 'data') checkDataFileHeader(folder, dataFileWording);
    root = openEnvironment(folder, options.overlappingSync ?? false);
    const log = loadOrCreate(folder, root, lock, options);
    return log;
  } catch (error) {
    if (root !== null) await root.close();
    lock.release();
    throw error;
  }
}

export class LmdbRaftLog implements RaftStorage {
  private currentHardState: HardState;
  private currentSnapshot: SnapshotRecord;
  private lastStoredIndex: number;
  private identity: Identity;
  private pending: PendingSnapshot | null = null;
  /** Open descriptor of the current snapshot file for snapshotData(), opened on first use. */
  private snapshotDescriptor: number | null = null;
  private closed = false;
  private readonly snapshotsFolder: string;

  /** Use openRaftLog(). */
  constructor(
    private readonly folder: string,
    private readonly root: Environment,
    private readonly entriesDatabase: EntriesDatabase,
    private readonly metaDatabase: MetaDatabase,
    private readonly lock: ProcessLock,
    private readonly logger: RaftLogLogger,
    loaded: { identity: Identity; hardState: HardState; snapshot: SnapshotRecord; lastIndex: number },
  ) {
    this.snapshotsFolder = path.join(folder, snapshotsFolderName);
    this.identity = loaded.identity;
    this.currentHardState = loaded.hardState;
    this.currentSnapshot = loaded.snapshot;
    this.lastStoredIndex = loaded.lastIndex;
  }

  // ------------------------------------------------------------------ reads (LogStorage)

  hardState(): HardState {
    this.assertOpen();
    return this.currentHardState;
  }

  snapshot(): SnapshotMeta {
    this.assertOpen();
    return this.currentSnapshot.meta;
  }

  firstIndex(): number {
    this.assertOpen();
    return this.currentSnapshot.meta.index + 1;
  }

  lastIndex(): number {
    this.assertOpen();
    return this.lastStoredIndex;
  }

  term(index: number): number {
    this.assertOpen();
    const snapshotIndex = this.currentSnapshot.meta.index;
    if (index < snapshotIndex) throw new CompactedError(index, snapshotIndex);
    if (index === snapshotIndex) return this.currentSnapshot.meta.term;
    if (index > this.lastStoredIndex) throw new UnavailableError(index, this.lastStoredIndex);
    // The header holds the term: the entry's data is neither decoded nor copied.
    return readEntryHeader(this.storedEntryBytes(index)).term;
  }

  entries(low: number, high: number, maxBytes: number): Entry[] {
    this.assertOpen();
    const snapshotIndex = this.currentSnapshot.meta.index;
    if (low <= snapshotIndex) throw new CompactedError(low, snapshotIndex);
    if (high > this.lastStoredIndex + 1) throw new UnavailableError(high - 1, this.lastStoredIndex);
    const out: Entry[] = [];
    let totalBytes = 0;
    // One lookup per index rather than a cursor over [low, high): the size of each entry is read
    // from its header first, so the entry that would pass maxBytes is never decoded or copied.
    for (let index = low; index < high; index++) {
      const bytes = this.storedEntryBytes(index);
      totalBytes += readEntryHeader(bytes).sizeBytes;
      if (out.length > 0 && totalBytes > maxBytes) break;
      out.push(decodeEntry(index, bytes));
    }
    return out;
  }

  snapshotData(offset: number, maxBytes: number): Uint8Array {
    this.assertOpen();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`snapshotData: offset ${offset} is not a byte offset`);
    if (!(maxBytes >= 0)) throw new RangeError(`snapshotData: maxBytes ${maxBytes} is negative`);
    const length = Math.max(0, Math.min(maxBytes, this.currentSnapshot.meta.sizeBytes - offset));
    if (length === 0) return new Uint8Array(0);
    if (length > maxSnapshotReadBytes) {
      throw new RangeError(`snapshotData: ${length} bytes asked at once; read at most ${maxSnapshotReadBytes} per call`);
    }
    const descriptor = this.openSnapshotForReading();
    const data = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const read = fs.readSync(descriptor, data, done, length - done, offset + done);
      if (read === 0) {
        throw new DfsError('Internal', `snapshot file ${this.snapshotPath() ?? ''} ends at ${offset + done} bytes; its record says ${this.currentSnapshot.meta.sizeBytes}`);
      }
      done += read;
    }
    return data;
  }

  // ------------------------------------------------------------------ writes (RaftStorage)

  append(entries: readonly Entry[]): void {
    this.persist({ entries, hardState: null, snapshotChunk: null });
  }

  setHardState(hardState: HardState): void {
    this.persist({ entries: [], hardState, snapshotChunk: null });
  }

  writeSnapshotChunk(chunk: SnapshotChunk): void {
    this.persist({ entries: [], hardState: null, snapshotChunk: chunk });
  }

  compact(meta: SnapshotMeta, data: Uint8Array): void {
    this.checkCompaction(meta);
    const temporaryPath = path.join(this.snapshotsFolder, `compact-${meta.index}-${meta.term}.tmp`);
    try {
      writeWholeFile(temporaryPath, data);
      this.installCompaction(meta, temporaryPath);
    } catch (error) {
      removeQuietly(temporaryPath);
      throw error;
    }
  }

  /**
   * compact(), for a snapshot the state machine already wrote to `filePath`: the file is renamed
   * into snapshots/ (so it must be on the same filesystem) and belongs to the log from then on.
   * Its size becomes meta.sizeBytes. When the call throws, the file is left where it was.
   */
  compactFromFile(meta: SnapshotMeta, filePath: string): void {
    this.checkCompaction(meta);
    const stat = fs.statSync(filePath);
    if (!stat.isFile()) throw new DfsError('InvalidArgument', `compactFromFile: ${filePath} is not a regular file`);
    this.installCompaction(meta, filePath);
  }

  /**
   * Writes everything one Ready asks for in one LMDB transaction, durable when this returns:
   * the snapshot chunk (installing the snapshot when it is done), then the entries (discarding
   * the stored ones from entries[0].index on), then the hard state. Everything is checked before
   * anything is written, so a refused batch changes nothing. A batch costs one sync of the LMDB
   * commit, however many entries it holds; a last snapshot chunk adds a sync of the snapshot file
   * and of its folder, which must be durable before the record that points at them.
   */
  persist(batch: PersistBatch): void {
    this.assertOpen();
    const chunk = batch.snapshotChunk;
    let snapshotIndex = this.currentSnapshot.meta.index;
    let lastIndex = this.lastStoredIndex;
    if (chunk !== null) {
      this.checkChunk(chunk);
      if (chunk.done) {
        snapshotIndex = chunk.meta.index;
        lastIndex = chunk.meta.index;
      }
    }
    checkEntries(batch.entries, snapshotIndex, lastIndex);
    if (batch.hardState !== null) checkHardState(batch.hardState);
    const received = chunk === null ? null : this.writeChunk(chunk);
    const prepared = received === null ? null : this.prepareSnapshotFile(received.meta, received.path, 'all');
    this.commit(prepared, batch.entries, batch.hardState);
  }

  /**
   * Resolves once everything persisted so far is on disk. Every write of this adapter is a
   * transactionSync that syncs before it returns (see the file's comment), so this resolves at
   * once; the driver awaits it anyway so that its order "persist, flush, send" holds whichever
   * commit mode the log uses.
   */
  async flush(): Promise<void> {
    this.assertOpen();
    await this.root.flushed;
  }

  // ------------------------------------------------------------------ identity and files

  /** The cluster this node belongs to; null until it bootstraps one or joins one. */
  clusterId(): string | null {
    this.assertOpen();
    return this.identity.clusterId;
  }

  /**
   * Records the cluster id once: the bootstrapping node generates it, a joining node adopts its
   * leader's. Setting the same id again does nothing; another id is refused.
   */
  setClusterId(clusterId: string): void {
    this.assertOpen();
    checkIdentifier('cluster id', clusterId);
    if (this.identity.clusterId === clusterId) return;
    if (this.identity.clusterId !== null) {
      throw new DfsError(
        'FailedPrecondition',
        `this node belongs to cluster ${this.identity.clusterId} and cannot join cluster ${clusterId}; ` +
          `to move it, stop it and start it with an empty data folder`,
      );
    }
    const identity: Identity = { ...this.identity, clusterId };
    this.root.transactionSync(() => {
      this.metaDatabase.putSync(identityKey, encodeValue(identity));
    });
    this.identity = identity;
  }

  nodeId(): NodeId {
    return this.identity.nodeId;
  }

  /**
   * The current snapshot's file, for the state machine to restore from; null when there is none.
   * It is deleted when the next snapshot replaces it: open it before compacting again (an open
   * descriptor keeps reading the old bytes).
   */
  snapshotPath(): string | null {
    this.assertOpen();
    return this.currentSnapshot.fileName === null ? null : path.join(this.snapshotsFolder, this.currentSnapshot.fileName);
  }

  /** The folder this log owns. */
  path(): string {
    return this.folder;
  }

  /** Closes the environment and the files and releases the process lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeSnapshotDescriptor();
    this.dropPending();
    try {
      await this.root.close();
    } finally {
      this.lock.release();
    }
  }

  // ------------------------------------------------------------------ internals

  private assertOpen(): void {
    if (this.closed) throw new Error(`the raft log in ${this.folder} is closed`);
  }

  /** The stored bytes of an entry known to exist; valid only until the next LMDB read. */
  private storedEntryBytes(index: number): Buffer {
    const bytes = this.entriesDatabase.getBinaryFast(index);
    if (bytes === undefined) {
      throw new DfsError(
        'Internal',
        `entry ${index} is missing from the raft log in ${this.folder}, which should hold ${this.firstIndex()}..${this.lastStoredIndex}`,
      );
    }
    return bytes;
  }

  private checkCompaction(meta: SnapshotMeta): void {
    this.assertOpen();
    checkSnapshotMeta(meta);
    const snapshotIndex = this.currentSnapshot.meta.index;
    if (meta.index <= snapshotIndex) throw new CompactedError(meta.index, snapshotIndex);
    if (meta.index > this.lastStoredIndex) throw new UnavailableError(meta.index, this.lastStoredIndex);
    const term = this.term(meta.index);
    if (term !== meta.term) {
      throw new Error(`compact: snapshot term ${meta.term} differs from the entry's term ${term} at ${meta.index}`);
    }
  }

  /** The one implementation behind compact() and compactFromFile(). */
  private installCompaction(meta: SnapshotMeta, sourcePath: string): void {
    const prepared = this.prepareSnapshotFile(meta, sourcePath, 'through');
    this.commit(prepared, [], null);
  }

  private checkChunk(chunk: SnapshotChunk): void {
    checkSnapshotMeta(chunk.meta);
    const length = chunk.data.byteLength;
    if (length > maxSnapshotChunkBytes) {
      throw new RangeError(`snapshot chunk of ${length} bytes is larger than the limit of ${maxSnapshotChunkBytes}`);
    }
    const pending = this.pending;
    const continues =
      pending !== null &&
      pending.meta.index === chunk.meta.index &&
      pending.meta.term === chunk.meta.term &&
      pending.nextOffset === chunk.offset;
    if (chunk.offset !== 0 && !continues) {
      throw new Error(`snapshot chunk at offset ${chunk.offset} of snapshot ${chunk.meta.index} does not continue the pending one`);
    }
    const end = chunk.offset + length;
    if (end > chunk.meta.sizeBytes) {
      throw new Error(`snapshot chunk ends at ${end} bytes, past the snapshot's size of ${chunk.meta.sizeBytes}`);
    }
    if (chunk.done && end !== chunk.meta.sizeBytes) {
      throw new Error(`last snapshot chunk ends at ${end} bytes, but the snapshot has ${chunk.meta.sizeBytes}`);
    }
  }

  /** Writes a checked chunk to the incoming file; when it is the last one, returns that file. */
  private writeChunk(chunk: SnapshotChunk): { meta: SnapshotMeta; path: string } | null {
    if (chunk.offset === 0) {
      // Offset 0 starts a new pending snapshot, dropping any other (or a restart of this one).
      this.dropPending();
      const incomingPath = path.join(this.snapshotsFolder, `incoming-${chunk.meta.index}-${chunk.meta.term}.part`);
      this.pending = { meta: chunk.meta, path: incomingPath, descriptor: fs.openSync(incomingPath, 'w', 0o644), nextOffset: 0 };
    }
    const pending = this.pending;
    if (pending === null) throw new Error('snapshot chunk: no pending snapshot after the checks');
    try {
      writeAll(pending.descriptor, chunk.data, chunk.offset);
      pending.nextOffset += chunk.data.byteLength;
      if (!chunk.done) return null;
      // The bytes are on disk before the record that points at them can commit.
      fs.fsyncSync(pending.descriptor);
      fs.closeSync(pending.descriptor);
      this.pending = null;
      return { meta: { ...chunk.meta, sizeBytes: pending.nextOffset }, path: pending.path };
    } catch (error) {
      this.dropPending();
      throw error;
    }
  }

  /** Makes `sourcePath` durable under its final name in snapshots/; the record is not written yet. */
  private prepareSnapshotFile(meta: SnapshotMeta, sourcePath: string, discard: PreparedSnapshot['discard']): PreparedSnapshot {
    const generation = this.currentSnapshot.generation + 1;
    const fileName = `snapshot-${meta.index}-${meta.term}-${generation}.bin`;
    const target = path.join(this.snapshotsFolder, fileName);
    const descriptor = fs.openSync(sourcePath, 'r');
    let sizeBytes: number;
    try {
      sizeBytes = fs.fstatSync(descriptor).size;
      fs.fsyncSync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
    try {
      fs.renameSync(sourcePath, target);
    } catch (error) {
      if (errorCode(error) === 'EXDEV') {
        throw new DfsError(
          'FailedPrecondition',
          `snapshot file ${sourcePath} is on another filesystem than ${this.snapshotsFolder}; write it on the same one so that it can be moved, not copied`,
        );
      }
      throw error;
    }
    // The rename is durable only once the folder that now names the file is synced.
    fsyncFolder(this.snapshotsFolder);
    return { record: { meta: { ...meta, sizeBytes }, fileName, generation }, path: target, discard };
  }

  /** The one write transaction of a batch; caches change only after it commits. */
  private commit(prepared: PreparedSnapshot | null, entries: readonly Entry[], hardState: HardState | null): void {
    if (prepared === null && entries.length === 0 && hardState === null) return;
    const snapshotIndexBefore = this.currentSnapshot.meta.index;
    const lastBefore = this.lastStoredIndex;
    let lastIndex = lastBefore;
    if (prepared !== null && prepared.discard === 'all') lastIndex = prepared.record.meta.index;
    const first = entries[0];
    try {
      this.root.transactionSync(() => {
        if (prepared !== null) {
          this.metaDatabase.putSync(snapshotKey, encodeValue(prepared.record));
          if (prepared.discard === 'all') {
            // Drops the whole database in this transaction: faster than one delete per entry.
            this.entriesDatabase.clearSync();
          } else {
            for (let index = snapshotIndexBefore + 1; index <= prepared.record.meta.index; index++) {
              this.entriesDatabase.removeSync(index);
            }
          }
        }
        if (first !== undefined) {
          for (let index = first.index; index <= lastIndex; index++) this.entriesDatabase.removeSync(index);
          for (const entry of entries) this.entriesDatabase.putSync(entry.index, encodeEntry(entry));
        }
        if (hardState !== null) this.metaDatabase.putSync(hardStateKey, encodeValue(hardState));
      });
    } catch (error) {
      // The transaction rolled back: the renamed file is referenced by nothing.
      if (prepared !== null) removeQuietly(prepared.path);
      throw error;
    }
    const last = entries[entries.length - 1];
    this.lastStoredIndex = last !== undefined ? last.index : lastIndex;
    if (hardState !== null) this.currentHardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    if (prepared !== null) this.replaceSnapshot(prepared);
  }

  private replaceSnapshot(prepared: PreparedSnapshot): void {
    const previousPath = this.snapshotPath();
    this.closeSnapshotDescriptor();
    this.currentSnapshot = prepared.record;
    // At most the current snapshot file (and an incoming one) is kept.
    if (previousPath !== null && previousPath !== prepared.path) removeQuietly(previousPath);
    this.logger.info(
      { folder: this.folder, snapshotIndex: prepared.record.meta.index, sizeBytes: prepared.record.meta.sizeBytes, source: prepared.discard === 'all' ? 'leader' : 'compaction' },
      'snapshot installed',
    );
  }

  private openSnapshotForReading(): number {
    if (this.snapshotDescriptor === null) {
      const snapshotPath = this.snapshotPath();
      if (snapshotPath === null) throw new Error('snapshotData: no snapshot file');
      this.snapshotDescriptor = fs.openSync(snapshotPath, 'r');
    }
    return this.snapshotDescriptor;
  }

  private closeSnapshotDescriptor(): void {
    if (this.snapshotDescriptor !== null) fs.closeSync(this.snapshotDescriptor);
    this.snapshotDescriptor = null;
  }

  private dropPending(): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    try {
      fs.closeSync(pending.descriptor);
    } catch {
      // Already closed by the failed write that led here.
    }
    removeQuietly(pending.path);
  }
}

// -------------------------------------------------------------------- opening

/** Creates the folder when missing; refuses a path that is not a folder. */
function prepareFolder(folder: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(folder);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
    fs.mkdirSync(folder, { recursive: true });
    fsyncFolder(path.dirname(folder));
    return;
  }
  if (!stat.isDirectory()) {
    throw new DfsError('FailedPrecondition', `the raft log path ${folder} is not a folder; point the data folder elsewhere`);
  }
}

/**
 * 'empty' when the folder holds nothing of value (a new node, or a creation that stopped before
 * LMDB wrote anything), 'data' when it holds data.mdb. Anything else is refused untouched.
 */
function inspectFolder(folder: string): 'empty' | 'data' {
  const names = fs.readdirSync(folder);
  if (names.includes(dataFileName)) return 'data';
  const others = names.filter((name) => name !== lockFileName && name !== lmdbLockFileName && !name.startsWith(`${lockFileName}.stale-`));
  if (others.length === 0) return 'empty';
  throw new DfsError(
    'FailedPrecondition',
    `${folder} holds ${describeNames(others)} but no ${dataFileName}: it is not a dfs raft log folder, or its log was ` +
      `deleted. dfs changed nothing in it. Point the data folder at this node's own folder, or move these files away ` +
      `to start the node empty (it then rejoins as a new member).`,
  );
}

/** How checkDataFileHeader speaks of this folder: a data.mdb that is not LMDB's is refused. */
const dataFileWording: DataFileWording = {
  expected: 'a dfs raft log',
  remedy:
    'Restore the folder from a backup, or move it away to start this node empty (it then rejoins as a new member ' +
    'and receives a snapshot from the leader).',
  // An empty file is what an interrupted first open leaves, and LMDB initialises it; unless the
  // log had been created (it has snapshots/): then refuse before LMDB writes to it.
  emptyFileProblem: (dataPath) => (fs.existsSync(path.join(path.dirname(dataPath), snapshotsFolderName)) ? `${dataPath} ${logLostMessage}` : null),
};

const logLostMessage =
  `is empty but has a ${snapshotsFolderName}/ folder beside it: its log was lost. Starting empty would forget the ` +
  `node's vote and log. dfs changed nothing. Restore the folder from a backup, or move it away to start this node ` +
  `empty (it then rejoins as a new member).`;

function openEnvironment(folder: string, overlappingSync: boolean): Environment {
  try {
    return open<Buffer, string>({
      path: folder,
      // A folder name with a dot in it would otherwise be taken for a file name.
      noSubdir: false,
      encoding: 'binary',
      maxDbs: 4,
      overlappingSync,
    });
  } catch (error) {
    throw new DfsError(
      'FailedPrecondition',
      `LMDB cannot open the raft log in ${folder}: ${error instanceof Error ? error.message : String(error)}. ` +
        `dfs changed nothing; if the folder is corrupt, restore it from a backup or move it away to start this node empty.`,
    );
  }
}

function loadOrCreate(folder: string, root: Environment, lock: ProcessLock, options: OpenRaftLogOptions): LmdbRaftLog {
  const refuse = (what: string): DfsError =>
    new DfsError('FailedPrecondition', `the raft log in ${folder} ${what}. dfs changed nothing in the folder.`);
  // Named databases are keys of LMDB's main database: listing them tells ours from anything else
  // before a named database is opened, which would create it.
  let names: string[];
  try {
    names = [...root.getKeys({ limit: 16 })].map((key) => String(key));
  } catch (error) {
    throw refuse(`is an LMDB environment whose main database cannot be read (${error instanceof Error ? error.message : String(error)})`);
  }
  const fresh = names.length === 0;
  const foreign = names.filter((name) => name !== entriesDatabaseName && name !== metaDatabaseName);
  if (foreign.length > 0 || (!fresh && !names.includes(metaDatabaseName))) {
    throw refuse(
      `is an LMDB environment that is not a dfs raft log (it holds ${describeNames(names)}). ` +
        `Point the data folder at this node's own folder, or move this one away to start the node empty`,
    );
  }
  const snapshotsFolder = path.join(folder, snapshotsFolderName);
  if (fresh && fs.existsSync(snapshotsFolder)) {
    // A new log gets its snapshots folder only after its identity record commits, so an empty
    // environment beside one means data.mdb was lost or emptied: starting empty would forget the
    // node's vote and log, which Raft's safety rests on.
    throw new DfsError('FailedPrecondition', `the raft log in ${folder} ${logLostMessage}`);
  }
  const entriesDatabase = root.openDB<Buffer, number>({ name: entriesDatabaseName, encoding: 'binary' });
  const metaDatabase = root.openDB<Buffer, string>({ name: metaDatabaseName, encoding: 'binary' });
  if (fresh) {
    const identity: Identity = { formatVersion: raftLogFormatVersion, clusterId: null, nodeId: options.nodeId };
    root.transactionSync(() => {
      metaDatabase.putSync(identityKey, encodeValue(identity));
    });
    fs.mkdirSync(snapshotsFolder);
    fsyncFolder(folder);
    options.logger.info({ folder, nodeId: options.nodeId }, 'created a new raft log');
    return new LmdbRaftLog(folder, root, entriesDatabase, metaDatabase, lock, options.logger, {
      identity,
      hardState: initialHardState,
      snapshot: noSnapshot,
      lastIndex: 0,
    });
  }

  const identity = readRecord(metaDatabase, identityKey, isIdentity, refuse, 'identity');
  if (identity === undefined) throw refuse(`has dfs's databases but no identity record: it is incomplete or corrupt`);
  if (identity.formatVersion !== raftLogFormatVersion) {
    throw refuse(
      `has format version ${identity.formatVersion}; this dfs reads version ${raftLogFormatVersion} only ` +
        `(it was written by ${identity.formatVersion > raftLogFormatVersion ? 'a newer' : 'an older'} dfs). ` +
        `Run a dfs that reads format ${identity.formatVersion}`,
    );
  }
  if (identity.nodeId !== options.nodeId) {
    throw refuse(
      `belongs to node '${identity.nodeId}', but this node is '${options.nodeId}'. Each node needs its own data ` +
        `folder: fix the node id or the data folder in the configuration`,
    );
  }
  const hardState = readRecord(metaDatabase, hardStateKey, isHardState, refuse, 'hard state') ?? initialHardState;
  const snapshot = readRecord(metaDatabase, snapshotKey, isSnapshotRecord, refuse, 'snapshot') ?? noSnapshot;
  const firstKey = firstOf(entriesDatabase.getKeys({ limit: 1 }));
  const lastKey = firstOf(entriesDatabase.getKeys({ reverse: true, limit: 1 }));
  if (firstKey !== undefined && firstKey !== snapshot.meta.index + 1) {
    throw refuse(`holds entries from ${String(firstKey)}, but its snapshot ends at ${snapshot.meta.index}: the log is corrupt`);
  }
  if (lastKey !== undefined && typeof lastKey !== 'number') throw refuse(`holds an entry key that is not an index: the log is corrupt`);
  if (snapshot.fileName !== null) {
    const snapshotPath = path.join(snapshotsFolder, snapshot.fileName);
    let sizeBytes: number | null = null;
    try {
      sizeBytes = fs.statSync(snapshotPath).size;
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
    if (sizeBytes !== snapshot.meta.sizeBytes) {
      throw refuse(
        `records a snapshot at index ${snapshot.meta.index} in ${snapshotPath} of ${snapshot.meta.sizeBytes} bytes, but ` +
          (sizeBytes === null ? 'that file is missing' : `that file has ${sizeBytes} bytes`) +
          `. Restore the file from a backup, or move the folder away to start this node empty`,
      );
    }
  }
  fs.mkdirSync(snapshotsFolder, { recursive: true });
  removeLeftovers(snapshotsFolder, snapshot.fileName, options.logger);
  const lastIndex = typeof lastKey === 'number' ? lastKey : snapshot.meta.index;
  options.logger.info(
    { folder, nodeId: identity.nodeId, clusterId: identity.clusterId, snapshotIndex: snapshot.meta.index, lastIndex, term: hardState.term },
    'opened the raft log',
  );
  return new LmdbRaftLog(folder, root, entriesDatabase, metaDatabase, lock, options.logger, { identity, hardState, snapshot, lastIndex });
}

/** Deletes what an interrupted install or transfer left in snapshots/: files of ours but not the current one. */
function removeLeftovers(snapshotsFolder: string, currentFileName: string | null, logger: RaftLogLogger): void {
  for (const name of fs.readdirSync(snapshotsFolder)) {
    if (name === currentFileName || !ownSnapshotFilePattern.test(name)) continue;
    removeQuietly(path.join(snapshotsFolder, name));
    logger.warn({ file: path.join(snapshotsFolder, name) }, 'removed a snapshot file left by an interrupted transfer or compaction');
  }
}

function readRecord<T>(
  database: MetaDatabase,
  key: string,
  isValid: (value: unknown) => value is T,
  refuse: (what: string) => DfsError,
  what: string,
): T | undefined {
  const bytes = database.get(key);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = decodeValue(bytes);
  } catch (error) {
    throw refuse(`holds a ${what} record that is not msgpack (${error instanceof Error ? error.message : String(error)}): it is corrupt`);
  }
  if (!isValid(value)) throw refuse(`holds a ${what} record of an unknown shape: it is corrupt`);
  return value;
}

// -------------------------------------------------------------------- checks

function checkIdentifier(what: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxIdentifierLength || /[\u0000-\u001f]/.test(value)) {
    throw new DfsError('InvalidArgument', `${what} must be 1 to ${maxIdentifierLength} printable characters`);
  }
}

function checkEntries(entries: readonly Entry[], snapshotIndex: number, lastIndex: number): void {
  const first = entries[0];
  if (first === undefined) return;
  if (first.index <= snapshotIndex) throw new CompactedError(first.index, snapshotIndex);
  if (first.index > lastIndex + 1) {
    throw new Error(`append at ${first.index} leaves a gap after last index ${lastIndex}`);
  }
  entries.forEach((entry, i) => {
    if (entry.index !== first.index + i) throw new Error(`append: entries are not consecutive at ${entry.index}`);
    if (!Number.isSafeInteger(entry.term) || entry.term < 0) throw new Error(`append: entry ${entry.index} has term ${entry.term}`);
    if (entry.kind === 'normal') {
      if (!(entry.data instanceof Uint8Array)) throw new Error(`append: entry ${entry.index} has no binary data`);
      if (entry.data.byteLength > maxEntryDataBytes) {
        throw new RangeError(`append: entry ${entry.index} has ${entry.data.byteLength} bytes of data, more than the limit of ${maxEntryDataBytes}`);
      }
    }
  });
}

function checkHardState(hardState: HardState): void {
  if (!isHardState(hardState)) throw new Error(`hard state ${JSON.stringify(hardState)} is not term, vote and commit`);
}

function checkSnapshotMeta(meta: SnapshotMeta): void {
  const valid =
    Number.isSafeInteger(meta.index) &&
    meta.index >= 1 &&
    Number.isSafeInteger(meta.term) &&
    meta.term >= 1 &&
    Number.isSafeInteger(meta.sizeBytes) &&
    meta.sizeBytes >= 0 &&
    isConfState(meta.config);
  if (!valid) throw new Error(`snapshot meta ${JSON.stringify(meta)} is not a snapshot index, term, size and configuration`);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isIdentity(value: unknown): value is Identity {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    isNonNegativeInteger(record['formatVersion']) &&
    typeof record['nodeId'] === 'string' &&
    (typeof record['clusterId'] === 'string' || record['clusterId'] === null)
  );
}

function isHardState(value: unknown): value is HardState {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    isNonNegativeInteger(record['term']) &&
    isNonNegativeInteger(record['commit']) &&
    (typeof record['vote'] === 'string' || record['vote'] === null)
  );
}

function isSnapshotRecord(value: unknown): value is SnapshotRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const meta = record['meta'];
  if (typeof meta !== 'object' || meta === null) return false;
  const metaRecord = meta as Record<string, unknown>;
  return (
    isNonNegativeInteger(metaRecord['index']) &&
    isNonNegativeInteger(metaRecord['term']) &&
    isNonNegativeInteger(metaRecord['sizeBytes']) &&
    isConfState(metaRecord['config']) &&
    (typeof record['fileName'] === 'string' || record['fileName'] === null) &&
    (record['fileName'] === null || ownSnapshotFilePattern.test(String(record['fileName']))) &&
    isNonNegativeInteger(record['generation'])
  );
}

// -------------------------------------------------------------------- files

function firstOf<T>(iterable: Iterable<T>): T | undefined {
  for (const item of iterable) return item;
  return undefined;
}

function describeNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).map((name) => `'${name.slice(0, 80)}'`);
  return names.length > shown.length ? `${shown.join(', ')} and ${names.length - shown.length} more` : shown.join(', ');
}

function writeAll(descriptor: number, data: Uint8Array, position: number): void {
  let written = 0;
  while (written < data.byteLength) {
    written += fs.writeSync(descriptor, data, written, data.byteLength - written, position + written);
  }
}

/** Writes a new file and syncs it. */
function writeWholeFile(filePath: string, data: Uint8Array): void {
  const descriptor = fs.openSync(filePath, 'w', 0o644);
  try {
    writeAll(descriptor, data, 0);
    fs.fsyncSync(descriptor);
  } finally {
    fs.closeSync(descriptor);
  }
}

/** Makes the folder's entries (a created or renamed file) durable. */
function fsyncFolder(folder: string): void {
  let descriptor: number;
  try {
    descriptor = fs.openSync(folder, 'r');
  } catch (error) {
    // Some platforms cannot open a folder for syncing (Windows); there is nothing more to do there.
    if (errorCode(error) === 'EISDIR' || errorCode(error) === 'EPERM') return;
    throw error;
  }
  try {
    fs.fsyncSync(descriptor);
  } catch (error) {
    if (errorCode(error) !== 'EINVAL' && errorCode(error) !== 'EISDIR') throw error;
  } finally {
    fs.closeSync(descriptor);
  }
}

function removeQuietly(filePath: string): void {
  try {
    fs.unlinkSync(filePath);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}
