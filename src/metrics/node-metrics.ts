// The node's Prometheus metrics, kept in the gRPC worker (which serves /metrics). Three kinds of
// figures meet here:
// - observed as they happen in this worker: gRPC calls (the server reports each call's end),
//   proposals (from the request to the Raft actor until its result is applied here), leader
//   changes;
// - reported by the Raft actor about once a second (RaftMetricsReport: flush durations, snapshot
//   sizes and durations, entries persisted and committed), because only it sees them;
// - read when Prometheus scrapes (refresh()): the Raft status (role, term, indexes, each peer's
//   match index and lag), the state store's counts and the size of the data files, the cache
//   folder watcher's counts and queue;
// - reported by the FUSE process about once a second through the supervisor (applyFuseReport:
//   its operations by result and their durations; src/metrics/fuse-operation-metrics.ts).
// Every label set is bounded: gRPC method names come from the service definition, codes from
// the gRPC status table, peers from the cluster configuration (gauges are reset at each refresh,
// so a removed peer disappears).

import { stat } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { NodeStatus } from '../api/backend.js';
import type { RaftMetricsReport } from '../actors/protocol.js';
import type { FuseOperationsReport } from '../fs/fuse-contract.js';
import { FuseOperationMetrics } from './fuse-operation-metrics.js';

/** 100 µs to 10 s: flushes and snapshots on fast disks sit at the low end, stalls at the high. */
const durationBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** 1 KiB to 4 GiB by powers of 4. */
const sizeBuckets = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456, 1073741824, 4294967296];

const roles = ['follower', 'preCandidate', 'candidate', 'leader'] as const;

/** Counts the watcher keeps (CacheWatcher.counters), read at each scrape. */
export interface WatcherCounters {
  readonly uploads: number;
  readonly uploadedBytes: number;
  readonly renames: number;
  readonly deletions: number;
  readonly folders: number;
  readonly abandonedUploads: number;
  readonly skippedUnchanged: number;
}

/** Paths the watcher has yet to replicate (CacheWatcher.queueLength), read at each scrape. */
export interface WatcherQueueLength {
  readonly queued: number;
  readonly inFlight: number;
}

/** What refresh() reads: each source may be missing (the cache folder is off, the status timed out). */
export interface NodeMetricsSources {
  readonly status: () => Promise<NodeStatus>;
  readonly storeCounts: () => { readonly files: number; readonly fileBytes: number; readonly chunks: number; readonly orphanChunks: number };
  /** Data files whose allocated size is reported as dfs_store_disk_bytes{store}. */
  readonly dataFiles: Readonly<Record<string, string>>;
  readonly watcher: () => { readonly counters: WatcherCounters; readonly problemPaths: number; readonly queue?: WatcherQueueLength } | null;
  /** dfs.FileService calls being handled now; absent before the server runs. */
  readonly callsInFlight?: () => number;
}

/** gRPC status numbers to their names (OK, NOT_FOUND, ...): the `code` label. */
const grpcCodeNames = new Map<number, string>(
  Object.entries(GrpcStatus).filter((entry): entry is [string, number] => typeof entry[1] === 'number').map(([name, code]) => [code, name]),
);

export function grpcCodeName(code: number): string {
  return grpcCodeNames.get(code) ?? 'UNKNOWN';
}

export class NodeMetrics {
  readonly registry = new Registry();

