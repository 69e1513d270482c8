// Helpers for the transport tests: one sample of every Raft message variant (the mapped type
// makes the compiler fail here when a variant is added to the union and not to the samples),
// a pino logger that keeps its lines in memory so tests can assert what was logged, a bounded
// condition wait instead of fixed sleeps, and a port that is free at the time of asking.

import net from 'node:net';

import { pino, type Logger } from 'pino';

import type { Entry, Message, MessageType } from '../../src/raft/types.js';
import type { DriverMessage, PeerMessage } from '../../src/transport/validate.js';

export function filled(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let position = 0; position < length; position++) bytes[position] = (position * 31 + seed) & 0xff;
  return bytes;
}

const config = { voters: ['a', 'b', 'c'], learners: ['d'] };
const configWithAddresses = {
  ...config,
  addresses: { a: '10.0.0.1:12000', b: '10.0.0.2:12000', c: 'node-c.example:12000', d: '[fd00::4]:12000' },
};

export const samples: { readonly [K in MessageType]: Extract<Message, { type: K }> } = {
  preVote: { type: 'preVote', from: 'a', to: 'b', term: 3, lastLogIndex: 10, lastLogTerm: 2 },
  preVoteResponse: { type: 'preVoteResponse', from: 'b', to: 'a', term: 3, granted: true },
  requestVote: { type: 'requestVote', from: 'a', to: 'b', term: 3, lastLogIndex: 10, lastLogTerm: 2, transfer: false },
  requestVoteResponse: { type: 'requestVoteResponse', from: 'b', to: 'a', term: 3, granted: false },
  appendEntries: {
    type: 'appendEntries',
    from: 'a',
    to: 'b',
    term: 3,
    prevLogIndex: 9,
    prevLogTerm: 2,
    entries: [
      { index: 10, term: 3, kind: 'normal', data: filled(5, 1) },
      { index: 11, term: 3, kind: 'config', change: { type: 'addLearner', nodeId: 'd', address: '[fd00::4]:12000' }, config: configWithAddresses },
      { index: 12, term: 3, kind: 'config', change: { type: 'bootstrap' }, config },
      { index: 13, term: 3, kind: 'normal', data: new Uint8Array(0) },
    ],
    leaderCommit: 9,
  },
  appendEntriesResponse: {
    type: 'appendEntriesResponse',
    from: 'b',
    to: 'a',
    term: 3,
    success: false,
    matchIndex: 0,
    rejectedIndex: 9,
    conflictIndex: 7,
    conflictTerm: 2,
  },
  heartbeat: { type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 12, readRound: 4 },
  heartbeatResponse: { type: 'heartbeatResponse', from: 'b', to: 'a', term: 3, readRound: 4 },
  installSnapshot: {
    type: 'installSnapshot',
    from: 'a',
    to: 'b',
    term: 3,
    meta: { index: 100, term: 2, config: configWithAddresses, sizeBytes: 4096 },
    offset: 1024,
    data: filled(1024, 2),
    done: false,
  },
  installSnapshotResponse: {
    type: 'installSnapshotResponse',
    from: 'b',
    to: 'a',
    term: 3,
    snapshotIndex: 100,
    nextOffset: 2048,
    done: false,
    matchIndex: 0,
  },
  timeoutNow: { type: 'timeoutNow', from: 'a', to: 'b', term: 3 },
  readIndex: { type: 'readIndex', from: 'b', to: 'a', term: 3, requestId: 'read-1' },
  readIndexResponse: { type: 'readIndexResponse', from: 'a', to: 'b', term: 3, requestId: 'read-1', index: 12 },
  propose: { type: 'propose', from: 'b', to: 'a', term: 3, data: [filled(3, 3), new Uint8Array(0), filled(300, 4)] },
  proposeConfChange: { type: 'proposeConfChange', from: 'd', to: 'a', term: 0, change: { type: 'addLearner', nodeId: 'd', address: '10.0.0.4:12000' } },  transferLeader: { type: 'transferLeader', from: 'b', to: 'a', term: 3, target: 'c' },
};

export const allSamples: readonly Message[] = Object.values(samples);

/** One sample of each message between Raft actors (not Raft protocol), likewise kept complete. */
export const driverSamples: { readonly [K in DriverMessage['type']]: Extract<DriverMessage, { type: K }> } = {
  statusQuery: { type: 'statusQuery', from: 'b', to: 'a', term: 3, requestId: 'status-1' },
  statusReply: {
    type: 'statusReply',
    from: 'a',
    to: 'b',
    term: 3,
    requestId: 'status-1',
    status: {
      role: 'leader',
      leader: 'a',
      commitIndex: 12,
      appliedIndex: 11,
      firstIndex: 5,
      lastIndex: 13,
      members: [
        { id: 'a', address: '10.0.0.1:12000', voter: true, progressKnown: true, matchIndex: 13, lagEntries: 0 },
        { id: 'b', address: '10.0.0.2:12000', voter: true, progressKnown: true, matchIndex: 10, lagEntries: 3 },
        { id: 'd', address: '', voter: false, progressKnown: false, matchIndex: 0, lagEntries: 0 },
      ],
    },
  },
};

export const allPeerSamples: readonly PeerMessage[] = [...allSamples, ...Object.values(driverSamples)];

/** An AppendEntries of `count` entries of `entryBytes` each (the leader's batched replication). */
export function largeAppendEntries(count: number, entryBytes: number, from = 'a', to = 'b'): Message {
  const entries: Entry[] = [];
  for (let index = 1; index <= count; index++) entries.push({ index, term: 1, kind: 'normal', data: filled(entryBytes, index) });
  return { type: 'appendEntries', from, to, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries, leaderCommit: 0 };
}

export function heartbeat(from: string, to: string, commit: number): Message {
  return { type: 'heartbeat', from, to, term: 1, commit, readRound: 0 };
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A pino logger writing JSON lines into `lines`; `LOG=1` also prints them. */
export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const echo = process.env['LOG'] === '1';
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string): void {
        lines.push(JSON.parse(line) as LogLine);
        if (echo) process.stderr.write(line);
      },
    },
  );
  return { logger, lines };
}

/** Polls `condition` every few milliseconds; rejects naming `description` after the timeout. */
export async function waitFor(description: string, condition: () => boolean, timeoutMilliseconds = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMilliseconds;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMilliseconds} ms waiting for: ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Holds a port for a peer that is configured before it starts: it accepts and immediately
 * closes every connection (to a dialer, a peer that is down). Holding the port, instead of
 * picking a free one and hoping, keeps parallel test runs from taking it in the meantime;
 * `release()` frees it for the real listener with no gap worth mentioning (the listening socket
 * closes synchronously; the accepted ones are already gone).
 */
export async function placeholderServer(): Promise<{ port: number; address: string; release(): void }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, address: `127.0.0.1:${port}`, release: () => server.close() };
}
