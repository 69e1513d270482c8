// Bad input gets a clear error and loses nothing (DESIGN.md). Goal: every way a user, a stray
// program or an operator can hand a running node something wrong gets a specific answer — an
// INVALID_ARGUMENT naming the key rule, RESOURCE_EXHAUSTED for an oversized message, a log line
// for garbage on a port, a start that fails naming the address, setting, folder or cluster at
// fault — and afterwards the cluster still serves and no data was touched. Method: a real
// three-node cluster with -max-message-bytes 1MiB; key rules through the typed client; garbage
// from a seeded generator written with raw sockets to a raft port and a gRPC port; extra `dfs`
// processes started beside the cluster (a taken port, a taken data folder, a bad flag, a copy of
// another cluster's data folder) whose exit code and output are checked, with the copied folder's
// files hashed before and after. All waits poll with a bound.

import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join, relative } from 'node:path';
import { crc32 } from 'node:zlib';
import t from 'tap';
import { freePort, runDfs, seededRandom, TestCluster, waitFor, type TestNode } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const mebibyte = 1024 * 1024;

function randomBytes(next: () => number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let index = 0; index < length; index++) bytes[index] = next() & 0xff;
  return bytes;
}

/** Opens a TCP connection, writes each piece in turn, and resolves once the other side closed it (or after a bound). */
function sendRaw(port: number, pieces: readonly Buffer[], timeoutMilliseconds = 10_000): Promise<'closed by the node' | 'still open'> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('still open');
    }, timeoutMilliseconds);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve('closed by the node');
    });
    socket.once('connect', () => {
      for (const piece of pieces) socket.write(piece);
    });
  });
}

/** sha256 of every file under `folder`, by relative path. */
function hashFiles(folder: string): Map<string, string> {
  const hashes = new Map<string, string>();
  const walk = (current: string): void => {
    for (const name of readdirSync(current)) {
      const path = join(current, name);
      if (statSync(path).isDirectory()) walk(path);
      else hashes.set(relative(folder, path), createHash('sha256').update(readFileSync(path)).digest('hex'));
    }
  };
  walk(folder);
  return hashes;
}

/** The cluster still answers: a Put through `node` and a linearizable Get from every node. */
async function stillServes(cluster: TestCluster, node: TestNode, key: string): Promise<boolean> {
  await node.client.put(key, encoder.encode(key));
  for (const other of cluster.nodes.filter((candidate) => candidate.process !== null)) {
    if (decoder.decode(await other.client.get(key)) !== key) return false;
  }
  return true;
}

