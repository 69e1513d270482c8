// The peer transport: Raft messages between nodes over TCP on the raft port.
//
// Each node listens for inbound connections and dials one outbound connection per peer; a
// connection carries messages in one direction only (dialer → listener), so a node sends on the
// connection it dialed and receives on the ones it accepted. Ordering per peer therefore follows
// the one outbound queue, and neither side has to arbitrate between two connections.
//
// The transport never blocks and never throws at its caller for anything a peer or the network
// does. Raft is built to tolerate lost messages (every request is retried by the protocol
// itself), so when a peer is slow or gone the bounded queue drops instead of growing, and a
// malformed frame closes only the connection that carried it.
//
// Every connection starts with a hello frame in each direction: the dialer introduces itself,
// the listener checks the cluster id and answers with its own hello, which lets the dialer check
// that the address really belongs to the node and cluster it meant to reach. The dialer writes
// queued frames only after that answer: it costs one round trip per new connection, and in
// return nothing is written into a connection that is about to be refused or dropped (a foreign
// node at a stale address, a node still starting), so the queue survives until a real peer
// takes it.
//
// Before a node has a cluster it only knows its peers' addresses, not their ids, so the
// formation step asks them with `discover`: a short connection whose first frame is a discover
// request instead of a hello, answered by one reply (no cluster id check: finding the cluster
// id is the point), then closed.

import net from 'node:net';

import type { Logger } from 'pino';

import type { DiscoverReply, DiscoverRequest } from '../cluster/formation.js';
import type { NodeId } from '../raft/types.js';
import { encodeFrame, FrameDecoder, type FrameError, frameHeaderBytes } from './frame.js';
import { type Hello, type PeerFrame, type PeerMessage, validatePeerFrame } from './validate.js';

/** Timer functions, injectable so tests can control reconnect scheduling. */
export interface Timers {
  setTimeout(callback: () => void, delayMilliseconds: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, delayMilliseconds) => setTimeout(callback, delayMilliseconds),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PeerTransportOptions {
  readonly nodeId: NodeId;
  /** '' until the node has joined a cluster; see `clusterIdsCompatible` and `setClusterId`. */
  readonly clusterId: string;
  readonly logger: Logger;
  /** Where peers can dial this node, told in every hello so that a leader adding it gets answers. */
  readonly advertise?: string;
  /** Largest frame payload sent or accepted. Must exceed the largest AppendEntries / snapshot chunk. */
  readonly maxFrameBytes?: number;
  /** Per peer: messages waiting to be written; the oldest is dropped beyond this. */
  readonly maxQueueMessages?: number;
  /** Per peer: encoded bytes waiting to be written; at least one maximal frame. */
  readonly maxQueueBytes?: number;
  /** First reconnect delay; doubles with every consecutive failure. */
  readonly reconnectDelayMilliseconds?: number;
  /** Ceiling of the reconnect delay. */
  readonly maxReconnectDelayMilliseconds?: number;
  /** A dial that has not connected by then is abandoned and retried. */
  readonly connectTimeoutMilliseconds?: number;
  /** A connection whose hello has not arrived by then is closed. */
  readonly helloTimeoutMilliseconds?: number;
  /** Inbound connections beyond this are closed on accept. */
  readonly maxInboundConnections?: number;
  /** A discover that has no answer by then resolves to null. */
  readonly discoverTimeoutMilliseconds?: number;
  /** Discovers in flight at once; more resolve to null at once. */
  readonly maxPendingDiscovers?: number;
  /** Source of jitter in [0, 1); Math.random by default. */
  readonly random?: () => number;
  readonly timers?: Timers;
}

export const defaultPeerTransportOptions = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxQueueMessages: 4096,
  maxQueueBytes: 64 * 1024 * 1024,
  reconnectDelayMilliseconds: 50,
  maxReconnectDelayMilliseconds: 5000,
  connectTimeoutMilliseconds: 5000,
  helloTimeoutMilliseconds: 5000,
  maxInboundConnections: 64,
  discoverTimeoutMilliseconds: 1000,
  maxPendingDiscovers: 64,
} as const;

/**
 * Limit for the first frame on a connection (hello or discover) and for the answer to it:
 * before a peer has introduced itself it may not make us buffer more than a handshake needs
 * (a discover carries up to 64 addresses of at most 512 UTF-16 units, ≤ 3 bytes each).
 */
export const maxHandshakeFrameBytes = 128 * 1024;

/** TCP keep-alive probes find a peer that vanished without closing (power loss, partition). */
const keepAliveInitialDelayMilliseconds = 10_000;

