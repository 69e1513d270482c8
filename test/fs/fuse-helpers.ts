// Shared fixtures of the tests that really mount: whether this machine can (with CI=true it must:
// the tests run and fail rather than skip), the FUSE child process started as the supervisor will
// start it, and ordinary command-line tools run against the mount.

import { execFile, fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

import { fuseProcessArguments, fuseProcessModule, type FuseProcessMessage, type FuseProcessOptions } from '../../src/fs/fuse-contract.js';
import { isMounted, lazyUnmount, loadFuseNative } from '../../src/fs/mount.js';

/**
 * Why the mount tests cannot run here, or null if they can. With CI=true always null: CI installs
 * libfuse2 and fuse3 and must run them (a missing piece then fails the tests instead of hiding).
 */
export function mountSkipReason(): string | null {
  if (process.env['CI'] === 'true') return null;
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse is missing (no fuse kernel module here)';
  try {
    loadFuseNative();
  } catch (error) {
    return `libfuse cannot be loaded: ${error instanceof Error ? error.message : String(error)}`;
  }
  return null;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface FuseProcess {
  readonly child: ChildProcess;
  /** Resolves with the first message (normally 'mounted'); rejects if the process exits first. */
  readonly mounted: Promise<FuseProcessMessage>;
  readonly exited: Promise<Exit>;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
}

/** Forks src/fs/fuse-process.ts with an IPC channel, as the supervisor will. */
export function startFuseProcess(options: Partial<FuseProcessOptions> & Pick<FuseProcessOptions, 'stateFolder' | 'mountPoint'>): FuseProcess {
  const child = fork(fuseProcessModule, fuseProcessArguments({ logLevel: 'info', ...options }), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const mounted = new Promise<FuseProcessMessage>((resolve, reject) => {
    child.once('message', (message) => resolve(message as FuseProcessMessage));
    void exited.then((exit) => reject(new Error(`the FUSE process exited (${exit.code ?? exit.signal}) before mounting:\n${text}`)));
  });
  mounted.catch(() => undefined); // observed by the test that awaits it
  return { child, mounted, exited, output: () => text };
}

/** Stops a FUSE process if it still runs, and makes sure nothing stays mounted at `mountPoint`. */
export async function stopFuseProcess(process: FuseProcess | undefined, mountPoint: string): Promise<void> {
  if (process !== undefined && process.child.exitCode === null && process.child.signalCode === null) {
    process.child.kill('SIGTERM');
    const timer = setTimeout(() => process.child.kill('SIGKILL'), 10_000);
    await process.exited;
    clearTimeout(timer);
  }
  if (fs.existsSync(mountPoint) && isMounted(mountPoint)) await lazyUnmount(mountPoint);
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a program (never through a shell unless it is `sh`), without throwing on a non-zero exit;
 * in the C locale (English messages) and UTC (times as the tests expect them).
 */
export function runCommand(program: string, args: readonly string[], options: { readonly encoding?: 'utf8' | 'buffer' } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(program, args, { encoding: options.encoding === 'buffer' ? 'buffer' : 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 30_000, env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

/** Waits until `condition` holds, checking every 50 ms, for at most `milliseconds`. */
export async function waitFor(condition: () => boolean, milliseconds: number): Promise<boolean> {
  const deadline = Date.now() + milliseconds;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** Whether `mountPoint` appears in /proc/mounts (what the tests check, independently of mountinfo parsing). */
export function inProcMounts(mountPoint: string): boolean {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === mountPoint);
}
