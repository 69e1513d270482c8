// The cache folder's planner, alone: given what lstat found at the changed paths and what the index
// remembers of earlier replication, does it plan exactly the namespace operations that make the
// namespace follow the folder, and no more? Method: an in-memory CacheIndex is filled with what
// "was replicated", a Map of observations stands for the file system now, and the returned action
// list is compared as a whole (so an extra upload, deletion or rename fails the test): new, changed
// and unchanged files; renames of files and folders recognised by inode (also nested, chained and
// combined with edits or deletions); deletions reduced to the top-most folder; folders that appear
// or change kind; reports for what cannot be replicated; and the order the actions come out in.

import t from 'tap';

import { CacheIndex, type IndexEntry } from '../../src/fs/cache-index.js';
import { planChanges, type Action, type Observed, type ObservedFile, type ObservedFolder } from '../../src/fs/cache-planner.js';

const device = 42;

/** An inode's birth time: the same for the same inode number here, unless a test reuses one. */
function bornAt(inode: number): number {
  return 1_600_000_000_000 + inode;
}

function file(inode: number, sizeBytes = 10, modifiedMilliseconds = 1_700_000_000_000.5, modeBits = 0o644, birthMilliseconds = bornAt(inode)): ObservedFile {
  return { kind: 'file', device, inode, sizeBytes, modifiedMilliseconds, modeBits, birthMilliseconds };
}

function folder(inode: number, modeBits = 0o755, birthMilliseconds = bornAt(inode)): ObservedFolder {
  return { kind: 'folder', device, inode, modeBits, modifiedMilliseconds: 1_700_000_000_000, birthMilliseconds };
}

const missing: Observed = { kind: 'missing' };

/** The index entry replication of `observed` would have left. */
function entryOf(observed: ObservedFile | ObservedFolder, version = 7): IndexEntry {
  if (observed.kind === 'folder') return { kind: 'folder', device: observed.device, inode: observed.inode, modeBits: observed.modeBits, birthMilliseconds: observed.birthMilliseconds, version };
  const { kind, ...rest } = observed;
  return { kind, ...rest, version };
}

function indexOf(entries: Record<string, ObservedFile | ObservedFolder>): CacheIndex {
  const index = CacheIndex.inMemory();
  for (const [path, observed] of Object.entries(entries)) index.set(path, entryOf(observed));
  return index;
}

function plan(seen: Record<string, Observed>, index: CacheIndex): Action[] {
  return planChanges(new Map(Object.entries(seen)), index);
}

/** Actions without the observations they carry: easier to compare. */
function brief(actions: Action[]): string[] {
  return actions.map((action) => {
    switch (action.type) {
      case 'rename':
        return `rename ${action.from} -> ${action.to}`;
      case 'report':
        return `report ${action.path}`;
      default:
        return `${action.type} ${action.path}`;
    }
  });
}

t.test('a new file is uploaded with what lstat saw', async (t) => {
  const seen = file(1, 5, 1_700_000_000_123.75, 0o600);
  const actions = plan({ 'a.txt': seen }, CacheIndex.inMemory());
  t.same(actions, [{ type: 'upload', path: 'a.txt', observed: seen }]);
});

t.test('an unchanged file (same inode, size, mtime and mode) is not sent again', async (t) => {
  const index = indexOf({ 'a.txt': file(1), 'docs/b.txt': file(2) });
  t.same(plan({ 'a.txt': file(1), 'docs/b.txt': file(2) }, index), []);
});

t.test('a change of size, mtime, mode or inode is uploaded', async (t) => {
  const index = indexOf({ 'a.txt': file(1) });
  t.same(brief(plan({ 'a.txt': file(1, 11) }, index)), ['upload a.txt'], 'size');
  t.same(brief(plan({ 'a.txt': file(1, 10, 1_700_000_000_001) }, index)), ['upload a.txt'], 'mtime');
  t.same(brief(plan({ 'a.txt': file(1, 10, undefined, 0o755) }, index)), ['upload a.txt'], 'mode alone');
  t.same(brief(plan({ 'a.txt': file(9) }, index)), ['upload a.txt'], 'replaced by another file (new inode, nothing gone)');
});

t.test('a file rename is one rename and nothing else', async (t) => {
  const index = indexOf({ 'a.txt': file(1), 'other.txt': file(2) });
  t.same(plan({ 'a.txt': missing, 'docs/b.txt': file(1) }, index), [{ type: 'rename', from: 'a.txt', to: 'docs/b.txt' }]);
});