export type TransportErrorCode = 'AddressInUse' | 'ListenFailed' | 'InvalidAddress';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Counters since the transport was created, plus current queue gauges; a plain copy. */
export interface TransportMetrics {
  /** Frames written to sockets (hellos not included). */
  framesSent: number;
  bytesSent: number;
  /** Valid frames read from sockets, hellos included. */
  framesReceived: number;
  bytesReceived: number;
  /** Oldest messages dropped because a peer's queue was full. */
  messagesDroppedQueueFull: number;
  /** Messages whose frame exceeds maxFrameBytes (the receiver would refuse them). */
  messagesDroppedTooLarge: number;
  /** Messages to a node with no address, and those still queued when a peer was removed. */
  messagesDroppedNoPeer: number;
  /** Received messages addressed to another node. */
  messagesDroppedMisaddressed: number;
  connectionAttempts: number;
  /** Connection attempts to a peer after its first. */
  reconnects: number;
  /** Outbound connections that closed or failed before the peer's hello was accepted. */
  connectionFailures: number;
  /** Outbound connections whose peer hello was accepted. */
  connectionsEstablished: number;
  inboundConnectionsAccepted: number;
  /** Inbound connections closed at once because maxInboundConnections was reached. */
  inboundConnectionsRefused: number;
  /** Hellos refused in either direction: foreign cluster, wrong or duplicate node id. */
  hellosRejected: number;
  /** Connections closed for a malformed frame or a frame that breaks the protocol. */
  malformedFrames: number;
  /** Discover requests this node answered. */
  discoversAnswered: number;
  /** Discovers this node sent that resolved to null (no answer, refused, timed out, invalid). */
  discoversUnanswered: number;
  /** Gauges: messages and bytes waiting in all peer queues now. */
  queuedMessages: number;
  queuedBytes: number;
}

type Counters = Omit<TransportMetrics, 'queuedMessages' | 'queuedBytes'>;

/** Receives every valid message addressed to this node: Raft messages and driver messages alike. */
export type MessageHandler = (message: PeerMessage) => void;

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * The hello rule. A node that has not joined a cluster yet has cluster id '' and must still be
 * reachable by the leader that is adding it (and answer it), so '' on either side is accepted;
 * two non-empty ids must be equal. Once the driver learns the cluster id it calls
 * `setClusterId`, and from then on only '' (a joining node) or the same id gets through.
 */
export function clusterIdsCompatible(localClusterId: string, remoteClusterId: string): boolean {
  return localClusterId === '' || remoteClusterId === '' || localClusterId === remoteClusterId;
}

/**
 * Delay before reconnect attempt number `consecutiveFailures` (0 after a connection that
 * worked): exponential, capped at the maximum, with "equal jitter" — half of it fixed, so a
 * flapping peer is never hammered, half random, so nodes that lost the same peer do not all
 * redial in lockstep. The result lies in [ceiling / 2, ceiling].
 */
export function reconnectDelayMilliseconds(
  consecutiveFailures: number,
  baseDelayMilliseconds: number,
  maxDelayMilliseconds: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxDelayMilliseconds, baseDelayMilliseconds * 2 ** Math.min(consecutiveFailures, 30));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** Parses 'host:port', 'name:port' or '[v6]:port'. */
