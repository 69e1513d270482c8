// What the status page (GET /, GET /api/status) shows, computed from samples: the gRPC worker
// samples once a second (the node's own Raft status, the cluster as the leader sees it, the
// request counters and the store's figures) and hands each sample to ClusterTimeline.observe.
// The timeline turns the sequence of samples into events (elections and leader changes, this
// node's role changes, members added, removed, promoted) and into rates over the last ~10 s
// (requests, errors, proposals, stored bytes). It is pure: time is the caller's `nowMilliseconds`,
// nothing here reads a clock, a socket or a file, so tests feed it made-up statuses without sleeps.
// Everything it keeps is bounded: maxEvents events, maxRateSamples samples, one counter per gRPC
// method name (names come from the service definition).

import type { MemberRole, MemberStatus, NodeStatus, Suffrage } from '../api/backend.js';

/** Methods that only read the namespace; Put, PutStream and Delete write it; the rest are "other". */
const readMethods = new Set(['Get', 'GetStream', 'List', 'Stat', 'Watch']);
const writeMethods = new Set(['Put', 'PutStream', 'Delete']);
/** gRPC status OK. */
const ok = 0;
/** Method names tracked one by one; more (not expected: the service has 13) are summed as "other". */
const maxMethods = 64;

/** Cumulative gRPC call counts since the worker started. */
export interface RequestCounts {
  readonly total: number;
  readonly reads: number;
  readonly writes: number;
  /** Calls that ended with a status other than OK (NOT_FOUND included). */
  readonly errors: number;
  readonly byMethod: Readonly<Record<string, number>>;
  /** Calls being handled when the sample was taken (a long stream shows here before it ends). */
  readonly inFlight: number;
}

/**
 * Counts every dfs.FileService call by the end the server reports for it (onCallEnd), and this
 * node's committed proposals (the proposal clock's outcomes): the status page's rates come from
 * these, sampled once a second.
 */
export class ActivityCounters {
  private proposals = 0;
  private total = 0;
  private reads = 0;
  private writes = 0;
  private errors = 0;
  private readonly byMethod = new Map<string, number>();

  observeProposal(result: 'committed' | 'failed' | 'expired'): void {
    if (result === 'committed') this.proposals++;
  }

  get proposalsCommitted(): number {
    return this.proposals;
  }

  observeCall(method: string, code: number): void {
    this.total++;
    if (readMethods.has(method)) this.reads++;
    else if (writeMethods.has(method)) this.writes++;
    if (code !== ok) this.errors++;
    const name = this.byMethod.has(method) || this.byMethod.size < maxMethods ? method : 'other';
    this.byMethod.set(name, (this.byMethod.get(name) ?? 0) + 1);
  }

  /** The counts, with the server's calls in flight at this moment. */
  requests(inFlight: number): RequestCounts {
    return { total: this.total, reads: this.reads, writes: this.writes, errors: this.errors, byMethod: Object.fromEntries(this.byMethod), inFlight };
  }
}

/** One observation of the node, taken about once a second. */
export interface TimelineSample {
  /** This node's own status; null when the Raft actor did not answer. */
  readonly own: NodeStatus | null;
  /** The cluster as the leader reports it (fromLeader) or, failing that, as this node sees it. */
  readonly cluster: { readonly status: NodeStatus; readonly fromLeader: boolean } | null;
  readonly requests: RequestCounts;
  /** Proposals of this node that were committed (applied here), cumulative. */
  readonly proposalsCommitted: number;
  readonly store: StoreFigures;
  /** Short sentences on what could not be read for this sample. */
  readonly problems: readonly string[];
}

export interface StoreFigures {
  /** Files in the namespace; null when the store could not be read. */
  readonly files: number | null;
  /** The sum of the files' sizes (logical bytes), when the store reports it. */
  readonly logicalBytes: number | null;
  /** Disk space allocated to the state store's data file. */
  readonly diskBytes: number | null;
}

export type TimelineEventKind = 'start' | 'election' | 'leader' | 'role' | 'membership';

