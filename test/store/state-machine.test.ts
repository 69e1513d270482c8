// What each command does to the state, as seen through a StateReader: puts and overwrites,
// content chunks and their reference counts (identical content stored once, released when the
// last file using it goes, collected only by collectGarbage), the namespace rules (a key is a file
// or a folder, never both), delete / deleteFolder / rename / mkdir, rejected and malformed entries
// (a result error, nothing else changes), and the applier's guard against gaps. Method: one fresh
// state folder per test, commands applied through encoded log entries exactly as the store worker
// will, results and reader views checked after each step.

import t from 'tap';

import { chunkHash } from '../../src/store/commands.js';
import { chunkSizeBytes } from '../../src/store/layout.js';
import { StateMachine } from '../../src/store/state-machine.js';
import { StateReader } from '../../src/store/state-reader.js';
import { bytes, openFixture, packUnchecked, pseudoRandomBytes, temporaryFolder, removeFolder, testMachineOptions, text, type CommandInput } from './state-helpers.js';

const file = (key: string, content: string | Uint8Array, modifiedMilliseconds = 1000): CommandInput => ({
  type: 'put',
  key,
  data: typeof content === 'string' ? bytes(content) : content,
  modeBits: 0o644,
  modifiedMilliseconds,
});

t.test('put, get, stat and overwrite', async (t) => {
  const fixture = openFixture('put');
  t.teardown(fixture.close);
  const { reader } = fixture;
  t.same(fixture.run(file('docs/a.txt', 'hello', 111)), { requestId: 'test/1', index: 1, ok: true, version: 1, affectedCount: 1, complete: true });
  t.equal(text(reader.get('docs/a.txt')?.data), 'hello');
  t.same(reader.stat('docs/a.txt'), {
    kind: 'file',
    key: 'docs/a.txt',
    name: 'a.txt',
    sizeBytes: 5,
    modeBits: 0o644,
    modifiedMilliseconds: 111,
    version: 1,
    chunkCount: 1,
  });
  t.same(reader.stat('docs'), { kind: 'folder', key: 'docs', name: 'docs', explicit: null }, 'the folder exists because of its file');
  t.equal(reader.stat('docs/b.txt'), null);
  t.equal(reader.get('nothing'), null);

  t.equal(fixture.run(file('docs/a.txt', 'bye', 222)).ok, true);
  t.equal(text(reader.get('docs/a.txt')?.data), 'bye', 'the overwrite replaces the content');
  t.match(reader.stat('docs/a.txt'), { version: 2, sizeBytes: 3, modifiedMilliseconds: 222 });
  t.same(reader.chunkReference(chunkHash(bytes('hello'))), { referenceCount: 0, orphanedIndex: 2, sizeBytes: 5 }, 'the old content is an orphan as of the overwrite');
  t.match(reader.statistics(), { appliedIndex: 2, files: 1, chunks: 2, orphanChunks: 1 });

  t.equal(fixture.run(file('empty', '')).ok, true);
  t.same(reader.get('empty')?.data, new Uint8Array(0), 'an empty file has no chunks');
  t.match(reader.stat('empty'), { sizeBytes: 0, chunkCount: 0 });
  t.throws(() => reader.get('../x'), { code: 'InvalidKey' }, 'readers check keys too');
});

