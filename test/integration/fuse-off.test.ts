// A node whose mount cannot be made keeps working: a real `dfs` process is given a mount point that
// is not empty (libfuse mounts only on an empty folder). It must log one line saying why the mount
// is off, not retry, and go on serving gRPC and replicating its cache folder. (The other reasons —
// no /dev/fuse, no libfuse, no permission — take the same path in the node; test/fs checks that
// the FUSE process exits with their own codes and lines.)

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { mountSkipReason } from '../fs/fuse-helpers.js';
import { TestCluster, waitFor } from './harness.js';

// Where FUSE itself is missing, the FUSE process stops at that reason before it looks at the mount point.
const skip = mountSkipReason();

t.test('a mount point that is not empty: one line, no mount, gRPC and the cache folder still work', { skip: skip ?? false }, async (t) => {
  const cluster = await TestCluster.create(0);
  t.teardown(async () => {
    await cluster.shutdown();
    cluster.cleanup(t.passing() === false);
  });
  const mountPoint = join(cluster.folder, 'busy-mount');
  const cacheFolder = join(cluster.folder, 'cache');
  mkdirSync(mountPoint);
  writeFileSync(join(mountPoint, 'someone-elses-file'), 'x');
  const node = await cluster.addNode('node1');
  node.spec.mountFolder = mountPoint;
  node.spec.cacheFolder = cacheFolder;
  node.start();
  await cluster.waitForLeader(60_000);

  const offLine = /the FUSE mount .*busy-mount is off: the mount point .* is not empty/;
  await waitFor('the line that says why the mount is off', async () => offLine.test(node.logText()));
  await node.client.put('still/works.txt', new TextEncoder().encode('yes'));
  t.equal(new TextDecoder().decode(await node.client.get('still/works.txt')), 'yes', 'gRPC serves');
  writeFileSync(join(cacheFolder, 'from-cache.txt'), 'cached');
  await waitFor('the cache folder to be replicated', async () => new TextDecoder().decode(await node.client.get('from-cache.txt')) === 'cached');
  t.pass('the cache folder is replicated');
  // No retries: the reason does not go away by itself.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  t.equal(node.logText().split('\n').filter((line) => offLine.test(line)).length, 1, 'said once, not retried');
  t.notMatch(node.logText(), /mounting .* again/, 'no remount attempts');
  t.ok(node.process !== null, 'the node runs on');
});
