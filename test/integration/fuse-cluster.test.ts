// The file system as users meet it: a real three-node cluster on 127.0.0.1 where every node mounts
// its own read-only view and watches its own cache folder. Files are written with ordinary file
// operations into one node's cache folder and checked with ordinary tools (cat, sha256sum, cmp,
// ls, find, stat, du) under the other nodes' mounts: nested folders, 10,000 small files, a large
// file byte-exact everywhere, changes/appends/truncations/deletions/renames, gRPC and the file
// system as one namespace, EROFS on the mount, names that are rejected, kill -9 of the FUSE process
// (it is mounted again, and the node's /metrics counts its operations: a read ok, a failed lookup)
// and of a whole node in the middle of a large copy (the file is absent or complete on every node,
// never partial), and no stale read after a change is applied. Waits poll
// with a bound. With CI=true these tests run (and fail) rather than skip.

import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { mountSkipReason } from '../fs/fuse-helpers.js';
import { isMountPoint, TestCluster, waitFor, writeRandomFile, type TestNode } from './harness.js';
import { sample } from '../metrics/exposition.js';

const skip = mountSkipReason();
/** The large file's size; FUSE_TEST_LARGE_BYTES shrinks it on a slow machine. */
const largeBytes = Number(process.env['FUSE_TEST_LARGE_BYTES'] ?? 1024 * 1024 * 1024);

function mountOf(node: TestNode): string {
  const folder = node.spec.mountFolder;
  if (folder === undefined) throw new Error(`${node.spec.id} has no mount`);
  return folder;
}

function cacheOf(node: TestNode): string {
  const folder = node.spec.cacheFolder;
  if (folder === undefined) throw new Error(`${node.spec.id} has no cache folder`);
  return folder;
}