t.test('identical content is stored once, with a reference per use', async (t) => {
  const fixture = openFixture('dedup');
  t.teardown(fixture.close);
  const { reader } = fixture;
  const piece = pseudoRandomBytes(chunkSizeBytes, 1);
  const threePieces = Buffer.concat([piece, piece, piece]);
  const pieceHash = chunkHash(piece);
  fixture.run(file('one', piece));
  fixture.run(file('two', piece));
  fixture.run(file('three-pieces', threePieces));
  t.same(reader.chunkReference(pieceHash), { referenceCount: 5, orphanedIndex: 0, sizeBytes: chunkSizeBytes }, '1 + 1 + 3 uses of one chunk');
  t.match(reader.statistics(), { files: 3, chunks: 1, orphanChunks: 0 }, 'stored once');
  t.same(reader.get('three-pieces')?.data, threePieces, 'a file made of one chunk three times reads back whole');

  fixture.run({ type: 'delete', key: 'three-pieces' });
  t.match(reader.chunkReference(pieceHash), { referenceCount: 2 });
  fixture.run({ type: 'delete', key: 'one' });
  fixture.run({ type: 'delete', key: 'two' });
  t.same(reader.chunkReference(pieceHash), { referenceCount: 0, orphanedIndex: 6, sizeBytes: chunkSizeBytes }, 'unreferenced since index 6');
  t.match(reader.statistics(), { files: 0, chunks: 1, orphanChunks: 1 }, 'kept until collected');

  t.match(fixture.run({ type: 'collectGarbage', beforeIndex: 6 }), { ok: true, affectedCount: 0, complete: true }, 'not older than beforeIndex: kept');
  t.match(fixture.run({ type: 'collectGarbage', beforeIndex: 7 }), { ok: true, affectedCount: 1, complete: true });
  t.equal(reader.chunkReference(pieceHash), null);
  t.match(reader.statistics(), { chunks: 0, orphanChunks: 0 });
  t.match(fixture.run({ type: 'collectGarbage', beforeIndex: 100 }), { ok: false, code: 'InvalidArgument' }, 'beforeIndex may not be in the future');
});

t.test('streamed upload: putChunk, then commitFile makes the file visible at once', async (t) => {
  const fixture = openFixture('upload');
  t.teardown(fixture.close);
  const { reader } = fixture;
  const pieces = [bytes('first '), bytes('second '), bytes('third')];
  const hashes = pieces.map((piece) => chunkHash(piece));
  for (const piece of pieces) t.match(fixture.run({ type: 'putChunk', data: piece }), { ok: true, affectedCount: 1 });
  t.match(fixture.run({ type: 'putChunk', data: pieces[0] as Uint8Array }), { ok: true, affectedCount: 0 }, 'a chunk sent twice is stored once');
  t.equal(reader.stat('up.txt'), null, 'nothing visible before the commit');
  t.match(reader.statistics(), { chunks: 3, orphanChunks: 3 });

  const commit = { type: 'commitFile', key: 'up.txt', chunks: hashes, sizeBytes: 18, modeBits: 0o600, modifiedMilliseconds: 5 } as const;
  t.match(fixture.run({ ...commit, sizeBytes: 17 }), { ok: false, code: 'InvalidArgument', message: /sizeBytes is 17, but the 3 chunks hold 18 bytes/ });
  t.match(fixture.run({ ...commit, chunks: [...hashes, chunkHash(bytes('never sent'))], sizeBytes: 28 }), {
    ok: false,
    code: 'FailedPrecondition',
    message: /chunk 4 of 4 .* is not stored/,
  });
  t.equal(reader.stat('up.txt'), null, 'rejected commits change nothing');
  t.match(fixture.run(commit), { ok: true, version: 7 });
  t.equal(text(reader.get('up.txt')?.data), 'first second third');
  t.match(reader.statistics(), { files: 1, chunks: 3, orphanChunks: 0 });
  t.match(reader.stat('up.txt'), { chunkCount: 3, sizeBytes: 18, modeBits: 0o600 });
});

