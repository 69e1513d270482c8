// The one table from what went wrong to the errno a FUSE operation answers (DESIGN.md, example 6:
// stable codes mapped in one table to gRPC status codes, src/api/status.ts, and in this one to
// errno). Two kinds of causes meet here: the store's DfsErrorCode (thrown by StateReader) and the
// conditions only a file system has (a write to a read-only mount, a folder opened as a file).
// Nothing else in src/fs chooses an errno.
//
// Answers are negative, as libfuse (and fuse-native) expect them.

import { constants } from 'node:os';

import { DfsError, type DfsErrorCode } from '../errors.js';

/** Conditions of the file-system layer that have no DfsErrorCode. */
export type FileSystemCondition =
  /** A write of any kind: the mount is a read-only view of the replicated state. */
  | 'ReadOnly'
  /** Nothing at the path. */
  | 'NotFound'
  /** A folder operation on a file (readdir, or a file used as a path's folder). */
  | 'NotAFolder'
  /** A file operation on a folder (open, read). */
  | 'IsAFolder'
  /** A path, or one of its names, longer than a key may be (4096 / 255 UTF-8 bytes). */
  | 'NameTooLong'
  /** A path that can never name a key ('..', NUL, an empty name...). */
  | 'InvalidPath'
  /**
   * A read through a handle whose file is gone (removed, or renamed away) since it was opened: a
   * handle reads its path's current version, and there is none.
   */
  | 'RemovedSinceOpen'
  /** A handle this process never gave out, or already released. */
  | 'BadHandle'
  /** Every handle is in use (the limit on open files of the mount). */
  | 'TooManyOpenFiles';

export type Condition = DfsErrorCode | FileSystemCondition;

const { errno } = constants;

/** Every condition's errno, positive (as in <errno.h>). */
const errnoTable: { readonly [condition in Condition]: number } = {
  // The file system's own conditions.
  ReadOnly: errno.EROFS,
  NotFound: errno.ENOENT,
  NotAFolder: errno.ENOTDIR,
  IsAFolder: errno.EISDIR,
  NameTooLong: errno.ENAMETOOLONG,
  InvalidPath: errno.EINVAL,
  // EIO rather than ESTALE (which programs know only from NFS): the reader sees an I/O error, and
  // the log says the file was removed.
  RemovedSinceOpen: errno.EIO,
  BadHandle: errno.EBADF,
  TooManyOpenFiles: errno.ENFILE,
  // The store's codes, as a StateReader call may throw them.
  KeyNotFound: errno.ENOENT,
  InvalidKey: errno.EINVAL,
  InvalidArgument: errno.EINVAL,
  // A read range past the reader's limit: FUSE asks for at most 128 KiB, so a bug if it happens.
  TooLarge: errno.EIO,
  // A stream whose version was dropped meanwhile, or a store that is not a dfs state store.
  FailedPrecondition: errno.EIO,
  AlreadyExists: errno.EEXIST,
  // Codes of the write path and of the cluster: a read of the local state never meets them, and
  // if one ever comes through, the reader gets an I/O error rather than a made-up success.
  NotLeader: errno.EIO,
  NoLeader: errno.EIO,
  Unavailable: errno.EIO,
  Timeout: errno.EIO,
  Compacted: errno.EIO,
  ResourceExhausted: errno.EIO,
  Internal: errno.EIO,
};

/** The negative errno for a condition. */
export function errnoFor(condition: Condition): number {
  return -errnoTable[condition];
}

/** A file-system condition raised by src/fs/operations.ts; its errno comes from the table. */
export class FileSystemError extends Error {
  override readonly name = 'FileSystemError';
  constructor(
    readonly condition: Condition,
    message: string,
  ) {
    super(message);
  }

  /** Negative, as libfuse expects. */
  get errno(): number {
    return errnoFor(this.condition);
  }
}

/**
 * The negative errno for anything an operation threw: a FileSystemError or DfsError by the table,
 * anything else (a bug, an LMDB failure) EIO — `expected` tells the caller whether to log it as a
 * fault.
 */
export function errnoOf(error: unknown): { readonly errno: number; readonly expected: boolean } {
  if (error instanceof FileSystemError) return { errno: error.errno, expected: true };
  if (error instanceof DfsError) return { errno: errnoFor(error.code), expected: true };
  return { errno: -errno.EIO, expected: false };
}
