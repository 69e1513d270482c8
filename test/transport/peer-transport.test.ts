// The peer transport over real sockets: messages reach their peer in order, a peer that is down
// or restarting is reached once it listens again, a bounded queue drops (and counts) rather
// than grows, and nothing a stranger writes to the raft port disturbs the other connections.
// Method: transports on 127.0.0.1 with ports from listen(0) (or a port reserved a moment
// before, for peers that start late), short reconnect delays and seeded jitter; every wait is
// a bounded wait on a condition (a message arrived, a counter moved, a socket closed), never a
// fixed sleep. Raw sockets play the stranger. Log lines are captured and asserted where the
// brief promises "a clear line". The pure rules (cluster ids, backoff, addresses) come first;
// the backoff schedule is also checked through the transport with hand-fired timers; discover
// (cluster formation's "who is there?") is checked against a node, a hang-up, silence and noise.

import net from 'node:net';

import t, { type Test } from 'tap';

import type { DiscoverReply, DiscoverRequest } from '../../src/cluster/formation.js';
import { seededRandom } from '../../src/raft/random.js';
import type { Message } from '../../src/raft/types.js';
import { encodeFrame } from '../../src/transport/frame.js';
import {
  clusterIdsCompatible,
  parsePeerAddress,
  PeerTransport,
  type PeerTransportOptions,
  reconnectDelayMilliseconds,
  type Timers,
  TransportError,
} from '../../src/transport/peer-transport.js';
import type { PeerMessage } from '../../src/transport/validate.js';
import { driverSamples, heartbeat, largeAppendEntries, type LogLine, memoryLogger, placeholderServer, waitFor } from './helpers.js';

interface Node {
  readonly transport: PeerTransport;
  readonly received: PeerMessage[];
  readonly lines: LogLine[];
  readonly port: number;
  readonly address: string;
}

type NodeOptions = Partial<Omit<PeerTransportOptions, 'nodeId' | 'logger'>> & { readonly port?: number };

async function startNode(t: Test, nodeId: string, options: NodeOptions = {}): Promise<Node> {
  const { logger, lines } = memoryLogger();
  const { port: wantedPort = 0, ...rest } = options;
  const transport = new PeerTransport({
    nodeId,
    clusterId: 'cluster-1',
    logger,
    reconnectDelayMilliseconds: 10,
    maxReconnectDelayMilliseconds: 100,
    random: seededRandom(nodeId.charCodeAt(0)),
    ...rest,
  });
  t.teardown(() => transport.close());
  const received: PeerMessage[] = [];
  transport.onMessage((message) => received.push(message));
  const { port } = await transport.listen('127.0.0.1', wantedPort);
  return { transport, received, lines, port, address: `127.0.0.1:${port}` };
}

function connect(nodes: readonly Node[], ids: readonly string[]): void {
  nodes.forEach((node, index) => {
    nodes.forEach((peer, peerIndex) => {
      if (peerIndex !== index) node.transport.setPeerAddress(ids[peerIndex] ?? '', peer.address);
    });
  });
}

function logged(lines: readonly LogLine[], pattern: RegExp): boolean {
  return lines.some((line) => pattern.test(line.msg));
}

/** A raw TCP client; resolves `closed` when the server ends the connection. */
async function rawSocket(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);
  // Read (and discard) what the server sends, or the end of the stream is never noticed.
  socket.resume();
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

