// The cache folder's pure core: given what the file system holds now at the paths that changed
// (the watcher's events only say *where* to look, never what happened) and what was replicated
// before (the index), decide the namespace operations that make the namespace follow the folder.
//
// - A present path whose inode the index knows under another path that is now gone is a rename:
//   one `rename` moves the file, or the folder with everything under it, on every node.
// - A gone path the index knows is deleted: one `deleteFolder` for the top-most gone folder covers
//   everything under it.
// - A present path whose kind changed (a file where a folder was, or the reverse) is deleted
//   first, then created anew.
// - A present folder the index does not know becomes an explicit folder (so empty folders show).
// - A present file whose size, mtime, mode or inode differ from the index is uploaded (once the
//   watcher has seen that its writer finished); an unchanged one is skipped.
// - Names that cannot be keys (too long, not UTF-8, ...) and things that are not files or folders
//   (symbolic links, sockets, devices) are reported instead of silently dropped.
//
// Actions come out in an order that is safe to run one after the other: renames (shallow first;
// one whose source a folder rename already moved names the source where that rename put it),
// deletions, folders (shallow first), uploads, then reports.

import { validateKey } from '../store/keys.js';
import type { IndexView } from './cache-index.js';

/** What lstat found at a path. */
export type Observed =
  | {
      readonly kind: 'file';
      readonly device: number;
      readonly inode: number;
      readonly sizeBytes: number;
      readonly modifiedMilliseconds: number;
      readonly modeBits: number;
      /**
       * When the inode was made (statx btime; 0 where the file system keeps none). With the inode
       * number it tells a renamed file from a new one that got a freed inode number back.
       */
      readonly birthMilliseconds: number;
    }
  | {
      readonly kind: 'folder';
      readonly device: number;
      readonly inode: number;
      readonly modeBits: number;
      readonly modifiedMilliseconds: number;
      readonly birthMilliseconds: number;
    }
  | { readonly kind: 'missing' }
  /** A symbolic link, socket, FIFO or device: not replicated. */
  | { readonly kind: 'unsupported'; readonly what: string };

export type ObservedFile = Extract<Observed, { kind: 'file' }>;
export type ObservedFolder = Extract<Observed, { kind: 'folder' }>;

export type Action =
  | { readonly type: 'rename'; readonly from: string; readonly to: string }
  /** `replaced`: the path is present with another kind (a file where a folder was, or the reverse). */
  | { readonly type: 'delete'; readonly path: string; readonly replaced?: boolean }
  | { readonly type: 'deleteFolder'; readonly path: string; readonly replaced?: boolean }
  | { readonly type: 'makeFolder'; readonly path: string; readonly observed: ObservedFolder }
  | { readonly type: 'upload'; readonly path: string; readonly observed: ObservedFile }
  | { readonly type: 'report'; readonly path: string; readonly problem: string };

/** The replacement character: a name that is not valid UTF-8 reaches Node with it in place of the bad bytes. */
const replacementCharacter = '\uFFFD';

/** Why `path` cannot be a key, or null. */
export function pathProblem(path: string): string | null {
  if (path.includes(replacementCharacter)) return 'the name is not valid UTF-8, so it cannot be a key';
  return validateKey(path);
}

function depth(path: string): number {
  let count = 0;
  for (const character of path) if (character === '/') count++;
  return count;
}

function byDepth(left: { path: string }, right: { path: string }): number {
  return depth(left.path) - depth(right.path) || (left.path < right.path ? -1 : left.path > right.path ? 1 : 0);
}

function isUnder(path: string, folder: string): boolean {
  return path.startsWith(`${folder}/`);
}

/**
 * Whether `entry` and `seen` are the same inode: same device and number, and — where both birth
 * times are known — born at the same time (an inode number is reused once its file is gone).
 */
function sameInode(entry: NonNullable<ReturnType<IndexView['get']>>, seen: ObservedFile | ObservedFolder): boolean {
  if (entry.device !== seen.device || entry.inode !== seen.inode) return false;
  const born = entry.birthMilliseconds ?? 0;
  return born === 0 || seen.birthMilliseconds === 0 || born === seen.birthMilliseconds;
}

function sameFile(entry: ReturnType<IndexView['get']>, observed: ObservedFile): boolean {
  return (
    entry !== undefined &&
    entry.kind === 'file' &&
    sameInode(entry, observed) &&
    entry.sizeBytes === observed.sizeBytes &&
    entry.modifiedMilliseconds === observed.modifiedMilliseconds &&
    entry.modeBits === observed.modeBits
  );
}

/**
 * Plans the operations for the changed paths in `observed` (every path relative to the cache
 * folder, '/'-separated; the cache folder itself is ''). For a rename to be recognised, the old
 * path must be in `observed` as missing: the watcher adds the index's path of every present
 * inode it sees to what it looks at.
 */