t.test('garbage collection spares chunks an upload refreshed', async (t) => {
  const fixture = openFixture('garbage');
  t.teardown(fixture.close);
  const { reader } = fixture;
  const piece = bytes('slow upload');
  fixture.run({ type: 'putChunk', data: piece }); // index 1
  fixture.run({ type: 'putChunk', data: bytes('abandoned') }); // index 2
  fixture.run({ type: 'putChunk', data: piece }); // index 3: the upload sends it again
  t.match(fixture.run({ type: 'collectGarbage', beforeIndex: 3 }), { affectedCount: 1 }, 'only the abandoned chunk is old enough');
  t.match(reader.chunkReference(chunkHash(piece)), { referenceCount: 0, orphanedIndex: 3 });
  t.match(fixture.run({ type: 'commitFile', key: 'slow', chunks: [chunkHash(piece)], sizeBytes: piece.length, modeBits: 0, modifiedMilliseconds: 0 }), { ok: true });

  // An upload that waited too long: its chunk is collected, the commit fails and must be retried.
  fixture.run({ type: 'putChunk', data: bytes('too slow') }); // index 6
  fixture.run({ type: 'collectGarbage', beforeIndex: 7 });
  t.match(fixture.run({ type: 'commitFile', key: 'late', chunks: [chunkHash(bytes('too slow'))], sizeBytes: 8, modeBits: 0, modifiedMilliseconds: 0 }), {
    ok: false,
    code: 'FailedPrecondition',
    message: /upload expired/,
  });
});

t.test('collectGarbage stops at its per-entry limit and says so', async (t) => {
  const fixture = openFixture('garbage-limit');
  t.teardown(fixture.close);
  const entries = [];
  for (let count = 0; count < 4100; count++) entries.push(fixture.log.command({ type: 'putChunk', data: pseudoRandomBytes(8, count + 1) }));
  fixture.machine.apply(entries);
  t.match(fixture.run({ type: 'collectGarbage', beforeIndex: 4100 }), { ok: true, affectedCount: 4096, complete: false });
  t.match(fixture.run({ type: 'collectGarbage', beforeIndex: 4100 }), { ok: true, affectedCount: 3, complete: true });
  t.match(fixture.reader.statistics(), { chunks: 1, orphanChunks: 1 }, 'the chunk of index 4100 is not older than beforeIndex');
});

t.test('a key is a file or a folder, never both', async (t) => {
  const fixture = openFixture('namespace');
  t.teardown(fixture.close);
  fixture.run(file('a', 'file a'));
  fixture.run(file('d/x', 'in d'));
  t.match(fixture.run(file('a/b', 'under a file')), { ok: false, code: 'FailedPrecondition', message: /"a" is a file/ });
  t.match(fixture.run(file('d', 'onto a folder')), { ok: false, code: 'FailedPrecondition', message: /"d": it is a folder/ });
  t.match(fixture.run({ type: 'mkdir', key: 'a', modeBits: 0o755, modifiedMilliseconds: 0 }), { ok: false, code: 'AlreadyExists' });
  t.match(fixture.run({ type: 'mkdir', key: 'a/sub', modeBits: 0o755, modifiedMilliseconds: 0 }), { ok: false, code: 'FailedPrecondition' });
  fixture.run({ type: 'mkdir', key: 'empty', modeBits: 0o755, modifiedMilliseconds: 0 });
  t.match(fixture.run(file('empty', 'onto an explicit folder')), { ok: false, code: 'FailedPrecondition' });
  t.match(fixture.run({ type: 'commitFile', key: 'a/c', chunks: [], sizeBytes: 0, modeBits: 0, modifiedMilliseconds: 0 }), { ok: false, code: 'FailedPrecondition' });
  t.equal(text(fixture.reader.get('a')?.data), 'file a', 'rejections changed nothing');
});

t.test('mkdir and folders: explicit folders stay, implied ones go with their last file', async (t) => {
  const fixture = openFixture('folders');
  t.teardown(fixture.close);
  const { reader } = fixture;
  t.match(fixture.run({ type: 'mkdir', key: 'kept', modeBits: 0o750, modifiedMilliseconds: 77 }), { ok: true, version: 1 });
  t.same(reader.stat('kept'), { kind: 'folder', key: 'kept', name: 'kept', explicit: { modeBits: 0o750, modifiedMilliseconds: 77, version: 1 } });
  t.match(fixture.run({ type: 'mkdir', key: 'kept', modeBits: 0o700, modifiedMilliseconds: 78 }), { ok: true }, 'mkdir again updates it');
  t.match(reader.stat('kept'), { explicit: { modeBits: 0o700, version: 2 } });
  fixture.run(file('kept/f', 'x'));
  fixture.run(file('implied/f', 'x'));
  fixture.run({ type: 'delete', key: 'kept/f' });
  fixture.run({ type: 'delete', key: 'implied/f' });
  t.match(reader.stat('kept'), { kind: 'folder' }, 'an explicit folder outlives its files');
  t.equal(reader.stat('implied'), null, 'an implied folder does not');
  fixture.run({ type: 'mkdir', key: 'a/b/c', modeBits: 0o755, modifiedMilliseconds: 0 });
  t.same(reader.stat('a/b'), { kind: 'folder', key: 'a/b', name: 'b', explicit: null }, 'an explicit folder implies its parents');
});

