// A state folder whose data.mdb lmdb-js would crash the process on (SIGSEGV for a file that is
// not LMDB's, SIGBUS for one cut short after its meta pages) is refused by StateMachine.open (the
// store worker) and StateReader.open (the gRPC worker, the FUSE process) with DfsError
// 'FailedPrecondition', a message that names the file, says what is wrong and what to do, and the
// folder is left exactly as it was. Method: each test builds such a folder (garbage, a real store
// cut short, an empty file, a real store with a damaged meta page), takes a fingerprint of every
// file in it (size, modification time, SHA-256, lock.mdb included: LMDB must not even open it),
// calls each opener, and checks the error and that the fingerprint is unchanged. Were the check
// missing, this test process would die of the signal instead of failing an assertion.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t, { type Test } from 'tap';

import { isDfsError } from '../../src/errors.js';
import { pageSizeBytes } from '../../src/store/layout.js';
import { StateMachine } from '../../src/store/state-machine.js';
import { StateReader } from '../../src/store/state-reader.js';
import { bytes, LogBuilder, openMachine, removeFolder, run, temporaryFolder, testMapSizeBytes, text } from './state-helpers.js';

type Fingerprint = Record<string, { sizeBytes: number; modifiedMilliseconds: number; sha256: string }>;

function fingerprint(folder: string): Fingerprint {
  const out: Fingerprint = {};
  for (const name of fs.readdirSync(folder).sort()) {
    const full = path.join(folder, name);
    const stat = fs.statSync(full);
    out[name] = { sizeBytes: stat.size, modifiedMilliseconds: stat.mtimeMs, sha256: createHash('sha256').update(fs.readFileSync(full)).digest('hex') };
  }
  return out;
}

/** A data folder <root>/state, as the node lays it out (the message points at <root>/raft). */
function stateFolder(t: Test): string {
  const root = temporaryFolder('state-refusal');
  t.teardown(() => removeFolder(root));
  const folder = path.join(root, 'state');
  fs.mkdirSync(folder);
  return folder;
}

/** A real state store with a few files in it, closed. */
async function writtenStore(t: Test): Promise<string> {
  const folder = stateFolder(t);
  const machine = openMachine(folder);
  const log = new LogBuilder();
  for (let index = 0; index < 20; index++) run(machine, log, { type: 'put', key: `docs/${index}.txt`, data: bytes(`file ${index}`.repeat(200)), modeBits: 0o644, modifiedMilliseconds: 1 });
  await machine.close();
  return folder;
}

const openers = {
  'StateMachine.open': (folder: string) => StateMachine.open(folder, { mapSizeBytes: testMapSizeBytes }),
  'StateReader.open': (folder: string) => StateReader.open(folder, { mapSizeBytes: testMapSizeBytes }),
} as const;

