// A lock file that keeps two dfs processes off one data folder. LMDB's own lock.mdb lets any number
// of processes open an environment and serialises their write transactions, so two dfs processes
// on one folder would both run Raft on one log and corrupt it at the application level (two
// voters with one vote record). Node has no flock(), so the lock is a file created exclusively
// ('wx') that names its holder: pid, the process's start time and the machine's boot id. A lock
// whose holder is gone (dead pid, a pid reused by a newer process, a reboot) is stale and taken
// over, so a crash never leaves a folder locked for good.
//
// Taking over is a rename of the stale file followed by a check that the renamed file is the one
// judged stale (its token); a process that renamed a lock someone had just created puts it back.
// This closes the race between two processes taking over the same stale lock at once.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';

import type { Logger } from 'pino';

import { DfsError } from '../errors.js';

export const lockFileName = 'dfs.lock';

/** The lock file's content: who holds the folder, enough to tell whether that holder still runs. */
interface LockRecord {
  readonly pid: number;
  readonly hostname: string;
  /** /proc/sys/kernel/random/boot_id: a different one means the machine rebooted since. */
  readonly bootId: string | null;
  /** Field 22 of /proc/<pid>/stat: tells this process from a later one that reuses its pid. */
  readonly processStartTicks: string | null;
  readonly acquiredAt: string;
  /** Random: tells this acquisition from any other, even by the same process. */
  readonly token: string;
}

export interface ProcessLock {
  /** The lock file. */
  readonly path: string;
  /** Removes the lock file if it is still this lock's (never another holder's). */
  release(): void;
}

export interface AcquireProcessLockOptions {
  /** The folder to lock; it must exist. */
  readonly folder: string;
  readonly logger: Pick<Logger, 'warn'>;
}

/** Attempts at create-or-take-over before giving up; each lost race costs one. */
const maxAttempts = 5;
/** A lock file read while its creator is still writing it is empty; wait this long and reread. */
const partialReadRetries = 5;
const partialReadDelayMilliseconds = 20;
/** A lock file is a few hundred bytes; anything larger is not ours and is not read whole. */
const maxLockFileBytes = 4096;

/**
 * Takes the folder's lock, or throws DfsError 'FailedPrecondition' naming the live process that
 * holds it. A stale lock (its process is gone) is taken over and logged.
 */
export async function acquireProcessLock(options: AcquireProcessLockOptions): Promise<ProcessLock> {
  const lockPath = path.join(options.folder, lockFileName);
  const own = ownRecord();
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (tryCreate(lockPath, own)) return heldLock(lockPath, own.token);
    const existing = await readRecord(lockPath);
    if (existing === 'missing') continue; // released between our create and our read: try again
    if (existing !== 'unreadable' && isHeld(existing, own)) {
      throw new DfsError(
        'FailedPrecondition',
        `the folder ${options.folder} is in use by process ${existing.pid} on ${existing.hostname} ` +
          `(it took ${lockPath} at ${existing.acquiredAt}); two dfs processes on one folder would corrupt ` +
          `its Raft state. Stop that process first; if it is not a dfs process (its pid was reused), ` +
          `delete ${lockPath} and start again.`,
      );
    }
    const staleToken = existing === 'unreadable' ? null : existing.token;
    if (takeOver(lockPath, staleToken)) {
      options.logger.warn(
        { lockPath, stale: existing === 'unreadable' ? 'unreadable' : { pid: existing.pid, hostname: existing.hostname, acquiredAt: existing.acquiredAt } },
        'took over a stale lock: its process is gone',
      );
    }
  }
  throw new DfsError(
    'FailedPrecondition',
    `could not lock ${options.folder}: ${lockPath} changed hands ${maxAttempts} times while dfs tried to take it; ` +
      `another process is starting on the same folder.`,
  );
}

function heldLock(lockPath: string, token: string): ProcessLock {
  let released = false;
  return {
    path: lockPath,
    release(): void {
      if (released) return;
      released = true;
      const current = readRecordNow(lockPath);
      // Never remove a lock that is not ours: after a takeover race it may be another holder's.
      if (typeof current === 'object' && current.token === token) unlinkIfPresent(lockPath);
    },
  };
}

