// Types for the parts of fuse-native 2.2.6 (CommonJS, untyped) that src/fs/mount.ts uses. The
// module is loaded lazily (createRequire) so that a missing libfuse is an error we can report,
// not a failed import; `typeof import('fuse-native')` gives that value its type.
//
// Conventions of the binding, from its index.js and fuse-native.c:
// - every callback takes an errno as a negative number first (0 for success);
// - times in a stat are milliseconds since the epoch (Date or number), sizes up to 2^53;
// - `open` answers a handle that must be a non-zero int32 (0 leaves fi->fh unset);
// - `read` gets libfuse's own buffer (detached after the answer: copy into it, never keep it)
//   and answers the number of bytes, or a negative errno, as its only argument;
// - an operation left out is not registered with libfuse at all (the kernel gets ENOSYS).

declare module 'fuse-native' {
  namespace Fuse {
    type Callback = (errno: number) => void;
    type ValueCallback<T> = (errno: number, value?: T) => void;

    interface Stat {
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly size: number;
      readonly nlink: number;
      readonly blksize: number;
      readonly blocks: number;
      readonly ino?: number;
      readonly dev?: number;
      readonly rdev?: number;
      /** Milliseconds since the epoch. */
      readonly atime: number | Date;
      readonly mtime: number | Date;
      readonly ctime: number | Date;
    }

    interface Statfs {
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

    interface Operations {
      init?(callback: Callback): void;
      getattr?(path: string, callback: ValueCallback<Stat>): void;
      fgetattr?(path: string, handle: number, callback: ValueCallback<Stat>): void;
      statfs?(path: string, callback: ValueCallback<Statfs>): void;
      /** `stats`, when given, must be as long as `names` (libfuse then knows each entry's type). */
      readdir?(path: string, callback: (errno: number, names?: readonly string[], stats?: readonly Stat[]) => void): void;
      open?(path: string, flags: number, callback: ValueCallback<number>): void;
      /** Answers the bytes copied into `buffer` (its first argument), or a negative errno. */
      read?(path: string, handle: number, buffer: Buffer, length: number, position: number, callback: (bytesOrErrno: number) => void): void;
      release?(path: string, handle: number, callback: Callback): void;
      // Writes: a read-only file system answers each with EROFS.
      write?(path: string, handle: number, buffer: Buffer, length: number, position: number, callback: (bytesOrErrno: number) => void): void;
      create?(path: string, mode: number, callback: ValueCallback<number>): void;
      truncate?(path: string, size: number, callback: Callback): void;
      ftruncate?(path: string, handle: number, size: number, callback: Callback): void;
      unlink?(path: string, callback: Callback): void;
      rename?(source: string, destination: string, callback: Callback): void;
      link?(source: string, destination: string, callback: Callback): void;
      symlink?(source: string, destination: string, callback: Callback): void;
      mkdir?(path: string, mode: number, callback: Callback): void;
      rmdir?(path: string, callback: Callback): void;
      mknod?(path: string, mode: number, device: number, callback: Callback): void;
      chmod?(path: string, mode: number, callback: Callback): void;
      chown?(path: string, uid: number, gid: number, callback: Callback): void;
      utimens?(path: string, atime: number, mtime: number, callback: Callback): void;
      setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, callback: Callback): void;
      removexattr?(path: string, name: string, callback: Callback): void;
    }

    /** Options of the constructor; mount.ts builds the -o string itself (see DfsFuse there). */
    interface Options {
      readonly debug?: boolean;
      /** Milliseconds before an unanswered operation is failed with ETIMEDOUT; false for never. */
      readonly timeout?: number | false;
    }
  }

  class Fuse {
    constructor(mountPoint: string, operations: Fuse.Operations, options?: Fuse.Options);
    readonly mnt: string;
    mount(callback: (error: Error | null) => void): void;
    /** Runs `fusermount -uz`, then releases the native side. */
    unmount(callback: (error: (Error & { unmountFailure?: boolean }) | null) => void): void;
    /** The `-o` argument handed to libfuse's fuse_mount/fuse_new; overridden by mount.ts. */
    protected _fuseOptions(): string;

    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EROFS: number;
  }

  export = Fuse;
}