export interface TimelineEvent {
  readonly atUnixMilliseconds: number;
  readonly kind: TimelineEventKind;
  /** The term this node was in when it saw the event (0 when not known). */
  readonly term: number;
  /** The node the event is about ('' when none). */
  readonly subject: string;
  readonly text: string;
}

/** A member as the page shows it: MemberStatus, with matchIndex and lagEntries null unless progressKnown. */
export interface MemberReport extends Pick<MemberStatus, 'id' | 'address' | 'role' | 'suffrage' | 'progressKnown'> {
  readonly leader: boolean;
  readonly self: boolean;
  readonly matchIndex: number | null;
  readonly lagEntries: number | null;
}

export interface Rates {
  /** The span the rates are averaged over (the oldest kept sample to the newest). */
  readonly windowSeconds: number;
  readonly requestsPerSecond: number;
  readonly readsPerSecond: number;
  readonly writesPerSecond: number;
  readonly errorsPerSecond: number;
  readonly byMethodPerSecond: Readonly<Record<string, number>>;
  readonly proposalsPerSecond: number;
  /**
   * Log entries committed per second in the whole cluster (this node's commit index moving),
   * whichever node the writes came through; null when the Raft status was not read.
   */
  readonly commitsPerSecond: number | null;
  /** How fast the files' total size changes (null when the store does not report it); may be negative. */
  readonly storedBytesPerSecond: number | null;
  /**
   * How fast the state store's data file grows: moves during a big upload, whose size counts in
   * the logical total only once the whole file is committed. LMDB reuses freed pages, so 0 once
   * space has been freed before.
   */
  readonly diskBytesPerSecond: number | null;
}

/** The JSON of GET /api/status. */
export interface StatusReport {
  readonly nodeId: string;
  readonly startedAtUnixMilliseconds: number;
  /** When the sample this report shows was taken (null before the first). */
  readonly sampledAtUnixMilliseconds: number | null;
  /** This node's own view. */
  readonly node: {
    readonly role: MemberRole;
    readonly term: number;
    readonly leaderId: string;
    readonly commitIndex: number;
    readonly appliedIndex: number;
    readonly snapshotIndex: number;
  } | null;
  /** The cluster: members with their progress, as the leader reports it when `fromLeader`. */
  readonly cluster: {
    readonly fromLeader: boolean;
    /** The node whose view this is (the leader's id when fromLeader). */
    readonly seenBy: string;
    readonly term: number;
    readonly leaderId: string;
    readonly leaderAddress: string;
    readonly commitIndex: number;
    readonly appliedIndex: number;
    readonly snapshotIndex: number;
    readonly members: readonly MemberReport[];
  } | null;
  readonly store: StoreFigures;
  readonly requests: RequestCounts;
  /** Null until two samples are kept. */
  readonly rates: Rates | null;
  /** Newest first. */
  readonly events: readonly TimelineEvent[];
  readonly problems: readonly string[];
}

export interface ClusterTimelineOptions {
  readonly nodeId: string;
  readonly startedAtUnixMilliseconds: number;
  /** Rates are averaged over about this long; default 10 s. */
  readonly rateWindowMilliseconds?: number;
  /** Events kept, newest first; default 50. */
  readonly maxEvents?: number;
}

interface RateSample {
  readonly at: number;
  readonly requests: RequestCounts;
  readonly proposalsCommitted: number;
  readonly commitIndex: number | null;
  readonly logicalBytes: number | null;
  readonly diskBytes: number | null;
}

const maxRateSamples = 128;

export class ClusterTimeline {
  private readonly rateWindowMilliseconds: number;
  private readonly maxEvents: number;
  /** Newest last (reversed when reported). */
  private readonly events: TimelineEvent[] = [];
  private readonly samples: RateSample[] = [];
  private last: TimelineSample | null = null;
  private lastAt: number | null = null;
  /** What the previous own status said, for detecting changes (null until the Raft actor first answered). */
  private previousOwn: { readonly term: number; readonly leaderId: string; readonly role: MemberRole } | null = null;
  private previousMembers: ReadonlyMap<string, { readonly address: string; readonly suffrage: Suffrage }> | null = null;