t.test('a rename is only recognised when the old path is seen missing', async (t) => {
  const index = indexOf({ 'a.txt': file(1) });
  // A hard link: the old path is still there, so the new one is new content.
  t.same(brief(plan({ 'a.txt': file(1), 'b.txt': file(1) }, index)), ['upload b.txt']);
  // The old path was not looked at: no guess.
  t.same(brief(plan({ 'b.txt': file(1) }, index)), ['upload b.txt']);
});

t.test('a rename of a modified file is a rename, then an upload of the new content', async (t) => {
  const index = indexOf({ 'a.txt': file(1) });
  t.same(brief(plan({ 'a.txt': missing, 'b.txt': file(1, 99) }, index)), ['rename a.txt -> b.txt', 'upload b.txt']);
});

t.test('a rename onto an existing file replaces it with one rename', async (t) => {
  const index = indexOf({ 'a.txt': file(1), 'b.txt': file(2) });
  t.same(brief(plan({ 'a.txt': missing, 'b.txt': file(1) }, index)), ['rename a.txt -> b.txt']);
});

t.test('a folder rename with its children seen at both places is one rename', async (t) => {
  const index = indexOf({ a: folder(10), 'a/x.txt': file(11), 'a/sub': folder(12), 'a/sub/y.txt': file(13) });
  const actions = plan(
    { a: missing, 'a/x.txt': missing, 'a/sub': missing, 'a/sub/y.txt': missing, b: folder(10), 'b/x.txt': file(11), 'b/sub': folder(12), 'b/sub/y.txt': file(13) },
    index,
  );
  t.same(brief(actions), ['rename a -> b']);
});

t.test('a folder moved inside a folder that was moved: only the outer rename', async (t) => {
  const index = indexOf({ a: folder(10), 'a/inner': folder(11), 'a/inner/f': file(12) });
  t.same(brief(plan({ a: missing, 'a/inner': missing, 'a/inner/f': missing, 'b/c': folder(10), 'b/c/inner': folder(11), 'b/c/inner/f': file(12) }, index)), [
    'rename a -> b/c',
  ]);
});

t.test('a folder renamed inside a folder that was renamed: the inner rename names the moved path', async (t) => {
  // mv a b && mv b/c b/d
  const index = indexOf({ a: folder(10), 'a/c': folder(11), 'a/c/f': file(12) });
  t.same(brief(plan({ a: missing, 'a/c': missing, 'a/c/f': missing, b: folder(10), 'b/d': folder(11), 'b/d/f': file(12) }, index)), [
    'rename a -> b',
    'rename b/c -> b/d',
  ]);
  // mv a b && mv b/f top: a file taken out of a folder that moved too.
  const second = indexOf({ a: folder(10), 'a/f': file(12) });
  t.same(brief(plan({ a: missing, 'a/f': missing, b: folder(10), top: file(12) }, second)), ['rename a -> b', 'rename b/f -> top']);
});

t.test('a folder rename and a removal inside it: the rename, then the removal at the new path', async (t) => {
  const index = indexOf({ a: folder(10), 'a/keep': file(11), 'a/gone': file(12) });
  t.same(brief(plan({ a: missing, 'a/keep': missing, 'a/gone': missing, b: folder(10), 'b/keep': file(11), 'b/gone': missing }, index)), [
    'rename a -> b',
    'delete b/gone',
  ]);
});

t.test('a deleted file is deleted; a deleted folder is one deleteFolder', async (t) => {
  const index = indexOf({ 'a.txt': file(1), d: folder(10), 'd/x': file(11), 'd/e': folder(12), 'd/e/y': file(13) });
  t.same(plan({ 'a.txt': missing }, index), [{ type: 'delete', path: 'a.txt' }]);
  t.same(plan({ 'd/e/y': missing, d: missing, 'd/x': missing, 'd/e': missing }, index), [{ type: 'deleteFolder', path: 'd' }]);
});

t.test('a missing path that was never replicated plans nothing', async (t) => {
  t.same(plan({ 'never.txt': missing, 'never/folder': missing }, indexOf({ 'a.txt': file(1) })), []);
});

t.test('a new folder is made; a known one is not', async (t) => {
  const index = indexOf({ known: folder(10) });
  const fresh = folder(20, 0o700);
  t.same(plan({ fresh, known: folder(10) }, index), [{ type: 'makeFolder', path: 'fresh', observed: fresh }]);
});

