// The read-only file system over the replicated state: what each FUSE operation means in terms of
// StateReader calls. No kernel and no fuse-native here — src/fs/mount.ts wires these methods to
// libfuse — so every answer can be tested against a real state store in a temporary folder.
//
// - getattr is one StateReader.stat (one LMDB get, plus two seeks for a folder that exists only
//   because of what is under it): libfuse 2 has no readdirplus, so `ls -l` costs one per entry.
// - readdir lists every child, paging through listChildren (cost proportional to the folder).
// - open captures the file's version; every read of that handle is a readRange of exactly that
//   version, read from LMDB a range at a time and copied into libfuse's buffer. If the file
//   changes or goes away, the handle's reads fail (ChangedSinceOpen → EIO) instead of mixing
//   versions: open it again to read the new one.
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
}

export const defaultMaxOpenFiles = 65_536;
export const defaultMaxFolderEntries = 1_000_000;
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

/** The write operations, each answered with EROFS. */
export const writeOperations = [
  'write',
  'create',
  'truncate',
  'ftruncate',
  'unlink',
  'rename',
  'link',
  'symlink',
  'mkdir',
  'rmdir',
  'mknod',
  'chmod',
  'chown',
  'utimens',
  'setxattr',
  'removexattr',
] as const;
export type WriteOperation = (typeof writeOperations)[number];

interface OpenFile {
  readonly key: string;
  /** The version read through this handle, and only it. */
  readonly version: number;
}

export class ReadOnlyFileSystem {
  private readonly handles = new Map<number, OpenFile>();
  private lastHandle = 0;
  private readonly maxOpenFiles: number;
  private readonly maxFolderEntries: number;

  constructor(
    private readonly state: StateView,
    private readonly options: OperationsOptions,
  ) {
    this.maxOpenFiles = options.maxOpenFiles ?? defaultMaxOpenFiles;
    this.maxFolderEntries = options.maxFolderEntries ?? defaultMaxFolderEntries;
    if (!Number.isSafeInteger(this.maxOpenFiles) || this.maxOpenFiles < 1 || this.maxOpenFiles > 0x7fff_ffff) {
      throw new Error(`maxOpenFiles must be from 1 to 2^31-1 (${this.maxOpenFiles})`);
    }
  }

  /** How many handles are open (for status and tests). */
  get openFileCount(): number {
    return this.handles.size;
  }

  getattr(path: string): Attributes {
    const info = this.state.stat(keyOfPath(path));
    if (info === null) throw new FileSystemError('NotFound', `no file or folder at ${path}`);
    return this.attributesOf(info);
  }

  readdir(path: string): Listing {
    const key = keyOfPath(path);
    const folder = this.state.stat(key);
    if (folder === null) throw new FileSystemError('NotFound', `no folder at ${path}`);
    if (folder.kind === 'file') throw new FileSystemError('NotAFolder', `${path} is a file`);
    const own = this.attributesOf(folder);
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
        attributes.push(this.attributesOf(child));
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
    this.handles.set(handle, { key, version: info.version });
    return handle;
  }

  /**
   * Copies up to `length` bytes of the handle's version from `position` into `target`; answers the
   * count (less only at the end of the file, 0 past it).
   */
  read(handle: number, target: Uint8Array, length: number, position: number): number {
    const file = this.handles.get(handle);
    if (file === undefined) throw new FileSystemError('BadHandle', `no open file with handle ${handle}`);
    let data: Uint8Array | null;
    try {
      data = this.state.readRange(file.key, position, Math.min(length, target.length), file.version);
    } catch (error) {
      if (error instanceof DfsError && error.code === 'FailedPrecondition') {
        throw new FileSystemError('ChangedSinceOpen', `${file.key} changed since it was opened (version ${file.version}): ${error.message}`);
      }
      throw error;
    }
    if (data === null) throw new FileSystemError('ChangedSinceOpen', `${file.key} was removed since it was opened (version ${file.version})`);
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

  private attributesOf(info: PathInfo): Attributes {
    return info.kind === 'file' ? this.fileAttributes(info) : this.folderAttributes(info);
  }

  private fileAttributes(info: FileInfo): Attributes {
    const time = info.modifiedMilliseconds;
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