/** Runs a program and answers its standard output (throws with its stderr on failure). */
function run(program: string, args: readonly string[]): string {
  return execFileSync(program, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

function sha256sum(path: string): string {
  return run('sha256sum', [path]).split(' ')[0] ?? '';
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Waits until `path` under every mount of `nodes` reads as `content` (null: absent). */
async function waitForContent(nodes: readonly TestNode[], relativePath: string, content: string | null, timeoutMilliseconds = 30_000): Promise<void> {
  for (const node of nodes) {
    const path = join(mountOf(node), relativePath);
    await waitFor(
      `${relativePath} to read ${content === null ? 'as absent' : JSON.stringify(content.slice(0, 40))} under ${node.spec.id}'s mount`,
      async () => (content === null ? !existsSync(path) : readOrNull(path) === content),
      timeoutMilliseconds,
    );
  }
}

/** `find` of a tree: '<relative path> <type> <size for files> <mode>' per entry, sorted. */
function describeTree(root: string): string[] {
  return run('find', [root, '-mindepth', '1', '-printf', '%P %y %s %m\n'])
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (line.split(' ')[1] === 'd' ? line.replace(/ \d+ /, ' - ') : line))
    .sort();
}



t.test('the mount and the cache folder on a three-node cluster', { skip: skip ?? false }, async (t) => {
  const cluster = await TestCluster.started(t, 3, { fuse: true });
  await cluster.waitForLeader(60_000);
  for (const node of cluster.nodes) await waitFor(`${node.spec.id} to mount`, async () => isMountPoint(mountOf(node)), 30_000);
  const [node1, node2, node3] = cluster.nodes as [TestNode, TestNode, TestNode];
  const everyone = cluster.nodes;

  await t.test('a file written in node1 cache folder reads the same under node3 mount (cat, sha256sum, cmp)', async (t) => {
    mkdirSync(join(cacheOf(node1), 'docs', 'deep', 'er'), { recursive: true });
    writeFileSync(join(cacheOf(node1), 'docs', 'deep', 'er', 'a.txt'), 'hello from node1\n');
    chmodSync(join(cacheOf(node1), 'docs', 'deep', 'er', 'a.txt'), 0o640);
    await waitForContent([node3], 'docs/deep/er/a.txt', 'hello from node1\n');
    t.equal(run('cat', [join(mountOf(node3), 'docs/deep/er/a.txt')]), 'hello from node1\n', 'cat');
    t.equal(sha256sum(join(mountOf(node3), 'docs/deep/er/a.txt')), sha256sum(join(cacheOf(node1), 'docs/deep/er/a.txt')), 'sha256sum');
    t.equal(spawnSync('cmp', [join(mountOf(node3), 'docs/deep/er/a.txt'), join(cacheOf(node1), 'docs/deep/er/a.txt')]).status, 0, 'cmp');
  });

  await t.test('ls -la, find, stat and du under every mount agree with what was written', async (t) => {
    const cache = cacheOf(node1);
    mkdirSync(join(cache, 'tree', 'empty'), { recursive: true });
    mkdirSync(join(cache, 'tree', 'sub'), { recursive: true });
    writeFileSync(join(cache, 'tree', 'one.txt'), 'one');
    writeFileSync(join(cache, 'tree', 'sub', 'two.bin'), Buffer.alloc(70_000, 7));
    chmodSync(join(cache, 'tree', 'sub', 'two.bin'), 0o600);
    utimesSync(join(cache, 'tree', 'one.txt'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
    for (const node of everyone) {
      await waitFor(`${node.spec.id} shows the tree`, async () => JSON.stringify(describeTree(join(mountOf(node), 'tree'))) === JSON.stringify(describeTree(join(cache, 'tree'))));
      t.same(describeTree(join(mountOf(node), 'tree')), describeTree(join(cache, 'tree')), `find agrees on ${node.spec.id}`);
      const listing = run('ls', ['-la', join(mountOf(node), 'tree')]);
      t.match(listing, /^-rw-r--r-- .* 3 Jan {2}2 {2}2020 one\.txt$/m, `ls -la shows size, mode and the carried mtime on ${node.spec.id}`);
      t.match(listing, /^d.* empty$/m, 'the empty folder is listed');
      t.equal(run('stat', ['-c', '%s %a %Y', join(mountOf(node), 'tree', 'sub', 'two.bin')]), `70000 600 ${Math.floor(statSync(join(cache, 'tree', 'sub', 'two.bin')).mtimeMs / 1000)}\n`, 'stat: size, mode, mtime');
      t.equal(run('du', ['-b', join(mountOf(node), 'tree', 'sub', 'two.bin')]).split('\t')[0], '70000', 'du -b');
      t.ok(Number(run('du', ['-sk', join(mountOf(node), 'tree')]).split('\t')[0]) >= 70, 'du -sk counts the blocks');
    }
  });

  await t.test('10,000 small files appear under every mount', async (t) => {
    const folder = join(cacheOf(node2), 'many');
    mkdirSync(folder);
    for (let index = 0; index < 10_000; index++) writeFileSync(join(folder, `f${String(index).padStart(5, '0')}.txt`), `file ${index}\n`);
    for (const node of everyone) {
      await waitFor(`${node.spec.id} lists 10,000 files`, async () => readdirSync(join(mountOf(node), 'many')).length === 10_000, 180_000, 500);
    }
    t.equal(readFileSync(join(mountOf(node1), 'many', 'f04321.txt'), 'utf8'), 'file 4321\n');
    t.equal(readdirSync(join(mountOf(node3), 'many')).length, 10_000);
    t.equal(run('sh', ['-c', `ls -l ${join(mountOf(node3), 'many')} | wc -l`]).trim(), '10001', 'ls -l: a total line and 10,000 entries');
  });

  await t.test('changes, appends, truncations, deletions and renames propagate', async (t) => {
    const cache = cacheOf(node1);
    const file = join(cache, 'edit.txt');
    writeFileSync(file, 'version one\n');
    await waitForContent(everyone, 'edit.txt', 'version one\n');
    writeFileSync(file, 'version two, longer\n');
    await waitForContent(everyone, 'edit.txt', 'version two, longer\n');
    appendFileSync(file, 'appended\n');
    await waitForContent(everyone, 'edit.txt', 'version two, longer\nappended\n');
    truncateSync(file, 7);
    await waitForContent(everyone, 'edit.txt', 'version');
    renameSync(file, join(cache, 'renamed.txt'));
    await waitForContent(everyone, 'renamed.txt', 'version');
    await waitForContent(everyone, 'edit.txt', null);
    mkdirSync(join(cache, 'folder', 'inner'), { recursive: true });
    writeFileSync(join(cache, 'folder', 'inner', 'x.txt'), 'x');
    await waitForContent(everyone, 'folder/inner/x.txt', 'x');
    renameSync(join(cache, 'folder'), join(cache, 'moved'));
    await waitForContent(everyone, 'moved/inner/x.txt', 'x');
    await waitForContent(everyone, 'folder', null);
    rmSync(join(cache, 'renamed.txt'));
    await waitForContent(everyone, 'renamed.txt', null);
    rmSync(join(cache, 'moved'), { recursive: true });
    await waitForContent(everyone, 'moved', null);
    t.notOk(existsSync(join(mountOf(node2), 'moved')), 'the removed folder is gone everywhere');
    // A rename is replicated as a rename, not as a copy: the log says so.
    t.match(node1.logText(), /replicated the move of folder to moved/, 'the folder move is one rename');
  });

  await t.test('gRPC and the file system are one namespace', async (t) => {
    await node2.client.put('api/hello.txt', new TextEncoder().encode('from gRPC'));
    await waitForContent(everyone, 'api/hello.txt', 'from gRPC');
    writeFileSync(join(cacheOf(node3), 'from-cache.txt'), 'from the cache folder');
    await waitForContent([node3], 'from-cache.txt', 'from the cache folder');
    t.equal(new TextDecoder().decode(await node1.client.get('from-cache.txt')), 'from the cache folder', 'Get on node1 reads a file of node3 cache folder');
  });

  await t.test('the mount refuses writes with EROFS; bad names are rejected, nothing escapes', async (t) => {
    const mount = mountOf(node2);
    const attempts: [string, () => void][] = [
      ['create', () => writeFileSync(join(mount, 'new.txt'), 'x')],
      ['overwrite', () => writeFileSync(join(mount, 'api', 'hello.txt'), 'x')],
      ['mkdir', () => mkdirSync(join(mount, 'newfolder'))],
      // unlinkSync, not rmSync: Node 24's rmSync reports EROFS without its code.
      ['unlink', () => unlinkSync(join(mount, 'api', 'hello.txt'))],
      ['rename', () => renameSync(join(mount, 'api', 'hello.txt'), join(mount, 'api', 'other.txt'))],
      ['chmod', () => chmodSync(join(mount, 'api', 'hello.txt'), 0o777)],
      ['truncate', () => truncateSync(join(mount, 'api', 'hello.txt'), 0)],
    ];
    for (const [what, attempt] of attempts) t.throws(attempt, { code: 'EROFS' }, `${what} on the mount: EROFS`);
    for (const key of ['../escape.txt', '/absolute.txt', 'a/../b', 'nul\u0000name', 'a//b']) {
      await t.rejects(node1.client.put(key, new Uint8Array([1])), { code: 'INVALID_ARGUMENT' }, `key ${JSON.stringify(key)} is rejected`);
    }
    // A symbolic link in the cache folder is not followed out of it: it is reported, not sent.
    symlinkSync('/etc', join(cacheOf(node1), 'etc-link'));
    const badName = Buffer.concat([Buffer.from(`${cacheOf(node1)}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
    writeFileSync(badName, 'not UTF-8');
    await waitFor('the link and the bad name to be reported', async () => /not replicated: etc-link: symbolic links/.test(node1.logText()) && /not replicated: bad-.*not valid UTF-8/.test(node1.logText()));
    t.notOk(existsSync(join(mountOf(node3), 'etc-link')), 'the link is not in the namespace');
    rmSync(join(cacheOf(node1), 'etc-link'));
    rmSync(badName);
  });

  await t.test('a file changed on node2 is never read stale on node1 once the change is applied there', async (t) => {
    const path = join(cacheOf(node2), 'fresh.txt');
    for (let round = 0; round < 20; round++) {
      // Same size every round, and the same mtime in half of them: only the content differs.
      const content = `round ${String(round).padStart(3, '0')} ${round % 2 === 0 ? 'even' : 'odd!'}\n`;
      writeFileSync(path, content);
      if (round % 2 === 1) utimesSync(path, new Date(1_700_000_000_000), new Date(1_700_000_000_000));
      const read = join(mountOf(node1), 'fresh.txt');
      // Keep node1's kernel cache warm with the old content while the change travels.
      void readOrNull(read);
      await waitFor(`node1 applies round ${round}`, async () => new TextDecoder().decode(await node1.client.get('fresh.txt', { consistency: 'LOCAL' })) === content);
      const version = (await node1.client.stat('fresh.txt', { consistency: 'LOCAL' })).version;
      t.equal(readFileSync(read, 'utf8'), content, `round ${round}: the mount shows what node1 applied (version ${version})`);
    }
  });

  await t.test(`a ${largeBytes} byte file is byte-exact under every mount`, async (t) => {
    const source = join(cluster.folder, 'large.bin');
    const hash = await writeRandomFile(source, largeBytes);
    execFileSync('cp', [source, join(cacheOf(node1), 'large.bin')]);
    for (const node of everyone) {
      const path = join(mountOf(node), 'large.bin');
      await waitFor(`${node.spec.id} shows large.bin`, async () => existsSync(path), 240_000, 500);
      t.equal(statSync(path).size, largeBytes, `${node.spec.id}: the whole size at once (never partial)`);
      t.equal(sha256sum(path), hash, `${node.spec.id}: sha256sum matches`);
    }
    t.equal(spawnSync('cmp', [source, join(mountOf(node2), 'large.bin')]).status, 0, 'cmp against the source');
    rmSync(source);
  });

  await t.test('kill -9 of the FUSE process: it is mounted again and works', async (t) => {
    const pid = node2.fusePid;
    t.ok(pid !== null, 'node2 runs a FUSE process');
    if (pid === null) return;
    process.kill(pid, 'SIGKILL');
    await waitFor('a new FUSE process on node2', async () => {
      const next = node2.fusePid;
      return next !== null && next !== pid;
    }, 30_000);
    await waitFor('node2 mount to work again', async () => readOrNull(join(mountOf(node2), 'api', 'hello.txt')) === 'from gRPC', 30_000);
    t.equal(readFileSync(join(mountOf(node2), 'api', 'hello.txt'), 'utf8'), 'from gRPC', 'reads work again');
    t.ok(node2.process !== null, 'the node itself kept running');
    t.match(node2.logText(), /mounting .* again in/, 'the restart is logged');
  });

  await t.test('/metrics counts the mount\'s operations (after the FUSE restart too) and shows the cache queue', async (t) => {
    // A file never read on node2 (so the read reaches the FUSE process, not the page cache), and a
    // name that is not there (the kernel's lookup arrives as a getattr answered ENOENT).
    await node1.client.put('metrics/read-me.txt', new TextEncoder().encode('count me'));
    await waitForContent([node2], 'metrics/read-me.txt', 'count me');
    t.equal(readFileSync(join(mountOf(node2), 'metrics', 'read-me.txt'), 'utf8'), 'count me');
    t.notOk(existsSync(join(mountOf(node2), 'metrics', 'missing.txt')), 'a failing lookup');
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${node2.spec.httpPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const counted = (text: string, labels: Record<string, string>): number => sample(text, 'dfs_fuse_operations_total', labels) ?? 0;
    const text = await waitFor('node2 /metrics to count the read and the failed lookup', async () => {
      const body = await scrape();
      return counted(body, { op: 'read', result: 'ok' }) > 0 && counted(body, { op: 'getattr', result: 'ENOENT' }) > 0 ? body : null;
    }, 15_000, 200);
    t.ok(counted(text, { op: 'read', result: 'ok' }) > 0, 'dfs_fuse_operations_total{op="read",result="ok"} > 0');
    t.ok(counted(text, { op: 'getattr', result: 'ENOENT' }) > 0, 'dfs_fuse_operations_total{op="getattr",result="ENOENT"} > 0');
    t.ok(counted(text, { op: 'open', result: 'ok' }) > 0, 'opens too');
    t.ok((sample(text, 'dfs_fuse_operation_duration_seconds_count', { op: 'read' }) ?? 0) > 0, 'and the read durations');
    t.ok((sample(text, 'dfs_fuse_operation_duration_seconds_bucket', { op: 'getattr', le: '+Inf' }) ?? 0) > 0, 'the histogram has its +Inf bucket');
    t.ok((sample(text, 'dfs_cache_queue_length', { state: 'queued' }) ?? -1) >= 0, 'the cache folder queue, queued');
    t.ok((sample(text, 'dfs_cache_queue_length', { state: 'inFlight' }) ?? -1) >= 0, 'and in flight');
  });

  await t.test('kill -9 of a whole node during a large copy: absent or complete everywhere, then complete', async (t) => {
    const size = Math.min(largeBytes, 256 * 1024 * 1024);
    const source = join(cluster.folder, 'crash.bin');
    const hash = await writeRandomFile(source, size);
    execFileSync('cp', [source, join(cacheOf(node3), 'crash.bin')]);
    // Kill it while the upload is under way (it takes seconds at this size; either outcome below
    // is allowed, a partial file is not).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await node3.kill();
    for (const node of [node1, node2]) {
      const path = join(mountOf(node), 'crash.bin');
      if (existsSync(path)) {
        t.equal(statSync(path).size, size, `${node.spec.id}: present, so complete`);
        t.equal(sha256sum(path), hash, `${node.spec.id}: and correct`);
      } else {
        t.pass(`${node.spec.id}: absent while node3 is down`);
      }
    }
    node3.start();
    for (const node of everyone) {
      const path = join(mountOf(node), 'crash.bin');
      await waitFor(`${node.spec.id} to hold the whole crash.bin after node3 restarts`, async () => existsSync(path) && statSync(path).size === size, 240_000, 500);
      t.equal(sha256sum(path), hash, `${node.spec.id}: correct after the restart`);
    }
    rmSync(source);
  });
});