function tryCreate(lockPath: string, record: LockRecord): boolean {
  let descriptor: number;
  try {
    descriptor = fs.openSync(lockPath, 'wx', 0o644);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    fs.writeSync(descriptor, `${JSON.stringify(record, null, 2)}\n`);
  } finally {
    fs.closeSync(descriptor);
  }
  return true;
}

/**
 * Moves the stale lock aside and deletes it; returns whether it did. When the file moved aside is
 * not the one judged stale (another process replaced it meanwhile), puts it back.
 */
function takeOver(lockPath: string, staleToken: string | null): boolean {
  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false; // someone else moved it first
    throw error;
  }
  const moved = readRecordNow(aside);
  const movedToken = typeof moved === 'object' ? moved.token : null;
  if (movedToken !== staleToken) {
    // A fresh lock: restore it unless yet another one took its place (link fails on EEXIST).
    try {
      fs.linkSync(aside, lockPath);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    unlinkIfPresent(aside);
    return false;
  }
  unlinkIfPresent(aside);
  return true;
}

async function readRecord(lockPath: string): Promise<LockRecord | 'missing' | 'unreadable'> {
  for (let retry = 0; ; retry++) {
    const record = readRecordNow(lockPath);
    if (record !== 'unreadable' || retry >= partialReadRetries) return record;
    // Its creator may be between the exclusive create and the write: give it time to finish.
    await new Promise((resolve) => setTimeout(resolve, partialReadDelayMilliseconds));
  }
}

function readRecordNow(lockPath: string): LockRecord | 'missing' | 'unreadable' {
  let text: string;
  try {
    const descriptor = fs.openSync(lockPath, 'r');
    try {
      const buffer = Buffer.alloc(maxLockFileBytes);
      const length = fs.readSync(descriptor, buffer, 0, maxLockFileBytes, 0);
      text = buffer.toString('utf8', 0, length);
    } finally {
      fs.closeSync(descriptor);
    }
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const value: unknown = JSON.parse(text);
    return isLockRecord(value) ? value : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

function isLockRecord(value: unknown): value is LockRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const pid = record['pid'];
  return (
    typeof pid === 'number' &&
    Number.isSafeInteger(pid) &&
    pid > 0 &&
    typeof record['hostname'] === 'string' &&
    (typeof record['bootId'] === 'string' || record['bootId'] === null) &&
    (typeof record['processStartTicks'] === 'string' || record['processStartTicks'] === null) &&
    typeof record['acquiredAt'] === 'string' &&
    typeof record['token'] === 'string'
  );
}

/** Whether the process named by the record still runs (so the lock is held). */
function isHeld(record: LockRecord, own: LockRecord): boolean {
  // After a reboot no process of the old boot runs.
  if (record.bootId !== null && own.bootId !== null && record.bootId !== own.bootId) return false;
  if (record.pid === own.pid) {
    // Our own pid: either this very process holds it (same start time), or the lock is left from
    // an earlier process that had our pid (a restarted container often gets the same pid).
    return record.processStartTicks === own.processStartTicks;
  }
  if (!processExists(record.pid)) return false;
  const startTicks = processStartTicks(record.pid);
  // The pid runs, but a process started at another time is a newer one that reuses the pid.
  if (startTicks !== null && record.processStartTicks !== null && startTicks !== record.processStartTicks) return false;
  return true;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return errorCode(error) === 'EPERM';
  }
}

function ownRecord(): LockRecord {
  return {
    pid: process.pid,
    hostname: hostname(),
    bootId: readSmallFile('/proc/sys/kernel/random/boot_id'),
    processStartTicks: processStartTicks(process.pid),
    acquiredAt: new Date().toISOString(),
    token: randomBytes(16).toString('hex'),
  };
}

/** Field 22 (starttime) of /proc/<pid>/stat, or null where there is no /proc (not Linux). */
function processStartTicks(pid: number): string | null {
  const stat = readSmallFile(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // Field 2 (the command) is in parentheses and may hold spaces: count fields after the last ')'.
  const afterCommand = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // afterCommand[0] is field 3, so field 22 is afterCommand[19].
  return afterCommand[19] ?? null;
}

function readSmallFile(filePath: string): string | null {
  try {
    return fs.readFileSync(filePath, 'utf8').trim();
  } catch {
    return null;
  }
}

function unlinkIfPresent(filePath: string): void {
  try {
    fs.unlinkSync(filePath);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
