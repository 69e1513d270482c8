// Helpers for the LMDB raft log tests: temporary folders removed after each test, loggers that are
// silent or capture their records, a fingerprint of a folder's files (to show that a refused open
// changed nothing), and child processes running test/store/fixtures/raft-log-child.ts.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { pino, type Logger } from 'pino';
import type { Test } from 'tap';

import { openRaftLog, type LmdbRaftLog } from '../../src/store/raft-log-lmdb.js';

export function temporaryFolder(t: Test, prefix = 'dfs-raft-log-'): string {
  const folder = fs.mkdtempSync(path.join(tmpdir(), prefix));
  t.teardown(() => fs.rmSync(folder, { recursive: true, force: true }));
  return folder;
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export interface CapturedRecord {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A logger that keeps every record it writes, parsed. */
export function capturingLogger(): { logger: Logger; records: CapturedRecord[] } {
  const records: CapturedRecord[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') records.push(JSON.parse(line) as CapturedRecord);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, stream), records };
}

/** Opens a raft log in `folder` (default: a new temporary one) and closes it after the test. */
export async function openTestLog(t: Test, folder = path.join(temporaryFolder(t), 'raft'), nodeId = 'n1'): Promise<LmdbRaftLog> {
  const log = await openRaftLog({ path: folder, nodeId, logger: silentLogger() });
  t.teardown(() => log.close());
  return log;
}

/**
 * Path, size, modification time and content hash of every file under `folder`, except LMDB's
 * lock.mdb: any process that opens an environment writes its reader table there, which is not
 * the data a refusal must leave alone.
 */
export function fingerprint(folder: string): Record<string, { sizeBytes: number; modifiedMilliseconds: number; sha256: string }> {
  const out: Record<string, { sizeBytes: number; modifiedMilliseconds: number; sha256: string }> = {};
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else if (entry.name !== 'lock.mdb') {
        const stat = fs.statSync(full);
        out[path.relative(folder, full)] = {
          sizeBytes: stat.size,
          modifiedMilliseconds: stat.mtimeMs,
          sha256: createHash('sha256').update(fs.readFileSync(full)).digest('hex'),
        };
      }
    }
  };
  walk(folder);
  return out;
}

export const childScript = fileURLToPath(new URL('./fixtures/raft-log-child.js', import.meta.url));

/** Starts the fixture child; `lines` collects its stdout lines as they arrive. */
export function startChild(t: Test, args: readonly string[]): { child: ChildProcess; lines: string[]; waitForLine: (test: (line: string) => boolean, timeoutMilliseconds?: number) => Promise<string> } {
  const child = spawn(process.execPath, [childScript, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  const waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  let buffered = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (text: string) => {
    buffered += text;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
      newline = buffered.indexOf('\n');
    }
  });
  const waitForLine = (test: (line: string) => boolean, timeoutMilliseconds = 30_000): Promise<string> => {
    const seen = lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child printed no matching line in ${timeoutMilliseconds} ms; it printed ${JSON.stringify(lines.slice(-5))}`)), timeoutMilliseconds);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`child exited before printing a matching line; it printed ${JSON.stringify(lines.slice(-5))}`));
      };
      child.once('exit', onExit);
      waiters.push({
        test,
        resolve: (line) => {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(line);
        },
      });
    });
  };
  return { child, lines, waitForLine };
}

export function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Deterministic entry data: `sizeBytes` bytes derived from the index. */
export function entryData(index: number, sizeBytes: number): Uint8Array {
  const data = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) data[i] = (index * 131 + i * 7) & 0xff;
  return data;
}
