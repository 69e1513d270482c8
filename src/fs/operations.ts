// The read-only file system over the replicated state: what each FUSE operation means in terms of
// StateReader calls. No kernel and no fuse-native here — src/fs/mount.ts wires these methods to
// libfuse — so every answer can be tested against a real state store in a temporary folder.
//
// - getattr is one StateReader.stat (one LMDB get, plus two seeks for a folder that exists only
//   because of what is under it): libfuse 2 has no readdirplus, so `ls -l` costs one per entry.
// - readdir lists every child, paging through listChildren (cost proportional to the folder).
// - read serves the file's current version at the time of the read, a range at a time from LMDB
//   (never the whole file), copied into libfuse's buffer. Not the version the handle opened: the
//   mount keeps file contents in the kernel's page cache (mount.ts), and that cache is shared by
//   every handle of the file, so a page one handle loads is what a later open may be served. A
//   page loaded after a change must therefore be of the new version. A handle whose file was
//   removed (or renamed away) answers EIO (RemovedSinceOpen): there is nothing left to read.
// - the mtime getattr reports is the file's modifiedMilliseconds, except that two versions never
//   look alike: libfuse's auto_cache (mount.ts) keeps a file's cached pages at open only while the
//   size and mtime it last heard are unchanged, and fuse-native carries mtime in whole
//   milliseconds. So, per file, we remember the version, size and mtime last reported; when the
//   version changed but size and mtime would repeat the last report, the mtime is reported 1 ms
//   later. Every change between two reports then changes (size, mtime), and the next open drops
//   the stale pages. See ReportedFiles for the bound on that memory and what happens beyond it.
// - every write answers EROFS (the mount is also mounted `ro`, so the kernel refuses most writes
//   before they get here).
//
// Failures are thrown as FileSystemError (or the reader's DfsError); src/fs/errno.ts maps both.

import { constants } from 'node:fs';

import type { FileInfo, FolderInfo, PathInfo, StateReader } from '../store/state-reader.js';
import { maxPageSize } from '../store/state-reader.js';
import { maxSegmentBytes } from '../store/keys.js';
import { DfsError } from '../errors.js';
import { FileSystemError } from './errno.js';
import { keyOfPath } from './paths.js';
import { writeOperations, type WriteOperation } from './fuse-contract.js';

/** What the operations read: the parts of StateReader they use. */
export type StateView = Pick<StateReader, 'stat' | 'listChildren' | 'readRange' | 'statistics'>;

/** A stat as fuse-native takes it: times in milliseconds since the epoch. */
export interface Attributes {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly blksize: number;
  /** 512-byte blocks, as st_blocks counts them (what `du` adds up). */
  readonly blocks: number;
  readonly atime: number;
  readonly mtime: number;
  readonly ctime: number;
}

/** statvfs, as fuse-native takes it (each field a uint32). */
export interface Usage {
  readonly bsize: number;
  readonly frsize: number;
  readonly blocks: number;
  readonly bfree: number;
  readonly bavail: number;
  readonly files: number;
  readonly ffree: number;
  readonly favail: number;
  readonly fsid: number;
  readonly flag: number;
  readonly namemax: number;
}

export interface Listing {
  readonly names: readonly string[];
  /** One per name: libfuse passes each entry's type on to readdir (d_type), so `find` need not stat. */
  readonly attributes: readonly Attributes[];
}

export interface OperationsOptions {
  /** Owner shown for every file and folder: the mounting process's. */
  readonly uid: number;
  readonly gid: number;
  /** The time shown for a folder that no mkdir recorded (it exists because of what is in it). */
  readonly impliedFolderMilliseconds: number;
  /** Most handles open at once (default 65,536); one more open answers ENFILE. */
  readonly maxOpenFiles?: number;
  /** Most entries one readdir returns (default 1,000,000); a bigger folder answers EIO. */
  readonly maxFolderEntries?: number;
  /** Bytes the state store takes on disk, for statfs (default: unknown, 0). */
  readonly storedBytes?: () => number;
  /** Files whose last reported attributes are remembered (default 262,144; see ReportedFiles). */
  readonly maxReportedFiles?: number;
}

