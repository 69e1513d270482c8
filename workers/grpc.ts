// Composition root of the gRPC actor: opens the state store read-only, serves dfs.FileService
// (with reflection and health) on the gRPC port and the metrics and health endpoints on the HTTP
// port, and wires the ClusterBackend to the Raft and store actors' channels and to the supervisor.

import { join } from 'node:path';
import { ClusterBackend } from '../src/actors/grpc-actor.js';
import { Mailbox } from '../src/actors/mailbox.js';
import type { RaftNews, RaftRequest, StoreEvent } from '../src/actors/protocol.js';
import { reportFatal, workerContext } from '../src/actors/worker-runtime.js';
import { startGrpcServer, type GrpcServer } from '../src/api/server.js';
import { formatAddress } from '../src/config/index.js';
import { chunkSizeBytes } from '../src/store/layout.js';
import { readerStatePort } from '../src/store/state-port.js';
import { StateReader } from '../src/store/state-reader.js';
import { CacheIndex } from '../src/fs/cache-index.js';
import { CacheWatcher } from '../src/fs/cache-watcher.js';
import { ActivityCounters, ClusterTimeline } from '../src/metrics/cluster-timeline.js';
import { startMetricsServer, type MetricsServer } from '../src/metrics/http-server.js';
import { NodeMetrics } from '../src/metrics/node-metrics.js';
import { ProposalClock } from '../src/metrics/proposal-clock.js';
import { readinessOf } from '../src/metrics/readiness.js';
import { startStatusSampler } from '../src/metrics/status-sampler.js';

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
  const raft = new Mailbox<RaftNews, RaftRequest>(context.port('raft'));
  const store = new Mailbox<StoreEvent, never>(context.port('store'));
  let server: GrpcServer | null = null;
  let leader: string | null = null;
  const metrics = new NodeMetrics();
  /** Calls and committed proposals for the status page's rates (NodeMetrics' counters are prom-client's). */
  const activity = new ActivityCounters();
  const proposals = new ProposalClock({
    capacity: 4096,
    expireMilliseconds: settings.requestTimeoutMilliseconds,
    onSettled: (result, seconds) => {
      metrics.observeProposal(result, seconds);
      activity.observeProposal(result);
    },
  });
  const backend = new ClusterBackend({
    nodeId: settings.nodeId,
    state: readerStatePort(reader),
    toRaft: (request) => {
      if (request.type === 'propose') proposals.start(request.requestId);
      raft.send(request);
    },
    logger,
    requestTimeoutMilliseconds: settings.requestTimeoutMilliseconds,
    chunkSizeBytes,
    maxChunksInFlight: 32,
    maxPendingRequests: 4096,
    onLeadership: (known) => {
      if (known !== leader) metrics.noteLeaderChange();
      leader = known;
      server?.setServing(known !== null);
    },
  });
  raft.receive((news) => {
    if (news.type === 'raftMetrics') {
      metrics.applyRaftReport(news);
      return;
    }
    if (news.type === 'failed') proposals.settle(news.requestId, 'failed');
    backend.handleRaftReply(news);
  });
  store.receive((event) => {
    for (const result of event.results) proposals.settle(result.requestId, result.ok ? 'committed' : 'failed');
    backend.handleStoreEvent(event);
  });
  const address = formatAddress({ host: settings.grpcHost, port: settings.grpcPort });
  try {
    server = await startGrpcServer({
      address,
      backend,
      logger,
      maxMessageBytes: settings.maxMessageBytes,
      serving: leader !== null,
      onCallEnd: (method, code, seconds) => {
        metrics.observeCall(method, code, seconds);
        activity.observeCall(method, code);
      },
    });
  } catch (error) {
    await reader.close();
    reportFatal(context, error instanceof Error ? error.message : String(error));
    return;
  }
  const running = server;
  // The watcher is created below; the metrics read it when it exists.
  let watcher: CacheWatcher | null = null;
  /** The Raft status for a scrape or a readiness probe: asked of the Raft actor, briefly. */
  const status = () => backend.status({ signal: AbortSignal.timeout(2000), deadlineUnixMilliseconds: Date.now() + 2000 });
  // The status page (GET / and /api/status): sampled once a second, served from the last sample.
  const timeline = new ClusterTimeline({ nodeId: settings.nodeId, startedAtUnixMilliseconds: Date.now() });
  // The cluster as the page shows it: the leader's view (lag figures), forwarded over the Raft
  // transport; this node's own view, marked as such, when the leader does not answer in time.
  const clusterView = () => backend.leaderStatus({ signal: AbortSignal.timeout(2000), deadlineUnixMilliseconds: Date.now() + 2000 });
  const sampler = startStatusSampler({
    timeline,
    counters: activity,
    callsInFlight: () => server?.callsInFlight() ?? 0,
    own: status,
    cluster: clusterView,
    store: () => {
      const statistics = reader.statistics();
      return { files: statistics.files, logicalBytes: statistics.fileBytes };
    },
    stateDataFile: join(folder, 'data.mdb'),
  });
  let http: MetricsServer;
  try {
    http = await startMetricsServer({
      address: { host: settings.httpHost, port: settings.httpPort },
      logger,
      metrics: async () => {
        proposals.expire();
        await metrics.refresh({
          status,
          storeCounts: () => reader.statistics(),
          dataFiles: { state: join(folder, 'data.mdb'), raft: join(settings.dataFolder, 'raft', 'data.mdb') },
          watcher: () => (watcher === null ? null : { counters: watcher.counters, problemPaths: watcher.problems().size, queue: watcher.queueLength }),
          callsInFlight: () => running.callsInFlight(),
        });
        return { body: await metrics.exposition(), contentType: metrics.contentType };
      },
      status: async () => {
        await sampler.fresh(500);
        return timeline.report();
      },
      readiness: async () => {
        try {
          return readinessOf(await status());
        } catch (error) {
          return { ready: false, reason: `the Raft actor did not answer: ${error instanceof Error ? error.message : String(error)}` };
        }
      },
    });
  } catch (error) {
    sampler.stop();
    await running.close({ graceMilliseconds: 0 });
    backend.close();
    await reader.close();
    reportFatal(context, error instanceof Error ? error.message : String(error));
    return;
  }
  // The cache folder is the file system's way in: its watcher writes through the same backend.
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
      case 'fuseMetrics':
        // The FUSE process's figures, sent on by the supervisor.
        metrics.applyFuseReport(request.report);
        return;
      case 'handOver':
        context.control.send({ type: 'handedOver', to: null });
        return;
      case 'stop':
        clearInterval(collector);
        sampler.stop();
        void Promise.resolve(watcher?.close())
          .then(() => index?.close())
          .then(() => running.close({ graceMilliseconds: 5000 }))
          .then(() => http.close())
          .then(() => backend.close())
          .then(() => reader.close())
          .then(() => context.control.send({ type: 'stopped' }));
        return;
    }
  });
  context.control.send({ type: 'started', detail: `gRPC on ${running.address}, metrics on http://${http.address}/metrics` });
}

void main().catch((error: unknown) => reportFatal(context, `the gRPC actor failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
