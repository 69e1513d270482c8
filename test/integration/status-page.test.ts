// The live status page (GET / on each node's HTTP port) in a real browser: headless Chromium
// (Debian's `chromium`, driven by playwright-core) opens a follower's page of a real three-node
// cluster and must show what the cluster does, without a reload: three members with exactly one
// leader starred, the one the cluster reports; the file count rising as files are written
// through gRPC; two members and a membership event after RemovePeer, three again after AddPeer;
// a "node unreachable" banner that keeps the last data while /api/status fails (the page's
// fetches are aborted in the browser); and member names from the status shown as text, never
// as markup. Screenshots go to test-output/ (printed with t.comment). Waits are on page
// conditions (waitForFunction), never fixed sleeps. Without Chromium (Debian's binary at
// /usr/lib/chromium/chromium, or DFS_CHROMIUM) the test is skipped, or fails when CI=true (CI
// must install it).

import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import t from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TestCluster, waitFor } from './harness.js';

// The browser's globals as the page functions below use them (evaluated in Chromium; the project
// compiles without the DOM library, so they are declared here, for this module only).
interface PageElement {
  readonly textContent: string | null;
  readonly dataset: Readonly<Record<string, string | undefined>>;
  querySelector(selector: string): PageElement | null;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement> };
declare const window: Record<string, unknown>;
declare function getComputedStyle(element: PageElement | null): { readonly display: string };

const executablePath = process.env['DFS_CHROMIUM'] ?? '/usr/lib/chromium/chromium';
const outputFolder = fileURLToPath(new URL('../../../test-output/', import.meta.url));
const missing = existsSync(executablePath) ? null : `Chromium is not installed (no ${executablePath}): apt-get install chromium`;

if (missing !== null && process.env['CI'] === 'true') t.fail(`${missing} (CI must run the browser test)`);

