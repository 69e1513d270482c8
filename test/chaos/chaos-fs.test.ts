// A short chaos run of the file system in `npm test`: three real `dfs` nodes, each behind a
// fault-injecting proxy, each with its FUSE mount and its cache folder, under about 22 seconds of
// faults (kill -9 of a node's FUSE process, kill -9 of a node, a minority cut off, a node paused)
// while gRPC clients Put, Get and Delete a few keys, a file client per node creates, overwrites,
// appends, renames and deletes files and folders (and one larger file) in its node's cache folder,
// and a reader samples files under the mounts.
// Goal: no read under a mount is ever partial; after healing every mount is mounted, readable and
// shows exactly the namespace as gRPC lists it; the namespace holds what the cache folders call
// for; the gRPC history is linearizable. Method: runChaos (run.ts) with --fs and a fixed seed
// (CHAOS_FS_SEED overrides it); the whole report is printed as comments, and on failure the data
// folders and logs are kept. With CI=true it runs (FUSE is required there) rather than skips.

import t from 'tap';

import { mountSkipReason } from '../fs/fuse-helpers.js';
import { runChaos } from './run.js';

const seed = Number(process.env['CHAOS_FS_SEED'] ?? 42);
const skip = mountSkipReason();
t.test('the file system under faults: no partial reads, identical mounts, the namespace the cache folders call for', { skip: skip ?? false }, async (t) => {
  const started = Date.now();
  const report = await runChaos({
    durationSeconds: 22,
    seed,
    nodes: 3,
    faults: ['kill-fuse', 'kill-random', 'partition-minority', 'pause-random'],
    clients: 4,
    keys: 4,
    keep: false,
    log: (line) => t.comment(line),
    faultMilliseconds: [1500, 2500],
    gapMilliseconds: [500, 1500],
    fs: true,
    largeFileBytes: 3 * 1024 * 1024,
    // A wrong end state that stays put 12 s is final (longer than a node's request timeout, 10 s,
    // which a cache-folder operation caught in a leader change can wait); a right one comes within
    // seconds (45 s bound).
    settleMilliseconds: 12_000,
    settleTimeoutMilliseconds: 45_000,
  });
  t.comment(`wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const fs = report.fs;
  if (fs === undefined) throw new Error('no file-system report');
  t.ok((report.faultCounts['kill-fuse'] ?? 0) >= 1, `a FUSE process was killed (${report.faultCounts['kill-fuse'] ?? 0} times)`);
  t.ok(report.faults.length >= 3, `${report.faults.length} faults injected`);
  const fileOperations = Object.values(fs.fileOperations).reduce((sum, count) => sum + count, 0);
  t.ok(fileOperations > 50, `the file clients got work done (${fileOperations} operations)`);
  t.equal(fs.fileOperations.large, 1, 'the larger file was written');
  t.ok(fs.mountReadsJudged > 50, `the reader read under the mounts (${fs.mountReadsJudged} reads judged)`);
  t.equal(fs.partialReadCount, 0, 'no read under a mount was partial or mixed');
  t.same(fs.unreadableMounts, [], 'every mount is mounted and readable after the faults');
  t.same(fs.mountDifferences, [], 'every mount shows exactly the namespace (paths, sizes, sha256)');
  t.same(fs.endStateProblems, [], 'the namespace holds what the cache folders call for');
  t.equal(fs.foreignReadCount, 0, 'no path under a mount showed a content written at another path');
  t.equal(report.check.verdict, 'linearizable', 'the gRPC history is linearizable');
  t.ok(report.recovered, 'the cluster served again after every fault');
  t.equal(report.divergence, '', 'every node holds the same data');
  t.equal(report.finalReadsFailed, 0, 'every key reads through every node after healing');
});