  private readonly role = new Gauge({ name: 'dfs_raft_role', help: '1 for the role this node has now (follower, preCandidate, candidate, leader), 0 for the others', labelNames: ['role'], registers: [this.registry] });
  private readonly term = new Gauge({ name: 'dfs_raft_term', help: 'The current Raft term', registers: [this.registry] });
  private readonly leaderKnown = new Gauge({ name: 'dfs_raft_leader_known', help: '1 when this node knows a leader, 0 otherwise', registers: [this.registry] });
  private readonly commitIndex = new Gauge({ name: 'dfs_raft_commit_index', help: 'The highest log index known to be committed', registers: [this.registry] });
  private readonly appliedIndex = new Gauge({ name: 'dfs_raft_applied_index', help: 'The highest log index applied to the state store on this node', registers: [this.registry] });
  private readonly snapshotIndex = new Gauge({ name: 'dfs_raft_snapshot_index', help: 'The last log index covered by this node\'s snapshot', registers: [this.registry] });
  private readonly members = new Gauge({ name: 'dfs_raft_members', help: 'Members of the cluster configuration, this node included', registers: [this.registry] });
  private readonly peerMatchIndex = new Gauge({ name: 'dfs_raft_peer_match_index', help: 'On the leader: the highest log index known to be replicated on each peer', labelNames: ['peer'], registers: [this.registry] });
  private readonly peerLag = new Gauge({ name: 'dfs_raft_peer_lag_entries', help: 'On the leader: how many entries each peer is behind the leader\'s log', labelNames: ['peer'], registers: [this.registry] });
  private readonly leaderChanges = new Counter({ name: 'dfs_raft_leader_changes_total', help: 'Times the leader this node knows changed (to another node or to none)', registers: [this.registry] });
  private readonly campaigns = new Counter({ name: 'dfs_raft_campaigns_total', help: 'Elections this node started as a candidate', registers: [this.registry] });
  private readonly proposals = new Counter({ name: 'dfs_raft_proposals_total', help: 'Commands this node proposed, by result: committed (applied here), failed (refused or not committed), expired (no answer in time)', labelNames: ['result'], registers: [this.registry] });
  private readonly proposalSeconds = new Histogram({ name: 'dfs_raft_proposal_commit_seconds', help: 'From proposing a command to its being applied on this node', buckets: durationBuckets, registers: [this.registry] });
  private readonly fsyncSeconds = new Histogram({ name: 'dfs_raft_fsync_seconds', help: 'Duration of each flush of the Raft log to disk (one per Ready batch)', buckets: durationBuckets, registers: [this.registry] });
  private readonly fsyncsNotObserved = new Counter({ name: 'dfs_raft_fsyncs_not_observed_total', help: 'Flushes left out of dfs_raft_fsync_seconds because a report was full', registers: [this.registry] });
  private readonly persistedEntries = new Counter({ name: 'dfs_raft_persisted_entries_total', help: 'Log entries written to this node\'s Raft log', registers: [this.registry] });
  private readonly committedEntries = new Counter({ name: 'dfs_raft_committed_entries_total', help: 'Committed log entries handed to the state store', registers: [this.registry] });
  private readonly snapshotSize = new Histogram({ name: 'dfs_raft_snapshot_size_bytes', help: 'Size of each snapshot, taken here (taken) or received from the leader (installed)', labelNames: ['kind'], buckets: sizeBuckets, registers: [this.registry] });
  private readonly snapshotSeconds = new Histogram({ name: 'dfs_raft_snapshot_duration_seconds', help: 'Taken: from asking the store to write it to compacting the log; installed: from its first chunk to the last', labelNames: ['kind'], buckets: durationBuckets, registers: [this.registry] });
  private readonly grpcRequests = new Counter({ name: 'dfs_grpc_requests_total', help: 'dfs.FileService calls by method and status code', labelNames: ['method', 'code'], registers: [this.registry] });
  private readonly grpcInFlight = new Gauge({ name: 'dfs_grpc_calls_in_flight', help: 'dfs.FileService calls being handled now (a stream counts until it ends)', registers: [this.registry] });
  private readonly grpcSeconds = new Histogram({ name: 'dfs_grpc_request_duration_seconds', help: 'dfs.FileService call duration, from its arrival to its status, by method and status code', labelNames: ['method', 'code'], buckets: durationBuckets, registers: [this.registry] });
  private readonly storeFiles = new Gauge({ name: 'dfs_store_files', help: 'Files in the namespace', registers: [this.registry] });
  private readonly storeFileBytes = new Gauge({ name: 'dfs_store_file_bytes', help: 'Sum of the sizes of the files in the namespace', registers: [this.registry] });
  private readonly storeChunks = new Gauge({ name: 'dfs_store_chunks', help: 'Content chunks stored (identical content is stored once)', registers: [this.registry] });
  private readonly storeOrphanChunks = new Gauge({ name: 'dfs_store_orphan_chunks', help: 'Chunks no file uses, waiting for collection', registers: [this.registry] });
  private readonly storeDiskBytes = new Gauge({ name: 'dfs_store_disk_bytes', help: 'Disk space allocated to each data file (state: the replicated files; raft: the log)', labelNames: ['store'], registers: [this.registry] });
  private readonly watcherEvents = new Counter({ name: 'dfs_cache_replicated_total', help: 'Changes in the cache folder replicated, by kind (read from the watcher; absent when the cache folder is off)', labelNames: ['kind'], registers: [this.registry] });
  private readonly watcherBytes = new Counter({ name: 'dfs_cache_uploaded_bytes_total', help: 'Bytes of files from the cache folder replicated (a counter read from the watcher)', registers: [this.registry] });
  private readonly watcherQueue = new Gauge({ name: 'dfs_cache_queue_length', help: 'Paths of the cache folder waiting to be replicated, by state: queued (changed, not looked at yet or waiting to settle) and inFlight (being uploaded)', labelNames: ['state'], registers: [this.registry] });
  private readonly fuseOperations = new FuseOperationMetrics(this.registry);
  private readonly watcherProblems = new Gauge({ name: 'dfs_cache_problem_paths', help: 'Paths in the cache folder the watcher reports as not replicated', registers: [this.registry] });
  private readonly scrapeErrors = new Counter({ name: 'dfs_metrics_refresh_failures_total', help: 'Scrapes whose Raft status or store figures could not be read (the previous values were served)', labelNames: ['source'], registers: [this.registry] });

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    for (const result of ['committed', 'failed', 'expired']) this.proposals.inc({ result }, 0);
    // CPU, memory, and this worker's event loop lag: the scrape itself shows whether the gRPC
    // worker keeps up.
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'dfs_' });
  }

  observeCall(method: string, code: number, seconds: number): void {
    const labels = { method, code: grpcCodeName(code) };
    this.grpcRequests.inc(labels);
    this.grpcSeconds.observe(labels, seconds);
  }

  observeProposal(result: 'committed' | 'failed' | 'expired', seconds: number | null): void {
    this.proposals.inc({ result });
    if (result === 'committed' && seconds !== null) this.proposalSeconds.observe(seconds);
  }

  /** The FUSE process's figures (cumulative per run): adds what grew since its previous report. */
  applyFuseReport(report: FuseOperationsReport): void {
    this.fuseOperations.apply(report);
  }

  noteLeaderChange(): void {
    this.leaderChanges.inc();
  }

  applyRaftReport(report: RaftMetricsReport): void {
    for (const seconds of report.fsyncSeconds) this.fsyncSeconds.observe(seconds);
    this.fsyncsNotObserved.inc(report.fsyncsNotReported);
    this.persistedEntries.inc(report.persistedEntries);
    this.committedEntries.inc(report.committedEntries);
    this.campaigns.inc(report.campaigns);
    for (const snapshot of report.snapshots) {
      this.snapshotSize.observe({ kind: snapshot.kind }, snapshot.sizeBytes);
      this.snapshotSeconds.observe({ kind: snapshot.kind }, snapshot.seconds);
    }
  }

  /** Reads the figures that are polled, not observed; a source that fails keeps its last values. */
  async refresh(sources: NodeMetricsSources): Promise<void> {
    const [status] = await Promise.allSettled([sources.status()]);
    if (status.status === 'fulfilled') this.setStatus(status.value);
    else this.scrapeErrors.inc({ source: 'status' });
    try {
      const counts = sources.storeCounts();
      this.storeFiles.set(counts.files);
      this.storeFileBytes.set(counts.fileBytes);
      this.storeChunks.set(counts.chunks);
      this.storeOrphanChunks.set(counts.orphanChunks);
    } catch {
      this.scrapeErrors.inc({ source: 'store' });
    }
    await Promise.all(Object.entries(sources.dataFiles).map(async ([store, path]) => {
      try {
        // Allocated blocks, not the apparent size: LMDB files are sparse.
        this.storeDiskBytes.set({ store }, (await stat(path)).blocks * 512);
      } catch {
        this.scrapeErrors.inc({ source: 'disk' });
      }
    }));
    if (sources.callsInFlight !== undefined) this.grpcInFlight.set(sources.callsInFlight());
    const watcher = sources.watcher();
    if (watcher !== null) {
      const { counters } = watcher;
      // The watcher keeps the counts; a counter cannot be set, so it is refilled from them.
      this.watcherEvents.reset();
      this.watcherEvents.inc({ kind: 'upload' }, counters.uploads);
      this.watcherEvents.inc({ kind: 'rename' }, counters.renames);
      this.watcherEvents.inc({ kind: 'deletion' }, counters.deletions);
      this.watcherEvents.inc({ kind: 'folder' }, counters.folders);
      this.watcherEvents.inc({ kind: 'abandonedUpload' }, counters.abandonedUploads);
      this.watcherEvents.inc({ kind: 'skippedUnchanged' }, counters.skippedUnchanged);
      this.watcherBytes.reset();
      this.watcherBytes.inc(counters.uploadedBytes);
      this.watcherProblems.set(watcher.problemPaths);
      if (watcher.queue !== undefined) {
        this.watcherQueue.set({ state: 'queued' }, watcher.queue.queued);
        this.watcherQueue.set({ state: 'inFlight' }, watcher.queue.inFlight);
      }
    }
  }

  /** The text Prometheus scrapes. */
  async exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private setStatus(status: NodeStatus): void {
    for (const role of roles) this.role.set({ role }, status.role === role ? 1 : 0);
    this.term.set(status.term);
    this.leaderKnown.set(status.leaderId === '' ? 0 : 1);
    this.commitIndex.set(status.commitIndex);
    this.appliedIndex.set(status.appliedIndex);
    this.snapshotIndex.set(status.snapshotIndex);
    this.members.set(status.members.length);
    this.peerMatchIndex.reset();
    this.peerLag.reset();
    for (const member of status.members) {
      if (member.id === status.nodeId || !member.progressKnown) continue;
      this.peerMatchIndex.set({ peer: member.id }, member.matchIndex);
      this.peerLag.set({ peer: member.id }, member.lagEntries);
    }
  }
}
