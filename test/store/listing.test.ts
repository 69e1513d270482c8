// Listing: `list` pages through files by prefix in bytewise key order, `listChildren` shows one
// folder level (files, explicit folders and folders implied by deeper files) with each subtree
// skipped by a seek. Method: 10,000 keys paged through at several page sizes and compared with the
// sorted key set (neighbours of the prefix must not leak in); order checked on non-ASCII and
// astral characters and on keys longer than an LMDB key; listChildren over a folder mixing files,
// nested subfolders, explicit empty folders and names that sort around 'name/', paged and whole;
// and the cost of listChildren compared with the size of the subtrees it skips.

import t from 'tap';

import type { AppliedEntry } from '../../src/store/state-machine.js';
import type { PathInfo } from '../../src/store/state-reader.js';
import { bytes, openFixture, type CommandInput } from './state-helpers.js';

const put = (key: string, content = 'x'): CommandInput => ({ type: 'put', key, data: bytes(content), modeBits: 0o644, modifiedMilliseconds: 0 });
const mkdir = (key: string): CommandInput => ({ type: 'mkdir', key, modeBits: 0o755, modifiedMilliseconds: 1 });

/** Bytewise (UTF-8) order, which is not JavaScript's UTF-16 string order. */
const bytewise = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The oracle for listChildren over files only: `kind key` of each child, a folder sorting as name/. */
function expectedChildren(keys: readonly string[], folder: string): string[] {
  const children = new Map<string, string>();
  for (const key of keys) {
    if (!key.startsWith(`${folder}/`)) continue;
    const rest = key.slice(folder.length + 1);
    const slash = rest.indexOf('/');
    if (slash < 0) children.set(rest, `file ${key}`);
    else children.set(`${rest.slice(0, slash)}/`, `folder ${folder}/${rest.slice(0, slash)}`);
  }
  return [...children.keys()].sort(bytewise).map((sortKey) => children.get(sortKey) as string);
}

t.test('list pages through 10,000 keys by prefix', async (t) => {
  const fixture = openFixture('list');
  t.teardown(fixture.close);
  const keys = Array.from({ length: 10_000 }, (_, number) => `items/${String(number * 7919 % 10_000).padStart(5, '0')}`);
  const neighbours = ['item', 'items0', 'itemsX/a', 'itemz', 'a', 'items-/b'];
  for (let start = 0; start < keys.length; start += 1000) {
    fixture.machine.apply(keys.slice(start, start + 1000).map((key) => fixture.log.command(put(key))));
  }
  fixture.machine.apply(neighbours.map((key) => fixture.log.command(put(key))));
  const expected = [...keys].sort(bytewise);

  for (const pageSize of [1000, 777, 10_000]) {
    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = fixture.reader.list('items/', { pageToken, pageSize });
      t.ok(page.entries.length <= pageSize);
      seen.push(...page.entries.map((entry) => entry.key));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '' && pages < 100);
    t.same(seen, expected, `pageSize ${pageSize}: every key under the prefix once, in order, in ${pages} pages`);
  }
  t.equal(fixture.reader.list('items/').entries.length, 1000, 'the default page size');
  t.same(fixture.reader.list('item').entries.length, 1000);
  t.same(
    fixture.reader.list('item', { pageSize: 10_000, pageToken: 'items/09999' }).entries.map((entry) => entry.key),
    ['items0', 'itemsX/a', 'itemz'],
    'a prefix that is not a folder, continued after the last items/ key',
  );

  // A page token is a position: it works even when that key has been deleted meanwhile.
  const firstPage = fixture.reader.list('items/', { pageSize: 3 });
  fixture.machine.apply([fixture.log.command({ type: 'delete', key: firstPage.nextPageToken })]);
  t.same(fixture.reader.list('items/', { pageSize: 2, pageToken: firstPage.nextPageToken }).entries.map((entry) => entry.key), ['items/00003', 'items/00004']);

  t.throws(() => fixture.reader.list('items/', { pageToken: 'other/1' }), { code: 'InvalidArgument' }, 'a token from another prefix');
  t.throws(() => fixture.reader.list('items/', { pageSize: 10_001 }), { code: 'InvalidArgument' });
  t.throws(() => fixture.reader.list('/items'), { code: 'InvalidKey' });
  t.same(fixture.reader.list('nothing/').entries, []);
});