t.test('the status page shows the cluster live', { skip: missing ?? false }, async (t) => {
  // The browser starts while the cluster elects its leader.
  const launching = chromium.launch({ executablePath, args: ['--no-sandbox'], timeout: 30_000 });
  const cluster = await TestCluster.create(3);
  let browser: Browser | null = null;
  t.teardown(async () => {
    await (browser ?? (await launching.catch(() => null)))?.close();
    await cluster.shutdown();
    cluster.cleanup(t.passing() === false);
  });
  const began = Date.now();
  const elapsed = (what: string): void => t.comment(`${what} after ${((Date.now() - began) / 1000).toFixed(1)} s`);
  cluster.startAll();
  const leader = await cluster.waitForLeader(30_000);
  elapsed(`leader ${leader.spec.id} elected`);
  browser = await launching;
  elapsed('browser launched');
  const [watched, other] = cluster.nodes.filter((node) => node !== leader);
  if (watched === undefined || other === undefined) throw new Error('no followers');
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(10_000);
  mkdirSync(outputFolder, { recursive: true });
  const screenshot = async (name: string): Promise<void> => {
    const path = join(outputFolder, name);
    await page.screenshot({ path, fullPage: true });
    t.comment(`screenshot: ${path}`);
  };
  /** What the page shows now: member rows, the starred ones, files, events, the banner. */
  const shown = () => page.evaluate(() => {
    const rows = [...document.querySelectorAll('[data-testid="member-row"]')];
    return {
      members: rows.map((row) => row.dataset['memberId'] ?? ''),
      leaders: rows.filter((row) => row.dataset['leader'] === 'true' && row.querySelector('[data-testid="leader-mark"]') !== null).map((row) => row.dataset['memberId'] ?? ''),
      files: document.querySelector('[data-testid="files-count"]')?.textContent ?? '',
      events: [...document.querySelectorAll('[data-testid="event"]')].map((event) => `${event.dataset['kind'] ?? ''}: ${event.textContent ?? ''}`),
      banner: getComputedStyle(document.querySelector('[data-testid="unreachable-banner"]')).display !== 'none',
    };
  });

  await page.goto(`http://127.0.0.1:${watched.spec.httpPort}/`);
  // Set on this document only: still there later means the page updated without a reload.
  await page.evaluate(() => {
    window['notReloaded'] = true;
  });

  await t.test('three members, one leader starred: the one the cluster reports', async (t) => {
    await page.waitForFunction((leaderId) => {
      const rows = [...document.querySelectorAll('[data-testid="member-row"]')];
      const starred = rows.filter((row) => row.dataset['leader'] === 'true');
      return rows.length === 3 && starred.length === 1 && starred[0]?.dataset['memberId'] === leaderId;
    }, leader.spec.id);
    const now = await shown();
    t.same([...now.members].sort(), ['node1', 'node2', 'node3'], 'three members');
    t.same(now.leaders, [leader.spec.id], `exactly one leader starred, ${leader.spec.id}, as Status says`);
    t.equal((await watched.status()).leaderId, leader.spec.id, 'the watched node names the same leader');
    t.match(await page.textContent('[data-testid="lag-source"]'), watched.spec.id === leader.spec.id ? /leader/ : /(as the leader \S+ reports|known on the leader only)/, 'the page says where the lag figures come from');
    t.ok(now.events.some((event) => event.startsWith('start:')), 'the node\'s start is an event');
  });

  await t.test('files written through gRPC show up without a reload, with request rates', async (t) => {
    const before = Number((await shown()).files.replace(/,/g, ''));
    const count = 5;
    for (let index = 0; index < count; index++) await watched.client.put(`status-page/${index}`, new TextEncoder().encode(`file ${index}`));
    await page.waitForFunction((expected) => document.querySelector('[data-testid="files-count"]')?.textContent === String(expected), before + count);
    t.equal((await shown()).files, String(before + count), `the files card went from ${before} to ${before + count}`);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="request-rate"]')?.textContent) > 0);
    t.match(await page.textContent('[data-testid="request-detail"]'), /[1-9][0-9.]* writes/, 'writes per second are shown');
    t.equal(await page.evaluate(() => window['notReloaded']), true, 'the page was not reloaded');
    await screenshot('status-page.png');
  });

  await t.test('RemovePeer: two members and a membership event; AddPeer: three again', async (t) => {
    await leader.client.removePeer(other.spec.id);
    await page.waitForFunction((removed) =>
      document.querySelectorAll('[data-testid="member-row"]').length === 2 &&
      [...document.querySelectorAll('[data-testid="event"][data-kind="membership"]')].some((event) => event.textContent?.includes(`${removed} removed`) === true), other.spec.id);
    const afterRemove = await shown();
    t.notOk(afterRemove.members.includes(other.spec.id), `${other.spec.id} is no longer listed`);
    t.match(afterRemove.events[0] ?? '', new RegExp(`^membership: .*${other.spec.id} removed`), 'the newest event is the removal');

    // The removed node still runs with its data: adding it back lets it catch up as a learner.
    await leader.client.addPeer(other.spec.id, other.raftAddress);
    await page.waitForFunction((added) =>
      document.querySelectorAll('[data-testid="member-row"]').length === 3 &&
      [...document.querySelectorAll('[data-testid="event"][data-kind="membership"]')].some((event) => event.textContent?.includes(`${added} added`) === true), other.spec.id);
    t.same([...(await shown()).members].sort(), ['node1', 'node2', 'node3'], `${other.spec.id} is listed again`);
    // Added as a learner and promoted once caught up (both may fall in one sample of the page).
    await waitFor(`${other.spec.id} is a voter again`, async () => (await leader.status()).members.find((member) => member.id === other.spec.id)?.suffrage === 'VOTER', 15_000);
    await page.waitForFunction((added) => document.querySelector(`[data-testid="member-row"][data-member-id="${added}"]`)?.querySelector('.badge.voter') !== null, other.spec.id);
    t.pass(`the page showed ${other.spec.id} removed, then added back as a voter`);
  });

  await t.test('a failed fetch shows the unreachable banner and keeps the last data', async (t) => {
    await page.route('**/api/status', (route) => route.abort('connectionrefused'));
    await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid="unreachable-banner"]')).display !== 'none');
    const now = await shown();
    t.ok(now.banner, 'the banner is shown');
    t.match(await page.textContent('[data-testid="unreachable-banner"]'), /Node unreachable.*Showing the last data, from \d\d:\d\d:\d\d/, 'it says the node is unreachable and how old the data is');
    t.equal(now.members.length, 3, 'the last members are still shown');
    await screenshot('status-page-unreachable.png');
    await page.unroute('**/api/status');
    await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid="unreachable-banner"]')).display === 'none');
    t.pass('the banner goes once the node answers again');
  });

  await t.test('names from the status are shown as text, never run as markup', async (t) => {
    const response = await page.request.get(`http://127.0.0.1:${watched.spec.httpPort}/api/status`);
    const report = (await response.json()) as { cluster: { members: { id: string; address: string }[] }; events: { text: string }[] };
    const hostile = '<img src=x onerror="window.injected=1">';
    const first = report.cluster.members[0];
    if (first === undefined) throw new Error('no members in /api/status');
    first.id = `${hostile}node`;
    first.address = `<script>window.injected=2</script>`;
    report.events.unshift({ ...report.events[0], text: `<b onmouseover=1>${hostile}</b>` } as never);
    await page.route('**/api/status', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(report) }));
    await page.waitForFunction((id) => [...document.querySelectorAll('[data-testid="member-row"]')].some((row) => row.textContent?.includes(id) === true), first.id);
    t.equal(await page.locator('main img, main script, main b[onmouseover]').count(), 0, 'no element was made from the text');
    t.equal(await page.evaluate(() => window['injected']), undefined, 'nothing ran');
    await page.unroute('**/api/status');
  });
});
