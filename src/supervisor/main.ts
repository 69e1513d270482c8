#!/usr/bin/env node
// The `dfs` command: read the configuration (flags > DFS_* > dfs.yaml > defaults), then run the
// supervisor until a signal or a fatal error. Exit codes: 0 after a graceful stop, 1 when the node
// could not run (a fatal error, too many crashes), 2 for an invalid configuration.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatConfigErrors, loadConfigFromProcess } from '../config/index.js';
import { acquireProcessLock, type ProcessLock } from '../store/process-lock.js';
import { FuseChild } from './fuse-child.js';
import { createLogger } from './logger.js';
import { settingsFromConfig } from './settings.js';
import { Supervisor } from './supervisor.js';

const loaded = loadConfigFromProcess();
if (loaded.kind === 'help') {
  process.stdout.write(loaded.text);
  process.exit(0);
}
if (loaded.kind === 'errors') {
  process.stderr.write(formatConfigErrors(loaded.errors));
  process.exit(2);
}

const settings = settingsFromConfig(loaded.config);
const prettyLogs = process.stdout.isTTY === true;
const logger = createLogger({ level: settings.logLevel, pretty: prettyLogs, base: { node: settings.nodeId, actor: 'supervisor' } });
const supervisor = new Supervisor({
  settings,
  logger,
  prettyLogs,
  workerUrl: (actor) => new URL(`../../workers/${actor}.js`, import.meta.url),
  startTimeoutMilliseconds: 60_000,
  handOverTimeoutMilliseconds: 3_000,
  maxRestarts: 5,
  restartWindowMilliseconds: 5 * 60_000,
});

// One process per data folder, for the process's whole life (workers come and go under it).
let dataLock: ProcessLock;
try {
  mkdirSync(settings.dataFolder, { recursive: true });
  dataLock = await acquireProcessLock({ folder: settings.dataFolder, logger });
} catch (error) {
  logger.fatal(`cannot use the data folder ${settings.dataFolder}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

// The mount shows the state store, so it starts once the store actor has created it.
const fuse = settings.fuseEnabled
  ? new FuseChild({
      stateFolder: join(settings.dataFolder, 'state'),
      mountPoint: settings.mountFolder,
      nodeId: settings.nodeId,
      logLevel: settings.logLevel,
      prettyLogs,
      logger,
    })
  : null;

// The FUSE process's operation figures go to the gRPC actor, which serves /metrics (dropped while
// it restarts: the reports are cumulative, the next one brings it up to date).
fuse?.onOperationMetrics((report) => supervisor.send('grpc', { type: 'fuseMetrics', report }));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void fuse?.stop();
    void supervisor.stop(`received ${signal}`);
  });
}

logger.info(
  { raft: `${settings.raftHost}:${settings.raftPort}`, grpc: `${settings.grpcHost}:${settings.grpcPort}`, advertise: settings.advertise, peers: settings.peers, data: settings.dataFolder,
    ...(settings.fuseEnabled ? { mount: settings.mountFolder, cache: settings.cacheFolder } : { fuse: 'off (-no-fuse)' }) },
  `starting dfs node ${settings.nodeId}`,
);
void supervisor.start().then(() => {
  if (!supervisor.stopped) fuse?.start();
});
process.exitCode = await supervisor.done;
await fuse?.stop();
dataLock.release();
logger.flush?.();
// Worker threads and sockets are closed by now; a stray timer must not keep a stopped node alive.
setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
