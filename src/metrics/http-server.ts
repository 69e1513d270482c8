// The node's HTTP port (-http): /metrics for Prometheus, /healthz (the process answers),
// /readyz (a member of a cluster with a known leader, caught up), and the status page: / (one
// self-contained HTML page) and /api/status (its JSON, the page's only data source). It lives in the gRPC worker's
// event loop, so every request is small and bounded: no request body is read (GET and HEAD
// only), headers and idle connections time out, connections are capped, and concurrent scrapes
// share one refresh of the figures.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Address } from '../config/address.js';
import { statusPageContentSecurityPolicy, statusPageHtml } from './status-page.js';

/** The answer of /readyz: ready, or why not (one short sentence). */
export type Readiness = { readonly ready: true; readonly detail: string } | { readonly ready: false; readonly reason: string };

export interface MetricsServerOptions {
  readonly address: Address;
  readonly logger: Logger;
  /** The Prometheus text and its content type; called once per scrape (concurrent scrapes share it). */
  readonly metrics: () => Promise<{ readonly body: string; readonly contentType: string }>;
  readonly readiness: () => Promise<Readiness>;
  /**
   * The JSON of /api/status (a StatusReport from cluster-timeline.ts), from the sampler's last
   * sample (concurrent requests share one sample). Without it, / and /api/status are not served.
   */
  readonly status?: () => unknown;
  /** Connections served at once; default 64. */
  readonly maxConnections?: number;
}

export interface MetricsServer {
  /** host:port listened on, with the port the system chose when 0 was asked for. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Thrown (as a rejection) by startMetricsServer when it cannot listen. */
export class MetricsServerStartError extends Error {
  override readonly name = 'MetricsServerStartError';
  constructor(
    readonly address: string,
    readonly reason: 'addressInUse' | 'addressNotAvailable' | 'accessDenied' | 'other',
    message: string,
  ) {
    super(message);
  }
}

const requestTimeoutMilliseconds = 10_000;

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const logger = options.logger.child({ component: 'http' });
  const host = options.address.host === '' ? '0.0.0.0' : options.address.host;
  const shown = `${host.includes(':') ? `[${host}]` : host}:${options.address.port}`;
  let scrape: Promise<{ body: string; contentType: string }> | null = null;
  const status = options.status;
  const routes = new Set(status === undefined ? ['/metrics', '/healthz', '/readyz'] : ['/', '/api/status', '/metrics', '/healthz', '/readyz']);
  const routeList = `${status === undefined ? '' : '/ (the status page), /api/status, '}/metrics, /healthz or /readyz`;

  const sharedScrape = (): Promise<{ body: string; contentType: string }> => {
    scrape ??= options.metrics().finally(() => {
      scrape = null;
    });
    return scrape;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    // GET and HEAD carry no body worth reading; whatever a client sends is discarded, not kept.
    request.resume();
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (!routes.has(path)) return answer(response, 404, 'text/plain; charset=utf-8', `not found: ${path.slice(0, 200)} (try ${routeList})\n`);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return answer(response, 405, 'text/plain; charset=utf-8', `method ${request.method ?? ''} not allowed: use GET or HEAD\n`);
    }
    switch (path) {
      case '/healthz':
        return answer(response, 200, 'text/plain; charset=utf-8', 'ok\n');
      case '/readyz': {
        const readiness = await options.readiness();
        if (readiness.ready) return answer(response, 200, 'text/plain; charset=utf-8', `ready: ${readiness.detail}\n`);
        return answer(response, 503, 'text/plain; charset=utf-8', `not ready: ${readiness.reason}\n`);
      }
      case '/metrics': {
        const { body, contentType } = await sharedScrape();
        return answer(response, 200, contentType, body);
      }
      case '/':
        if (status === undefined) break;
        return answer(response, 200, 'text/html; charset=utf-8', statusPageHtml, { 'Content-Security-Policy': statusPageContentSecurityPolicy, 'X-Content-Type-Options': 'nosniff' });
      case '/api/status':
        if (status === undefined) break;
        return answer(response, 200, 'application/json; charset=utf-8', `${JSON.stringify(await status())}\n`, { 'X-Content-Type-Options': 'nosniff' });
    }
    // Not reached (routes holds the paths handled above); answered anyway, never left hanging.
    return answer(response, 404, 'text/plain; charset=utf-8', `not found: ${path.slice(0, 200)} (try ${routeList})\n`);
  };

  const server: Server = createServer({ requestTimeout: requestTimeoutMilliseconds, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      logger.warn(`answering ${request.method ?? ''} ${request.url ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) answer(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else response.destroy();
    });
  });
  server.maxConnections = options.maxConnections ?? 64;
  server.maxHeadersCount = 64;
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => reject(startError(shown, error));
    server.once('error', onError);
    server.listen(options.address.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => logger.error(`the HTTP server failed: ${error.message}`));
  const port = (server.address() as AddressInfo).port;
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    address,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function answer(response: ServerResponse, statusCode: number, contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): void {
  response.writeHead(statusCode, { ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  // HEAD: the headers only (node leaves the body out itself, but say so).
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** Names the address and what is wrong, like the gRPC server's start errors. */
function startError(address: string, error: NodeJS.ErrnoException): MetricsServerStartError {
  switch (error.code) {
    case 'EADDRINUSE':
      return new MetricsServerStartError(address, 'addressInUse',
        `cannot listen for HTTP (metrics) on ${address}: the address is already in use (another dfs node or another program listens there); stop it or choose another port with -http`);
    case 'EADDRNOTAVAIL':
      return new MetricsServerStartError(address, 'addressNotAvailable', `cannot listen for HTTP (metrics) on ${address}: no network interface of this machine has that address`);
    case 'EACCES':
      return new MetricsServerStartError(address, 'accessDenied', `cannot listen for HTTP (metrics) on ${address}: permission denied (ports below 1024 need privileges)`);
    default:
      return new MetricsServerStartError(address, 'other', `cannot listen for HTTP (metrics) on ${address}: ${error.message}`);
  }
}