t.test('delete: files, empty explicit folders, nothing else', async (t) => {
  const fixture = openFixture('delete');
  t.teardown(fixture.close);
  const { reader } = fixture;
  fixture.run(file('f', 'x'));
  fixture.run(file('full/f', 'x'));
  fixture.run({ type: 'mkdir', key: 'empty', modeBits: 0o755, modifiedMilliseconds: 0 });
  fixture.run({ type: 'mkdir', key: 'outer/inner', modeBits: 0o755, modifiedMilliseconds: 0 });
  fixture.run({ type: 'mkdir', key: 'outer', modeBits: 0o755, modifiedMilliseconds: 0 });
  t.match(fixture.run({ type: 'delete', key: 'f' }), { ok: true, affectedCount: 1, version: 6 });
  t.equal(reader.stat('f'), null);
  t.match(fixture.run({ type: 'delete', key: 'f' }), { ok: false, code: 'KeyNotFound' }, 'twice');
  t.match(fixture.run({ type: 'delete', key: 'full' }), { ok: false, code: 'FailedPrecondition', message: /not empty/ });
  t.match(fixture.run({ type: 'delete', key: 'outer' }), { ok: false, code: 'FailedPrecondition' }, 'holds an explicit folder');
  t.match(fixture.run({ type: 'delete', key: 'empty' }), { ok: true });
  t.equal(reader.stat('empty'), null);
  t.match(fixture.run({ type: 'delete', key: 'outer/inner' }), { ok: true });
  t.match(fixture.run({ type: 'delete', key: 'outer' }), { ok: true });
  t.ok(reader.stat('full/f'), 'the refused deletes changed nothing');
});

t.test('deleteFolder removes a whole subtree and releases its content', async (t) => {
  const fixture = openFixture('delete-folder');
  t.teardown(fixture.close);
  const { reader } = fixture;
  fixture.run(file('tree/a', 'a'));
  fixture.run(file('tree/sub/b', 'b'));
  fixture.run(file('tree/sub/deeper/c', 'c'));
  fixture.run({ type: 'mkdir', key: 'tree/sub/empty', modeBits: 0o755, modifiedMilliseconds: 0 });
  fixture.run({ type: 'mkdir', key: 'tree', modeBits: 0o755, modifiedMilliseconds: 0 });
  fixture.run(file('tree-sibling', 'not under tree/'));
  fixture.run(file('treehouse/x', 'not under tree/ either'));
  t.match(fixture.run({ type: 'deleteFolder', key: 'tree/sub/b' }), { ok: false, code: 'FailedPrecondition', message: /is a file/ });
  t.match(fixture.run({ type: 'deleteFolder', key: 'tree' }), { ok: true, affectedCount: 5 }, '3 files and 2 explicit folders');
  t.equal(reader.stat('tree'), null);
  t.same(
    reader.list('').entries.map((entry) => entry.key),
    ['tree-sibling', 'treehouse/x'],
    'neighbours sharing the prefix "tree" are untouched',
  );
  t.match(reader.statistics(), { files: 2, explicitFolders: 0, orphanChunks: 3 });
  t.match(fixture.run({ type: 'deleteFolder', key: 'tree' }), { ok: false, code: 'KeyNotFound' });
});

