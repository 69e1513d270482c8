// The process lock keeps a second process (or a second open in this one) off a data folder and
// never keeps a folder locked after its holder is gone. Method: lock files are written by hand
// to stand for every kind of earlier holder (this process, a dead process, a pid reused by a newer
// process, another boot, a half-written file) and acquireProcessLock is called on the folder;
// a refusal must name the holder and leave the lock file as it was, a takeover must log a warning.
// Ownership: release() removes only the lock it took, never a lock another holder put there.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t, { type Test } from 'tap';

import { isDfsError } from '../../src/errors.js';
import { acquireProcessLock, lockFileName } from '../../src/store/process-lock.js';
import { capturingLogger, silentLogger, temporaryFolder } from './raft-log-helpers.js';

/** A pid that ran and exited. */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(result.stdout);
}

function ownRecord(folder: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(folder, lockFileName), 'utf8')) as Record<string, unknown>;
}

function writeLock(folder: string, record: Record<string, unknown>): void {
  fs.writeFileSync(path.join(folder, lockFileName), JSON.stringify(record));
}

async function expectTakeover(t: Test, folder: string): Promise<void> {
  const { logger, records } = capturingLogger();
  const lock = await acquireProcessLock({ folder, logger });
  t.equal(ownRecord(folder)['pid'], process.pid, 'the lock names this process now');
  t.ok(records.some((record) => record.level === 40 && record.msg.startsWith('took over a stale lock')), 'a warning is logged');
  lock.release();
  t.notOk(fs.existsSync(path.join(folder, lockFileName)), 'release removes it');
}

t.test('acquire writes who holds the folder; release removes it', async (t) => {
  const folder = temporaryFolder(t);
  const lock = await acquireProcessLock({ folder, logger: silentLogger() });
  const record = ownRecord(folder);
  t.equal(record['pid'], process.pid);
  t.type(record['token'], 'string');
  t.equal(lock.path, path.join(folder, lockFileName));
  lock.release();
  lock.release();
  t.notOk(fs.existsSync(lock.path));
});

t.test('a lock held by this very process is refused, naming its pid, and left alone', async (t) => {
  const folder = temporaryFolder(t);
  const lock = await acquireProcessLock({ folder, logger: silentLogger() });
  t.teardown(() => lock.release());
  const before = fs.readFileSync(lock.path, 'utf8');
  try {
    await acquireProcessLock({ folder, logger: silentLogger() });
    t.fail('acquired twice');
  } catch (error) {
    t.ok(isDfsError(error) && error.code === 'FailedPrecondition');
    t.match(String(error), new RegExp(`in use by process ${process.pid}`));
    t.match(String(error), /delete .*dfs\.lock/);
  }
  t.equal(fs.readFileSync(lock.path, 'utf8'), before, 'the lock file is unchanged');
});

t.test('a lock of a dead process is taken over', async (t) => {
  const folder = temporaryFolder(t);
  writeLock(folder, { pid: deadPid(), hostname: 'h', bootId: null, processStartTicks: null, acquiredAt: 'then', token: 'old' });
  await expectTakeover(t, folder);
});

t.test('a lock whose pid now belongs to a newer process is taken over', async (t) => {
  const folder = temporaryFolder(t);
  const own = await acquireProcessLock({ folder, logger: silentLogger() });
  const record = ownRecord(folder);
  own.release();
  // Our own pid with another start time: a restarted container often gets the same pid.
  writeLock(folder, { ...record, processStartTicks: '1', token: 'old' });
  await expectTakeover(t, folder);
  // A live pid (our parent) recorded with another start time: the pid was reused.
  writeLock(folder, { ...record, pid: process.ppid, processStartTicks: '1', token: 'old' });
  if (record['processStartTicks'] === null) t.comment('no /proc here: start times are unknown, reuse of another pid is not detectable');
  else await expectTakeover(t, folder);
});

t.test('a lock from before a reboot is taken over', async (t) => {
  const folder = temporaryFolder(t);
  const own = await acquireProcessLock({ folder, logger: silentLogger() });
  const record = ownRecord(folder);
  own.release();
  if (record['bootId'] === null) {
    t.comment('no boot id here: a reboot is not detectable');
    return;
  }
  writeLock(folder, { ...record, pid: process.ppid, bootId: 'another-boot', token: 'old' });
  await expectTakeover(t, folder);
});

t.test('an unreadable lock file is taken over after waiting for a writer to finish it', async (t) => {
  const folder = temporaryFolder(t);
  fs.writeFileSync(path.join(folder, lockFileName), '');
  const started = Date.now();
  await expectTakeover(t, folder);
  t.ok(Date.now() - started >= 80, 'it waited before judging the empty file stale');
});

t.test('release() never removes a lock another holder put in its place', async (t) => {
  const folder = temporaryFolder(t);
  const lock = await acquireProcessLock({ folder, logger: silentLogger() });
  writeLock(folder, { ...ownRecord(folder), token: 'someone-else' });
  lock.release();
  t.ok(fs.existsSync(lock.path), 'the other holder’s lock stays');
});