export function planChanges(observed: ReadonlyMap<string, Observed>, index: IndexView): Action[] {
  /** In the order they run; `from` is where the namespace holds the content once the earlier ones ran. */
  const renames: { from: string; to: string }[] = [];
  const deletions: Action[] = [];
  const folders: (Action & { type: 'makeFolder' })[] = [];
  const uploads: (Action & { type: 'upload' })[] = [];
  const reports: (Action & { type: 'report' })[] = [];

  /** Where the content the index knows at `path` is once the renames so far have run. */
  const whereNow = (path: string): string => {
    let current = path;
    for (const { from, to } of renames) if (current === from || isUnder(current, from)) current = to + current.slice(from.length);
    return current;
  };
  /** The index entry a path will have once the renames are done (undefined: nothing, or moved away). */
  const entryAfterRenames = (path: string): ReturnType<IndexView['get']> => {
    let current = path;
    for (let position = renames.length - 1; position >= 0; position--) {
      const { from, to } = renames[position]!;
      if (current === to || isUnder(current, to)) current = from + current.slice(to.length);
      else if (current === from || isUnder(current, from)) return undefined;
    }
    return index.get(current);
  };

  // Renames: a present path whose inode the index knows under a path that is gone now.
  const candidates = [...observed]
    .filter(([path, seen]) => path !== '' && (seen.kind === 'file' || seen.kind === 'folder'))
    .map(([path, seen]) => ({ path, seen }))
    .sort(byDepth);
  for (const { path, seen } of candidates) {
    if (seen.kind !== 'file' && seen.kind !== 'folder') continue;
    const known = index.get(path);
    if (known !== undefined && sameInode(known, seen)) continue;
    const original = index.pathOfInode(seen.device, seen.inode);
    if (original === undefined || original === path || observed.get(original)?.kind !== 'missing') continue;
    const originalEntry = index.get(original);
    if (originalEntry?.kind !== seen.kind || !sameInode(originalEntry, seen)) continue;
    // Without birth times, a file is taken for a renamed one only if it also kept its size and mtime.
    if (
      seen.kind === 'file' &&
      originalEntry.kind === 'file' &&
      ((originalEntry.birthMilliseconds ?? 0) === 0 || seen.birthMilliseconds === 0) &&
      (originalEntry.sizeBytes !== seen.sizeBytes || originalEntry.modifiedMilliseconds !== seen.modifiedMilliseconds)
    ) {
      continue;
    }
    if (pathProblem(path) !== null) continue;
    // A file cannot replace a folder (nor a folder a file) by a rename: that is a deletion and new content.
    const replaced = entryAfterRenames(path);
    if (replaced !== undefined && replaced.kind !== seen.kind) continue;
    const from = whereNow(original);
    // Inside a folder that is itself being moved: the folder's rename carries it here.
    if (from === path) continue;
    renames.push({ from, to: path });
  }

  // Deletions: gone paths whose content (after the renames) the index knows, and present paths
  // whose kind changed (a file where a folder was, or the reverse); top-most only.
  const gone: { path: string; entry: NonNullable<ReturnType<IndexView['get']>>; replaced: boolean }[] = [];
  for (const [path, seen] of observed) {
    if (path === '' || seen.kind === 'unsupported') continue;
    const entry = entryAfterRenames(path);
    if (entry === undefined) continue;
    if (seen.kind === 'missing') gone.push({ path, entry, replaced: false });
    else if (entry.kind !== seen.kind && pathProblem(path) === null) gone.push({ path, entry, replaced: true });
  }
  gone.sort(byDepth);
  const deletedFolders: string[] = [];
  for (const { path, entry, replaced } of gone) {
    if (deletedFolders.some((folder) => isUnder(path, folder))) continue;
    const replacedField = replaced ? { replaced: true } : {};
    if (entry.kind === 'folder') {
      deletedFolders.push(path);
      deletions.push({ type: 'deleteFolder', path, ...replacedField });
    } else {
      deletions.push({ type: 'delete', path, ...replacedField });
    }
  }

  for (const [path, seen] of observed) {
    if (path === '') continue;
    if (seen.kind === 'unsupported') {
      reports.push({ type: 'report', path, problem: `${seen.what} are not replicated` });
      continue;
    }
    if (seen.kind === 'missing') continue;
    const problem = pathProblem(path);
    if (problem !== null) {
      reports.push({ type: 'report', path, problem });
      continue;
    }
    const known = entryAfterRenames(path);
    if (seen.kind === 'folder') {
      if (known?.kind !== 'folder') folders.push({ type: 'makeFolder', path, observed: seen });
    } else if (!sameFile(known, seen)) {
      uploads.push({ type: 'upload', path, observed: seen });
    }
  }

  return [
    ...renames.map(({ from, to }): Action => ({ type: 'rename', from, to })),
    ...deletions,
    ...folders.sort(byDepth),
    ...uploads.sort(byDepth),
    ...reports.sort(byDepth),
  ];
}