t.test('rename a file', async (t) => {
  const fixture = openFixture('rename-file');
  t.teardown(fixture.close);
  const { reader } = fixture;
  fixture.run(file('a.txt', 'content a', 10));
  fixture.run(file('b.txt', 'content b'));
  fixture.run({ type: 'mkdir', key: 'dir', modeBits: 0o755, modifiedMilliseconds: 0 });
  t.match(fixture.run({ type: 'rename', from: 'a.txt', to: 'moved/a.txt' }), { ok: true, affectedCount: 1, version: 4 });
  t.equal(reader.stat('a.txt'), null);
  t.match(reader.stat('moved/a.txt'), { version: 4, modifiedMilliseconds: 10, sizeBytes: 9 }, 'new version, same metadata');
  t.equal(text(reader.get('moved/a.txt')?.data), 'content a');
  t.match(reader.chunkReference(chunkHash(bytes('content a'))), { referenceCount: 1 }, 'the content was not copied');

  t.match(fixture.run({ type: 'rename', from: 'moved/a.txt', to: 'b.txt' }), { ok: true }, 'onto a file: replaces it, like POSIX rename');
  t.equal(text(reader.get('b.txt')?.data), 'content a');
  t.match(reader.chunkReference(chunkHash(bytes('content b'))), { referenceCount: 0 }, 'the replaced content is released');
  t.match(fixture.run({ type: 'rename', from: 'b.txt', to: 'dir' }), { ok: false, code: 'FailedPrecondition', message: /onto folder/ });
  t.throws(() => fixture.run({ type: 'rename', from: 'b.txt', to: 'b.txt/x' }), { code: 'InvalidArgument' }, 'proposers cannot even encode a move into itself');
  const [intoItself] = fixture.machine.apply([fixture.log.raw(packUnchecked({ type: 'rename', requestId: 'r', from: 'b.txt', to: 'b.txt/x' }))]);
  t.match(intoItself, { ok: false, code: 'InvalidArgument', message: /into itself/ }, 'and the applier rejects one that reaches the log');
  t.match(fixture.run({ type: 'rename', from: 'nothing', to: 'x' }), { ok: false, code: 'KeyNotFound' });
});

t.test('rename a folder with everything under it', async (t) => {
  const fixture = openFixture('rename-folder');
  t.teardown(fixture.close);
  const { reader } = fixture;
  fixture.run(file('src/a', 'a'));
  fixture.run(file('src/sub/b', 'b'));
  fixture.run({ type: 'mkdir', key: 'src/sub/empty', modeBits: 0o700, modifiedMilliseconds: 3 });
  fixture.run(file('srcfile', 'a neighbour'));
  fixture.run(file('busy/x', 'x'));
  fixture.run({ type: 'mkdir', key: 'vacant', modeBits: 0o755, modifiedMilliseconds: 0 });
  t.match(fixture.run({ type: 'rename', from: 'src', to: 'busy' }), { ok: false, code: 'FailedPrecondition', message: /not empty/ });
  t.match(fixture.run({ type: 'rename', from: 'src', to: 'srcfile' }), { ok: false, code: 'FailedPrecondition', message: /onto file/ });
  t.match(fixture.run({ type: 'rename', from: 'src', to: 'srcfile/x' }), { ok: false, code: 'FailedPrecondition', message: /is a file/ });
  t.match(fixture.run({ type: 'rename', from: 'src', to: 'vacant' }), { ok: true, affectedCount: 3, version: 10 }, '2 files and 1 explicit folder');
  t.same(
    reader.list('').entries.map((entry) => [entry.key, entry.version]),
    [
      ['busy/x', 5],
      ['srcfile', 4],
      ['vacant/a', 10],
      ['vacant/sub/b', 10],
    ],
  );
  t.match(reader.stat('vacant/sub/empty'), { explicit: { modeBits: 0o700 } }, 'explicit folders move too');
  t.match(reader.stat('vacant'), { explicit: null }, 'the replaced empty destination folder is gone; the moved one was implied');
  t.equal(reader.stat('src'), null);
  t.equal(text(reader.get('vacant/sub/b')?.data), 'b');
});