  constructor(private readonly options: ClusterTimelineOptions) {
    this.rateWindowMilliseconds = options.rateWindowMilliseconds ?? 10_000;
    this.maxEvents = Math.max(1, options.maxEvents ?? 50);
    this.add(options.startedAtUnixMilliseconds, 'start', 0, options.nodeId, `${options.nodeId} started`);
  }

  observe(nowMilliseconds: number, sample: TimelineSample): void {
    this.last = sample;
    this.lastAt = nowMilliseconds;
    if (sample.own !== null) this.noteOwn(nowMilliseconds, sample.own);
    // Membership from this node's own configuration: it only moves forward, whereas the leader's
    // view (ahead of it by a moment) might be missing from one sample and present in the next.
    if (sample.own !== null) this.noteMembers(nowMilliseconds, sample.own);
    this.samples.push({
      at: nowMilliseconds,
      requests: sample.requests,
      proposalsCommitted: sample.proposalsCommitted,
      commitIndex: sample.own?.commitIndex ?? null,
      logicalBytes: sample.store.logicalBytes,
      diskBytes: sample.store.diskBytes,
    });
    // Keep the newest sample older than the window too, so the rates cover the whole window.
    while (this.samples.length > 2 && (this.samples[1]?.at ?? nowMilliseconds) <= nowMilliseconds - this.rateWindowMilliseconds) this.samples.shift();
    while (this.samples.length > maxRateSamples) this.samples.shift();
  }

  report(): StatusReport {
    const sample = this.last;
    const own = sample?.own ?? null;
    const cluster = sample?.cluster ?? (own === null ? null : { status: own, fromLeader: own.role === 'leader' });
    const view = cluster?.status ?? null;
    return {
      nodeId: this.options.nodeId,
      startedAtUnixMilliseconds: this.options.startedAtUnixMilliseconds,
      sampledAtUnixMilliseconds: this.lastAt,
      node: own === null ? null : {
        role: own.role,
        term: own.term,
        leaderId: own.leaderId,
        commitIndex: own.commitIndex,
        appliedIndex: own.appliedIndex,
        snapshotIndex: own.snapshotIndex,
      },
      cluster: cluster === null || view === null ? null : {
        // The leader's own status is the leader's view, however it was asked for.
        fromLeader: cluster.fromLeader || view.role === 'leader',
        seenBy: view.nodeId,
        term: view.term,
        leaderId: view.leaderId,
        leaderAddress: view.leaderAddress,
        commitIndex: view.commitIndex,
        appliedIndex: view.appliedIndex,
        snapshotIndex: view.snapshotIndex,
        members: view.members.map((member) => ({
          id: member.id,
          address: member.address,
          role: member.role,
          suffrage: member.suffrage,
          leader: member.id === view.leaderId && view.leaderId !== '',
          self: member.id === this.options.nodeId,
          progressKnown: member.progressKnown,
          matchIndex: member.progressKnown ? member.matchIndex : null,
          lagEntries: member.progressKnown ? member.lagEntries : null,
        })),
      },
      store: sample?.store ?? { files: null, logicalBytes: null, diskBytes: null },
      requests: sample?.requests ?? { total: 0, reads: 0, writes: 0, errors: 0, byMethod: {}, inFlight: 0 },
      rates: this.rates(),
      events: [...this.events].reverse(),
      problems: sample?.problems ?? [],
    };
  }

