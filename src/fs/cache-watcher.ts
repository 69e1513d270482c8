// The cache folder's I/O shell: chokidar says which paths changed, lstat says what they are now,
// src/fs/cache-planner.ts decides, and this module carries the decisions out through the node's
// write path (the CacheTarget port: proposals through Raft, answered once applied here).
//
// When a file is sent. A file changed on disk is held until (1) its size, mtime and inode have not
// changed for `stabilityMilliseconds`, and (2) no process on this machine has it open for writing
// (src/fs/open-writers.ts). It is then read a chunk at a time (memory stays bounded whatever its
// size) and, just before the entry that makes it visible is proposed, checked once more: if it
// changed while it was read, the upload is dropped (its chunks become garbage the leader collects)
// and the file waits again. So no half-written file is ever made visible anywhere.
//
// No loops, no repeats: the watcher only reads the cache folder and never writes to it; what it
// sent is remembered in the index (src/fs/cache-index.ts) with the file's inode, size, mtime and
// mode, so duplicate events and restarts do not send an unchanged file again.
//
// At start every path of the folder and of the index is looked at once (chokidar's initial scan
// plus the index): files changed while the node was down are sent, renames are recognised by inode,
// and files removed meanwhile are deleted — but only where the namespace still holds the version
// this node wrote (a newer write from elsewhere is not undone by a deletion of unknown age).
// Deletions seen live wait `deleteGraceMilliseconds` first, so that both halves of a rename
// (which arrive as separate events) are seen together.

