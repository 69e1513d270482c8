// A corrupt state store stops the node with a clear error and loses nothing (DESIGN.md, "Bad
// input gets a clear error and loses nothing"). lmdb-js crashes the whole process with SIGSEGV
// on a data.mdb that is not LMDB's, and a supervisor (systemd, docker) would restart it forever.
// Method: a real one-node cluster writes some files and stops; its <data>/state/data.mdb is then
// overwritten with garbage and the node started again with the same flags. It must exit by itself
// with code 1 (not a signal), in one attempt (no actor restarts), with a log line naming the file;
// every file of its data folder must keep its bytes and modification time. Then the remedy the
// message gives for a log that was never compacted is followed — move the state folder away —
// and the node must start and serve every file again, rebuilt from its Raft log.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';
import { runDfs, TestCluster } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Size, modification time and sha256 of every file under `folder` but the process locks, by relative path. */
function fingerprint(folder: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (current: string): void => {
    for (const name of readdirSync(current)) {
      const path = join(current, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      // dfs.lock is the supervisor's lock of the data folder, written by every start.
      else if (!name.startsWith('dfs.lock')) out.set(relative(folder, path), `${stat.size} ${stat.mtimeMs} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
    }
  };
  walk(folder);
  return out;
}

t.test('a garbage state data.mdb: exit code 1 naming the file, no restart loop, no segfault, nothing changed', async (t) => {
  const cluster = await TestCluster.create(0);
  t.teardown(async () => {
    await cluster.shutdown();
    cluster.cleanup(t.passing() === false);
  });
  const node = await cluster.addNode('solo');
  node.start();
  await cluster.waitForLeader(60_000, [node]);
  const keys = Array.from({ length: 10 }, (_, index) => `docs/${index}.txt`);
  for (const key of keys) await node.client.put(key, encoder.encode(`content of ${key}`));
  t.equal(await node.stop(), 0, 'the node stops cleanly');

  const stateFolder = join(node.spec.dataFolder, 'state');
  const dataPath = join(stateFolder, 'data.mdb');
  writeFileSync(dataPath, Buffer.alloc(256 * 1024, 0x5a));
  const before = fingerprint(node.spec.dataFolder);
  t.ok(before.has(join('raft', 'data.mdb')) && before.has(join('state', 'data.mdb')), `fingerprinted ${[...before.keys()].join(', ')}`);
  await new Promise((resolve) => setTimeout(resolve, 20));

  const { spec } = node;
  const args = ['-id', spec.id, '-raft', node.raftAddress, '-grpc', node.grpcAddress, '-http', `127.0.0.1:${spec.httpPort}`, '-data', spec.dataFolder, '-no-fuse'];
  const result = await runDfs(args, { cwd: cluster.folder, timeoutMilliseconds: 30_000 });
  t.equal(result.timedOut, false, 'it exits by itself');
  t.equal(result.code, 1, 'exit code 1 (a signal would give no code)');
  const fileLines = result.output.split('\n').filter((line) => line.includes(`${dataPath} is not a valid LMDB file`));
  t.ok(fileLines.length >= 1, 'a log line names the file and says it is not a valid LMDB file', { output: result.output });
  t.match(fileLines[0] ?? '', /magic number 0x5a5a5a5a/, 'and what is wrong with it');
  t.match(fileLines[0] ?? '', new RegExp(`move ${stateFolder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} away and the node rebuilds the state from the log`), 'and what to do');
  t.notMatch(result.output, /restarting all actors|actors restarted|SIGSEGV|Segmentation fault/i, 'no restart, no segfault');
  t.equal(result.output.split('\n').filter((line) => line.includes('cannot open the state store')).length >= 1, true, 'the store actor reported it');
  t.notMatch(result.output, /raft on 127\.0\.0\.1|became leader/, 'the Raft actor never started');
  t.strictSame(fingerprint(spec.dataFolder), before, 'every file of the data folder keeps its bytes and modification time');

  // The message's remedy for a log never compacted (the default compacts every 10000 entries).
  t.same(readdirSync(join(spec.dataFolder, 'raft', 'snapshots')).filter((name) => name.startsWith('snapshot-')), [], 'the log was never compacted');
  renameSync(stateFolder, `${stateFolder}.corrupt`);
  node.start();
  await cluster.waitForLeader(60_000, [node]);
  for (const key of keys) t.equal(decoder.decode(await node.client.get(key)), `content of ${key}`, `${key} is served again, rebuilt from the log`);
});
