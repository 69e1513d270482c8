// The settings every actor receives: the user's configuration (src/config) flattened into plain
// data that crosses into a worker, plus the timing the node runs with.

import { formatAddress, type NodeConfig } from '../config/index.js';
import type { StateMachineOptions } from '../store/state-machine.js';
import type { LevelWithSilent } from 'pino';

export interface NodeSettings {
  readonly nodeId: string;
  readonly raftHost: string;
  readonly raftPort: number;
  readonly grpcHost: string;
  readonly grpcPort: number;
  /** Where /metrics, /healthz and /readyz are served (-http). */
  readonly httpHost: string;
  readonly httpPort: number;
  /** host:port other nodes use to reach this node's Raft port. */
  readonly advertise: string;
  /** host:port of each configured peer. */
  readonly peers: readonly string[];
  readonly dataFolder: string;
  readonly maxMessageBytes: number;
  readonly logLevel: LevelWithSilent;
  readonly tickMilliseconds: number;
  readonly electionTimeoutTicks: number;
  readonly snapshotEveryEntries: number;
  /** Changes the store's Watch change log keeps (-watch-retention): how far back a watcher can resume. */
  readonly watchRetainedChanges: number;
  /** How long a write or a linearizable read may wait for the cluster before it times out. */
  readonly requestTimeoutMilliseconds: number;
  /** The read-only FUSE mount and the watched cache folder; both off when fuseEnabled is false. */
  readonly mountFolder: string;
  readonly cacheFolder: string;
  readonly fuseEnabled: boolean;
}

export function settingsFromConfig(config: NodeConfig): NodeSettings {
  return {
    nodeId: config.nodeId,
    raftHost: config.raftBindAddress.host,
    raftPort: config.raftBindAddress.port,
    grpcHost: config.grpcBindAddress.host,
    grpcPort: config.grpcBindAddress.port,
    httpHost: config.httpBindAddress.host,
    httpPort: config.httpBindAddress.port,
    advertise: formatAddress(config.advertiseAddress),
    peers: config.peerAddresses.map(formatAddress),
    dataFolder: config.dataFolder,
    maxMessageBytes: config.maxMessageBytes,
    logLevel: config.logLevel,
    tickMilliseconds: config.tickMilliseconds,
    electionTimeoutTicks: 10,
    snapshotEveryEntries: config.snapshotEveryEntries,
    watchRetainedChanges: config.watchRetainedChanges,
    requestTimeoutMilliseconds: 10_000,
    mountFolder: config.mountFolder,
    cacheFolder: config.cacheFolder,
    fuseEnabled: config.fuseEnabled,
  };
}

/** How the store worker opens the state machine with these settings. */
export function stateMachineOptions(settings: Pick<NodeSettings, 'watchRetainedChanges'>): StateMachineOptions {
  return { retainedChanges: settings.watchRetainedChanges };
}
