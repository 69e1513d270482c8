// What the cache-folder watcher remembers of the files and folders it replicated: for each path
// (relative to the cache folder, '/'-separated), the inode and metadata it had when its content was
// committed, and the namespace version that commit produced. It lets the watcher
// - skip a file whose size, mtime, mode and inode are those it already replicated (chokidar's
//   duplicate events, a restart: "an unchanged file is not sent again");
// - recognise a rename (a new path with the inode of a path that is gone) and replicate it as one;
// - notice, at start, what was removed while the node was down.
//
// The entries live in memory (a Map, plus an inode → path map) and are written through to a small
// LMDB environment in the data folder. Losing the file is harmless: everything is sent again once
// and deletions made while the node was down are not replayed.

import { createHash } from 'node:crypto';

import { open, type RootDatabase } from 'lmdb';

export type IndexEntry =
  | {
      readonly kind: 'file';
      readonly device: number;
      readonly inode: number;
      readonly sizeBytes: number;
      /** The source's mtime, as lstat gives it (sub-millisecond precision kept). */
      readonly modifiedMilliseconds: number;
      readonly modeBits: number;
      /** The namespace version its commit produced. */
      readonly version: number;
      /** When the inode was made (statx btime; 0 where the file system has none): see Observed. */
      readonly birthMilliseconds?: number;
    }
  | {
      readonly kind: 'folder';
      readonly device: number;
      readonly inode: number;
      readonly modeBits: number;
      readonly version: number;
      readonly birthMilliseconds?: number;
    };

/** What the planner reads of the index. */
export interface IndexView {
  get(path: string): IndexEntry | undefined;
  /** The indexed path that has this inode, if any. */
  pathOfInode(device: number, inode: number): string | undefined;
  /** Every indexed path strictly under `folder` ('' is the root). */
  pathsUnder(folder: string): string[];
  paths(): IterableIterator<string>;
}

const cacheFolderKey = '\u0000cacheFolder';

/**
 * LMDB keys are at most 1978 bytes, paths up to 4096: a long path is stored under a hash of it,
 * with the path itself in the value. The hashed key starts with '/', which no path does (a control
 * character would not do: lmdb-js reads a key that starts with one back as another type).
 */
const longestDirectKeyBytes = 1_024;
const hashedKeyPrefix = '/sha256:';

function storageKey(path: string): string {
  if (path.length * 3 <= longestDirectKeyBytes || Buffer.byteLength(path) <= longestDirectKeyBytes) return path;
  return hashedKeyPrefix + createHash('sha256').update(path).digest('hex');
}

function inodeKey(device: number, inode: number): string {
  return `${device}:${inode}`;
}

function isUnder(path: string, folder: string): boolean {
  return folder === '' ? path !== '' : path.startsWith(`${folder}/`);
}

export class CacheIndex implements IndexView {
  private readonly entries = new Map<string, IndexEntry>();
  private readonly inodes = new Map<string, string>();

  private constructor(private readonly database: RootDatabase | null) {}

  /** An index kept only in memory (tests; a node without a data folder for it). */
  static inMemory(): CacheIndex {
    return new CacheIndex(null);
  }

  /**
   * Opens the index in `folder`. An index written for another cache folder is discarded: its
   * paths mean nothing here.
   */
  static open(folder: string, cacheFolder: string): CacheIndex {
    const database = open({ path: folder, compression: false });
    const index = new CacheIndex(database);
    if (database.get(cacheFolderKey) !== cacheFolder) {
      database.clearSync();
      database.putSync(cacheFolderKey, cacheFolder);
      return index;
    }
    for (const { key, value } of database.getRange({})) {
      if (typeof key !== 'string' || key === cacheFolderKey) continue;
      const { path, ...entry } = value as IndexEntry & { path?: string };
      index.remember(path ?? key, entry as IndexEntry);
    }
    return index;
  }

  get size(): number {
    return this.entries.size;
  }

  get(path: string): IndexEntry | undefined {
    return this.entries.get(path);
  }

  pathOfInode(device: number, inode: number): string | undefined {
    return this.inodes.get(inodeKey(device, inode));
  }

  pathsUnder(folder: string): string[] {
    const found: string[] = [];
    for (const path of this.entries.keys()) if (isUnder(path, folder)) found.push(path);
    return found;
  }

  paths(): IterableIterator<string> {
    return this.entries.keys();
  }

  set(path: string, entry: IndexEntry): void {
    this.forget(path);
    this.remember(path, entry);
    const key = storageKey(path);
    void this.database?.put(key, key === path ? entry : { ...entry, path });
  }

  delete(path: string): void {
    if (!this.entries.has(path)) return;
    this.forget(path);
    void this.database?.remove(storageKey(path));
  }

  /** Removes `folder` and everything under it. */
  deleteFolder(folder: string): void {
    for (const path of this.pathsUnder(folder)) this.delete(path);
    this.delete(folder);
  }

  /**
   * Moves the entry of `from` (and, for a folder, every entry under it) to `to`. A rename gives
   * every file it moves a new namespace version: `version`, when the caller knows it.
   */
  rename(from: string, to: string, version?: number): void {
    const moved: [string, IndexEntry][] = [];
    for (const path of [from, ...this.pathsUnder(from)]) {
      const entry = this.entries.get(path);
      if (entry !== undefined) moved.push([to + path.slice(from.length), entry.kind === 'file' && version !== undefined ? { ...entry, version } : entry]);
      this.delete(path);
    }
    for (const [path, entry] of moved) this.set(path, entry);
  }

  async close(): Promise<void> {
    await this.database?.close();
  }

  private remember(path: string, entry: IndexEntry): void {
    this.entries.set(path, entry);
    this.inodes.set(inodeKey(entry.device, entry.inode), path);
  }

  private forget(path: string): void {
    const old = this.entries.get(path);
    if (old === undefined) return;
    this.entries.delete(path);
    const key = inodeKey(old.device, old.inode);
    if (this.inodes.get(key) === path) this.inodes.delete(key);
  }
}