t.test('rename refuses to make a key longer than 4096 bytes', async (t) => {
  const fixture = openFixture('rename-long');
  t.teardown(fixture.close);
  // 4090 bytes: also longer than the 4000 bytes an LMDB key holds, so it exercises path tails.
  const deepKey = `d/${Array.from({ length: 16 }, () => 'k'.repeat(250)).join('/')}/${'f'.repeat(72)}`;
  t.equal(fixture.run(file(deepKey, 'x')).ok, true, `${Buffer.byteLength(deepKey)} bytes is fine`);
  t.equal(Buffer.byteLength(deepKey), 4090);
  t.match(fixture.run({ type: 'rename', from: 'd', to: 'longer-name' }), { ok: false, code: 'InvalidKey', message: /longer than 4096/ });
  t.equal(fixture.run({ type: 'rename', from: 'd', to: 'e' }).ok, true, 'same length is fine');
  t.equal(text(fixture.reader.get(`e${deepKey.slice(1)}`)?.data), 'x');
});

t.test('malformed and no-op entries: a result error or nothing, and the index moves on', async (t) => {
  const fixture = openFixture('malformed');
  t.teardown(fixture.close);
  const { machine, log, reader } = fixture;
  const results = machine.apply([
    log.command(file('before', '1')),
    log.raw(null),
    log.raw(new Uint8Array(0)),
    log.raw(Uint8Array.from([0xc1, 0xff, 0x00])),
    log.raw(Uint8Array.from(Buffer.from('{"type":"put"}'))),
    log.command(file('after', '2')),
  ]);
  t.same(
    results.map((result) => [result.index, result.ok ? 'ok' : result.code]),
    [
      [1, 'ok'],
      [4, 'InvalidArgument'],
      [5, 'InvalidArgument'],
      [6, 'ok'],
    ],
    'no-op entries (null, empty) have no result; malformed ones a rejection',
  );
  t.equal(machine.appliedIndex(), 6);
  t.equal(reader.appliedIndex(), 6);
  t.same(reader.list('').entries.map((entry) => entry.key), ['after', 'before']);
});

t.test('a gap in the log is a driver bug: apply throws and writes nothing', async (t) => {
  const fixture = openFixture('gap');
  t.teardown(fixture.close);
  const { machine, log } = fixture;
  machine.apply([log.command(file('one', '1'))]);
  const digest = machine.digest();
  t.throws(() => machine.apply([{ index: 3, term: 1, data: null }]), /entry 3 does not follow the applied index 1/);
  t.throws(() => machine.apply([log.command(file('two', '2')), { index: 5, term: 1, data: null }]), /entry 5 does not follow/, 'even after a good entry');
  t.equal(machine.appliedIndex(), 1, 'the whole batch was aborted');
  t.equal(machine.digest(), digest);
  t.throws(() => machine.apply([{ index: 2, term: 0, data: null }]), /below the applied term/);
});

t.test('opening: foreign environments and missing stores are refused clearly', async (t) => {
  const folder = temporaryFolder('foreign');
  t.teardown(() => removeFolder(folder));
  const { open } = await import('lmdb');
  const foreign = open({ path: folder, maxDbs: 4 });
  foreign.openDB({ name: 'entries' });
  await foreign.close();
  t.throws(() => StateMachine.open(folder, testMachineOptions), { code: 'FailedPrecondition', message: /another LMDB environment \(databases entries\)/ });
  t.throws(() => StateReader.open(`${folder}/missing`), { code: 'Unavailable' });
});

t.test('a machine reopened on its folder carries on where it stopped', async (t) => {
  const fixture = openFixture('reopen');
  t.teardown(fixture.close);
  fixture.run(file('a', 'x'));
  const digest = fixture.machine.digest();
  await fixture.machine.close();
  t.throws(() => fixture.machine.apply([]), /closed/);
  const again = StateMachine.open(fixture.folder, testMachineOptions);
  t.equal(again.appliedIndex(), 1);
  t.equal(again.digest(), digest);
  await again.close();
});
