// The simulator's network: every message sent gets a delivery tick drawn from the seeded
// generator, and may be dropped, duplicated, held back a little (reordered) or held back a long
// time (the long tail: a vote or an acknowledgement that arrives elections after it was sent) on
// the way, like etcd's in-memory test network but in logical time. Partitions are a set of
// blocked directed links, so one type covers symmetric splits, one-way links, an isolated node and
// a bridge node. A message is checked against the links when it arrives, not when it leaves: a
// partition that starts while a message is in flight loses it, as a real one would.

import type { Message, NodeId } from '../../src/raft/types.js';

export interface NetworkFaults {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  /** Chance a message is held back by up to reorderDelayTicks more, so later ones overtake it. */
  readonly reorderProbability: number;
  readonly minimumDelayTicks: number;
  readonly maximumDelayTicks: number;
  readonly reorderDelayTicks: number;
  /** Chance a message is held back by longDelayTicks more, outliving the round it belongs to. */
  readonly longDelayProbability: number;
  readonly longDelayTicks: readonly [minimum: number, maximum: number];
  /** Messages waiting for one destination (a paused node's backlog); more are dropped. */
  readonly maxQueuedMessagesPerNode: number;
}

export const reliableNetwork = { dropProbability: 0, duplicateProbability: 0, reorderProbability: 0, longDelayProbability: 0 } as const;

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  /** Held back by a long delay. */
  delayed: number;
  /** Lost to a full destination queue (counted in dropped too). */
  overflowed: number;
}

interface InFlight {
  readonly message: Message;
  readonly deliverTick: number;
  readonly sequence: number;
}

export class SimulatedNetwork {
  faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, delayed: 0, overflowed: 0 };
  private inFlight: InFlight[] = [];
  private readonly queuedPerNode = new Map<NodeId, number>();
  private readonly blockedLinks = new Set<string>();
  private sequence = 0;

  constructor(
    private readonly random: () => number,
    faults: NetworkFaults,
    private readonly trace: (text: string) => void,
  ) {
    this.faults = faults;
  }

  send(message: Message, tick: number): void {
    this.stats.sent++;
    if (this.random() < this.faults.dropProbability) {
      this.stats.dropped++;
      this.trace(`drop ${describeMessage(message)}`);
      return;
    }
    this.enqueue(message, tick + this.delayTicks(message));
    if (this.random() < this.faults.duplicateProbability) {
      this.stats.duplicated++;
      this.trace(`duplicate ${describeMessage(message)}`);
      this.enqueue(message, tick + this.delayTicks(message));
    }
  }

  /** Removes and returns the messages due by `tick`, in delivery order. */
  takeDue(tick: number): Message[] {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const item of this.inFlight) (item.deliverTick <= tick ? due : later).push(item);
    this.inFlight = later;
    due.sort((a, b) => a.deliverTick - b.deliverTick || a.sequence - b.sequence);
    for (const item of due) this.queuedPerNode.set(item.message.to, (this.queuedPerNode.get(item.message.to) ?? 1) - 1);
    return due.map((item) => item.message);
  }

  /** Puts a message back for a later tick (its destination is paused). */
  hold(message: Message, tick: number): void {
    this.push(message, tick);
  }

  block(from: NodeId, to: NodeId): void {
    this.blockedLinks.add(`${from}>${to}`);
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blockedLinks.has(`${from}>${to}`);
  }

  unblockAll(): void {
    this.blockedLinks.clear();
  }

  get inFlightCount(): number {
    return this.inFlight.length;
  }

  private delayTicks(message: Message): number {
    const { minimumDelayTicks, maximumDelayTicks, reorderProbability, reorderDelayTicks, longDelayProbability, longDelayTicks } = this.faults;
    let delay = minimumDelayTicks + Math.floor(this.random() * (maximumDelayTicks - minimumDelayTicks + 1));
    if (this.random() < reorderProbability) delay += 1 + Math.floor(this.random() * reorderDelayTicks);
    if (longDelayProbability > 0 && this.random() < longDelayProbability) {
      const [minimum, maximum] = longDelayTicks;
      delay += minimum + Math.floor(this.random() * (maximum - minimum + 1));
      this.stats.delayed++;
      this.trace(`delay ${delay} ticks ${describeMessage(message)}`);
    }
    return delay;
  }

  /** Each copy gets its own object and bytes, so that no two nodes ever share them, as over a real wire. */
  private enqueue(message: Message, deliverTick: number): void {
    this.push(copyMessage(message), deliverTick);
  }

  private push(message: Message, deliverTick: number): void {
    const queued = this.queuedPerNode.get(message.to) ?? 0;
    if (queued >= this.faults.maxQueuedMessagesPerNode) {
      this.stats.dropped++;
      this.stats.overflowed++;
      this.trace(`overflow ${describeMessage(message)}`);
      return;
    }
    this.queuedPerNode.set(message.to, queued + 1);
    this.inFlight.push({ message, deliverTick, sequence: this.sequence++ });
  }
}

/** A copy of the message and of its byte arrays (the rest is readonly plain data). */
function copyMessage(message: Message): Message {
  switch (message.type) {
    case 'appendEntries':
      return { ...message, entries: message.entries.map((entry) => (entry.kind === 'normal' ? { ...entry, data: entry.data.slice() } : { ...entry })) };
    case 'installSnapshot':
      return { ...message, data: message.data.slice() };
    case 'propose':
      return { ...message, data: message.data.map((data) => data.slice()) };
    default:
      return { ...message };
  }
}

/** One line per message for the trace: sender, receiver, type, term and what matters of the rest. */
export function describeMessage(message: Message): string {
  const head = `${message.from}→${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case 'preVote':
    case 'requestVote':
      return `${head} last ${message.lastLogIndex}/${message.lastLogTerm}${message.type === 'requestVote' && message.transfer ? ' transfer' : ''}`;
    case 'preVoteResponse':
    case 'requestVoteResponse':
      return `${head} ${message.granted ? 'granted' : 'rejected'}`;
    case 'appendEntries': {
      const first = message.entries[0];
      const range = first === undefined ? 'none' : `${first.index}..${first.index + message.entries.length - 1}`;
      return `${head} prev ${message.prevLogIndex}/${message.prevLogTerm} entries ${range} commit ${message.leaderCommit}`;
    }
    case 'appendEntriesResponse':
      return message.success
        ? `${head} match ${message.matchIndex}`
        : `${head} rejected ${message.rejectedIndex} conflict ${message.conflictIndex}/${message.conflictTerm}`;
    case 'heartbeat':
      return `${head} commit ${message.commit} round ${message.readRound}`;
    case 'heartbeatResponse':
      return `${head} round ${message.readRound}`;
    case 'installSnapshot':
      return `${head} snapshot ${message.meta.index}/${message.meta.term} offset ${message.offset} bytes ${message.data.byteLength}${message.done ? ' done' : ''}`;
    case 'installSnapshotResponse':
      return `${head} snapshot ${message.snapshotIndex} next ${message.nextOffset}${message.done ? ' done' : ''} match ${message.matchIndex}`;
    case 'timeoutNow':
      return head;
    case 'readIndex':
      return `${head} ${message.requestId}`;
    case 'readIndexResponse':
      return `${head} ${message.requestId} index ${message.index}`;
    case 'propose':
      return `${head} ${message.data.length} proposals`;
    case 'proposeConfChange':
      return `${head} ${JSON.stringify(message.change)}`;    case 'transferLeader':
      return `${head} to ${message.target ?? 'the voter furthest along'}`;
  }
}