export const defaultMaxOpenFiles = 65_536;
export const defaultMaxFolderEntries = 1_000_000;
/** About 30 MB of memory at most; more than an `ls -l` of a 100,000-file folder needs. */
export const defaultMaxReportedFiles = 262_144;
/**
 * st_blksize of files: programs size their reads by it (coreutils, stdio, Python's io), and the
 * kernel sends at most 128 KiB per FUSE read (libfuse 2 does not negotiate more), so reads of this
 * size each cost one round trip.
 */
export const fileBlockBytes = 128 * 1024;
const statfsBlockBytes = 4096;
const folderSizeBytes = 4096;
const maxUint32 = 0xffff_ffff;
/** O_ACCMODE of <fcntl.h> (Node's fs.constants leaves it out): O_RDONLY, O_WRONLY or O_RDWR. */
const accessModeMask = 0o3;

/** The write operations, each answered with EROFS (declared with the FUSE contract's operation names). */
export { writeOperations, type WriteOperation };

interface OpenFile {
  readonly key: string;
}

/** What libfuse does with a file's attributes, which decides whether they are remembered. */
export type AttributeUse =
  /** getattr (lookup, stat): libfuse records size and mtime for auto_cache and tells the kernel. */
  | 'report'
  /**
   * fgetattr: libfuse's auto_cache check right after an open (also fstat, and a read past the
   * end): an unchanged size and mtime there keeps the file's cached pages.
   */
  | 'openCheck'
  /** readdir: libfuse 2 passes on only the entry's type and records nothing. */
  | 'listing';

/** One file's attributes as last reported to libfuse. */
interface Report {
  readonly version: number;
  readonly sizeBytes: number;
  readonly mtimeMilliseconds: number;
  /**
   * Made after files were forgotten: libfuse may still hold an older report of this file that
   * this one was not compared with, so a change may have gone unnoticed (see ReportedFiles).
   */
  readonly unsure: boolean;
}

/**
 * The version, size and mtime last reported to libfuse for each file, and the mtime to report
 * next: the file's own, or 1 ms later when the version changed but size and mtime would repeat the
 * last report (two versions written with the same size and millisecond). libfuse's auto_cache
 * compares each report with the one before and drops the file's pages at the next open if they
 * differ; the kernel hears attributes only from libfuse, so this is exactly what it compares.
 *
 * Bounded: beyond maxFiles, the least recently reported file is forgotten. Its next report cannot
 * be compared with what libfuse holds, so from the first file forgotten on, a file reported with
 * no memory of it is `unsure`, and the open check of an unsure file reports an mtime 1 ms off the
 * last report, which makes auto_cache drop the file's pages at that open. Beyond the bound a file
 * may thus lose its cache once more and show its mtime 1 ms late until it changes; it is never
 * served stale pages, except in one case: a file forgotten between an open's lookup and that
 * open's check, which takes more than maxFiles other files reported in between.
 */
export class ReportedFiles {
  /** In order of last report: the first is the one to forget. */
  private readonly reports = new Map<string, Report>();
  private forgottenCount = 0;

  constructor(private readonly maxFiles: number) {
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) throw new Error(`maxReportedFiles must be a positive integer (${maxFiles})`);
  }

  /** Files remembered now. */
  get size(): number {
    return this.reports.size;
  }

  /** Files forgotten so far to stay within the bound. */
  get forgotten(): number {
    return this.forgottenCount;
  }

  /** The mtime to tell libfuse for `info` used as `use`; remembered unless it is a listing. */
  mtimeOf(info: FileInfo, use: AttributeUse): number {
    const own = info.modifiedMilliseconds;
    const last = this.reports.get(info.key);
    let mtimeMilliseconds: number;
    let unsure: boolean;
    if (last === undefined) {
      mtimeMilliseconds = own;
      unsure = this.forgottenCount > 0;
    } else if (last.version === info.version) {
      mtimeMilliseconds = last.mtimeMilliseconds;
      unsure = last.unsure;
      if (use === 'openCheck' && unsure) {
        // Any change from the last report makes auto_cache drop the pages at this open.
        mtimeMilliseconds = last.mtimeMilliseconds === own ? own + 1 : own;
        unsure = false;
      }
    } else {
      const repeats = info.sizeBytes === last.sizeBytes && own === last.mtimeMilliseconds;
      mtimeMilliseconds = repeats ? own + 1 : own;
      // This report differs from the last one, so libfuse notices the change whatever it held.
      unsure = false;
    }
    if (use === 'listing') return mtimeMilliseconds;
    if (last !== undefined) this.reports.delete(info.key);
    this.reports.set(info.key, { version: info.version, sizeBytes: info.sizeBytes, mtimeMilliseconds, unsure });
    if (this.reports.size > this.maxFiles) {
      const oldest = this.reports.keys().next().value as string;
      this.reports.delete(oldest);
      this.forgottenCount++;
    }
    return mtimeMilliseconds;
  }
}

