// Network partitions without touching the machine's network configuration: every node advertises
// the port of a TCP proxy that forwards to its real raft port, so every peer connection to node X
// (nodes dial peers at the advertised addresses held in the cluster configuration) passes through
// X's proxy. A connection carries one direction only (dialer → listener, see
// src/transport/peer-transport.ts), and its first frame — the dialer's hello, or a discover
// request — names the dialer; the proxy reads that frame (with the transport's own decoder and
// validation) before it connects upstream, so it can cut exactly the link (source → X).
//
// A cut link either closes its connections (and refuses new ones from that source once their first
// frame is read), or swallows their bytes silently in both directions while keeping them open
// (a black hole, which TCP keep-alive and Raft's own timeouts must notice). A black-holed
// connection has lost bytes mid-stream, so healing closes it and the dialer reconnects.

import net from 'node:net';

import { FrameDecoder, frameHeaderBytes } from '../../src/transport/frame.js';
import { maxHandshakeFrameBytes } from '../../src/transport/peer-transport.js';
import { validatePeerFrame } from '../../src/transport/validate.js';

export type CutMode = 'close' | 'blackhole';

/** Which directed links (source node → destination node) are cut, shared by every proxy. */
export class LinkFaults {
  private readonly cut = new Map<string, CutMode>();
  private readonly proxies = new Set<LinkProxy>();

  register(proxy: LinkProxy): void {
    this.proxies.add(proxy);
  }

  unregister(proxy: LinkProxy): void {
    this.proxies.delete(proxy);
  }

  mode(source: string, destination: string): CutMode | null {
    return this.cut.get(`${source}>${destination}`) ?? null;
  }

  /** Cuts every link between a node of `side` and a node of `otherSide`, both directions. */
  cutBetween(side: readonly string[], otherSide: readonly string[], mode: CutMode): void {
    for (const a of side) {
      for (const b of otherSide) {
        if (a === b) continue;
        this.cut.set(`${a}>${b}`, mode);
        this.cut.set(`${b}>${a}`, mode);
      }
    }
    for (const proxy of this.proxies) proxy.apply();
  }

  healAll(): void {
    this.cut.clear();
    for (const proxy of this.proxies) proxy.heal();
  }

  describe(): string {
    return [...this.cut.keys()].sort().join(' ');
  }
}

interface Proxied {
  readonly client: net.Socket;
  upstream: net.Socket | null;
  /** The dialer's node id, from its first frame; null until read. */
  source: string | null;
  blackholed: boolean;
}

/** Bytes of a first frame that cannot be a handshake: the connection is passed through unidentified. */
const maxFirstFrameBytes = frameHeaderBytes + maxHandshakeFrameBytes;

export class LinkProxy {
  private server: net.Server | null = null;
  private readonly connections = new Set<Proxied>();
  port = 0;

  constructor(
    /** The node behind this proxy. */
    readonly destination: string,
    private readonly upstreamPort: number,
    private readonly faults: LinkFaults,
  ) {}

  async listen(port = 0): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : 0;
    this.faults.register(this);
    return this.port;
  }

  async close(): Promise<void> {
    this.faults.unregister(this);
    for (const connection of this.connections) this.drop(connection);
    await new Promise<void>((resolve) => (this.server === null ? resolve() : this.server.close(() => resolve())));
  }

  /** Applies newly cut links to connections already open. */
  apply(): void {
    for (const connection of this.connections) {
      if (connection.source === null) continue;
      const mode = this.faults.mode(connection.source, this.destination);
      if (mode === 'close') this.drop(connection);
      else if (mode === 'blackhole') connection.blackholed = true;
    }
  }

  heal(): void {
    for (const connection of this.connections) if (connection.blackholed) this.drop(connection);
  }

  private drop(connection: Proxied): void {
    connection.client.destroy();
    connection.upstream?.destroy();
    this.connections.delete(connection);
  }

  private accept(client: net.Socket): void {
    const connection: Proxied = { client, upstream: null, source: null, blackholed: false };
    this.connections.add(connection);
    client.setNoDelay(true);
    client.on('error', () => this.drop(connection));
    client.on('close', () => this.drop(connection));
    let buffered = Buffer.alloc(0);
    const onFirstBytes = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < frameHeaderBytes) return;
      const frameBytes = frameHeaderBytes + buffered.readUInt32BE(0);
      if (frameBytes <= maxFirstFrameBytes && buffered.length < frameBytes) return;
      client.off('data', onFirstBytes);
      client.pause();
      connection.source = frameBytes <= maxFirstFrameBytes ? firstFrameSource(buffered.subarray(0, frameBytes)) : null;
      const mode = connection.source === null ? null : this.faults.mode(connection.source, this.destination);
      if (mode === 'close') {
        this.drop(connection);
        return;
      }
      if (mode === 'blackhole') {
        // Keep it open, answer nothing: the dialer's hello timeout has to notice.
        connection.blackholed = true;
        client.resume();
        return;
      }
      this.connectUpstream(connection, buffered);
    };
    client.on('data', onFirstBytes);
  }

  private connectUpstream(connection: Proxied, firstBytes: Buffer): void {
    const { client } = connection;
    const upstream = net.connect({ host: '127.0.0.1', port: this.upstreamPort });
    connection.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => this.drop(connection));
    upstream.on('close', () => this.drop(connection));
    upstream.once('connect', () => {
      upstream.write(firstBytes);
      forward(client, upstream, connection);
      forward(upstream, client, connection);
      client.resume();
    });
  }
}

/** Copies `from` to `to` with back-pressure, swallowing everything while the link is black-holed. */
function forward(from: net.Socket, to: net.Socket, connection: Proxied): void {
  from.on('data', (chunk: Buffer) => {
    if (connection.blackholed) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
}

/** The node id a connection's first frame names (hello or discover), or null. */
function firstFrameSource(frame: Buffer): string | null {
  const decoder = new FrameDecoder({ maxFrameBytes: maxHandshakeFrameBytes, validate: validatePeerFrame });
  let source: string | null = null;
  decoder.push(frame, (value) => {
    if ('kind' in value && (value.kind === 'hello' || value.kind === 'discover')) source = value.nodeId;
  });
  return source;
}
