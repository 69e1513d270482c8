// Composition root of the gRPC actor: opens the state store read-only, serves dfs.FileService
// (with reflection and health) on the gRPC port, and wires the ClusterBackend to the Raft and
// store actors' channels and to the supervisor.

import { join } from 'node:path';
import { ClusterBackend } from '../src/actors/grpc-actor.js';
import { Mailbox } from '../src/actors/mailbox.js';
import type { RaftReply, RaftRequest, StoreEvent } from '../src/actors/protocol.js';
import { reportFatal, workerContext } from '../src/actors/worker-runtime.js';
import { startGrpcServer, type GrpcServer } from '../src/api/server.js';
import { formatAddress } from '../src/config/index.js';
import { chunkSizeBytes } from '../src/store/layout.js';
import { readerStatePort } from '../src/store/state-port.js';
import { StateReader } from '../src/store/state-reader.js';
import { CacheIndex } from '../src/fs/cache-index.js';
import { CacheWatcher } from '../src/fs/cache-watcher.js';

const context = workerContext();
const { settings, logger } = context;

/** The node still serves gRPC; the cache folder is off until the next start. */
function cacheFolderOff(error: unknown): void {
  logger.error({ cacheFolder: settings.cacheFolder }, `the cache folder ${settings.cacheFolder} is not watched: ${error instanceof Error ? error.message : String(error)}`);
}

async function main(): Promise<void> {
  const folder = join(settings.dataFolder, 'state');
  let reader: StateReader;
  try {
    reader = StateReader.open(folder);
  } catch (error) {
    reportFatal(context, `cannot read the state store in ${folder}: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  const raft = new Mailbox<RaftReply, RaftRequest>(context.port('raft'));
  const store = new Mailbox<StoreEvent, never>(context.port('store'));
  let server: GrpcServer | null = null;
  let leader: string | null = null;
  const backend = new ClusterBackend({
    nodeId: settings.nodeId,
    state: readerStatePort(reader),
    toRaft: (request) => raft.send(request),
    logger,
    requestTimeoutMilliseconds: settings.requestTimeoutMilliseconds,
    chunkSizeBytes,
    maxChunksInFlight: 32,
    maxPendingRequests: 4096,
    onLeadership: (known) => {
      leader = known;
      server?.setServing(known !== null);
    },
  });
  raft.receive((reply) => backend.handleRaftReply(reply));
  store.receive((event) => backend.handleStoreEvent(event));
  const address = formatAddress({ host: settings.grpcHost, port: settings.grpcPort });
  try {
    server = await startGrpcServer({ address, backend, logger, maxMessageBytes: settings.maxMessageBytes, serving: leader !== null });
  } catch (error) {
    await reader.close();
    reportFatal(context, error instanceof Error ? error.message : String(error));
    return;
  }
  const running = server;
  // The cache folder is the file system's way in: its watcher writes through the same backend.
  let watcher: CacheWatcher | null = null;
  let index: CacheIndex | null = null;
  if (settings.fuseEnabled) {
    try {
      index = CacheIndex.open(join(settings.dataFolder, 'cache-index'), settings.cacheFolder);
      watcher = new CacheWatcher({
        cacheFolder: settings.cacheFolder,
        index,
        logger: logger.child({ component: 'cache' }),
        chunkSizeBytes,
        target: {
          fileVersion: (key) => {
            const info = reader.stat(key);
            return info?.kind === 'file' ? info.version : null;
          },
          putFile: (key, data, metadata, call) => backend.putFile(key, data, metadata, call),
          putChunked: (key, chunks, options, call) => backend.putChunked(key, chunks, options, call),
          delete: (key, call) => backend.delete(key, call),
          deleteFolder: (key, call) => backend.deleteFolder(key, call),
          rename: (from, to, call) => backend.rename(from, to, call),
          makeFolder: (key, metadata, call) => backend.makeFolder(key, metadata, call),
        },
      });
    } catch (error) {
      watcher = null;
      cacheFolderOff(error);
    }
    // Not awaited: the initial scan of a big folder must not hold up the node's start.
    watcher?.start().catch((error: unknown) => {
      void watcher?.close();
      cacheFolderOff(error);
    });
  }
  // The leader may have become known while the server was starting (the Raft actor's news is
  // delivered during the await above, when `server` was still null): apply what is known now.
  running.setServing(leader !== null);
  // Orphan content chunks (cancelled uploads) are collected by the leader, ten minutes after.
  const collector = setInterval(() => {
    backend.collectGarbage(leader === settings.nodeId, 10 * 60_000).catch((error: unknown) => logger.warn(`collecting orphan chunks failed: ${String(error)}`));
  }, 60_000);
  collector.unref();
  context.control.receive((request) => {
    switch (request.type) {
      case 'handOver':
        context.control.send({ type: 'handedOver', to: null });
        return;
      case 'stop':
        clearInterval(collector);
        void Promise.resolve(watcher?.close())
          .then(() => index?.close())
          .then(() => running.close({ graceMilliseconds: 5000 }))
          .then(() => backend.close())
          .then(() => reader.close())
          .then(() => context.control.send({ type: 'stopped' }));
        return;
    }
  });
  context.control.send({ type: 'started', detail: `gRPC on ${running.address}` });
}

void main().catch((error: unknown) => reportFatal(context, `the gRPC actor failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