  private rates(): Rates | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first === undefined || last === undefined || last.at <= first.at) return null;
    const seconds = (last.at - first.at) / 1000;
    // A counter never goes down; if it did (a restarted counter), the rate is 0, not negative.
    const per = (now: number, then: number): number => Math.max(0, now - then) / seconds;
    const byMethodPerSecond: Record<string, number> = {};
    for (const [method, count] of Object.entries(last.requests.byMethod)) {
      const rate = per(count, first.requests.byMethod[method] ?? 0);
      if (rate > 0) byMethodPerSecond[method] = rate;
    }
    return {
      windowSeconds: seconds,
      requestsPerSecond: per(last.requests.total, first.requests.total),
      readsPerSecond: per(last.requests.reads, first.requests.reads),
      writesPerSecond: per(last.requests.writes, first.requests.writes),
      errorsPerSecond: per(last.requests.errors, first.requests.errors),
      byMethodPerSecond,
      proposalsPerSecond: per(last.proposalsCommitted, first.proposalsCommitted),
      commitsPerSecond: last.commitIndex === null || first.commitIndex === null ? null : per(last.commitIndex, first.commitIndex),
      storedBytesPerSecond: last.logicalBytes === null || first.logicalBytes === null ? null : (last.logicalBytes - first.logicalBytes) / seconds,
      diskBytesPerSecond: last.diskBytes === null || first.diskBytes === null ? null : (last.diskBytes - first.diskBytes) / seconds,
    };
  }

  /** Elections, leader changes and this node's role changes, from this node's own status. */
  private noteOwn(at: number, own: NodeStatus): void {
    const previous = this.previousOwn;
    this.previousOwn = { term: own.term, leaderId: own.leaderId, role: own.role };
    const self = this.options.nodeId;
    if (previous === null) {
      if (own.leaderId !== '') this.add(at, 'leader', own.term, own.leaderId, `${own.leaderId} leads (term ${own.term}), as ${self} first saw it`);
      else this.add(at, 'leader', own.term, '', `no leader known yet (term ${own.term})`);
      return;
    }
    if (own.term !== previous.term) {
      const outcome = own.leaderId === '' ? 'no leader yet' : `${own.leaderId} elected leader`;
      this.add(at, 'election', own.term, own.leaderId, `election: term ${previous.term} → ${own.term}, ${outcome}`);
    } else if (own.leaderId !== previous.leaderId) {
      if (own.leaderId === '') this.add(at, 'leader', own.term, previous.leaderId, `leader ${previous.leaderId} lost (term ${own.term})`);
      else this.add(at, 'leader', own.term, own.leaderId, `${own.leaderId} elected leader (term ${own.term})`);
    }
    if (own.role !== previous.role) this.add(at, 'role', own.term, self, `${self}: ${previous.role} → ${own.role}`);
  }

  /** Members added, removed, promoted or demoted, or moved to another address. */
  private noteMembers(at: number, view: NodeStatus): void {
    const term = view.term;
    const members = new Map(view.members.map((member) => [member.id, { address: member.address, suffrage: member.suffrage }]));
    const previous = this.previousMembers;
    this.previousMembers = members;
    if (previous === null) return;
    if (previous.size === 0 && members.size > 0) {
      // A node that starts before its configuration is known (a founder before the first entry
      // is applied, a joiner before it is added): one event for the members it then learns of.
      this.add(at, 'membership', term, '', `members: ${[...members].map(([id, member]) => `${id} (${member.suffrage})`).join(', ')}`);
      return;
    }
    for (const [id, member] of members) {
      const before = previous.get(id);
      if (before === undefined) this.add(at, 'membership', term, id, `${id} added as a ${member.suffrage} (${member.address})`);
      else {
        if (before.suffrage !== member.suffrage) {
          const verb = before.suffrage === 'learner' && member.suffrage === 'voter' ? 'promoted to voter' : member.suffrage === 'learner' ? 'demoted to learner' : `now a ${member.suffrage}`;
          this.add(at, 'membership', term, id, `${id} ${verb}`);
        }
        if (before.address !== member.address) this.add(at, 'membership', term, id, `${id} moved: ${before.address} → ${member.address}`);
      }
    }
    for (const id of previous.keys()) {
      if (!members.has(id)) this.add(at, 'membership', term, id, `${id} removed`);
    }
  }

  private add(at: number, kind: TimelineEventKind, term: number, subject: string, text: string): void {
    this.events.push({ atUnixMilliseconds: at, kind, term, subject, text });
    while (this.events.length > this.maxEvents) this.events.shift();
  }
}