/** Opens `folder` with each opener expecting a refusal matching every pattern; checks nothing changed. */
async function expectRefusals(t: Test, folder: string, patterns: readonly RegExp[]): Promise<void> {
  const before = fingerprint(folder);
  // Let a millisecond pass: a rewrite within the same one would keep the modification time.
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (const [name, openStore] of Object.entries(openers)) {
    try {
      const opened = openStore(folder);
      await opened.close();
      t.fail(`${name} opened the store`);
    } catch (error) {
      t.ok(isDfsError(error) && error.code === 'FailedPrecondition', `${name}: DfsError FailedPrecondition`, { found: error });
      const message = error instanceof Error ? error.message : String(error);
      t.match(message, path.join(folder, 'data.mdb'), `${name}: the message names the file`);
      for (const pattern of patterns) t.match(message, pattern, `${name}: ${String(pattern)}`);
      // What to do, honestly: the state rebuilds from the log only if it was never compacted.
      t.match(message, /dfs changed nothing/, `${name}: says nothing was changed`);
      t.match(message, new RegExp(`If ${escape(path.join(path.dirname(folder), 'raft', 'snapshots'))} holds no snapshot-\\*\\.bin file`), `${name}: names the log's snapshot folder`);
      t.match(message, new RegExp(`move ${escape(folder)} away and the node rebuilds the state from the log`), `${name}: the remedy for a log never compacted`);
      t.match(message, /restore the data folder from a backup, or move the whole data folder away/, `${name}: the remedy for a compacted log`);
    }
    t.strictSame(fingerprint(folder), before, `${name}: every file is as it was`);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

t.test('data.mdb full of garbage: explained, not a segfault', async (t) => {
  const folder = stateFolder(t);
  fs.writeFileSync(path.join(folder, 'data.mdb'), Buffer.alloc(40_000, 0x5a));
  await expectRefusals(t, folder, [/data\.mdb is not a valid LMDB file/, /magic number 0x5a5a5a5a/, /not the dfs state store/]);
  t.same(fs.readdirSync(folder), ['data.mdb'], 'LMDB did not even create its lock file');
});

t.test('data.mdb shorter than an LMDB meta page', async (t) => {
  const folder = stateFolder(t);
  fs.writeFileSync(path.join(folder, 'data.mdb'), 'hello');
  await expectRefusals(t, folder, [/has 5 bytes, fewer than one LMDB meta page/]);
});

t.test('a real store cut after its first page', async (t) => {
  const folder = await writtenStore(t);
  fs.truncateSync(path.join(folder, 'data.mdb'), pageSizeBytes);
  await expectRefusals(t, folder, [new RegExp(`has ${pageSizeBytes} bytes, fewer than its two meta pages of ${pageSizeBytes}`)]);
});

t.test('a real store cut after its meta pages (lmdb-js would die of SIGBUS on the first read)', async (t) => {
  const folder = await writtenStore(t);
  t.ok(fs.statSync(path.join(folder, 'data.mdb')).size > 4 * pageSizeBytes, 'the store has data pages');
  fs.truncateSync(path.join(folder, 'data.mdb'), 2 * pageSizeBytes);
  await expectRefusals(t, folder, [/it has 2 pages of 8192 bytes, but its first meta page points to page \d+ and its second to page \d+: it was cut short/]);
});

t.test('a zero-length data.mdb', async (t) => {
  const folder = stateFolder(t);
  fs.writeFileSync(path.join(folder, 'data.mdb'), '');
  await expectRefusals(t, folder, [/data\.mdb is empty \(0 bytes\)/, /LMDB never finished creating it, or it was emptied/]);
  t.same(fs.readdirSync(folder), ['data.mdb'], 'LMDB did not initialise it');
});

t.test('a real store whose second meta page is garbage', async (t) => {
  const folder = await writtenStore(t);
  const descriptor = fs.openSync(path.join(folder, 'data.mdb'), 'r+');
  fs.writeSync(descriptor, Buffer.alloc(64, 0xff), 0, 64, pageSizeBytes);
  fs.closeSync(descriptor);
  await expectRefusals(t, folder, [/its second meta page/]);
});

t.test('intact stores still open: a new folder, an empty environment, one with data, one grown large', async (t) => {
  const folder = stateFolder(t);
  t.throws(() => StateReader.open(folder), { code: 'Unavailable' }, 'a reader before the writer created the store: Unavailable, as before');
  const machine = openMachine(folder);
  t.equal(machine.appliedIndex(), 0, 'the writer creates the store');
  const log = new LogBuilder();
  run(machine, log, { type: 'put', key: 'a.txt', data: bytes('hello'), modeBits: 0o644, modifiedMilliseconds: 1 });
  // Enough content for the trees to span many pages, some of them reused from the free list.
  for (let round = 0; round < 3; round++) {
    for (let index = 0; index < 50; index++) run(machine, log, { type: 'put', key: `big/${index}`, data: Buffer.alloc(20_000, round + index), modeBits: 0o644, modifiedMilliseconds: 1 });
  }
  await machine.close();
  const reopened = openMachine(folder);
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  t.equal(text(reader.get('a.txt')?.data), 'hello', 'the reader reads the store');
  t.equal(reopened.appliedIndex(), log.entries.length, 'the writer reopens it at its applied index');
  await reader.close();
  await reopened.close();
});
