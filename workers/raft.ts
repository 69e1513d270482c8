// Composition root of the Raft actor: opens the Raft log, listens on the raft port, and wires
// the RaftActor to the store and gRPC actors' channels and to the supervisor.

import { join } from 'node:path';
import { Mailbox } from '../src/actors/mailbox.js';
import type { RaftNews, RaftRequest, StoreReport, StoreRequest } from '../src/actors/protocol.js';
import { RaftActor } from '../src/actors/raft-actor.js';
import { reportFatal, workerContext } from '../src/actors/worker-runtime.js';
import { openRaftLog } from '../src/store/raft-log-lmdb.js';
import { PeerTransport } from '../src/transport/peer-transport.js';

const context = workerContext();
const { settings, logger } = context;

async function main(): Promise<void> {
  let storage;
  try {
    storage = await openRaftLog({ path: join(settings.dataFolder, 'raft'), nodeId: settings.nodeId, logger, lockFolder: false });
  } catch (error) {
    reportFatal(context, `cannot open the Raft log in ${join(settings.dataFolder, 'raft')}: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  const transport = new PeerTransport({
    nodeId: settings.nodeId,
    clusterId: storage.clusterId() ?? '',
    advertise: settings.advertise,
    logger,
    // An entry carries at most one content chunk (1 MiB) or one small command; a batch is capped
    // by the core's maxMessageBytes. The frame limit leaves room for both.
    maxFrameBytes: 8 * 1024 * 1024,
  });
  try {
    await transport.listen(settings.raftHost, settings.raftPort);
  } catch (error) {
    await storage.close();
    reportFatal(context, error instanceof Error ? error.message : String(error));
    return;
  }
  const toStore = new Mailbox<StoreReport, StoreRequest>(context.port('store'));
  const toApi = new Mailbox<RaftRequest, RaftNews>(context.port('grpc'));
  const actor = new RaftActor({
    nodeId: settings.nodeId,
    advertise: settings.advertise,
    peers: settings.peers,
    storage,
    network: transport,
    toStore: (request) => toStore.send(request),
    toApi: (reply) => toApi.send(reply),
    logger,
    tickMilliseconds: settings.tickMilliseconds,
    electionTimeoutTicks: settings.electionTimeoutTicks,
    snapshotEveryEntries: settings.snapshotEveryEntries,
    maxMessageBytes: 4 * 1024 * 1024,
    onFatal: (message) => reportFatal(context, message),
    onHealth: (serving) => context.control.send({ type: 'health', serving }),
    // The gRPC actor serves /metrics; it gets the Raft actor's measurements once a second.
    onMetrics: (report) => toApi.send(report),
  });
  toStore.receive((report) => actor.handleStoreReport(report));
  toApi.receive((request) => actor.handleRequest(request));
  const openStorage = storage;
  context.control.receive((request) => {
    switch (request.type) {
      case 'handOver':
        void actor.handOver(request.timeoutMilliseconds).then((to) => {
          if (to !== null) logger.info({ to }, `handed leadership to ${to} before stopping`);
          context.control.send({ type: 'handedOver', to });
        });
        return;
      case 'fuseMetrics':
        // For the gRPC actor only (it serves /metrics); the supervisor never sends it here.
        return;
      case 'stop':
        actor.stop();
        void transport
          .close()
          .then(() => openStorage.close())
          .then(() => context.control.send({ type: 'stopped' }));
        return;
    }
  });
  actor.start();
  context.control.send({ type: 'started', detail: `raft on ${settings.raftHost}:${settings.raftPort}, advertised as ${settings.advertise}` });
}

void main().catch((error: unknown) => reportFatal(context, `the Raft actor failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
