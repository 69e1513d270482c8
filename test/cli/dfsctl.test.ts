// dfsctl end to end. Goal: the compiled command, run as a child process against a real 3-node
// cluster, does what its help says — put/get/stat/ls/rm as tables and as --json, cp of a 20 MiB
// file into dfs and back byte-exact (sha256) and of a folder tree, members list/add/remove,
// a status table that marks the leader — and exits with the documented codes for not found (3),
// no live endpoint (4), usage errors (2) and conflicts (5); every command has --help. Method: real
// `dfs` processes from the integration harness (-no-fuse); dfsctl spawned with node and the
// harness's environment (no tap hooks), its stdout, stderr and exit code checked.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort, nodeEnvironment, TestCluster } from '../integration/harness.js';

const dfsctlMain = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'dfsctl.js');
const commandNames = ['put', 'get', 'rm', 'ls', 'stat', 'cp', 'watch', 'members', 'status', 'transfer-leader', 'snapshot'];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function dfsctl(args: readonly string[], options: { endpoints?: string; input?: string | Buffer; cwd?: string } = {}): Promise<Run> {
  const env = nodeEnvironment(options.endpoints === undefined ? {} : { DFS_ENDPOINTS: options.endpoints });
  if (options.endpoints === undefined) delete env['DFS_ENDPOINTS'];
  const child = spawn(process.execPath, [dfsctlMain, ...args], { env, cwd: options.cwd ?? tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

t.test('help and usage errors need no cluster', async (t) => {
  const main = await dfsctl(['--help']);
  t.equal(main.code, 0);
  for (const name of commandNames) t.match(main.stdout, new RegExp(`\\n  ${name} `), `the main help lists ${name}`);
  t.match(main.stdout, /Exit codes:[\s\S]*  4  no live endpoint/, 'and the exit codes');
  const helps = await Promise.all(commandNames.map((name) => dfsctl([name, '--help'])));
  helps.forEach((help, index) => {
    t.equal(help.code, 0, `${commandNames[index]} --help exits 0`);
    t.match(help.stdout, new RegExp(`^Usage: dfsctl ${commandNames[index]}`), `${commandNames[index]} --help shows its usage`);
  });
  const usage = await Promise.all([dfsctl(['bogus']), dfsctl(['get']), dfsctl(['cp', 'a', 'b']), dfsctl(['ls', '--nope']), dfsctl([])]);
  for (const run of usage) t.equal(run.code, 2, `usage error: ${run.stderr.split('\n')[0]}`);
  t.match(usage[0]?.stderr, /unknown command "bogus"\nhint: the commands are: put, get/);
  t.match(usage[2]?.stderr, /prefix exactly one side with dfs:/);
});

t.test('no live endpoint: exit 4, each endpoint named, what to do', async (t) => {
  const ports = [await freePort(), await freePort()];
  const endpoints = ports.map((port) => `127.0.0.1:${port}`).join(',');
  const run = await dfsctl(['ls'], { endpoints });
  t.equal(run.code, 4);
  t.match(run.stderr, new RegExp(`no live endpoint: 127\\.0\\.0\\.1:${ports[0]} \\(UNAVAILABLE: [^)]*ECONNREFUSED[^)]*\\); 127\\.0\\.0\\.1:${ports[1]} `));
  t.match(run.stderr, /hint: is a dfs node running\? start one with `npm run cluster` or pass --endpoints/);
  const flag = await dfsctl(['--endpoints', `127.0.0.1:${ports[0]}`, 'status']);
  t.equal(flag.code, 4, 'status too, with the flag');
});

t.test('a three-node cluster through dfsctl', async (t) => {
  const cluster = await TestCluster.create(3);
  const work = mkdtempSync(join(tmpdir(), 'dfsctl-test-'));
  t.teardown(async () => {
    await cluster.shutdown();
    cluster.cleanup(t.passing() === false);
    rmSync(work, { recursive: true, force: true });
  });
  cluster.startAll();
  const leader = await cluster.waitForLeader(60_000);
  // A dead endpoint first: dfsctl must skip it and use a live one.
  const endpoints = [`127.0.0.1:${await freePort()}`, ...cluster.nodes.map((node) => node.grpcAddress)].join(',');
  const run = (args: readonly string[], input?: string | Buffer): Promise<Run> => dfsctl(args, { endpoints, cwd: work, ...(input === undefined ? {} : { input }) });

  await t.test('put, get, stat, ls, rm', async (t) => {
    const fromStdin = await run(['put', '/docs/a.txt'], 'hello\n');
    t.equal(fromStdin.code, 0, fromStdin.stderr);
    t.match(fromStdin.stdout, /^put docs\/a\.txt: 6 B, version \d+\n$/, 'the leading slash is dropped');
    writeFileSync(join(work, 'b.txt'), 'bee');
    const fromFile = JSON.parse((await run(['put', '--json', '--mode', '600', 'docs/b.txt', 'b.txt'])).stdout) as { key: string; version: number; sizeBytes: number };
    t.same({ key: fromFile.key, sizeBytes: fromFile.sizeBytes }, { key: 'docs/b.txt', sizeBytes: 3 });

    const get = await run(['get', 'docs/a.txt']);
    t.equal(get.stdout, 'hello\n', 'get prints the value');
    const getJson = JSON.parse((await run(['get', '--json', 'docs/b.txt'])).stdout) as { key: string; data: string; mode: number };
    t.same([getJson.key, Buffer.from(getJson.data, 'base64').toString(), getJson.mode], ['docs/b.txt', 'bee', 0o600]);

    const stat = await run(['stat', 'docs/b.txt']);
    t.match(stat.stdout, /^key: +docs\/b\.txt\nsize: +3 B \(3 bytes\)\nversion: +\d+\nmode: +0600\nmodified: +\d{4}-\d\d-\d\dT[\d:]+Z\n$/);
    t.same(JSON.parse((await run(['stat', '--json', 'docs/b.txt'])).stdout).version, fromFile.version);

    const ls = await run(['ls', 'docs/']);
    const lines = ls.stdout.trimEnd().split('\n');
    t.match(lines[0], /^KEY +SIZE +MODE +VERSION +MODIFIED$/);
    t.match(lines[1], /^docs\/a\.txt +6 B +0644 +\d+ +\S+Z$/);
    t.match(lines[2], /^docs\/b\.txt +3 B +0600 +\d+ +\S+Z$/);
    t.equal(lines[3], '2 keys, 9 B');
    t.same((JSON.parse((await run(['ls', '--json', 'docs'])).stdout) as Array<{ key: string }>).map((entry) => entry.key), ['docs/a.txt', 'docs/b.txt']);

    const rm = await run(['rm', 'docs/a.txt']);
    t.match(rm.stdout, /^removed docs\/a\.txt \(version \d+\)\n$/);
    const missing = await Promise.all([run(['get', 'docs/a.txt']), run(['stat', 'docs/a.txt']), run(['rm', 'docs/a.txt'])]);
    for (const result of missing) {
      t.equal(result.code, 3, `not found: ${result.stderr.split('\n')[0]}`);
      t.match(result.stderr, /"docs\/a\.txt" \(NOT_FOUND\)\nhint: check the key with `dfsctl ls PREFIX`/);
    }
    const badKey = await run(['put', 'a//b', 'b.txt']);
    t.equal(badKey.code, 2, 'a bad key is a usage error, refused before sending');
    t.match(badKey.stderr, /empty segment/);
  });

  await t.test('cp a 20 MiB file in and back byte-exact, and a folder tree', async (t) => {
    const big = randomBytes(20 * 1024 * 1024);
    writeFileSync(join(work, 'big.iso'), big);
    const up = await run(['cp', './big.iso', 'dfs:/isos/big.iso']);
    t.equal(up.code, 0, up.stderr);
    t.match(up.stdout, /^copied \.\/big\.iso → dfs:isos\/big\.iso: 20\.0 MiB in [\d.]+ m?s, [\d.]+ \S+\/s\n$/, 'one summary line when stderr is not a terminal');
    t.equal(up.stderr, '', 'no progress bar without a terminal');
    const down = await run(['cp', '--json', 'dfs:/isos/big.iso', './back.iso']);
    t.equal(down.code, 0, down.stderr);
    t.same(JSON.parse(down.stdout).totalBytes, big.length);
    t.equal(sha256(readFileSync(join(work, 'back.iso'))), sha256(big), 'the copy back is byte-exact');
    t.same(readdirSync(work).filter((name) => name.endsWith('.part')), [], 'no temporary file left');

    mkdirSync(join(work, 'tree', 'sub', 'deeper'), { recursive: true });
    const tree: Record<string, string> = { 'one.txt': '1', 'sub/two.txt': '22', 'sub/deeper/three.bin': 'x'.repeat(70_000) };
    for (const [path, text] of Object.entries(tree)) writeFileSync(join(work, 'tree', path), text);
    const upTree = await run(['cp', 'tree', 'dfs:backup/tree']);
    t.equal(upTree.code, 0, upTree.stderr);
    t.match(upTree.stdout, /^copied 3 files tree → dfs:backup\/tree: /);
    t.same((JSON.parse((await run(['ls', '--json', 'backup/'])).stdout) as Array<{ key: string }>).map((entry) => entry.key), ['backup/tree/one.txt', 'backup/tree/sub/deeper/three.bin', 'backup/tree/sub/two.txt']);
    const downTree = await run(['cp', 'dfs:/backup/tree', 'restored']);
    t.equal(downTree.code, 0, downTree.stderr);
    for (const [path, text] of Object.entries(tree)) t.equal(readFileSync(join(work, 'restored', path), 'utf8'), text, `restored/${path}`);

    const nothing = await run(['cp', 'dfs:/nothing/here', 'x']);
    t.equal(nothing.code, 3, 'copying a key that does not exist: not found');
    const noLocal = await run(['cp', './no-such-file', 'dfs:x']);
    t.equal(noLocal.code, 3, 'copying a local file that does not exist: not found');
  });

  await t.test('members list, add, remove; conflicts exit 5', async (t) => {
    const list = await run(['members', 'list']);
    t.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trimEnd().split('\n');
    t.match(rows[0], /^NODE +ADDRESS +SUFFRAGE +ROLE$/);
    t.equal(rows.length, 4, 'three members');
    t.ok(rows.some((row) => row.startsWith(`* ${leader.spec.id} `)), 'the leader is marked');
    const raftAddress = `127.0.0.1:${await freePort()}`;
    const add = await run(['members', 'add', 'node4', raftAddress]);
    t.equal(add.code, 0, add.stderr);
    t.match(add.stdout, /^added node4 .* as a learner/);
    const listed = JSON.parse((await run(['members', 'list', '--json'])).stdout) as { members: Array<{ id: string; suffrage: string; address: string }> };
    t.match(listed.members.find((member) => member.id === 'node4'), { id: 'node4', address: raftAddress, suffrage: 'LEARNER' }, 'node4 is a learner');
    const again = await run(['members', 'add', 'node4', raftAddress]);
    t.equal(again.code, 5, 'adding it again: conflict');
    t.match(again.stderr, /node4 is already a member \(ALREADY_EXISTS\)/);
    const remove = await run(['members', 'remove', 'node4']);
    t.equal(remove.code, 0, remove.stderr);
    const removeUnknown = await run(['members', 'remove', 'node9']);
    t.equal(removeUnknown.code, 5);
    t.match(removeUnknown.stderr, /node9 is not a member \(FAILED_PRECONDITION\)/);
    t.equal((await run(['members', 'frobnicate'])).code, 2, 'an unknown action is a usage error');
  });

  await t.test('status: one row per member, the leader marked, the dead endpoint listed', async (t) => {
    const status = await run(['status']);
    t.equal(status.code, 0, status.stderr);
    const lines = status.stdout.trimEnd().split('\n');
    t.match(lines[0], /^NODE +ADDRESS +ENDPOINT +ROLE +SUFFRAGE +TERM +COMMIT +APPLIED +LAG$/);
    const leaderRow = lines.find((line) => line.startsWith('* '));
    t.match(leaderRow, new RegExp(`^\\* ${leader.spec.id} +${leader.raftAddress.replace(/\./g, '\\.')} +${leader.grpcAddress.replace(/\./g, '\\.')} +LEADER +VOTER +\\d+ +\\d+ +\\d+ +0$`));
    t.equal(lines.filter((line) => / (FOLLOWER|LEADER) +VOTER +\d+ +\d+ +\d+ +\d+$/.test(line)).length, 3, 'every node with its term, indexes and lag');
    t.ok(lines.includes(`* leader: ${leader.spec.id}`));
    t.match(lines.at(-1), /^unreachable: 127\.0\.0\.1:\d+ \(UNAVAILABLE/);
    const json = JSON.parse((await run(['status', '--json'])).stdout) as { leaderId: string; members: unknown[]; unreachable: unknown[] };
    t.equal(json.leaderId, leader.spec.id);
    t.equal(json.members.length, 3);
    t.equal(json.unreachable.length, 1);
  });

  await t.test('snapshot; transfer-leader to a follower, then to the leader it already is', async (t) => {
    const snapshot = await run(['snapshot']);
    t.equal(snapshot.code, 0, snapshot.stderr);
    t.match(snapshot.stdout, /^snapshot at index \d+, [\d.]+ (B|KiB|MiB)\n$/);
    const target = cluster.nodes.find((node) => node !== leader);
    if (target === undefined) throw new Error('no follower');
    const moved = await run(['transfer-leader', target.spec.id]);
    t.equal(moved.code, 0, moved.stderr);
    t.equal(moved.stdout, `leadership moved from ${leader.spec.id} to ${target.spec.id}\n`);
    t.equal((await target.status()).role, 'LEADER', 'the target leads');
    const again = await run(['transfer-leader', target.spec.id]);
    t.equal(again.code, 0, again.stderr);
    t.equal(again.stdout, `${target.spec.id} already leads\n`);
  });

  await t.test('watch from a version prints the change as JSON lines; Ctrl-C ends it with 0', async (t) => {
    const put = await leader.client.put('watched/w.txt', Buffer.from('seen'));
    const child = spawn(process.execPath, [dfsctlMain, 'watch', '--json', '--from-version', String(put.version), 'watched/'], { env: nodeEnvironment({ DFS_ENDPOINTS: endpoints }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exit = new Promise<number | null>((resolve) => child.once('close', resolve));
    const firstLine = await Promise.race([
      new Promise<string>((resolve) =>
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString('utf8');
          if (stdout.includes('\n')) resolve(stdout.split('\n')[0] as string);
        }),
      ),
      exit.then(() => null),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000)),
    ]);
    if (firstLine === null) {
      child.kill('SIGKILL');
      t.fail(`watch printed nothing: ${stderr}`);
      return;
    }
    t.match(JSON.parse(firstLine), { version: put.version, type: 'PUT', key: 'watched/w.txt', info: { sizeBytes: 4 } });
    child.kill('SIGINT');
    t.equal(await exit, 0, 'Ctrl-C ends a watch normally');
  });
});
