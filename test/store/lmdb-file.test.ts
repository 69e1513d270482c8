// checkDataFileHeader (src/store/lmdb-file.ts), the check both LMDB folders of a node run before
// lmdb-js opens their data.mdb: what it lets through (no file yet, an empty file when the caller
// allows it, intact environments) and that the wording is the caller's. Refusals of whole
// folders are tested through their openers: raft-log-lmdb-refusals.test.ts (the Raft log) and
// state-refusals.test.ts (the state store); a Raft log cut after its meta pages is tested here.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { open } from 'lmdb';
import t from 'tap';

import { isDfsError } from '../../src/errors.js';
import { checkDataFileHeader, type DataFileWording } from '../../src/store/lmdb-file.js';
import { openRaftLog } from '../../src/store/raft-log-lmdb.js';
import { entryData, fingerprint, silentLogger, temporaryFolder } from './raft-log-helpers.js';

const wording: DataFileWording = { expected: 'a test folder', remedy: 'Do the test thing.', emptyFileProblem: () => null };

t.test('no data.mdb yet, or no folder: nothing to check (LMDB creates it or reports the path)', async (t) => {
  const folder = temporaryFolder(t);
  t.doesNotThrow(() => checkDataFileHeader(folder, wording), 'an empty folder');
  t.doesNotThrow(() => checkDataFileHeader(path.join(folder, 'missing'), wording), 'a missing folder');
  fs.writeFileSync(path.join(folder, 'file'), 'x');
  t.doesNotThrow(() => checkDataFileHeader(path.join(folder, 'file'), wording), 'a path that is a file');
});

t.test('an empty data.mdb: the caller decides', async (t) => {
  const folder = temporaryFolder(t);
  const dataPath = path.join(folder, 'data.mdb');
  fs.writeFileSync(dataPath, '');
  t.doesNotThrow(() => checkDataFileHeader(folder, wording), 'allowed');
  t.throws(() => checkDataFileHeader(folder, { ...wording, emptyFileProblem: (file) => `${file} is empty, sorry` }), { name: 'DfsError', code: 'FailedPrecondition', message: `${dataPath} is empty, sorry` }, 'refused with the caller’s message');
});

t.test('the message is the shared one with the caller’s words', async (t) => {
  const folder = temporaryFolder(t);
  fs.writeFileSync(path.join(folder, 'data.mdb'), Buffer.alloc(10_000, 0x11));
  t.throws(
    () => checkDataFileHeader(folder, wording),
    {
      code: 'FailedPrecondition',
      message: `${path.join(folder, 'data.mdb')} is not a valid LMDB file: its first page is not an LMDB meta page. It may be corrupt or not a test folder; dfs changed nothing. Do the test thing.`,
    },
  );
});

t.test('intact environments pass: new, written, grown with pages reused, other page sizes', async (t) => {
  for (const pageSize of [4096, 8192, 16384]) {
    const folder = path.join(temporaryFolder(t), `env-${pageSize}`);
    const root = open<Buffer, string>({ path: folder, noSubdir: false, encoding: 'binary', pageSize, maxDbs: 2 });
    t.doesNotThrow(() => checkDataFileHeader(folder, wording), `${pageSize}: new`);
    const db = root.openDB<Buffer, string>({ name: 'db', encoding: 'binary' });
    for (let round = 0; round < 3; round++) {
      await root.transaction(() => {
        for (let index = 0; index < 300; index++) void db.put(`key-${index}`, Buffer.alloc(1000 + 50 * round, index));
      });
      await root.transaction(() => {
        for (let index = 0; index < 300; index += 2) void db.remove(`key-${index}`);
      });
    }
    t.doesNotThrow(() => checkDataFileHeader(folder, wording), `${pageSize}: written while open`);
    await root.close();
    t.doesNotThrow(() => checkDataFileHeader(folder, wording), `${pageSize}: written and closed`);
  }
});

t.test('a Raft log cut after its meta pages is refused, not a SIGBUS', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  const log = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
  log.append(Array.from({ length: 50 }, (_, offset) => ({ index: offset + 1, term: 1, kind: 'normal' as const, data: entryData(offset + 1, 2000) })));
  log.setHardState({ term: 1, vote: 'n1', commit: 50 });
  await log.close();
  fs.truncateSync(path.join(folder, 'data.mdb'), 2 * 4096);
  const before = fingerprint(path.dirname(folder));
  await new Promise((resolve) => setTimeout(resolve, 20));
  try {
    const reopened = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
    await reopened.close();
    t.fail('the log opened');
  } catch (error) {
    t.ok(isDfsError(error) && error.code === 'FailedPrecondition', 'DfsError FailedPrecondition', { found: error });
    t.match(String(error), /data\.mdb is not a valid LMDB file: it has 2 pages of 4096 bytes, but its first meta page points to page \d+ and its second to page \d+: it was cut short/);
    t.match(String(error), /not a dfs raft log; dfs changed nothing\. Restore the folder from a backup/);
  }
  t.strictSame(fingerprint(path.dirname(folder)), before, 'every file is as it was');
});