import { lstat, open, readdir, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { mkdirSync, type Stats } from 'node:fs';

import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';

import type { ChunkedPutOptions, SourceMetadata } from '../actors/grpc-actor.js';
import type { CallContext, PutResult } from '../api/backend.js';
import { DfsError } from '../errors.js';
import type { CacheIndex } from './cache-index.js';
import { planChanges, type Action, type Observed, type ObservedFile, type ObservedFolder } from './cache-planner.js';
import { openForWriting } from './open-writers.js';

/** What the watcher needs of the node: its write path, and the applied state's file versions. */
export interface CacheTarget {
  /** The version of the file at `key` in this node's applied state, or null (absent, or a folder). */
  fileVersion(key: string): number | null;
  putFile(key: string, data: Uint8Array, metadata: SourceMetadata, context: CallContext): Promise<PutResult>;
  putChunked(
    key: string,
    chunks: AsyncIterable<Uint8Array>,
    options: ChunkedPutOptions,
    context: CallContext,
  ): Promise<PutResult>;
  delete(key: string, context: CallContext): Promise<unknown>;
  deleteFolder(key: string, context: CallContext): Promise<unknown>;
  rename(from: string, to: string, context: CallContext): Promise<unknown>;
  makeFolder(key: string, metadata: SourceMetadata, context: CallContext): Promise<unknown>;
}

export interface CacheWatcherOptions {
  readonly cacheFolder: string;
  readonly index: CacheIndex;
  readonly target: CacheTarget;
  readonly logger: Logger;
  /** Files up to this size go in one entry; larger ones stream as chunks of this size. */
  readonly chunkSizeBytes: number;
  /** How long a file must stay unchanged before it is sent (default 200 ms). */
  readonly stabilityMilliseconds?: number;
  /** Quiet time after an event before the changed paths are looked at (default 50 ms). */
  readonly settleMilliseconds?: number;
  /** How long a path must be gone before its deletion is sent (default 250 ms). */
  readonly deleteGraceMilliseconds?: number;
  /** Uploads at once (default 32: small files are one Raft entry each, batched together). */
  readonly maxConcurrentUploads?: number;
  /** How long one namespace operation (a put of a small file, a rename, a delete) may take before it is tried again (default 3 s). */
  readonly operationTimeoutMilliseconds?: number;
  /** For chokidar: poll instead of inotify (network file systems). */
  readonly usePolling?: boolean;
}

/** Failures that pass by themselves: the operation is tried again later. */
const transientCodes: ReadonlySet<string> = new Set(['Unavailable', 'NoLeader', 'NotLeader', 'Timeout', 'ResourceExhausted', 'Aborted']);
const retryMilliseconds = 1_000;
const pendingPollMilliseconds = 100;
/** When a new or moved folder is looked at again (see makeFolder). */
const lookAgainMilliseconds = 500;

class ChangedWhileRead extends Error {}

function toObserved(stats: Stats): Observed {
  const modeBits = stats.mode & 0o7777;
  if (stats.isFile()) {
    return { kind: 'file', device: stats.dev, inode: stats.ino, sizeBytes: stats.size, modifiedMilliseconds: stats.mtimeMs, modeBits, birthMilliseconds: stats.birthtimeMs };
  }
  if (stats.isDirectory()) return { kind: 'folder', device: stats.dev, inode: stats.ino, modeBits, modifiedMilliseconds: stats.mtimeMs, birthMilliseconds: stats.birthtimeMs };
  const what = stats.isSymbolicLink() ? 'symbolic links' : stats.isSocket() ? 'sockets' : stats.isFIFO() ? 'FIFOs' : 'devices';
  return { kind: 'unsupported', what };
}

function sameFile(stats: Stats, observed: ObservedFile): boolean {
  return stats.isFile() && stats.dev === observed.device && stats.ino === observed.inode && stats.size === observed.sizeBytes && stats.mtimeMs === observed.modifiedMilliseconds;
}

function metadataOf(observed: ObservedFile | ObservedFolder): SourceMetadata {
  return { modeBits: observed.modeBits, modifiedMilliseconds: Math.floor(observed.modifiedMilliseconds) };
}

/** The namespace version an operation's answer carries (a number, or `{ version }`), or undefined. */
function versionOf(result: unknown): number | undefined {
  if (typeof result === 'number') return result;
  const version = (result as { version?: unknown } | null)?.version;
  return typeof version === 'number' ? version : undefined;
}

function errorCode(error: unknown): string | undefined {
  if (error instanceof DfsError) return error.code;
  return (error as NodeJS.ErrnoException | null)?.code;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Pending {
  observed: ObservedFile;
  /** When it was last seen to change. */
  sinceMilliseconds: number;
}

export class CacheWatcher {
  private watcher: FSWatcher | null = null;
  private readonly dirty = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private readonly inFlight = new Set<string>();
  private readonly missingSince = new Map<string, number>();
  private readonly reported = new Map<string, string>();
  /** Files seen in the cache folder since start, sent or not (see removeUnsent). */
  private readonly seenFiles = new Set<string>();
  private settleTimer: NodeJS.Timeout | null = null;
  private pendingTimer: NodeJS.Timeout | null = null;
  private startingUploads = false;
  private running = false;
  private closed = false;
  /** True until the first look at everything (the initial scan plus the index) is done. */
  private reconciling = true;
  private ready = false;
  private readonly abort = new AbortController();
  private idleWaiters: (() => void)[] = [];
  /** Timers that look at a path again after a transient failure. */
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** The batch and the uploads under way: close() waits for them. */
  private readonly work = new Set<Promise<void>>();
  /** The cache folder as /proc names open files (symbolic links resolved). */
  private realCacheFolder: string;
  private readonly stabilityMilliseconds: number;
  private readonly settleMilliseconds: number;
  private readonly deleteGraceMilliseconds: number;
  private readonly maxConcurrentUploads: number;
  private readonly operationTimeoutMilliseconds: number;
  /** Counters for tests and status. */
  readonly counters = { uploads: 0, uploadedBytes: 0, renames: 0, deletions: 0, folders: 0, abandonedUploads: 0, skippedUnchanged: 0 };

  constructor(private readonly options: CacheWatcherOptions) {
    this.stabilityMilliseconds = options.stabilityMilliseconds ?? 200;
    this.settleMilliseconds = options.settleMilliseconds ?? 50;
    this.deleteGraceMilliseconds = options.deleteGraceMilliseconds ?? 250;
    this.maxConcurrentUploads = options.maxConcurrentUploads ?? 32;
    this.operationTimeoutMilliseconds = options.operationTimeoutMilliseconds ?? 3_000;
    this.realCacheFolder = options.cacheFolder;
  }

  /** Starts watching; resolves once the initial scan is done and its changes are queued. */
  async start(): Promise<void> {
    const folder = this.options.cacheFolder;
    mkdirSync(folder, { recursive: true });
    this.realCacheFolder = await realpath(folder);
    const watcher = watch(folder, {
      ignoreInitial: false,
      followSymlinks: false,
      alwaysStat: false,
      ignorePermissionErrors: true,
      usePolling: this.options.usePolling ?? false,
    });
    this.watcher = watcher;
    const mark = (path: string): void => this.markDirty(this.relativePath(path));
    watcher.on('add', mark).on('change', mark).on('unlink', mark).on('addDir', mark).on('unlinkDir', mark);
    // chokidar drops names that are not UTF-8 (it cannot stat the decoded name); its raw events
    // still carry them, with U+FFFD for the bad bytes, so they can be reported.
    watcher.on('raw', (_event, name, details) => {
      const watchedPath = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (name.includes('\uFFFD') && typeof watchedPath === 'string') mark(join(watchedPath, name));
    });
    watcher.on('error', (error) => this.options.logger.warn({ cacheFolder: folder }, `watching the cache folder ${folder}: ${message(error)}`));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    // What the index knows but the scan did not find was removed while the node was down.
    for (const path of this.options.index.paths()) this.dirty.add(path);
    // Names chokidar's scan skipped because they are not UTF-8, to be reported.
    try {
      for (const entry of await readdir(folder, { recursive: true })) if (entry.includes('\uFFFD')) this.dirty.add(entry.split(sep).join('/'));
    } catch {
      // Unreadable parts were reported by chokidar's error events.
    }
    this.ready = true;
    this.options.logger.info({ cacheFolder: folder, known: this.options.index.size }, `watching the cache folder ${folder}`);
    this.schedule(0);
  }

  /** Stops watching; uploads in progress are abandoned (their chunks become garbage). */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    if (this.pendingTimer !== null) clearTimeout(this.pendingTimer);
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    await this.watcher?.close();
    // Abandoned work ends soon (the signal is aborted); it must not touch the index afterwards.
    await Promise.allSettled([...this.work]);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves when nothing is dirty, pending or in flight (tests). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Paths waiting to be replicated, for /metrics: `queued` = changed and not looked at yet, or
   * files waiting to settle (or for an upload slot); `inFlight` = files being uploaded now. A path
   * that changed again while it waited or was uploaded may count twice. Costs two set sizes.
   */
  get queueLength(): { readonly queued: number; readonly inFlight: number } {
    return { queued: this.dirty.size + this.pending.size, inFlight: this.inFlight.size };
  }

  /** Paths reported as not replicated, with why. */
  problems(): ReadonlyMap<string, string> {
    return this.reported;
  }

  // ---------------------------------------------------------------- scheduling

  private markDirty(path: string): void {
    if (this.closed || path === '..' || path.startsWith('../')) return;
    this.dirty.add(path);
    if (this.ready) this.schedule(this.settleMilliseconds);
  }

  private markDirtyLater(path: string, delayMilliseconds: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.markDirty(path);
    }, delayMilliseconds);
    timer.unref();
    this.retryTimers.add(timer);
  }

  private schedule(delayMilliseconds: number): void {
    if (this.closed) return;
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.track(this.runBatch());
    }, delayMilliseconds);
  }

  private isIdle(): boolean {
    return (
      this.ready &&
      !this.running &&
      this.dirty.size === 0 &&
      this.pending.size === 0 &&
      this.inFlight.size === 0 &&
      this.settleTimer === null &&
      this.retryTimers.size === 0
    );
  }

  private track(promise: Promise<void>): void {
    this.work.add(promise);
    void promise.finally(() => this.work.delete(promise));
  }

  private checkIdle(): void {
    if (this.isIdle()) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private relativePath(absolute: string): string {
    return relative(this.options.cacheFolder, absolute).split(sep).join('/');
  }

  private absolutePath(path: string): string {
    return path === '' ? this.options.cacheFolder : join(this.options.cacheFolder, ...path.split('/'));
  }

  /**
   * A call's context. A single namespace operation gets `operationTimeoutMilliseconds`: one whose
   * proposal was lost with a leader change would otherwise hold up the whole queue for the node's
   * full request timeout; it is retried (every operation here can be repeated safely). A chunked
   * upload has no overall deadline (each chunk has the node's own).
   */
  private context(kind: 'operation' | 'upload' = 'operation'): CallContext {
    const deadline = kind === 'upload' ? Number.POSITIVE_INFINITY : Date.now() + this.operationTimeoutMilliseconds;
    return { signal: this.abort.signal, deadlineUnixMilliseconds: deadline };
  }

  // ---------------------------------------------------------------- one batch

  private async runBatch(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      const paths = [...this.dirty];
      this.dirty.clear();
      const observed = new Map<string, Observed>();
      for (const path of paths) {
        // A path being uploaded (or under a folder being changed) waits for that to finish.
        if (this.blockedByUpload(path)) {
          this.dirty.add(path);
          continue;
        }
        observed.set(path, await this.observe(path));
      }
      // The other half of a rename: the path the index knows a present inode under.
      for (const [, seen] of [...observed]) {
        if (seen.kind !== 'file' && seen.kind !== 'folder') continue;
        const previous = this.options.index.pathOfInode(seen.device, seen.inode);
        if (previous !== undefined && !observed.has(previous) && !this.blockedByUpload(previous)) observed.set(previous, await this.observe(previous));
      }
      const now = Date.now();
      for (const [path, seen] of observed) {
        if (seen.kind === 'missing') {
          if (!this.missingSince.has(path)) this.missingSince.set(path, now);
        } else {
          this.missingSince.delete(path);
        }
      }
      const reconciling = this.reconciling;
      this.reconciling = false;
      for (const [path, seen] of observed) if (seen.kind === 'file') this.seenFiles.add(path);
      for (const action of planChanges(observed, this.options.index)) {
        if (this.closed) return;
        await this.carryOut(action, reconciling, now);
      }
      await this.removeUnsent(observed, now);
      for (const [path, seen] of observed) if (seen.kind === 'missing' && !this.dirty.has(path)) this.missingSince.delete(path);
    } finally {
      this.running = false;
      if (this.dirty.size > 0 && this.settleTimer === null) this.schedule(this.settleMilliseconds);
      this.pollPending();
      this.checkIdle();
    }
  }

  private blockedByUpload(path: string): boolean {
    for (const busy of this.inFlight) {
      if (busy === path || busy.startsWith(`${path}/`) || path.startsWith(`${busy}/`)) return true;
    }
    return false;
  }

  private async observe(path: string): Promise<Observed> {
    // A name that is not UTF-8 reaches us with U+FFFD in place of its bad bytes: no such path
    // exists to lstat, and it could not be a key anyway.
    if (path.includes('\uFFFD')) return { kind: 'unsupported', what: 'names that are not valid UTF-8' };
    try {
      return toObserved(await lstat(this.absolutePath(path)));
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return { kind: 'missing' };
      return { kind: 'unsupported', what: `paths that cannot be read (${message(error)})` };
    }
  }

  private async carryOut(action: Action, reconciling: boolean, now: number): Promise<void> {
    const { index, logger } = this.options;
    switch (action.type) {
      case 'report':
        this.report(action.path, action.problem);
        return;
      case 'upload':
        this.reported.delete(action.path);
        this.holdForUpload(action.path, action.observed, now);
        return;
      case 'makeFolder':
        // chokidar starts watching a new folder after listing it: a file created in between
        // sends no event. A second look, a moment later, finds it.
        this.lookAgainLater(action.path);
        await this.attempt(action.path, `create folder ${action.path}`, async () => {
          const version = versionOf(await this.options.target.makeFolder(action.path, metadataOf(action.observed), this.context())) ?? 0;
          const { device, inode, modeBits, birthMilliseconds } = action.observed;
          index.set(action.path, { kind: 'folder', device, inode, modeBits, birthMilliseconds, version });
          this.counters.folders++;
          logger.debug({ path: action.path }, `replicated folder ${action.path}`);
        });
        return;
      case 'rename':
        // Retried from both ends: by then either path may have changed again.
        await this.attempt([action.from, action.to], `move ${action.from} to ${action.to}`, async () => {
          const moved = index.get(action.from);
          if (reconciling && moved?.kind === 'file' && this.options.target.fileVersion(action.from) !== moved.version) {
            // Moved while the node was down, but the namespace no longer holds what this node wrote
            // there: that newer write is left alone, and the new path is sent as new content.
            logger.info({ from: action.from, to: action.to }, `${action.from} was changed elsewhere before its move to ${action.to} was seen; sending ${action.to}`);
            index.delete(action.from);
            this.markDirty(action.to);
            return;
          }
          let version: number | undefined;
          try {
            version = versionOf(await this.options.target.rename(action.from, action.to, this.context()));
          } catch (error) {
            if (transientCodes.has(errorCode(error) ?? '')) throw error;
            // An earlier attempt that timed out may have moved it after all.
            const landed = this.renameLanded(action.from, action.to);
            if (landed !== null) {
              index.rename(action.from, action.to, landed);
              this.counters.renames++;
              logger.info({ from: action.from, to: action.to }, `the move of ${action.from} to ${action.to} had been replicated already`);
              this.markDirty(action.to);
              return;
            }
            // The namespace does not hold the old path as this node left it (removed or changed
            // elsewhere): send the new path as new content instead.
            logger.info({ from: action.from, to: action.to }, `cannot move ${action.from} to ${action.to} (${message(error)}); sending ${action.to} again`);
            index.deleteFolder(action.from);
            await this.markTreeDirty(action.to);
            return;
          }
          // The rename gave every file it moved a new version.
          index.rename(action.from, action.to, version);
          this.counters.renames++;
          logger.info({ from: action.from, to: action.to }, `replicated the move of ${action.from} to ${action.to}`);
          // What changed at the new path besides its name is looked at again, and so is everything
          // the index now knows under it (a file removed from the folder after the move sends no
          // event from under its new name) and everything on disk under it (files not sent yet
          // when their folder moved send no event from under its new name either).
          for (const path of index.pathsUnder(action.to)) this.markDirty(path);
          await this.markTreeDirty(action.to);
          if (index.get(action.to)?.kind === 'folder') this.lookAgainLater(action.to);
        });
        return;
      case 'delete':
      case 'deleteFolder': {
        const since = this.missingSince.get(action.path) ?? now;
        // A path present with another kind is no half of a rename: it goes at once.
        if (!reconciling && action.replaced !== true && Date.now() - since < this.deleteGraceMilliseconds) {
          // Looked at again in the next batch, until the grace has passed.
          this.dirty.add(action.path);
          return;
        }
        await this.attempt(action.path, `delete ${action.path}`, async () => {
          if (reconciling) await this.deleteIfStillOurs(action.path);
          else if (action.type === 'delete') await this.ignoreNotFound(this.options.target.delete(action.path, this.context()));
          else await this.ignoreNotFound(this.options.target.deleteFolder(action.path, this.context()));
          index.deleteFolder(action.path);
          this.counters.deletions++;
          logger.info({ path: action.path }, `replicated the removal of ${action.path}`);
        });
        return;
      }
    }
  }

  /**
   * A file seen in the cache folder that is gone before this node sent it (the index does not know
   * it) is removed from the namespace too, when the namespace holds a file there: removing a file
   * from the cache folder removes it everywhere, whether or not this run got to send it (after the
   * index was lost, every file is unsent until sent again).
   */
  private async removeUnsent(observed: ReadonlyMap<string, Observed>, now: number): Promise<void> {
    for (const [path, seen] of observed) {
      if (seen.kind !== 'missing' || !this.seenFiles.has(path) || this.options.index.get(path) !== undefined) continue;
      if (this.dirty.has(path) || this.blockedByUpload(path)) continue;
      if (now - (this.missingSince.get(path) ?? now) < this.deleteGraceMilliseconds) {
        this.dirty.add(path);
        continue;
      }
      this.seenFiles.delete(path);
      this.pending.delete(path);
      if (this.options.target.fileVersion(path) === null) continue;
      await this.attempt(path, `delete ${path}`, async () => {
        await this.ignoreNotFound(this.options.target.delete(path, this.context()));
        this.counters.deletions++;
        this.options.logger.info({ path }, `replicated the removal of ${path} (removed before it was sent)`);
      });
    }
  }

  /** At start: remove what this node wrote and the namespace still holds unchanged. */
  private async deleteIfStillOurs(path: string): Promise<void> {
    const { index, target } = this.options;
    const paths = [path, ...index.pathsUnder(path)].sort((left, right) => right.length - left.length);
    for (const each of paths) {
      const entry = index.get(each);
      if (entry === undefined) continue;
      if (entry.kind === 'file') {
        if (target.fileVersion(each) === entry.version) await this.ignoreNotFound(target.delete(each, this.context()));
      } else {
        // An explicit folder goes only if it is empty by now.
        try {
          await target.delete(each, this.context());
        } catch (error) {
          if (transientCodes.has(errorCode(error) ?? '')) throw error;
        }
      }
    }
  }

  private async ignoreNotFound(operation: Promise<unknown>): Promise<void> {
    try {
      await operation;
    } catch (error) {
      if (errorCode(error) !== 'KeyNotFound') throw error;
    }
  }

  /** Runs one namespace operation; a transient failure looks at the path again later. */
  private async attempt(paths: string | readonly string[], what: string, operation: () => Promise<void>): Promise<void> {
    const all = typeof paths === 'string' ? [paths] : paths;
    const path = all[all.length - 1] ?? '';
    try {
      await operation();
      this.reported.delete(path);
    } catch (error) {
      if (this.closed) return;
      if (transientCodes.has(errorCode(error) ?? '')) {
        this.options.logger.warn({ path }, `cannot ${what} yet (${message(error)}); trying again in ${retryMilliseconds} ms`);
        for (const each of all) this.markDirtyLater(each, retryMilliseconds);
        return;
      }
      this.report(path, `cannot ${what}: ${message(error)}`);
    }
  }

  /**
   * The version the namespace shows at `to` for what the index knows at `from`, if a move of it
   * already happened (an attempt that timed out had been applied); null otherwise.
   */
  private renameLanded(from: string, to: string): number | null {
    const { index, target } = this.options;
    const entry = index.get(from);
    if (entry?.kind === 'file') return target.fileVersion(to);
    const child = index.pathsUnder(from).find((path) => index.get(path)?.kind === 'file');
    if (child === undefined) return null;
    return target.fileVersion(to + child.slice(from.length));
  }

  private report(path: string, problem: string): void {
    if (this.reported.get(path) === problem) return;
    this.reported.set(path, problem);
    this.options.logger.warn({ path, cacheFolder: this.options.cacheFolder }, `not replicated: ${path}: ${problem}`);
  }

  /** Looks at everything under `folder` again after a moment (see makeFolder). */
  private lookAgainLater(folder: string): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      void this.markTreeDirty(folder);
    }, lookAgainMilliseconds);
    timer.unref();
    this.retryTimers.add(timer);
  }

  private async markTreeDirty(path: string): Promise<void> {
    this.markDirty(path);
    try {
      const entries = await readdir(this.absolutePath(path), { recursive: true });
      for (const entry of entries) this.markDirty(`${path}/${entry.split(sep).join('/')}`);
    } catch {
      // A file, or gone: the path itself is enough.
    }
  }

  // ---------------------------------------------------------------- uploads

  private holdForUpload(path: string, observed: ObservedFile, now: number): void {
    const held = this.pending.get(path);
    if (held === undefined || !sameObserved(held.observed, observed)) this.pending.set(path, { observed, sinceMilliseconds: now });
  }

  private pollPending(): void {
    if (this.closed || this.pending.size === 0 || this.pendingTimer !== null) return;
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = null;
      void this.startReadyUploads().finally(() => {
        this.pollPending();
        this.checkIdle();
      });
    }, pendingPollMilliseconds);
  }

  /** Starts the uploads of pending files that have been stable long enough and have no writer. */
  private async startReadyUploads(): Promise<void> {
    if (this.startingUploads) return;
    this.startingUploads = true;
    try {
      await this.startStableUploads();
    } finally {
      this.startingUploads = false;
    }
  }

  private async startStableUploads(): Promise<void> {
    const now = Date.now();
    const stable: string[] = [];
    // Only as many as can start now are looked at: a backlog of 10,000 files costs no more per
    // round than a few.
    const wanted = Math.max(0, this.maxConcurrentUploads - this.inFlight.size) * 2;
    for (const [path, held] of this.pending) {
      if (stable.length >= wanted) break;
      if (this.inFlight.has(path) || now - held.sinceMilliseconds < this.stabilityMilliseconds) continue;
      let stats: Stats;
      try {
        stats = await lstat(this.absolutePath(path));
      } catch {
        this.pending.delete(path);
        this.markDirty(path);
        continue;
      }
      if (!sameFile(stats, held.observed)) {
        const seen = toObserved(stats);
        if (seen.kind !== 'file') {
          this.pending.delete(path);
          this.markDirty(path);
          continue;
        }
        held.observed = seen;
        held.sinceMilliseconds = now;
        continue;
      }
      if (now - held.sinceMilliseconds >= this.stabilityMilliseconds) stable.push(path);
    }
    if (stable.length === 0) return;
    const writing = openForWriting(new Set(stable.map((path) => this.procPath(path))));
    for (const path of stable) {
      if (this.closed || this.inFlight.size >= this.maxConcurrentUploads) break;
      const held = this.pending.get(path);
      if (held === undefined) continue;
      if (writing.has(this.procPath(path))) {
        this.options.logger.debug({ path }, `${path} is still open for writing; waiting`);
        // To the back of the queue: files kept open for long must not hold up the others.
        this.pending.delete(path);
        this.pending.set(path, held);
        continue;
      }
      this.pending.delete(path);
      this.track(this.upload(path, held.observed));
    }
  }

  /** The path as /proc/<pid>/fd links name it. */
  private procPath(path: string): string {
    return path === '' ? this.realCacheFolder : join(this.realCacheFolder, ...path.split('/'));
  }

  private async upload(path: string, observed: ObservedFile): Promise<void> {
    const { index, target, logger, chunkSizeBytes } = this.options;
    this.inFlight.add(path);
    const absolute = this.absolutePath(path);
    try {
      const handle = await open(absolute, 'r');
      try {
        if (!sameFile(await handle.stat(), observed)) throw new ChangedWhileRead();
        const unchanged = async (): Promise<void> => {
          const [opened, linked] = await Promise.all([handle.stat(), lstat(absolute).catch(() => null)]);
          if (!sameFile(opened, observed) || linked === null || !sameFile(linked, observed)) throw new ChangedWhileRead();
        };
        const metadata = metadataOf(observed);
        let result: PutResult;
        if (observed.sizeBytes <= chunkSizeBytes) {
          const data = await handle.readFile();
          await unchanged();
          result = await target.putFile(path, data, metadata, this.context());
        } else {
          const stream = handle.createReadStream({ highWaterMark: chunkSizeBytes, autoClose: false });
          try {
            result = await target.putChunked(path, stream, { ...metadata, beforeCommit: unchanged }, this.context('upload'));
          } finally {
            stream.destroy();
          }
        }
        index.set(path, { kind: 'file', ...pickFile(observed), version: result.version });
        this.counters.uploads++;
        this.counters.uploadedBytes += observed.sizeBytes;
        this.reported.delete(path);
        // One line per large file; small ones (thousands at a time) only at debug level.
        logger[observed.sizeBytes > chunkSizeBytes ? 'info' : 'debug']({ path, sizeBytes: observed.sizeBytes, version: result.version }, `replicated ${path} (${observed.sizeBytes} bytes)`);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (this.closed) return;
      if (error instanceof ChangedWhileRead || errorCode(error) === 'ENOENT') {
        this.counters.abandonedUploads++;
        logger.debug({ path }, `${path} changed while it was read; waiting for it to settle`);
        this.markDirty(path);
      } else if (transientCodes.has(errorCode(error) ?? '')) {
        logger.warn({ path }, `cannot send ${path} yet (${message(error)}); trying again in ${retryMilliseconds} ms`);
        this.markDirtyLater(path, retryMilliseconds);
      } else {
        this.report(path, `cannot send it: ${message(error)}`);
      }
    } finally {
      this.inFlight.delete(path);
      if (this.pending.size > 0) void this.startReadyUploads().then(() => this.checkIdle());
      this.pollPending();
      if (this.dirty.size > 0) this.schedule(this.settleMilliseconds);
      this.checkIdle();
    }
  }
}

function sameObserved(left: ObservedFile, right: ObservedFile): boolean {
  return left.device === right.device && left.inode === right.inode && left.sizeBytes === right.sizeBytes && left.modifiedMilliseconds === right.modifiedMilliseconds && left.modeBits === right.modeBits;
}

function pickFile(observed: ObservedFile): { device: number; inode: number; sizeBytes: number; modifiedMilliseconds: number; modeBits: number; birthMilliseconds: number } {
  const { device, inode, sizeBytes, modifiedMilliseconds, modeBits, birthMilliseconds } = observed;
  return { device, inode, sizeBytes, modifiedMilliseconds, modeBits, birthMilliseconds };
}