export function parsePeerAddress(address: string): ListenAddress {
  const separator = address.lastIndexOf(':');
  const portText = address.slice(separator + 1);
  let host = address.slice(0, Math.max(separator, 0));
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(portText);
  if (separator < 0 || host === '' || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new TransportError('InvalidAddress', `peer address '${address}' is not of the form host:port with a port in 1..65535`);
  }
  return { host, port };
}

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function remoteOf(socket: net.Socket): string {
  return formatAddress(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

type Settings = Required<Omit<PeerTransportOptions, 'clusterId' | 'logger' | 'advertise'>>;

/** What connections share with their transport. */
interface Context {
  readonly settings: Settings;
  readonly logger: Logger;
  readonly counters: Counters;
  /** This node's dialable address, sent in every hello ('' when unknown). */
  readonly advertise: string;
  clusterId(): string;
  isClosed(): boolean;
}

/** A FIFO of encoded frames bounded by count and bytes; drops from the front when full. */
class FrameQueue {
  private frames: (Buffer | undefined)[] = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.frames.length - this.head;
  }

  push(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
  }

  shift(): Buffer | undefined {
    if (this.head === this.frames.length) return undefined;
    const frame = this.frames[this.head];
    this.frames[this.head] = undefined;
    this.head++;
    // Compact now and then so shifting stays O(1) amortised without a ring buffer.
    if (this.head === this.frames.length) {
      this.frames = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    if (frame !== undefined) this.bytes -= frame.length;
    return frame;
  }

  clear(): number {
    const dropped = this.length;
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
    return dropped;
  }
}

type OutboundState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped';

/**
 * The sending side for one peer: its queue and the one connection it dials. States:
 * idle (no connection, nothing to send) → connecting (dialling, then waiting for the listener's
 * hello) → connected (frames flow) → (closed) → waiting for the backoff timer → idle or
 * connecting again; stopped once removed or the transport closes.
 */
class OutboundPeer {
  private state: OutboundState = 'idle';
  private socket: net.Socket | null = null;
  /** The listener's hello arrived and was accepted on the current connection. */
  private helloAccepted = false;
  /** Connect timeout, hello timeout or backoff, whichever the state needs. */
  private timer: unknown = null;
  private consecutiveFailures = 0;
  private attempts = 0;
  /** Whether the current outage was already logged at warn level (one line per outage). */
  private outageLogged = false;
  readonly queue = new FrameQueue();

  constructor(
    readonly nodeId: NodeId,
    private address: ListenAddress,
    private readonly context: Context,
    private readonly localNodeId: NodeId,
  ) {}

  get addressText(): string {
    return formatAddress(this.address.host, this.address.port);
  }

  enqueue(frame: Buffer): void {
    const { settings, counters } = this.context;
    while (this.queue.length >= settings.maxQueueMessages || this.queue.bytes + frame.length > settings.maxQueueBytes) {
      // Drop the oldest: while a peer is unreachable the queue then holds the newest messages,
      // which carry the current term and commit index; the old ones would be stale on arrival.
      if (this.queue.shift() === undefined) break;
      counters.messagesDroppedQueueFull++;
    }
    this.queue.push(frame);
    if (this.state === 'idle') this.connect();
    else if (this.state === 'connected') this.flush();
  }

  setAddress(address: ListenAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    if (this.state === 'stopped') return;
    // The old address is wrong now: drop its connection and dial the new one without backoff.
    this.dropConnection();
    this.consecutiveFailures = 0;
    this.state = 'idle';
    if (this.queue.length > 0) this.connect();
  }

  /** Ends the connection and forgets the queue; the peer is never dialled again. */
  stop(): number {
    this.state = 'stopped';
    this.dropConnection();
    return this.queue.clear();
  }

  private dropConnection(): void {
    this.clearTimer();
    const socket = this.socket;
    this.socket = null;
    this.helloAccepted = false;
    // Listeners compare against this.socket, so events of the old socket are ignored from here.
    socket?.destroy();
  }

  private clearTimer(): void {
    if (this.timer !== null) this.context.settings.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private setTimer(delayMilliseconds: number, callback: () => void): void {
    this.clearTimer();
    this.timer = this.context.settings.timers.setTimeout(() => {
      this.timer = null;
      callback();
    }, delayMilliseconds);
  }

  private connect(): void {
    const { settings, counters, logger } = this.context;
    this.state = 'connecting';
    this.helloAccepted = false;
    this.attempts++;
    counters.connectionAttempts++;
    if (this.attempts > 1) counters.reconnects++;
    const socket = net.connect({ host: this.address.host, port: this.address.port, noDelay: true });
    this.socket = socket;
    const decoder = new FrameDecoder<PeerFrame>({ maxFrameBytes: maxHandshakeFrameBytes, validate: validatePeerFrame });
    let lastError: Error | null = null;

    this.setTimer(settings.connectTimeoutMilliseconds, () => {
      if (this.socket === socket) socket.destroy(new Error(`no connection within ${settings.connectTimeoutMilliseconds} ms`));
    });
    socket.on('connect', () => {
      if (this.socket !== socket) return;
      socket.setKeepAlive(true, keepAliveInitialDelayMilliseconds);
      const hello: Hello = { kind: 'hello', clusterId: this.context.clusterId(), nodeId: this.localNodeId, advertise: this.context.advertise };
      socket.write(encodeFrame(hello));
      this.setTimer(settings.helloTimeoutMilliseconds, () => {
        if (this.socket !== socket) return;
        logger.warn(
          { peer: this.nodeId, address: this.addressText },
          `peer ${this.nodeId} at ${this.addressText} did not answer our hello within ${settings.helloTimeoutMilliseconds} ms; reconnecting`,
        );
        socket.destroy();
      });
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      counters.bytesReceived += chunk.length;
      const error = decoder.push(chunk, (frame) => this.onListenerFrame(socket, frame));
      if (error !== null && this.socket === socket && !socket.destroyed) {
        this.protocolViolation(socket, `${error.code}: ${error.message}`);
      }
    });
    socket.on('drain', () => {
      if (this.socket === socket) this.flush();
    });
    socket.on('error', (error) => {
      lastError = error;
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.onClose(lastError);
    });
  }

  /** The listener sends exactly one frame, its hello; anything else breaks the protocol. */
  private onListenerFrame(socket: net.Socket, frame: PeerFrame): void {
    if (this.socket !== socket || socket.destroyed) return;
    const { counters, logger } = this.context;
    counters.framesReceived++;
    if (this.helloAccepted || !('kind' in frame) || frame.kind !== 'hello') {
      this.protocolViolation(socket, 'the listener sent a frame other than one hello');
      return;
    }
    const localClusterId = this.context.clusterId();
    if (frame.nodeId !== this.nodeId || !clusterIdsCompatible(localClusterId, frame.clusterId)) {
      counters.hellosRejected++;
      logger.error(
        { peer: this.nodeId, address: this.addressText, answeredNodeId: frame.nodeId, answeredClusterId: frame.clusterId },
        `address ${this.addressText} configured for peer ${this.nodeId} answered as node '${frame.nodeId}' of cluster ` +
          `'${frame.clusterId}' (this node is in cluster '${localClusterId}'); closing and retrying`,
      );
      socket.destroy();
      return;
    }
    this.helloAccepted = true;
    this.state = 'connected';
    this.consecutiveFailures = 0;
    this.clearTimer();
    counters.connectionsEstablished++;
    const level = this.outageLogged ? 'info' : 'debug';
    this.outageLogged = false;
    logger[level]({ peer: this.nodeId, address: this.addressText }, `connected to peer ${this.nodeId} at ${this.addressText}`);
    this.flush();
  }

  private protocolViolation(socket: net.Socket, reason: string): void {
    this.context.counters.malformedFrames++;
    this.context.logger.warn(
      { peer: this.nodeId, address: this.addressText, reason },
      `closing connection to peer ${this.nodeId} at ${this.addressText}: ${reason}`,
    );
    socket.destroy();
  }

  private onClose(error: Error | null): void {
    const { settings, counters, logger } = this.context;
    this.socket = null;
    this.clearTimer();
    if (this.state === 'stopped' || this.context.isClosed()) return;
    if (!this.helloAccepted) {
      this.consecutiveFailures++;
      counters.connectionFailures++;
    }
    this.helloAccepted = false;
    const reason = error === null ? 'connection closed' : error.message;
    // One warn line per outage, not one per retry: a dead peer would otherwise flood the log.
    const level = this.outageLogged ? 'debug' : 'warn';
    this.outageLogged = true;
    const delay = reconnectDelayMilliseconds(
      this.consecutiveFailures,
      settings.reconnectDelayMilliseconds,
      settings.maxReconnectDelayMilliseconds,
      settings.random,
    );
    logger[level](
      { peer: this.nodeId, address: this.addressText, reason, retryInMilliseconds: Math.round(delay) },
      `peer ${this.nodeId} at ${this.addressText} unreachable (${reason}); retrying with backoff`,
    );
    this.state = 'waiting';
    this.setTimer(delay, () => {
      this.state = 'idle';
      // Lazy: with nothing to send, the next enqueue dials.
      if (this.queue.length > 0) this.connect();
    });
  }

  /** Writes queued frames until the socket asks us to wait for 'drain' (bounded socket buffer). */
  private flush(): void {
    const socket = this.socket;
    if (this.state !== 'connected' || socket === null) return;
    const { counters } = this.context;
    // Corked writes of many small frames leave in as few segments as the kernel allows.
    socket.cork();
    try {
      for (;;) {
        const frame = this.queue.shift();
        if (frame === undefined) break;
        counters.framesSent++;
        counters.bytesSent += frame.length;
        if (!socket.write(frame)) break;
      }
    } finally {
      socket.uncork();
    }
  }
}

/** One accepted connection: the dialer's hello, then its messages. */
class InboundConnection {
  hello: Hello | null = null;
  /** Set once the connection is being closed; frames after that are ignored. */
  closing = false;
  readonly decoder = new FrameDecoder<PeerFrame>({ maxFrameBytes: maxHandshakeFrameBytes, validate: validatePeerFrame });
  helloTimer: unknown = null;

  constructor(
    readonly socket: net.Socket,
    readonly remote: string,
  ) {}
}

/**
 * The raft port: listens for peers, sends to peers. Limits: per peer a queue of
 * `maxQueueMessages` / `maxQueueBytes` plus one socket buffer; per inbound connection one frame
 * of `maxFrameBytes` being reassembled (`maxHandshakeFrameBytes` before the hello); at most
 * `maxInboundConnections` inbound connections and one per peer id; at most
 * `maxPendingDiscovers` discover connections of our own.
 *
 * The raft port has no authentication: anyone who can reach it can claim a node id. The limits
 * bound what such a client costs (at most maxInboundConnections × maxFrameBytes of buffers);
 * keeping strangers off the port is the network's job.
 */
export class PeerTransport {
  private readonly settings: Settings;
  private readonly logger: Logger;
  private readonly nodeId: NodeId;
  private clusterId: string;
  private readonly advertise: string;
  private readonly counters: Counters = {
    framesSent: 0,
    bytesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    messagesDroppedQueueFull: 0,
    messagesDroppedTooLarge: 0,
    messagesDroppedNoPeer: 0,
    messagesDroppedMisaddressed: 0,
    connectionAttempts: 0,
    reconnects: 0,
    connectionFailures: 0,
    connectionsEstablished: 0,
    inboundConnectionsAccepted: 0,
    inboundConnectionsRefused: 0,
    hellosRejected: 0,
    malformedFrames: 0,
    discoversAnswered: 0,
    discoversUnanswered: 0,
  };
  private readonly context: Context;
  private readonly peers = new Map<NodeId, OutboundPeer>();
  private readonly inbound = new Set<InboundConnection>();
  /** The accepted connection of each peer that said hello; a newer one replaces an older one. */
  private readonly inboundByPeer = new Map<NodeId, InboundConnection>();
  private readonly handlers = new Set<MessageHandler>();
  private discoverHandler: ((request: DiscoverRequest) => DiscoverReply) | null = null;
  /** Sockets of discovers in flight, so close() can end them. */
  private readonly discoverSockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private boundAddress: ListenAddress | null = null;
  private closed = false;

  constructor(options: PeerTransportOptions) {
    const defaults = defaultPeerTransportOptions;
    this.settings = {
      nodeId: options.nodeId,
      maxFrameBytes: positiveInteger('maxFrameBytes', options.maxFrameBytes ?? defaults.maxFrameBytes),
      maxQueueMessages: positiveInteger('maxQueueMessages', options.maxQueueMessages ?? defaults.maxQueueMessages),
      maxQueueBytes: positiveInteger('maxQueueBytes', options.maxQueueBytes ?? defaults.maxQueueBytes),
      reconnectDelayMilliseconds: positiveInteger(
        'reconnectDelayMilliseconds',
        options.reconnectDelayMilliseconds ?? defaults.reconnectDelayMilliseconds,
      ),
      maxReconnectDelayMilliseconds: positiveInteger(
        'maxReconnectDelayMilliseconds',
        options.maxReconnectDelayMilliseconds ?? defaults.maxReconnectDelayMilliseconds,
      ),
      connectTimeoutMilliseconds: positiveInteger(
        'connectTimeoutMilliseconds',
        options.connectTimeoutMilliseconds ?? defaults.connectTimeoutMilliseconds,
      ),
      helloTimeoutMilliseconds: positiveInteger(
        'helloTimeoutMilliseconds',
        options.helloTimeoutMilliseconds ?? defaults.helloTimeoutMilliseconds,
      ),
      maxInboundConnections: positiveInteger('maxInboundConnections', options.maxInboundConnections ?? defaults.maxInboundConnections),
      discoverTimeoutMilliseconds: positiveInteger(
        'discoverTimeoutMilliseconds',
        options.discoverTimeoutMilliseconds ?? defaults.discoverTimeoutMilliseconds,
      ),
      maxPendingDiscovers: positiveInteger('maxPendingDiscovers', options.maxPendingDiscovers ?? defaults.maxPendingDiscovers),
      random: options.random ?? Math.random,
      timers: options.timers ?? systemTimers,
    };
    if (this.settings.maxFrameBytes > 0xffffffff) throw new RangeError('maxFrameBytes must fit the 32-bit frame length');
    if (this.settings.maxQueueBytes < this.settings.maxFrameBytes + frameHeaderBytes) {
      // Otherwise a message that is legal on the wire could never be queued.
      throw new RangeError('maxQueueBytes must be at least maxFrameBytes + the frame header');
    }
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.advertise = options.advertise ?? '';
    this.logger = options.logger.child({ component: 'transport', nodeId: options.nodeId });
    this.context = {
      settings: this.settings,
      logger: this.logger,
      counters: this.counters,
      advertise: this.advertise,
      clusterId: () => this.clusterId,
      isClosed: () => this.closed,
    };
  }

  /**
   * Starts accepting peers. Port 0 picks a free port; the bound address is returned. Rejects
   * with TransportError 'AddressInUse' (message names the address) or 'ListenFailed'.
   */
  listen(host: string, port: number): Promise<ListenAddress> {
    if (this.server !== null || this.closed) throw new Error('PeerTransport.listen may be called once, before close');
    const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: keepAliveInitialDelayMilliseconds });
    this.server = server;
    server.on('connection', (socket) => this.accept(socket));
    const wanted = formatAddress(host, port);
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        this.server = null;
        if (error.code === 'EADDRINUSE') {
          reject(
            new TransportError('AddressInUse', `raft port ${wanted} is already in use (another process is listening on it)`, {
              cause: error,
            }),
          );
        } else {
          reject(new TransportError('ListenFailed', `cannot listen on raft port ${wanted}: ${error.message}`, { cause: error }));
        }
      };
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        server.on('error', (error) => this.logger.error({ err: error }, `raft port ${wanted}: server error`));
        const bound = server.address() as net.AddressInfo;
        this.boundAddress = { host: bound.address, port: bound.port };
        this.logger.info({ address: formatAddress(bound.address, bound.port) }, 'listening for peers');
        resolve(this.boundAddress);
      });
    });
  }

  /** The address listen() bound, or null before it. */
  get address(): ListenAddress | null {
    return this.boundAddress;
  }

  /**
   * Registers a receiver of every valid message addressed to this node; returns its removal.
   * Handlers run synchronously on the socket's data event and must not throw: an exception is
   * a programmer error and propagates (the actor crashes and its supervisor restarts it).
   */
  onMessage(handler: MessageHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Sets the one answerer of discover requests (the Raft actor: who this node is and which
   * cluster it belongs to). Without one, discover connections are closed unanswered. Like
   * message handlers it runs synchronously and must not throw.
   */
  onDiscover(handler: (request: DiscoverRequest) => DiscoverReply): void {
    this.discoverHandler = handler;
  }

  /**
   * Asks whoever listens at `address` ('host:port') who they are. Resolves to their reply, or
   * to null when nobody answered a valid reply within discoverTimeoutMilliseconds (refused,
   * closed, timed out, malformed, or too many discovers in flight); never rejects except for an
   * address that is not host:port (TransportError 'InvalidAddress'), a configuration error.
   */
  discover(address: string, request: DiscoverRequest): Promise<DiscoverReply | null> {
    let target: ListenAddress;
    try {
      target = parsePeerAddress(address);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (this.closed) return Promise.resolve(null);
    if (this.discoverSockets.size >= this.settings.maxPendingDiscovers) {
      this.counters.discoversUnanswered++;
      this.logger.warn({ address, maxPendingDiscovers: this.settings.maxPendingDiscovers }, `discover of ${address} skipped: too many in flight`);
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
      this.discoverSockets.add(socket);
      const decoder = new FrameDecoder<PeerFrame>({ maxFrameBytes: maxHandshakeFrameBytes, validate: validatePeerFrame });
      let settled = false;
      const finish = (reply: DiscoverReply | null, reason: string): void => {
        if (settled) return;
        settled = true;
        this.settings.timers.clearTimeout(timer);
        this.discoverSockets.delete(socket);
        socket.destroy();
        if (reply === null) {
          this.counters.discoversUnanswered++;
          // Debug only: formation asks every second while peers start, and explains itself.
          this.logger.debug({ address, reason }, `discover of ${address}: no answer (${reason})`);
        }
        resolve(reply);
      };
      const timer = this.settings.timers.setTimeout(
        () => finish(null, `no reply within ${this.settings.discoverTimeoutMilliseconds} ms`),
        this.settings.discoverTimeoutMilliseconds,
      );
      socket.on('connect', () => socket.write(encodeFrame(request)));
      socket.on('data', (chunk: Buffer) => {
        this.counters.bytesReceived += chunk.length;
        const error = decoder.push(chunk, (frame) => {
          this.counters.framesReceived++;
          if ('kind' in frame && frame.kind === 'discoverReply') finish(frame, 'answered');
          else finish(null, 'the listener answered with something other than a discover reply');
        });
        if (error !== null) finish(null, `${error.code}: ${error.message}`);
      });
      socket.on('error', (error) => finish(null, error.message));
      socket.on('close', () => finish(null, 'connection closed'));
    });
  }

  /**
   * Queues `message` for `message.to` and returns at once. Dropped (and counted) when the peer
   * has no address, when its frame would exceed maxFrameBytes, or, for the oldest queued
   * message, when the peer's queue is full. A no-op after close(). Raft and driver messages
   * (status queries) share the peer's one queue and connection.
   */
  send(message: PeerMessage): void {
    if (this.closed) return;
    const peer = this.peers.get(message.to);
    if (peer === undefined) {
      this.counters.messagesDroppedNoPeer++;
      this.logger.debug({ peer: message.to, type: message.type }, `dropped ${message.type} to ${message.to}: no address known`);
      return;
    }
    const frame = encodeFrame(message);
    if (frame.length - frameHeaderBytes > this.settings.maxFrameBytes) {
      this.counters.messagesDroppedTooLarge++;
      // A configuration error (Raft's maxMessageBytes or snapshot chunk above the frame limit):
      // loud, because it repeats until fixed, but no crash, since Raft survives the loss.
      this.logger.error(
        { peer: message.to, type: message.type, frameBytes: frame.length - frameHeaderBytes, maxFrameBytes: this.settings.maxFrameBytes },
        `dropped ${message.type} to ${message.to}: ${frame.length - frameHeaderBytes} bytes exceed maxFrameBytes`,
      );
      return;
    }
    peer.enqueue(frame);
  }

  /** Sets or changes where a peer listens ('host:port'); throws TransportError 'InvalidAddress'. */
  setPeerAddress(nodeId: NodeId, address: string): void {
    const parsed = parsePeerAddress(address);
    if (this.closed) return;
    if (nodeId === this.nodeId) throw new Error(`setPeerAddress: ${nodeId} is this node`);
    const peer = this.peers.get(nodeId);
    if (peer === undefined) this.peers.set(nodeId, new OutboundPeer(nodeId, parsed, this.context, this.nodeId));
    else peer.setAddress(parsed);
  }

  /** Forgets a peer: closes its outbound connection and drops its queue (counted as no-peer drops). */
  removePeer(nodeId: NodeId): void {
    const peer = this.peers.get(nodeId);
    if (peer === undefined) return;
    this.peers.delete(nodeId);
    this.counters.messagesDroppedNoPeer += peer.stop();
  }

  /**
   * Records the cluster id once the node has joined (or learned it). Inbound connections that
   * introduced themselves with a different non-empty id are closed.
   */
  setClusterId(clusterId: string): void {
    this.clusterId = clusterId;
    for (const connection of this.inbound) {
      const hello = connection.hello;
      if (hello !== null && !clusterIdsCompatible(clusterId, hello.clusterId)) {
        this.refuse(connection, `peer ${hello.nodeId} belongs to cluster '${hello.clusterId}', this node now to '${clusterId}'`);
      }
    }
  }

  metrics(): TransportMetrics {
    let queuedMessages = 0;
    let queuedBytes = 0;
    for (const peer of this.peers.values()) {
      queuedMessages += peer.queue.length;
      queuedBytes += peer.queue.bytes;
    }
    return { ...this.counters, queuedMessages, queuedBytes };
  }

  /** Stops listening, ends every connection and timer, drops the queues. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) peer.stop();
    this.peers.clear();
    for (const connection of this.inbound) this.dropInbound(connection);
    for (const socket of this.discoverSockets) socket.destroy();
    this.handlers.clear();
    this.discoverHandler = null;
    const server = this.server;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const remote = remoteOf(socket);
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.inbound.size >= this.settings.maxInboundConnections) {
      this.counters.inboundConnectionsRefused++;
      this.logger.warn(
        { remote, maxInboundConnections: this.settings.maxInboundConnections },
        `refused peer connection from ${remote}: already ${this.inbound.size} inbound connections (maxInboundConnections)`,
      );
      socket.destroy();
      return;
    }
    this.counters.inboundConnectionsAccepted++;
    const connection = new InboundConnection(socket, remote);
    this.inbound.add(connection);
    connection.helloTimer = this.settings.timers.setTimeout(() => {
      connection.helloTimer = null;
      if (connection.hello !== null || connection.closing) return;
      this.logger.warn({ remote }, `closing peer connection from ${remote}: no hello within ${this.settings.helloTimeoutMilliseconds} ms`);
      this.dropInbound(connection);
    }, this.settings.helloTimeoutMilliseconds);
    socket.on('data', (chunk: Buffer) => {
      if (connection.closing) return;
      this.counters.bytesReceived += chunk.length;
      const error = connection.decoder.push(chunk, (frame) => this.onDialerFrame(connection, frame));
      if (error !== null && !connection.closing) this.malformed(connection, error);
    });
    // Errors (resets, timeouts) end in 'close'; nothing else to do with them than note them.
    socket.on('error', (error) => this.logger.debug({ remote, err: error }, `peer connection from ${remote}: ${error.message}`));
    socket.on('close', () => this.forgetInbound(connection));
  }

  private onDialerFrame(connection: InboundConnection, frame: PeerFrame): void {
    if (connection.closing) return;
    const hello = connection.hello;
    if (hello === null) {
      if ('kind' in frame && frame.kind === 'hello') this.onHello(connection, frame);
      else if ('kind' in frame && frame.kind === 'discover') this.onDiscoverRequest(connection, frame);
      else this.violation(connection, 'the first frame is neither a hello nor a discover request');
      return;
    }
    if ('kind' in frame) {
      this.violation(connection, `a ${frame.kind} frame after the hello`);
      return;
    }
    if (frame.from !== hello.nodeId) {
      // One connection speaks for the one node that introduced itself; anything else is a bug
      // or a spoof, and either way its stream cannot be trusted further.
      this.violation(connection, `message from '${frame.from}' on the connection of node '${hello.nodeId}'`);
      return;
    }
    this.counters.framesReceived++;
    if (frame.to !== this.nodeId) {
      this.counters.messagesDroppedMisaddressed++;
      this.logger.debug({ peer: hello.nodeId, to: frame.to, type: frame.type }, `dropped ${frame.type} addressed to ${frame.to}`);
      return;
    }
    for (const handler of this.handlers) handler(frame);
  }

  private onHello(connection: InboundConnection, hello: Hello): void {
    const { remote, socket } = connection;
    this.counters.framesReceived++;
    if (connection.helloTimer !== null) {
      this.settings.timers.clearTimeout(connection.helloTimer);
      connection.helloTimer = null;
    }
    if (!clusterIdsCompatible(this.clusterId, hello.clusterId)) {
      this.refuse(
        connection,
        `peer ${hello.nodeId} at ${remote} belongs to cluster '${hello.clusterId}', this node to '${this.clusterId}'`,
        hello,
      );
      return;
    }
    if (hello.nodeId === this.nodeId) {
      this.refuse(connection, `a peer at ${remote} introduced itself with this node's own id '${hello.nodeId}'`, hello);
      return;
    }
    connection.hello = hello;
    connection.decoder.maxFrameBytes = this.settings.maxFrameBytes;
    const reply: Hello = { kind: 'hello', clusterId: this.clusterId, nodeId: this.nodeId, advertise: this.advertise };
    if (hello.advertise !== '' && !this.peers.has(hello.nodeId)) {
      // A peer we have no address for dialled us (a leader adding this node): answer it there.
      try {
        this.setPeerAddress(hello.nodeId, hello.advertise);
      } catch (error) {
        this.logger.warn({ peer: hello.nodeId }, `peer ${hello.nodeId} advertised an unusable address ${hello.advertise}: ${String(error)}`);
      }
    }
    socket.write(encodeFrame(reply));
    const previous = this.inboundByPeer.get(hello.nodeId);
    this.inboundByPeer.set(hello.nodeId, connection);
    if (previous !== undefined) {
      // The peer redialled (it restarted, or its old connection is half-open): keep the newest.
      this.logger.debug({ peer: hello.nodeId, remote: previous.remote }, `replacing the older connection of peer ${hello.nodeId}`);
      this.dropInbound(previous);
    }
    this.logger.debug({ peer: hello.nodeId, remote }, `accepted connection from peer ${hello.nodeId} at ${remote}`);
  }

  /** Answers a discover request and closes: a discover connection carries nothing else. */
  private onDiscoverRequest(connection: InboundConnection, request: DiscoverRequest): void {
    this.counters.framesReceived++;
    const handler = this.discoverHandler;
    if (handler === null) {
      this.logger.debug({ remote: connection.remote, from: request.nodeId }, `discover from ${request.nodeId} at ${connection.remote} left unanswered: no answerer yet`);
      this.dropInbound(connection);
      return;
    }
    const reply = handler(request);
    this.counters.discoversAnswered++;
    this.endInbound(connection, encodeFrame(reply));
  }

  /** Sends a last frame and closes; a dialer that does not close its side in time is cut off. */
  private endInbound(connection: InboundConnection, lastFrame: Buffer): void {
    connection.closing = true;
    if (connection.helloTimer !== null) this.settings.timers.clearTimeout(connection.helloTimer);
    connection.socket.end(lastFrame);
    connection.helloTimer = this.settings.timers.setTimeout(() => {
      connection.helloTimer = null;
      connection.socket.destroy();
    }, this.settings.helloTimeoutMilliseconds);
  }

  /** A hello we do not accept: answer with ours (so the dialer can log why), then close. */
  private refuse(connection: InboundConnection, reason: string, hello: Hello | null = connection.hello): void {
    this.counters.hellosRejected++;
    this.logger.error(
      { remote: connection.remote, peer: hello?.nodeId, peerClusterId: hello?.clusterId, clusterId: this.clusterId },
      `refused peer connection: ${reason}`,
    );
    const reply: Hello = { kind: 'hello', clusterId: this.clusterId, nodeId: this.nodeId, advertise: this.advertise };
    this.endInbound(connection, encodeFrame(reply));
  }

  private malformed(connection: InboundConnection, error: FrameError): void {
    this.counters.malformedFrames++;
    const peer = connection.hello?.nodeId ?? 'unknown';
    this.logger.warn(
      { remote: connection.remote, peer, code: error.code, reason: error.message },
      `closing peer connection from ${connection.remote} (node ${peer}): malformed frame (${error.code}: ${error.message})`,
    );
    this.dropInbound(connection);
  }

  private violation(connection: InboundConnection, reason: string): void {
    this.counters.malformedFrames++;
    const peer = connection.hello?.nodeId ?? 'unknown';
    this.logger.warn(
      { remote: connection.remote, peer, reason },
      `closing peer connection from ${connection.remote} (node ${peer}): protocol violation (${reason})`,
    );
    this.dropInbound(connection);
  }

  private dropInbound(connection: InboundConnection): void {
    connection.closing = true;
    connection.socket.destroy();
    this.forgetInbound(connection);
  }

  private forgetInbound(connection: InboundConnection): void {
    connection.closing = true;
    if (connection.helloTimer !== null) {
      this.settings.timers.clearTimeout(connection.helloTimer);
      connection.helloTimer = null;
    }
    this.inbound.delete(connection);
    const hello = connection.hello;
    if (hello !== null && this.inboundByPeer.get(hello.nodeId) === connection) this.inboundByPeer.delete(hello.nodeId);
  }
}