export class ReadOnlyFileSystem {
  private readonly handles = new Map<number, OpenFile>();
  private lastHandle = 0;
  private readonly maxOpenFiles: number;
  private readonly maxFolderEntries: number;
  private readonly reportedFiles: ReportedFiles;

  constructor(
    private readonly state: StateView,
    private readonly options: OperationsOptions,
  ) {
    this.maxOpenFiles = options.maxOpenFiles ?? defaultMaxOpenFiles;
    this.maxFolderEntries = options.maxFolderEntries ?? defaultMaxFolderEntries;
    this.reportedFiles = new ReportedFiles(options.maxReportedFiles ?? defaultMaxReportedFiles);
    if (!Number.isSafeInteger(this.maxOpenFiles) || this.maxOpenFiles < 1 || this.maxOpenFiles > 0x7fff_ffff) {
      throw new Error(`maxOpenFiles must be from 1 to 2^31-1 (${this.maxOpenFiles})`);
    }
  }

  /** How many handles are open (for status and tests). */
  get openFileCount(): number {
    return this.handles.size;
  }

  /** Files whose last reported attributes are remembered, and how many were forgotten (for tests and status). */
  get reportedFileCounts(): { readonly remembered: number; readonly forgotten: number } {
    return { remembered: this.reportedFiles.size, forgotten: this.reportedFiles.forgotten };
  }

  /** The attributes libfuse records and passes to the kernel (lookup, stat). */
  getattr(path: string): Attributes {
    return this.attributesAt(path, 'report');
  }

  /**
   * The attributes asked for through an open handle: libfuse's auto_cache check right after open
   * (the handle itself is not needed: a handle reads its path's current version).
   */
  fgetattr(path: string): Attributes {
    return this.attributesAt(path, 'openCheck');
  }

