// The cache folder's pure core: given what the file system holds now at the paths that changed
// (the watcher's events only say *where* to look, never what happened) and what was replicated
// before (the index), decide the namespace operations that make the namespace follow the folder.
//
// - A present path whose inode the index knows under another path that is now gone is a rename:
//   one `rename` moves the file, or the folder with everything under it, on every node.
// - A gone path the index knows is deleted: one `deleteFolder` for the top-most gone folder covers
//   everything under it.
// - A present folder the index does not know becomes an explicit folder (so empty folders show).
// - A present file whose size, mtime, mode or inode differ from the index is uploaded (once the
//   watcher has seen that its writer finished); an unchanged one is skipped.
// - Names that cannot be keys (too long, not UTF-8, ...) and things that are not files or folders
//   (symbolic links, sockets, devices) are reported instead of silently dropped.
//
// Actions come out in an order that is safe to run one after the other: renames (shallow first),
// deletions, folders (shallow first), then uploads.

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
    }
  | { readonly kind: 'folder'; readonly device: number; readonly inode: number; readonly modeBits: number; readonly modifiedMilliseconds: number }
  | { readonly kind: 'missing' }
  /** A symbolic link, socket, FIFO or device: not replicated. */
  | { readonly kind: 'unsupported'; readonly what: string };

export type ObservedFile = Extract<Observed, { kind: 'file' }>;
export type ObservedFolder = Extract<Observed, { kind: 'folder' }>;

export type Action =
  | { readonly type: 'rename'; readonly from: string; readonly to: string }
  | { readonly type: 'delete'; readonly path: string }
  | { readonly type: 'deleteFolder'; readonly path: string }
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

function sameFile(entry: ReturnType<IndexView['get']>, observed: ObservedFile): boolean {
  return (
    entry !== undefined &&
    entry.kind === 'file' &&
    entry.device === observed.device &&
    entry.inode === observed.inode &&
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
  const renames: { path: string; from: string }[] = [];
  const deletions: Action[] = [];
  const folders: (Action & { type: 'makeFolder' })[] = [];
  const uploads: (Action & { type: 'upload' })[] = [];
  const reports: Action[] = [];

  // Renames: a present path whose inode the index knows under a path that is gone now.
  const renamedFrom = new Set<string>();
  const renamedTo = new Map<string, string>();
  const candidates = [...observed].filter(([path, seen]) => path !== '' && (seen.kind === 'file' || seen.kind === 'folder'));
  candidates.sort(([left], [right]) => depth(left) - depth(right));
  for (const [path, seen] of candidates) {
    if (seen.kind !== 'file' && seen.kind !== 'folder') continue;
    const known = index.get(path);
    if (known !== undefined && known.device === seen.device && known.inode === seen.inode) continue;
    const from = index.pathOfInode(seen.device, seen.inode);
    if (from === undefined || from === path || observed.get(from)?.kind !== 'missing') continue;
    if (index.get(from)?.kind !== seen.kind) continue;
    // Inside a folder that is itself being moved: the folder's rename carries it.
    if ([...renamedTo].some(([to, origin]) => isUnder(path, to) && isUnder(from, origin))) continue;
    if (pathProblem(path) !== null) continue;
    renames.push({ path, from });
    renamedFrom.add(from);
    renamedTo.set(path, from);
  }

  /** The index entry a path will have once the renames are done. */
  const entryAfterRenames = (path: string): ReturnType<IndexView['get']> => {
    for (const [to, from] of renamedTo) {
      if (path === to) return index.get(from);
      if (isUnder(path, to)) return index.get(from + path.slice(to.length));
    }
    for (const from of renamedFrom) if (path === from || isUnder(path, from)) return undefined;
    return index.get(path);
  };
  const movedAway = (path: string): boolean => [...renamedFrom].some((from) => path === from || isUnder(path, from));

  // Deletions: gone paths the index knows (and that no rename carried away), top-most only.
  const gone = [...observed]
    .filter(([path, seen]) => path !== '' && seen.kind === 'missing' && index.get(path) !== undefined && !movedAway(path))
    .map(([path]) => path)
    .sort((left, right) => depth(left) - depth(right));
  const deletedFolders: string[] = [];
  for (const path of gone) {
    if (deletedFolders.some((folder) => isUnder(path, folder))) continue;
    if (index.get(path)?.kind === 'folder') {
      deletedFolders.push(path);
      deletions.push({ type: 'deleteFolder', path });
    } else {
      deletions.push({ type: 'delete', path });
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
    ...renames.sort(byDepth).map(({ path, from }): Action => ({ type: 'rename', from, to: path })),
    ...deletions,
    ...folders.sort(byDepth),
    ...uploads.sort(byDepth),
    ...reports,
  ];
}
