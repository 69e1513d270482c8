// openForWriting, against the real /proc: the cache watcher holds back a file while some process
// still has it open for writing, so the check must find a writer, and must not mistake a reader
// or a finished writer for one. Method: child shells open files in a temporary folder with
// `exec 3>` (write), `exec 3<>` (read and write) and `exec 3<` (read only), then `exec sleep` so
// the descriptor stays in the same process; the test waits until /proc shows the descriptor before
// asking, and asks again after the child is gone.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { openForWriting } from '../../src/fs/open-writers.js';

// /proc names files by their real path.
const folder = realpathSync(mkdtempSync(join(tmpdir(), 'dfs-writers-')));
t.teardown(() => rmSync(folder, { recursive: true, force: true }));

/** Whether process `pid` has `path` open (any mode). */
function holds(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((descriptor) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${descriptor}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Starts a shell that opens `path` on descriptor 3 with `redirection` and keeps it open. */
async function holder(t: Test, redirection: string, path: string): Promise<ChildProcess> {
  const child = spawn('sh', ['-c', `exec 3${redirection}'${path}'; exec sleep 30`], { stdio: 'ignore' });
  t.teardown(() => child.kill());
  const pid = child.pid;
  if (pid === undefined) throw new Error('the child did not start');
  const deadline = Date.now() + 15_000;
  while (!holds(pid, path)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} never opened ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return child;
}

t.test('a file open for writing is found, until its writer is gone', async (t) => {
  const written = join(folder, 'written.txt');
  const both = join(folder, 'both.txt');
  const untouched = join(folder, 'untouched.txt');
  for (const path of [written, both, untouched]) writeFileSync(path, 'x');
  const writer = await holder(t, '>', written);
  await holder(t, '<>', both);
  t.same(openForWriting(new Set([written, both, untouched])), new Set([written, both]));
  writer.kill();
  await once(writer, 'exit');
  t.same(openForWriting(new Set([written])), new Set(), 'a closed file is not');
});

t.test('a file open only for reading is not found', async (t) => {
  const read = join(folder, 'read.txt');
  writeFileSync(read, 'x');
  await holder(t, '<', read);
  t.same(openForWriting(new Set([read])), new Set());
});

t.test('this process is not counted: the watcher never writes to the cache folder', async (t) => {
  const own = join(folder, 'own.txt');
  const handle = await open(own, 'w');
  t.teardown(() => handle.close());
  t.same(openForWriting(new Set([own])), new Set());
});

t.test('no paths, or no /proc: nothing is open', async (t) => {
  t.same(openForWriting(new Set()), new Set());
  t.same(openForWriting(new Set([join(folder, 'x')]), join(folder, 'no-proc-here')), new Set());
});