  readdir(path: string): Listing {
    const key = keyOfPath(path);
    const folder = this.state.stat(key);
    if (folder === null) throw new FileSystemError('NotFound', `no folder at ${path}`);
    if (folder.kind === 'file') throw new FileSystemError('NotAFolder', `${path} is a file`);
    const own = this.attributesOf(folder, 'listing');
    const names: string[] = ['.', '..'];
    const attributes: Attributes[] = [own, own];
    let pageToken = '';
    do {
      const page = this.state.listChildren(key, { pageToken, pageSize: maxPageSize });
      if (names.length - 2 + page.entries.length > this.maxFolderEntries) {
        throw new DfsError('ResourceExhausted', `${path} has more than ${this.maxFolderEntries} entries, more than one listing may hold`);
      }
      for (const child of page.entries) {
        names.push(child.name);
        attributes.push(this.attributesOf(child, 'listing'));
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return { names, attributes };
  }

  /** Opens a file for reading; answers the handle (a non-zero int32) its reads and release name. */
  open(path: string, flags: number): number {
    const key = keyOfPath(path);
    if ((flags & accessModeMask) !== constants.O_RDONLY || (flags & constants.O_TRUNC) !== 0) {
      throw new FileSystemError('ReadOnly', `${path} cannot be opened for writing: the mount is read-only`);
    }
    const info = this.state.stat(key);
    if (info === null) throw new FileSystemError('NotFound', `no file at ${path}`);
    if (info.kind === 'folder') throw new FileSystemError('IsAFolder', `${path} is a folder`);
    if (this.handles.size >= this.maxOpenFiles) {
      throw new FileSystemError('TooManyOpenFiles', `${this.maxOpenFiles} files are open on the mount already`);
    }
    const handle = this.nextHandle();
    this.handles.set(handle, { key });
    return handle;
  }

  /**
   * Copies up to `length` bytes of the file's current version (not the one the handle opened: see
   * the file's comment) from `position` into `target`; answers the count (less only at the end of
   * the file, 0 past it). RemovedSinceOpen (EIO) if no file is at the handle's path any more.
   */
  read(handle: number, target: Uint8Array, length: number, position: number): number {
    const file = this.handles.get(handle);
    if (file === undefined) throw new FileSystemError('BadHandle', `no open file with handle ${handle}`);
    const data = this.state.readRange(file.key, position, Math.min(length, target.length));
    if (data === null) throw new FileSystemError('RemovedSinceOpen', `${file.key} was removed (or renamed) since it was opened`);
    target.set(data, 0);
    return data.length;
  }

  release(handle: number): void {
    if (!this.handles.delete(handle)) throw new FileSystemError('BadHandle', `no open file with handle ${handle}`);
  }

  statfs(): Usage {
    const statistics = this.state.statistics();
    const storedBytes = this.options.storedBytes?.() ?? 0;
    return {
      bsize: statfsBlockBytes,
      frsize: statfsBlockBytes,
      blocks: Math.min(maxUint32, Math.ceil(storedBytes / statfsBlockBytes)),
      // Nothing can be written through the mount: no free space, no free inodes.
      bfree: 0,
      bavail: 0,
      files: Math.min(maxUint32, statistics.files + statistics.explicitFolders),
      ffree: 0,
      favail: 0,
      fsid: 0,
      flag: 0,
      namemax: maxSegmentBytes,
    };
  }

  /** Every write operation: the mount is a read-only view of the replicated state. */
  refuseWrite(operation: WriteOperation, path: string): never {
    throw new FileSystemError('ReadOnly', `${operation} ${path}: the mount is read-only (write through the cache folder or the API)`);
  }

  private attributesAt(path: string, use: AttributeUse): Attributes {
    const info = this.state.stat(keyOfPath(path));
    if (info === null) throw new FileSystemError('NotFound', `no file or folder at ${path}`);
    return this.attributesOf(info, use);
  }

  private attributesOf(info: PathInfo, use: AttributeUse): Attributes {
    return info.kind === 'file' ? this.fileAttributes(info, use) : this.folderAttributes(info);
  }

  private fileAttributes(info: FileInfo, use: AttributeUse): Attributes {
    // Folders need no such care: the kernel caches no folder contents here (libfuse 2 never asks
    // it to), so only a file's mtime carries the auto_cache decision.
    const time = this.reportedFiles.mtimeOf(info, use);
    return {
      mode: constants.S_IFREG | (info.modeBits & 0o7777),
      uid: this.options.uid,
      gid: this.options.gid,
      size: info.sizeBytes,
      nlink: 1,
      blksize: fileBlockBytes,
      blocks: Math.ceil(info.sizeBytes / 512),
      atime: time,
      mtime: time,
      ctime: time,
    };
  }

  private folderAttributes(info: FolderInfo): Attributes {
    const time = info.explicit?.modifiedMilliseconds ?? this.options.impliedFolderMilliseconds;
    return {
      mode: constants.S_IFDIR | ((info.explicit?.modeBits ?? 0o755) & 0o7777),
      uid: this.options.uid,
      gid: this.options.gid,
      size: folderSizeBytes,
      // 1, not 2 + sub-folders: counting them would cost a listing per getattr, and 1 is the
      // convention for "not counted" that find/fts honour (a wrong 2 would make them skip
      // sub-folders, taking it for a leaf).
      nlink: 1,
      blksize: statfsBlockBytes,
      blocks: folderSizeBytes / 512,
      atime: time,
      mtime: time,
      ctime: time,
    };
  }

  /** The next unused handle: a non-zero int32 (fuse-native leaves fi->fh unset for 0). */
  private nextHandle(): number {
    for (;;) {
      this.lastHandle = this.lastHandle >= 0x7fff_ffff ? 1 : this.lastHandle + 1;
      if (!this.handles.has(this.lastHandle)) return this.lastHandle;
    }
  }
}