t.test('order is bytewise UTF-8, also for keys longer than an LMDB key', async (t) => {
  const fixture = openFixture('order');
  t.teardown(fixture.close);
  // 'é' and U+FFFD sort after ASCII; '😀' (4 UTF-8 bytes, starting 0xF0) sorts after U+FFFD (0xEF),
  // although JavaScript compares its first UTF-16 unit (0xD83D) as smaller.
  const unicode = ['o/😀', 'o/\ufffd', 'o/é', 'o/a', 'o/B', 'o/a b', 'o/c/b'];
  // A valid 4000-byte key (the part of a key that fits an LMDB key), and keys sharing those 4000
  // bytes (stored in one dup group with different tails) or sorting right around them.
  const head = `h/${Array.from({ length: 15 }, () => 'x'.repeat(250)).join('/')}/${'x'.repeat(233)}`;
  t.equal(Buffer.byteLength(head), 4000);
  const long = [head, `${head}b`, `${head}B`, `${head}c/deeper`, `${head}c/other`, `${head.slice(0, 3999)}z`, `${head.slice(0, 3999)}a`, `${head}${'d'.repeat(20)}`];
  const all = [...unicode, ...long];
  fixture.machine.apply(all.map((key, position) => fixture.log.command(put(key, `content ${position}`))));
  t.same(
    fixture.reader.list('').entries.map((entry) => entry.key),
    [...all].sort(bytewise),
    'exactly sorted',
  );
  t.not(JSON.stringify([...unicode].sort()), JSON.stringify([...unicode].sort(bytewise)), '(JavaScript order would differ)');
  for (const [position, key] of all.entries()) {
    const file = fixture.reader.get(key);
    t.equal(file === null ? null : Buffer.from(file.data).toString(), `content ${position}`, `read back ${Buffer.byteLength(key)}-byte key`);
  }
  t.same(
    fixture.reader.list(`${head}c`).entries.map((entry) => entry.key),
    [`${head}c/deeper`, `${head}c/other`],
    'a prefix longer than an LMDB key',
  );
  const parent = head.slice(0, head.lastIndexOf('/'));
  t.same(
    fixture.reader.listChildren(parent).entries.map((entry) => `${entry.kind} ${entry.key}`),
    expectedChildren(all, parent),
    'children of a folder whose entries are longer than an LMDB key',
  );
  t.match(fixture.machine.apply([fixture.log.command({ type: 'delete', key: `${head}b` })]), [{ ok: true }]);
  t.equal(fixture.reader.stat(`${head}b`), null);
  t.match(fixture.reader.stat(head), { kind: 'file' }, 'its neighbours in the same LMDB key are untouched');
  t.match(fixture.reader.stat(`${head}B`), { kind: 'file' });
  t.match(fixture.reader.stat(`${head}c`), { kind: 'folder' });
});