async function within<T>(description: string, promise: Promise<T>, timeoutMilliseconds = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMilliseconds} ms: ${description}`)), timeoutMilliseconds);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function commits(messages: readonly PeerMessage[]): number[] {
  return messages.flatMap((message) => (message.type === 'heartbeat' ? [message.commit] : []));
}

t.test('the hello rule: empty cluster id (not joined yet) matches any, two ids must be equal', async (t) => {
  t.ok(clusterIdsCompatible('alpha', 'alpha'));
  t.notOk(clusterIdsCompatible('alpha', 'beta'));
  t.ok(clusterIdsCompatible('', 'alpha'), 'a node that has not joined accepts the cluster adding it');
  t.ok(clusterIdsCompatible('alpha', ''), 'a cluster accepts a node that has not joined yet');
  t.ok(clusterIdsCompatible('', ''));
});

t.test('reconnect delays grow exponentially, stay within [ceiling/2, ceiling] and never pass the maximum', async (t) => {
  t.equal(reconnectDelayMilliseconds(0, 50, 5000, () => 0), 25);
  t.equal(reconnectDelayMilliseconds(0, 50, 5000, () => 1), 50);
  t.equal(reconnectDelayMilliseconds(3, 50, 5000, () => 0.5), 300);
  t.equal(reconnectDelayMilliseconds(1000, 50, 5000, () => 1), 5000, 'huge failure counts do not overflow');
  const random = seededRandom(3);
  for (let failures = 0; failures < 40; failures++) {
    const delay = reconnectDelayMilliseconds(failures, 50, 5000, random);
    const ceiling = Math.min(5000, 50 * 2 ** failures);
    if (delay < ceiling / 2 || delay > ceiling) t.fail(`${failures} failures: ${delay} outside [${ceiling / 2}, ${ceiling}]`);
  }
});

t.test('peer addresses: host:port, [v6]:port; anything else is a clear error', async (t) => {
  t.strictSame(parsePeerAddress('10.0.0.1:12000'), { host: '10.0.0.1', port: 12000 });
  t.strictSame(parsePeerAddress('node-b.local:1'), { host: 'node-b.local', port: 1 });
  t.strictSame(parsePeerAddress('[::1]:12000'), { host: '::1', port: 12000 });
  for (const bad of ['10.0.0.1', ':12000', 'host:', 'host:0', 'host:65536', 'host:12a']) {
    t.throws(() => parsePeerAddress(bad), { code: 'InvalidAddress', message: new RegExp(`'${bad}' is not of the form host:port`) }, bad);
  }
});

/** Timers that fire only when the test says so: the backoff schedule becomes exact. */
class ManualTimers implements Timers {
  readonly pending = new Map<number, { readonly callback: () => void; readonly delayMilliseconds: number }>();
  private nextHandle = 1;
  setTimeout(callback: () => void, delayMilliseconds: number): unknown {
    const handle = this.nextHandle++;
    this.pending.set(handle, { callback, delayMilliseconds });
    return handle;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** The pending timer with a delay below `belowMilliseconds`, if any. */
  find(belowMilliseconds: number): [number, { readonly callback: () => void; readonly delayMilliseconds: number }] | undefined {
    return [...this.pending].find(([, timer]) => timer.delayMilliseconds < belowMilliseconds);
  }
}

t.test('through the transport, reconnect delays follow the backoff schedule up to its ceiling', async (t) => {
  const timers = new ManualTimers();
  const longMilliseconds = 60_000;
  const a = await startNode(t, 'a', {
    timers,
    random: () => 1,
    reconnectDelayMilliseconds: 10,
    maxReconnectDelayMilliseconds: 100,
    connectTimeoutMilliseconds: longMilliseconds,
    helloTimeoutMilliseconds: longMilliseconds,
  });
  const absent = await placeholderServer();
  t.teardown(() => absent.release());
  a.transport.setPeerAddress('b', absent.address);
  a.transport.send(heartbeat('a', 'b', 1));
  const delays: number[] = [];
  for (let failure = 1; failure <= 6; failure++) {
    await waitFor(`backoff timer ${failure} is scheduled`, () => timers.find(longMilliseconds) !== undefined);
    const [handle, timer] = timers.find(longMilliseconds) ?? [0, { callback: () => undefined, delayMilliseconds: 0 }];
    delays.push(timer.delayMilliseconds);
    timers.pending.delete(handle);
    timer.callback();
  }
  t.strictSame(delays, [20, 40, 80, 100, 100, 100], 'doubling from the base, capped at the maximum');
  t.equal(a.transport.metrics().connectionAttempts, 7, 'one dial per expired delay, and no other');
  t.equal(a.lines.filter((line) => /unreachable/.test(line.msg) && line.level === 40).length, 1, 'one warn line for the whole outage');
});

t.test('two transports exchange messages in order, including a multi-megabyte batch', async (t) => {
  const [a, b] = [await startNode(t, 'a'), await startNode(t, 'b')];
  connect([a, b], ['a', 'b']);
  for (let commit = 1; commit <= 100; commit++) a.transport.send(heartbeat('a', 'b', commit));
  const batch = largeAppendEntries(2000, 2048);
  a.transport.send(batch);
  b.transport.send({ type: 'heartbeatResponse', from: 'b', to: 'a', term: 1, readRound: 7 });
  await waitFor('b has 101 messages', () => b.received.length === 101);
  await waitFor('a has the response', () => a.received.length === 1);
  t.strictSame(commits(b.received), Array.from({ length: 100 }, (_, index) => index + 1), 'in send order');
  const last = b.received[100];
  t.ok(last?.type === 'appendEntries' && last.entries.length === 2000, 'the 4 MiB batch arrived whole');
  t.strictSame(a.received, [{ type: 'heartbeatResponse', from: 'b', to: 'a', term: 1, readRound: 7 }]);
  const sent = a.transport.metrics();
  const got = b.transport.metrics();
  t.equal(sent.framesSent, 101, 'a counted its frames');
  // Hellos count too: each node reads one on the connection it accepted and one on the one it dialled.
  t.equal(got.framesReceived, 101 + 2, 'b counted the frames and two hellos');
  t.equal(sent.framesReceived, 1 + 2, 'a counted the response and two hellos');
  t.ok(got.bytesReceived > 2000 * 2048 && sent.bytesSent > 2000 * 2048, 'bytes counted on both sides');
  t.equal(sent.connectionsEstablished, 1);
  t.equal(sent.reconnects, 0);
});

t.test('status queries and replies travel like Raft messages; a malformed one closes only its connection', async (t) => {
  const [a, b] = [await startNode(t, 'a'), await startNode(t, 'b')];
  connect([a, b], ['a', 'b']);
  b.transport.send(driverSamples.statusQuery);
  a.transport.send(driverSamples.statusReply);
  await waitFor('a has the query', () => a.received.length === 1);
  await waitFor('b has the reply', () => b.received.length === 1);
  t.strictSame(a.received, [driverSamples.statusQuery]);
  t.strictSame(b.received, [driverSamples.statusReply]);

  // A peer that says hello and then sends a reply with a bad member list is cut off and logged;
  // nothing of it reaches the handler.
  const liar = await rawSocket(a.port);
  const bad = { ...driverSamples.statusReply, from: 'x', to: 'a', status: { ...driverSamples.statusReply.status, members: [{ id: 'a' }] } };
  liar.socket.write(Buffer.concat([encodeFrame({ kind: 'hello', clusterId: 'cluster-1', nodeId: 'x' }), encodeFrame(bad)]));
  await within('the liar is disconnected', liar.closed);
  t.ok(logged(a.lines, /\(node x\): malformed frame \(.*statusReply\.status\.members\[0\]\.address/), 'logged with the field at fault');
  const unknown = await rawSocket(a.port);
  unknown.socket.write(Buffer.concat([encodeFrame({ kind: 'hello', clusterId: 'cluster-1', nodeId: 'y' }), encodeFrame({ type: 'statusPoke', from: 'y', to: 'a', term: 1 })]));
  await within('the sender of an unknown type is disconnected', unknown.closed);
  t.ok(logged(a.lines, /\(node y\): malformed frame \(.*message\.type must be a known message type/), 'an unknown type is logged');
  t.equal(a.transport.metrics().malformedFrames, 2);

  b.transport.send(heartbeat('b', 'a', 3));
  await waitFor('a still hears b', () => a.received.length === 2);
});

t.test('three transports: everyone reaches everyone', async (t) => {
  const ids = ['a', 'b', 'c'];
  const nodes = [await startNode(t, 'a'), await startNode(t, 'b'), await startNode(t, 'c')];
  connect(nodes, ids);
  nodes.forEach((node, index) => {
    for (const to of ids) if (to !== ids[index]) node.transport.send(heartbeat(ids[index] ?? '', to, index + 1));
  });
  await waitFor('every node has two messages', () => nodes.every((node) => node.received.length === 2));
  nodes.forEach((node, index) => {
    const senders = node.received.map((message) => message.from).sort();
    t.strictSame(senders, ids.filter((id) => id !== ids[index]), `${ids[index]} heard from both others`);
  });
});

t.test('a peer that comes up late receives the queued messages after reconnecting', async (t) => {
  const placeholder = await placeholderServer();
  const a = await startNode(t, 'a');
  a.transport.setPeerAddress('b', placeholder.address);
  for (let commit = 1; commit <= 5; commit++) a.transport.send(heartbeat('a', 'b', commit));
  await waitFor('a failed to connect twice', () => a.transport.metrics().connectionFailures >= 2);
  t.ok(logged(a.lines, /peer b at 127\.0\.0\.1:\d+ unreachable .*retrying with backoff/), 'the outage is logged');
  // The placeholder accepted and dropped those connections: a dialer writes nothing before the
  // listener's hello, so no frame was lost in them.
  t.equal(a.transport.metrics().queuedMessages, 5, 'the messages wait in the queue');
  placeholder.release();
  const b = await startNode(t, 'b', { port: placeholder.port });
  await waitFor('b has the five messages', () => b.received.length === 5);
  t.strictSame(commits(b.received), [1, 2, 3, 4, 5]);
  const metrics = a.transport.metrics();
  t.ok(metrics.reconnects >= 2, `reconnects counted (${metrics.reconnects})`);
  t.equal(metrics.queuedMessages, 0);
  await waitFor('the recovery is logged', () => logged(a.lines, /connected to peer b/));
});

t.test('a restarted peer is reconnected', async (t) => {
  const a = await startNode(t, 'a');
  const b = await startNode(t, 'b');
  a.transport.setPeerAddress('b', b.address);
  a.transport.send(heartbeat('a', 'b', 1));
  await waitFor('b has the first message', () => b.received.length === 1);
  await b.transport.close();
  const restarted = await startNode(t, 'b', { port: b.port });
  // Raft keeps sending (heartbeats); messages written into the dying connection are lost, as
  // they may be on any network, so keep sending until one gets through.
  let commit = 1;
  const ticker = setInterval(() => a.transport.send(heartbeat('a', 'b', ++commit)), 5);
  try {
    await waitFor('the restarted b hears from a', () => restarted.received.length > 0);
  } finally {
    clearInterval(ticker);
  }
  t.ok(a.transport.metrics().reconnects >= 1, 'counted as a reconnect');
  const first = commits(restarted.received)[0] ?? 0;
  t.ok(first > 1, `the restarted peer gets current messages (commit ${first})`);
});

t.test('random bytes on the raft port are logged and close only that connection', async (t) => {
  const a = await startNode(t, 'a');
  const b = await startNode(t, 'b');
  b.transport.setPeerAddress('a', a.address);
  b.transport.send(heartbeat('b', 'a', 1));
  await waitFor('a hears b', () => a.received.length === 1);

  const random = seededRandom(99);
  const garbage = Buffer.alloc(4096);
  for (let position = 0; position < garbage.length; position++) garbage[position] = Math.floor(random() * 256);
  const stranger = await rawSocket(a.port);
  stranger.socket.write(garbage);
  await within('the stranger is disconnected', stranger.closed);
  t.equal(a.transport.metrics().malformedFrames, 1, 'counted as malformed');
  t.ok(logged(a.lines, /closing peer connection from 127\.0\.0\.1:\d+ \(node unknown\): malformed frame \(FrameTooLarge/), 'logged with its code');

  // A peer that says hello properly and then sends a corrupted frame is cut off the same way.
  const liar = await rawSocket(a.port);
  const corrupted = encodeFrame(heartbeat('x', 'a', 1));
  corrupted[corrupted.length - 1] = (corrupted[corrupted.length - 1] ?? 0) ^ 0xff;
  liar.socket.write(Buffer.concat([encodeFrame({ kind: 'hello', clusterId: 'cluster-1', nodeId: 'x' }), corrupted]));
  await within('the liar is disconnected', liar.closed);
  t.ok(logged(a.lines, /\(node x\): malformed frame \(ChecksumMismatch/), 'logged with the node it claimed to be');

  // So is one that speaks for somebody else on its connection.
  const spoofer = await rawSocket(a.port);
  spoofer.socket.write(Buffer.concat([encodeFrame({ kind: 'hello', clusterId: 'cluster-1', nodeId: 'y' }), encodeFrame(heartbeat('b', 'a', 99))]));
  await within('the spoofer is disconnected', spoofer.closed);
  t.ok(logged(a.lines, /protocol violation \(message from 'b' on the connection of node 'y'\)/));

  // A message for another node is dropped and counted, but breaks nothing: the connection stays.
  const lost = await rawSocket(a.port);
  lost.socket.write(Buffer.concat([encodeFrame({ kind: 'hello', clusterId: 'cluster-1', nodeId: 'z' }), encodeFrame(heartbeat('z', 'q', 1))]));
  await waitFor('the misaddressed message is counted', () => a.transport.metrics().messagesDroppedMisaddressed === 1);
  t.notOk(lost.socket.destroyed, 'and its connection stays open');
  lost.socket.destroy();

  b.transport.send(heartbeat('b', 'a', 2));
  await waitFor('a still hears b', () => a.received.length === 2);
  t.strictSame(commits(a.received), [1, 2], 'and never saw the strangers’ frames');
  t.equal(a.transport.metrics().malformedFrames, 3);
});

t.test('a connection that never says hello is closed after the hello timeout', async (t) => {
  const a = await startNode(t, 'a', { helloTimeoutMilliseconds: 100 });
  const silent = await rawSocket(a.port);
  await within('the silent client is disconnected', silent.closed);
  t.ok(logged(a.lines, /no hello within 100 ms/));
});

t.test('a node of another cluster is refused, with a clear line on both sides', async (t) => {
  const a = await startNode(t, 'a', { clusterId: 'alpha' });
  const c = await startNode(t, 'c', { clusterId: 'beta' });
  c.transport.setPeerAddress('a', a.address);
  c.transport.send(heartbeat('c', 'a', 1));
  await waitFor('a refused c', () => a.transport.metrics().hellosRejected >= 1);
  await waitFor('c noticed', () => c.transport.metrics().hellosRejected >= 1);
  t.ok(logged(a.lines, /refused peer connection: peer c at 127\.0\.0\.1:\d+ belongs to cluster 'beta', this node to 'alpha'/));
  t.ok(logged(c.lines, /answered as node 'a' of cluster 'alpha' \(this node is in cluster 'beta'\)/));
  t.strictSame(a.received, [], 'nothing from the foreign cluster was delivered');

  // A node that has not joined yet (cluster id '') is heard: the leader adding it needs its replies.
  const joining = await startNode(t, 'd', { clusterId: '' });
  joining.transport.setPeerAddress('a', a.address);
  joining.transport.send(heartbeat('d', 'a', 1));
  await waitFor('a hears the joining node', () => a.received.length === 1);
  t.equal(a.received[0]?.from, 'd');
});

t.test('an address that answers as a different node is not used', async (t) => {
  const a = await startNode(t, 'a');
  const c = await startNode(t, 'c');
  a.transport.setPeerAddress('b', c.address);
  a.transport.send(heartbeat('a', 'b', 1));
  await waitFor('a noticed', () => a.transport.metrics().hellosRejected >= 1);
  t.ok(logged(a.lines, /address 127\.0\.0\.1:\d+ configured for peer b answered as node 'c'/));
  t.equal(a.transport.metrics().queuedMessages, 1, 'nothing was written to the wrong node; the message waits');
  t.equal(c.transport.metrics().framesReceived, 1, 'c saw only the hello');
  t.strictSame(c.received, []);
});

t.test('listening on a port in use rejects with an error naming the address', async (t) => {
  const a = await startNode(t, 'a');
  const { logger } = memoryLogger();
  const second = new PeerTransport({ nodeId: 'b', clusterId: 'cluster-1', logger });
  t.teardown(() => second.close());
  const error: unknown = await second.listen('127.0.0.1', a.port).catch((caught: unknown) => caught);
  t.ok(error instanceof TransportError);
  t.match(error, { code: 'AddressInUse', message: `raft port 127.0.0.1:${a.port} is already in use (another process is listening on it)` });
});

t.test('full queues drop the oldest messages and count them; other limits count their drops', async (t) => {
  const placeholder = await placeholderServer();
  const unreachable = await placeholderServer();
  t.teardown(() => unreachable.release());
  const a = await startNode(t, 'a', { maxQueueMessages: 3, maxFrameBytes: 1024, maxQueueBytes: 4096 });
  a.transport.setPeerAddress('b', placeholder.address);
  for (let commit = 1; commit <= 10; commit++) a.transport.send(heartbeat('a', 'b', commit));
  let metrics = a.transport.metrics();
  t.equal(metrics.messagesDroppedQueueFull, 7, 'seven of ten dropped by count');
  t.equal(metrics.queuedMessages, 3);

  a.transport.send(largeAppendEntries(1, 2000));
  t.equal(a.transport.metrics().messagesDroppedTooLarge, 1, 'a frame over maxFrameBytes is dropped, not queued');
  t.ok(logged(a.lines, /dropped appendEntries to b: \d+ bytes exceed maxFrameBytes/));

  a.transport.send(heartbeat('a', 'nobody', 1));
  t.equal(a.transport.metrics().messagesDroppedNoPeer, 1, 'a peer without an address');

  placeholder.release();
  const b = await startNode(t, 'b', { port: placeholder.port });
  await waitFor('b has what was left', () => b.received.length === 3);
  t.strictSame(commits(b.received), [8, 9, 10], 'the newest three survived');

  a.transport.setPeerAddress('c', unreachable.address);
  a.transport.send(heartbeat('a', 'c', 1));
  a.transport.removePeer('c');
  metrics = a.transport.metrics();
  t.equal(metrics.queuedMessages, 0, 'removing a peer forgets its queue');
  t.equal(metrics.messagesDroppedNoPeer, 2, 'and counts what it forgot');
});

t.test('the queue is bounded in bytes as well as in messages', async (t) => {
  const e = await startNode(t, 'e', { maxQueueMessages: 100, maxFrameBytes: 1024, maxQueueBytes: 2048 });
  const unreachable = await placeholderServer();
  t.teardown(() => unreachable.release());
  e.transport.setPeerAddress('f', unreachable.address);
  for (let index = 0; index < 10; index++) e.transport.send(largeAppendEntries(1, 850, 'e', 'f'));
  const metrics = e.transport.metrics();
  t.ok(metrics.queuedBytes <= 2048, `queued bytes ${metrics.queuedBytes} stay within the bound`);
  t.equal(metrics.queuedMessages, 2, 'two frames of ~900 bytes fit');
  t.equal(metrics.messagesDroppedQueueFull, 8);
});

t.test('inbound connections beyond the limit are refused at accept', async (t) => {
  const a = await startNode(t, 'a', { maxInboundConnections: 2 });
  const first = await rawSocket(a.port);
  const second = await rawSocket(a.port);
  const third = await rawSocket(a.port);
  await within('the third is closed', third.closed);
  t.equal(a.transport.metrics().inboundConnectionsRefused, 1);
  t.ok(logged(a.lines, /already 2 inbound connections \(maxInboundConnections\)/));
  first.socket.destroy();
  second.socket.destroy();
});

t.test('discover: a node asks an address who listens there and which cluster it is in', async (t) => {
  const a = await startNode(t, 'a', { discoverTimeoutMilliseconds: 2000 });
  const b = await startNode(t, 'b', { clusterId: '', discoverTimeoutMilliseconds: 5000 });
  const request: DiscoverRequest = { kind: 'discover', nodeId: 'b', advertise: b.address, nonce: 'n-b', initialMembers: [a.address, b.address] };
  const asked: DiscoverRequest[] = [];
  a.transport.onDiscover((incoming) => {
    asked.push(incoming);
    return { kind: 'discoverReply', nodeId: 'a', advertise: a.address, nonce: 'n-a', clusterId: 'cluster-1', initialMembers: [a.address] };
  });
  const reply = await b.transport.discover(a.address, request);
  t.strictSame(reply, { kind: 'discoverReply', nodeId: 'a', advertise: a.address, nonce: 'n-a', clusterId: 'cluster-1', initialMembers: [a.address] } satisfies DiscoverReply);
  t.strictSame(asked, [request], 'the answerer saw the request as sent');
  t.equal(a.transport.metrics().discoversAnswered, 1);

  const c = await startNode(t, 'c');
  t.equal(await b.transport.discover(c.address, request), null, 'no answerer registered yet: null');

  const placeholder = await placeholderServer();
  t.teardown(() => placeholder.release());
  t.equal(await b.transport.discover(placeholder.address, request), null, 'a listener that hangs up: null');

  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    silent.close();
  });
  const silentAddress = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  // Only the timeout case gets a short timeout: the others must not depend on the machine's speed.
  const impatient = await startNode(t, 'd', { discoverTimeoutMilliseconds: 100 });
  t.equal(await within('a discover that is never answered', impatient.transport.discover(silentAddress, request)), null, 'timed out: null');
  t.ok(logged(impatient.lines, /no reply within 100 ms/));

  const babbler = net.createServer((socket) => socket.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
  await new Promise<void>((resolve) => babbler.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    babbler.close();
  });
  const babblerAddress = `127.0.0.1:${(babbler.address() as net.AddressInfo).port}`;
  t.equal(await b.transport.discover(babblerAddress, request), null, 'something that is not a dfs node: null');
  t.equal(b.transport.metrics().discoversUnanswered, 3);

  await t.rejects(b.transport.discover('nowhere', request), { code: 'InvalidAddress' });
  // The answering node kept serving ordinary peers throughout.
  b.transport.setPeerAddress('a', a.address);
  b.transport.send(heartbeat('b', 'a', 1));
  await waitFor('a hears b', () => a.received.length === 1);
});

t.test('close ends every connection and is idempotent; send after close is a no-op', async (t) => {
  const a = await startNode(t, 'a');
  const b = await startNode(t, 'b');
  a.transport.setPeerAddress('b', b.address);
  a.transport.send(heartbeat('a', 'b', 1));
  await waitFor('connected', () => b.received.length === 1);
  await a.transport.close();
  await a.transport.close();
  a.transport.send(heartbeat('a', 'b', 2));
  t.equal(a.transport.metrics().framesSent, 1);
  const error: unknown = await new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: a.port });
    socket.on('connect', () => resolve(null));
    socket.on('error', resolve);
  });
  t.match(error, { code: 'ECONNREFUSED' }, 'the port is closed');
});
