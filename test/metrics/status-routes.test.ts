// The status page's two routes on the node's HTTP server (src/metrics/http-server.ts), on a free
// port with a made-up status source: GET / serves one self-contained HTML page (inline CSS and
// script, nothing loaded from elsewhere, data put in as text, a CSP that allows fetches to its own
// origin only); GET /api/status serves the source's report as JSON, computed per request; HEAD
// answers headers only and other methods 405; the 404 text names every route; and a server
// started without a status source serves neither route while /metrics, /healthz and /readyz
// stay as they were.

import pino from 'pino';
import t, { type Test } from 'tap';
import { startMetricsServer, type MetricsServerOptions } from '../../src/metrics/http-server.js';

const logger = pino({ level: 'silent' });

async function serve(t: Test, extra: Partial<MetricsServerOptions> = {}): Promise<(path: string, init?: RequestInit) => Promise<{ status: number; body: string; headers: Headers }>> {
  const server = await startMetricsServer({
    address: { host: '127.0.0.1', port: 0 },
    logger,
    metrics: async () => ({ body: 'dfs_up 1\n', contentType: 'text/plain; version=0.0.4' }),
    readiness: async () => ({ ready: true, detail: 'fine' }),
    ...extra,
  });
  t.teardown(() => server.close());
  return async (path, init = {}) => {
    const response = await fetch(`http://${server.address}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
    return { status: response.status, body: await response.text(), headers: response.headers };
  };
}

t.test('GET / and /api/status', async (t) => {
  let reports = 0;
  const get = await serve(t, { status: () => ({ nodeId: 'node<1>', reports: reports++ }) });

  const page = await get('/?refresh=1');
  t.equal(page.status, 200, 'GET / serves the status page (a query string is ignored)');
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  t.equal(page.headers.get('cache-control'), 'no-store');
  t.match(page.headers.get('content-security-policy'), /default-src 'none'.*connect-src 'self'/, 'the page may fetch from its own origin only');
  t.match(page.body, /^<!doctype html>/);
  t.match(page.body, /fetch\('api\/status'/, 'the page reads /api/status');
  t.notMatch(page.body, /<(script|link|img|iframe)[^>]+(src|href)=/i, 'nothing is loaded from elsewhere: inline CSS and script only');
  t.notMatch(page.body, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, 'the page puts data in as text only');
  for (const id of ['members', 'member-row', 'leader-mark', 'files-count', 'bytes-stored', 'request-rate', 'events', 'last-updated', 'unreachable-banner', 'lag-source']) {
    t.ok(page.body.includes(`data-testid="${id}"`) || page.body.includes(`'data-testid': '${id}'`), `the page has data-testid ${id}`);
  }

  const first = await get('/api/status');
  t.equal(first.status, 200);
  t.equal(first.headers.get('content-type'), 'application/json; charset=utf-8');
  t.equal(first.headers.get('cache-control'), 'no-store');
  t.same(JSON.parse(first.body), { nodeId: 'node<1>', reports: 0 }, 'the source\'s report as JSON (text is escaped by JSON, not altered)');
  t.same(JSON.parse((await get('/api/status')).body), { nodeId: 'node<1>', reports: 1 }, 'asked again for each request');

  t.match(await get('/api/status', { method: 'HEAD' }), { status: 200, body: '' }, 'HEAD: headers only');
  t.match(await get('/', { method: 'HEAD' }), { status: 200, body: '' });
  const post = await get('/', { method: 'POST', body: 'x' });
  t.equal(post.status, 405, 'POST /: 405');
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  t.equal((await get('/api/status', { method: 'PUT', body: '{}' })).status, 405);

  const missing = await get('/index.html');
  t.equal(missing.status, 404, 'only / is the page');
  t.equal(missing.body, 'not found: /index.html (try / (the status page), /api/status, /metrics, /healthz or /readyz)\n', 'the 404 names every route');
  t.equal((await get('/api/status/extra')).status, 404);

  // The other routes are untouched by the page.
  t.same([(await get('/healthz')).body, (await get('/readyz')).body, (await get('/metrics')).body], ['ok\n', 'ready: fine\n', 'dfs_up 1\n']);
});

t.test('a status source that throws: 500, the server goes on', async (t) => {
  let fail = true;
  const get = await serve(t, {
    status: () => {
      if (fail) throw new Error('broken');
      return { fine: true };
    },
  });
  t.match(await get('/api/status'), { status: 500, body: 'internal error\n' });
  fail = false;
  t.match(await get('/api/status'), { status: 200, body: '{"fine":true}\n' });
});

t.test('without a status source, / and /api/status are not served', async (t) => {
  const get = await serve(t);
  const page = await get('/');
  t.equal(page.status, 404);
  t.equal(page.body, 'not found: / (try /metrics, /healthz or /readyz)\n', 'the 404 names the routes there are');
  t.equal((await get('/api/status')).status, 404);
  t.equal((await get('/healthz')).status, 200);
});