t.test('listChildren: one level, folders implied or explicit, subtrees skipped', async (t) => {
  const fixture = openFixture('children');
  t.teardown(fixture.close);
  const commands: CommandInput[] = [];
  for (let number = 0; number < 30; number++) commands.push(put(`tree/f${String(number).padStart(2, '0')}`));
  for (let number = 0; number < 12; number++) {
    const folder = `tree/d${String(number).padStart(2, '0')}`;
    for (let file = 0; file < 20; file++) commands.push(put(`${folder}/n${file}`));
    commands.push(put(`${folder}/deeper/still/x`), mkdir(`${folder}/deeper/empty`));
  }
  // Names that sort just before and after 'd01/': '-' (0x2d) and '.' (0x2e) come before '/' (0x2f).
  commands.push(put('tree/d01-x'), put('tree/d01.txt'), put('tree/d010'), mkdir('tree/d01'), mkdir('tree/e1'), mkdir('tree/e2'), mkdir('tree/only/explicit/deep'));
  commands.push(put('tree0'), put('treehouse/x'), put('tre'), mkdir('tree'));
  fixture.machine.apply(commands.map((command) => fixture.log.command(command)));

  const whole = fixture.reader.listChildren('tree', { pageSize: 10_000 });
  t.equal(whole.nextPageToken, '');
  const names = whole.entries.map((entry) => (entry.kind === 'folder' ? `${entry.name}/` : entry.name));
  const expectedNames = [
    ...Array.from({ length: 30 }, (_, number) => `f${String(number).padStart(2, '0')}`),
    ...Array.from({ length: 12 }, (_, number) => `d${String(number).padStart(2, '0')}/`),
    'd01-x',
    'd01.txt',
    'd010',
    'e1/',
    'e2/',
    'only/',
  ].sort(bytewise);
  t.same(names, expectedNames, 'files and folders of this level only, each once, in order (a folder sorting as name/)');
  const byName = new Map<string, PathInfo>(whole.entries.map((entry) => [entry.name, entry]));
  t.match(byName.get('d01'), { kind: 'folder', key: 'tree/d01', explicit: { modeBits: 0o755 } }, 'a folder both explicit and holding files: one entry, explicit');
  t.match(byName.get('d02'), { kind: 'folder', explicit: null }, 'a folder implied by its files');
  const e1Version = commands.findIndex((command) => command.type === 'mkdir' && command.key === 'tree/e1') + 1;
  t.match(byName.get('e1'), { kind: 'folder', explicit: { version: e1Version } }, 'an explicit empty folder, with the index of its mkdir');
  t.match(byName.get('only'), { kind: 'folder', explicit: null }, 'implied by an explicit folder deeper down');
  t.match(byName.get('f00'), { kind: 'file', key: 'tree/f00', sizeBytes: 1 });

  for (const pageSize of [1, 4, 7]) {
    const paged: string[] = [];
    let pageToken = '';
    do {
      const page = fixture.reader.listChildren('tree', { pageSize, pageToken });
      paged.push(...page.entries.map((entry) => (entry.kind === 'folder' ? `${entry.name}/` : entry.name)));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    t.same(paged, expectedNames, `pages of ${pageSize} add up to the whole listing`);
  }

  t.same(
    fixture.reader.listChildren('').entries.map((entry) => `${entry.kind} ${entry.key}`),
    ['file tre', 'folder tree', 'file tree0', 'folder treehouse'],
    'the root',
  );
  t.same(fixture.reader.listChildren('tree/e1').entries, [], 'an empty explicit folder');
  t.same(fixture.reader.listChildren('tree/d03/deeper').entries.map((entry) => entry.name), ['empty', 'still']);
  t.throws(() => fixture.reader.listChildren('tree/f00'), { code: 'FailedPrecondition' }, 'a file');
  t.throws(() => fixture.reader.listChildren('tree/missing'), { code: 'KeyNotFound' });
  t.throws(() => fixture.reader.listChildren('tree', { pageToken: 'a/b' }), { code: 'InvalidArgument' });
});

t.test('listChildren costs what the level holds, not what its subtrees hold', async (t) => {
  const fixture = openFixture('children-cost');
  t.teardown(fixture.close);
  const entries: AppliedEntry[] = [];
  for (let folder = 0; folder < 8; folder++) {
    for (let file = 0; file < 1500; file++) entries.push(fixture.log.command(put(`big/sub${folder}/file${file}`)));
  }
  for (let file = 0; file < 8; file++) entries.push(fixture.log.command(put(`big/direct${file}`)));
  for (let start = 0; start < entries.length; start += 2000) fixture.machine.apply(entries.slice(start, start + 2000));

  const timed = (action: () => void): number => {
    const started = process.hrtime.bigint();
    for (let repeat = 0; repeat < 5; repeat++) action();
    return Number(process.hrtime.bigint() - started) / 5 / 1e6;
  };
  let children = 0;
  const childrenMilliseconds = timed(() => {
    children = fixture.reader.listChildren('big', { pageSize: 10_000 }).entries.length;
  });
  let files = 0;
  const everythingMilliseconds = timed(() => {
    files = 0;
    let pageToken = '';
    do {
      const page = fixture.reader.list('big/', { pageSize: 10_000, pageToken });
      files += page.entries.length;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  });
  t.equal(children, 16);
  t.equal(files, 12_008);
  t.ok(
    childrenMilliseconds * 20 < everythingMilliseconds,
    `16 children of 12,008 files: ${childrenMilliseconds.toFixed(2)} ms, against ${everythingMilliseconds.toFixed(1)} ms to list every file`,
  );
});