t.test('bad input gets a clear error, and the cluster keeps serving with its data intact', async (t) => {
  const cluster = await TestCluster.started(t, 3, { args: ['-max-message-bytes', '1MiB'] });
  const leader = await cluster.waitForLeader(60_000);
  const follower = cluster.nodes.find((node) => node !== leader) as TestNode;
  const founders = [...cluster.nodes];

  await t.test('every key rule, through Put and Get: INVALID_ARGUMENT naming the rule', async (t) => {
    const segment200 = 'k'.repeat(200);
    const cases: { name: string; key: string; rule: RegExp }[] = [
      { name: 'empty', key: '', rule: /must not be empty/ },
      { name: 'leading /', key: '/etc/passwd', rule: /relative path: it starts with '\/'/ },
      { name: 'trailing /', key: 'docs/', rule: /must not end with '\/'/ },
      { name: '..', key: 'docs/../../etc/passwd', rule: /must not contain a '\.\.' segment/ },
      { name: '.', key: 'docs/./a.txt', rule: /must not contain a '\.' segment/ },
      { name: 'empty segment', key: 'docs//a.txt', rule: /must not contain an empty segment/ },
      { name: 'NUL', key: 'docs/a\u0000.txt', rule: /must not contain NUL/ },
      { name: 'more than 4096 bytes', key: Array.from({ length: 21 }, () => segment200).join('/'), rule: /4220 bytes in UTF-8, more than the 4096-byte limit/ },
      { name: 'a 256-byte segment', key: `docs/${'s'.repeat(256)}`, rule: /segment is 256 bytes in UTF-8, more than the 255-byte limit/ },
      { name: 'a 256-byte segment in UTF-8 (128 two-byte characters)', key: `docs/${'é'.repeat(128)}`, rule: /segment is 256 bytes in UTF-8/ },
    ];
    for (const { name, key, rule } of cases) {
      await t.rejects(follower.client.put(key, encoder.encode('x')), { name: 'DfsClientError', code: 'INVALID_ARGUMENT', message: rule }, `Put, ${name}`);
      await t.rejects(leader.client.get(key), { name: 'DfsClientError', code: 'INVALID_ARGUMENT', message: rule }, `Get, ${name}`);
    }
    // The limits themselves are allowed: 4096 bytes in all, segments of 255.
    const longest = [...Array.from({ length: 15 }, () => 's'.repeat(255)), 's'.repeat(254), 's'].join('/');
    t.equal(encoder.encode(longest).byteLength, 4096);
    await follower.client.put(longest, encoder.encode('at the limits'));
    t.equal(decoder.decode(await leader.client.get(longest)), 'at the limits', 'a 4096-byte key of 255-byte segments is accepted');
    const listed = await leader.client.list('');
    t.same(listed.entries.map((entry) => entry.key), [longest], 'nothing else was stored');
  });

  await t.test('a unary Put above -max-message-bytes: RESOURCE_EXHAUSTED, and the node keeps serving', async (t) => {
    await t.rejects(follower.client.put('big/two-mib', new Uint8Array(2 * mebibyte)), { name: 'DfsClientError', code: 'RESOURCE_EXHAUSTED' }, 'a 2 MiB Put to a node with a 1 MiB limit');
    await t.rejects(follower.client.stat('big/two-mib'), { code: 'NOT_FOUND' }, 'nothing was written');
    // The same value through PutStream is fine; a unary Get of it is refused, pointing at GetStream.
    const chunks = Array.from({ length: 8 }, () => new Uint8Array(mebibyte / 4).fill(7));
    await follower.client.putStream('big/two-mib', chunks);
    await t.rejects(leader.client.get('big/two-mib'), { name: 'DfsClientError', code: 'RESOURCE_EXHAUSTED', message: /GetStream/ }, 'a unary Get of 2 MiB names GetStream');
    t.ok(await stillServes(cluster, follower, 'after/oversized'), 'the cluster serves after the oversized message');
  });

  await t.test('random bytes to a raft port: logged, connection closed, the node keeps serving', async (t) => {
    const next = seededRandom(20240611);
    const payload = randomBytes(next, 1000);
    const badChecksum = Buffer.alloc(8);
    badChecksum.writeUInt32BE(payload.length, 0);
    badChecksum.writeUInt32BE((crc32(payload) ^ 0xffff) >>> 0, 4);
    const goodChecksum = Buffer.alloc(8);
    goodChecksum.writeUInt32BE(payload.length, 0);
    goodChecksum.writeUInt32BE(crc32(payload), 4);
    const attempts: { name: string; pieces: Buffer[] }[] = [
      { name: '64 KiB of random bytes', pieces: [randomBytes(next, 64 * 1024)] },
      { name: 'random bytes in small pieces', pieces: Array.from({ length: 50 }, () => randomBytes(next, 1 + (next() % 40))) },
      { name: 'a frame header with a wrong checksum', pieces: [badChecksum, payload] },
      { name: 'a frame with a right checksum over random bytes', pieces: [goodChecksum, payload] },
    ];
    for (const target of [leader, follower]) {
      const before = target.logText().length;
      for (const { name, pieces } of attempts) {
        t.equal(await sendRaw(target.spec.raftPort, pieces), 'closed by the node', `${target.spec.id}: ${name}: the node closed the connection`);
      }
      const logged = await waitFor(`${target.spec.id} logs the garbage`, async () => {
        const lines = target.logText().slice(before).split('\n').filter((line) => /closing peer connection from 127\.0\.0\.1:\d+ \(node unknown\)/.test(line));
        return lines.length >= attempts.length ? lines : null;
      }, 10_000);
      t.ok(logged.length >= attempts.length, `${target.spec.id} logged ${logged.length} closed connections: ${[...new Set(logged.map((line) => /\((\w+):/.exec(line)?.[1] ?? '?'))].join(', ')}`);
    }
    t.ok(await stillServes(cluster, follower, 'after/raft-garbage'), 'the cluster serves after the garbage');
    t.equal((await cluster.waitForLeader(10_000)).spec.id, leader.spec.id, 'and has the same leader');
  });

  await t.test('random bytes to a gRPC port: logged, and the node keeps serving', async (t) => {
    const next = seededRandom(7);
    const before = follower.logText().length;
    t.equal(await sendRaw(follower.spec.grpcPort, [randomBytes(next, 64 * 1024)]), 'closed by the node', '64 KiB of random bytes: the node closed the connection');
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    t.equal(await sendRaw(follower.spec.grpcPort, [preface, randomBytes(next, 4096)]), 'closed by the node', 'the HTTP/2 preface then random frames: closed');
    t.ok(await stillServes(cluster, follower, 'after/grpc-garbage'), 'the node serves after the garbage');
    const logged = await waitFor('the node logs the garbage on its gRPC port', async () => /127\.0\.0\.1/.test(follower.logText().slice(before)) && /grpc|http2|session|protocol/i.test(follower.logText().slice(before)), 3000).catch(() => false);
    t.ok(logged, 'a log line says a connection sent garbage to the gRPC port', { todo: 'node: garbage on the gRPC port is not logged (grpc-js closes the HTTP/2 session silently; src/api/server.ts does not listen for session errors)' });
  });

  await t.test('a second node on a port in use exits non-zero naming the address', async (t) => {
    const raftTaken = await runDfs(
      ['-id', 'intruder', '-raft', leader.raftAddress, '-grpc', `127.0.0.1:${await freePort()}`, '-http', `127.0.0.1:${await freePort()}`, '-data', join(cluster.folder, 'intruder-raft'), '-no-fuse'],
      { cwd: cluster.folder },
    );
    t.equal(raftTaken.timedOut, false, 'it does not hang');
    t.not(raftTaken.code, 0, `raft port in use: exit code ${raftTaken.code}`);
    t.match(raftTaken.output, new RegExp(`127\\.0\\.0\\.1:${leader.spec.raftPort}[^\\n]*(in use|EADDRINUSE)|(in use|EADDRINUSE)[^\\n]*127\\.0\\.0\\.1:${leader.spec.raftPort}`), 'the message names the raft address and says it is in use');

    const grpcTaken = await runDfs(
      ['-id', 'intruder', '-raft', `127.0.0.1:${await freePort()}`, '-grpc', leader.grpcAddress, '-http', `127.0.0.1:${await freePort()}`, '-data', join(cluster.folder, 'intruder-grpc'), '-no-fuse'],
      { cwd: cluster.folder },
    );
    t.equal(grpcTaken.timedOut, false, 'it does not hang');
    t.not(grpcTaken.code, 0, `gRPC port in use: exit code ${grpcTaken.code}`);
    t.match(grpcTaken.output, new RegExp(`127\\.0\\.0\\.1:${leader.spec.grpcPort}[^\\n]*(in use|EADDRINUSE)|(in use|EADDRINUSE)[^\\n]*127\\.0\\.0\\.1:${leader.spec.grpcPort}`), 'the message names the gRPC address and says it is in use');
    t.ok(await stillServes(cluster, leader, 'after/port-in-use'), 'the node whose ports were wanted keeps serving');
  });

  await t.test('a second process on a data folder in use is refused', async (t) => {
    const second = await runDfs(
      ['-id', follower.spec.id, '-raft', `127.0.0.1:${await freePort()}`, '-grpc', `127.0.0.1:${await freePort()}`, '-http', `127.0.0.1:${await freePort()}`, '-data', follower.spec.dataFolder, '-no-fuse'],
      { cwd: cluster.folder },
    );
    t.equal(second.timedOut, false, 'it does not hang');
    t.equal(second.code, 1, 'exit code 1');
    t.match(second.output, new RegExp(`cannot use the data folder ${follower.spec.dataFolder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'the message names the folder');
    t.match(second.output, new RegExp(`${follower.pid}`), 'and the process that holds it');
    t.ok(await stillServes(cluster, follower, 'after/second-process'), 'the node that holds the folder keeps serving');
  });

  await t.test('an invalid flag: exit code 2 and a message naming the setting', async (t) => {
    const cases: { args: string[]; message: RegExp }[] = [
      { args: ['-tick-milliseconds', '5'], message: /-tick-milliseconds "5": must be from 10 to 10000 milliseconds/ },
      { args: ['-raft', '127.0.0.1:70000'], message: /-raft "127\.0\.0\.1:70000": port 70000 must be from 1 to 65535/ },
      { args: ['-max-message-bytes', '64MB'], message: /-max-message-bytes "64MB": must be a whole number of bytes/ },
      { args: ['-peers', 'a,,b'], message: /-peers[^\n]*empty entry/ },
      { args: ['-bogus', '1'], message: /-bogus: unknown flag/ },
    ];
    for (const { args, message } of cases) {
      const result = await runDfs([...args, '-data', join(cluster.folder, 'never-created')], { cwd: cluster.folder });
      t.equal(result.code, 2, `${args.join(' ')}: exit code 2`);
      t.match(result.output, message, `${args.join(' ')}: ${result.output.split('\n')[0] ?? ''}`);
    }
    t.throws(() => statSync(join(cluster.folder, 'never-created')), { code: 'ENOENT' }, 'no data folder was created');
  });

  await t.test("another cluster's data folder is refused, and its files stay intact", async (t) => {
    // Cluster A: one node on its own (no peers: it founds a cluster), with some data, stopped.
    const alpha = await cluster.addNode('alpha');
    alpha.start();
    await cluster.waitForLeader(30_000, [alpha]);
    for (let index = 0; index < 20; index++) await alpha.client.put(`alpha/${index}`, encoder.encode(`alpha ${index}`));
    t.equal(await alpha.stop(), 0, 'cluster A stops cleanly');
    cluster.nodes.splice(cluster.nodes.indexOf(alpha), 1);
    alpha.client.close();
    const alphaCluster = /founded cluster ([0-9a-f]+)/.exec(alpha.logText())?.[1] ?? '';
    t.ok(alphaCluster !== '', `cluster A is ${alphaCluster}`);

    // A copy of its folder, started with the peers of the running cluster B.
    const copy = join(cluster.folder, 'alpha-copy');
    cpSync(alpha.spec.dataFolder, copy, { recursive: true });
    const before = hashFiles(copy);
    const result = await runDfs(
      ['-id', 'alpha', '-raft', `127.0.0.1:${await freePort()}`, '-grpc', `127.0.0.1:${await freePort()}`, '-http', `127.0.0.1:${await freePort()}`, '-data', copy, '-no-fuse', '-peers', founders.map((node) => node.raftAddress).join(',')],
      { cwd: cluster.folder, timeoutMilliseconds: 20_000 },
    );
    t.equal(result.timedOut, false, 'the node does not run on (it exits by itself)');
    t.equal(result.code, 1, 'exit code 1');
    const clusterB = /founded cluster ([0-9a-f]+)/.exec(leader.logText())?.[1] ?? 'unknown';
    t.match(result.output, new RegExp(`data folder belongs to cluster ${alphaCluster}[^\\n]*belongs to cluster ${clusterB}`), 'the message names both clusters');
    t.notMatch(result.output, /became leader|founded cluster/, 'it neither led nor founded anything');
    const after = hashFiles(copy);
    const changed = [...before].filter(([path, hash]) => after.get(path) !== hash && !path.endsWith('lock.mdb')).map(([path]) => path);
    t.same(changed, [], `the copied folder's data files are unchanged (${[...before.keys()].filter((path) => !path.endsWith('lock.mdb')).join(', ')})`);
    t.ok(await stillServes(cluster, leader, 'after/foreign-folder'), 'cluster B keeps serving');
    const members = (await leader.status()).members.map((member) => member.id).sort();
    t.same(members, founders.map((node) => node.spec.id).sort(), 'and its members are unchanged');
  });
});