t.test('a path whose kind changed is deleted first, then created anew', async (t) => {
  const index = indexOf({ x: file(1), d: folder(10), 'd/f': file(11) });
  t.same(brief(plan({ x: folder(2) }, index)), ['delete x', 'makeFolder x']);
  t.same(plan({ x: folder(2) }, index)[0], { type: 'delete', path: 'x', replaced: true });
  t.same(brief(plan({ d: file(3), 'd/f': missing }, index)), ['deleteFolder d', 'upload d']);
  // A file moved onto the place of a removed folder: not a rename (the namespace would refuse it).
  t.same(brief(plan({ x: missing, d: file(1), 'd/f': missing }, index)), ['deleteFolder d', 'delete x', 'upload d']);
});

t.test('symbolic links and other unsupported things are reported, not sent', async (t) => {
  const actions = plan({ link: { kind: 'unsupported', what: 'symbolic links' }, fifo: { kind: 'unsupported', what: 'FIFOs' } }, CacheIndex.inMemory());
  t.same(brief(actions), ['report fifo', 'report link']);
  const [first] = actions;
  t.match(first, { type: 'report', problem: /FIFOs are not replicated/ });
});

t.test('names that cannot be keys are reported', async (t) => {
  const long = 'x'.repeat(256);
  const actions = plan({ [long]: file(1), [`ok/${long}`]: folder(2), 'bad\uFFFDname.txt': file(3), 'fine.txt': file(4) }, CacheIndex.inMemory());
  t.same(brief(actions), ['upload fine.txt', 'report bad\uFFFDname.txt', `report ${long}`, `report ok/${long}`]);
  t.match(actions.find((action) => action.type === 'report' && action.path === long), { problem: /255-byte limit/ });
  t.match(actions.find((action) => action.type === 'report' && action.path.startsWith('bad')), { problem: /not valid UTF-8/ });
  // A rename to an invalid name is no rename: the old path goes, the new one is reported.
  const index = indexOf({ 'a.txt': file(1) });
  t.same(brief(plan({ 'a.txt': missing, [long]: file(1) }, index)), ['delete a.txt', `report ${long}`]);
});

t.test('actions come out as renames, deletions, folders shallow first, uploads', async (t) => {
  const index = indexOf({ old: file(1), gone: file(2), 'gone-folder': folder(3), 'gone-folder/f': file(4), changed: file(5) });
  const actions = plan(
    {
      'z/y/deep.txt': file(100),
      'z/y': folder(101),
      z: folder(102),
      a: folder(103),
      changed: file(5, 1234),
      new: missing,
      'gone-folder/f': missing,
      gone: missing,
      'gone-folder': missing,
      'n/e/w': file(1),
      old: missing,
    },
    index,
  );
  t.same(brief(actions), [
    'rename old -> n/e/w',
    'delete gone',
    'deleteFolder gone-folder',
    'makeFolder a',
    'makeFolder z',
    'makeFolder z/y',
    'upload changed',
    'upload z/y/deep.txt',
  ]);
});

t.test('the cache folder itself plans nothing', async (t) => {
  t.same(plan({ '': folder(1) }, CacheIndex.inMemory()), []);
  t.same(plan({ '': missing }, indexOf({ 'a.txt': file(1) })), []);
});

t.test('a new file that got a freed inode number back is new content, not a rename', async (t) => {
  // rm -r a; then b/g.txt is created and the file system hands it a.txt's old inode number.
  const index = indexOf({ 'a.txt': file(5) });
  const reborn = file(5, 10, 1_700_000_000_000.5, 0o644, bornAt(5) + 60_000);
  t.same(plan({ 'a.txt': missing, 'b/g.txt': reborn }, index), [
    { type: 'delete', path: 'a.txt' },
    { type: 'upload', path: 'b/g.txt', observed: reborn },
  ]);
  const rebornFolder = folder(9, 0o755, bornAt(9) + 1);
  t.same(plan({ dir: missing, other: rebornFolder }, indexOf({ dir: folder(9) })), [
    { type: 'deleteFolder', path: 'dir' },
    { type: 'makeFolder', path: 'other', observed: rebornFolder },
  ], 'the same for folders');
});

t.test('without birth times, a file is a renamed one only if it kept its size and mtime', async (t) => {
  const unborn = (sizeBytes: number): ObservedFile => file(5, sizeBytes, 1_700_000_000_000.5, 0o644, 0);
  const index = indexOf({ 'a.txt': unborn(10) });
  t.same(plan({ 'a.txt': missing, 'b.txt': unborn(10) }, index), [{ type: 'rename', from: 'a.txt', to: 'b.txt' }], 'kept: a rename');
  t.same(plan({ 'a.txt': missing, 'b.txt': unborn(11) }, index), [
    { type: 'delete', path: 'a.txt' },
    { type: 'upload', path: 'b.txt', observed: unborn(11) },
  ], 'changed: a deletion and new content');
});
