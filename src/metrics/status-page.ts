// The status page served at GET / on the node's HTTP port: one self-contained HTML document
// (inline CSS and script, nothing fetched from elsewhere, no build step) that asks
// /api/status once a second and redraws the cluster at a glance: members with their roles, the
// leader starred, a lag bar each, terms and indexes, files and bytes stored, request rates and the
// recent events. When a fetch fails it says so in a banner and keeps showing the last answer.
// Every figure and name is put into the page as text (textContent, never innerHTML): member ids
// and addresses come from users. The page's `data-testid` attributes are what the browser test
// (test/integration/status-page.test.ts) looks for; keep them when changing the layout.

/** The Content-Security-Policy the page is served with: its own inline code, and fetches to its own origin only. */
export const statusPageContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const statusPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dfs status</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f6f7f9; --card: #fff;
          --leader: #7a4cff; --ok: #12b76a; --warn: #f79009; --bad: #f04438; --accent: #2e6cf6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 12px; padding: 14px 24px; background: #101828; color: #fff; }
  header h1 { margin: 0; font-size: 18px; font-weight: 600; }
  header .sub { color: #d0d5dd; }
  header .updated { margin-left: auto; color: #d0d5dd; font-variant-numeric: tabular-nums; }
  .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--ok); margin-right: 6px; vertical-align: middle; }
  .stale .dot { background: var(--bad); }
  main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 40px; }
  .banner { display: none; margin: 0 0 14px; padding: 10px 14px; border-radius: 8px; background: #fef3f2; border: 1px solid #fda29b; color: #912018; font-weight: 600; }
  .stale .banner { display: block; }
  .notice { margin: 0 0 14px; padding: 8px 14px; border-radius: 8px; background: #fffaeb; border: 1px solid #fec84b; color: #93370d; }
  .notice:empty { display: none; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin-bottom: 16px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .card .detail { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px 14px; margin-bottom: 16px; }
  section h2 { margin: 0 0 4px; font-size: 15px; }
  section .caption { color: var(--muted); font-size: 12px; margin-bottom: 8px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th { text-align: left; color: var(--muted); font-weight: 500; font-size: 12px; border-bottom: 1px solid var(--line); padding: 6px 8px; }
  td { border-bottom: 1px solid var(--line); padding: 7px 8px; vertical-align: middle; }
  tr:last-child td { border-bottom: 0; }
  tr.self td { background: #f5f8ff; }
  .star { color: var(--leader); font-size: 15px; margin-right: 4px; }
  .you { color: var(--muted); font-size: 12px; margin-left: 6px; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #f2f4f7; color: #344054; }
  .badge.leader { background: #f4ebff; color: #53389e; }
  .badge.follower { background: #ecfdf3; color: #027a48; }
  .badge.candidate, .badge.preCandidate { background: #fffaeb; color: #b54708; }
  .badge.unknown { background: #f2f4f7; color: var(--muted); }
  .badge.learner { background: #eff8ff; color: #175cd3; }
  .badge.voter { background: #f2f4f7; color: #344054; }
  .lag { display: flex; align-items: center; gap: 8px; min-width: 180px; }
  .bar { flex: 1; height: 8px; border-radius: 4px; background: #eaecf0; overflow: hidden; }
  .bar > span { display: block; height: 100%; border-radius: 4px; background: var(--ok); transition: width .4s; }
  .bar.warn > span { background: var(--warn); }
  .bar.bad > span { background: var(--bad); }
  .bar.none > span { width: 0; }
  .lag .n { min-width: 64px; text-align: right; color: var(--muted); }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
  .indexes { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 6px 16px; margin-top: 10px; color: var(--muted); font-size: 12px; }
  .indexes b { color: var(--fg); font-weight: 600; font-variant-numeric: tabular-nums; }
  ol.events { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow: auto; }
  ol.events li { display: grid; grid-template-columns: 76px 100px 1fr; gap: 10px; padding: 5px 0; border-bottom: 1px solid var(--line); }
  ol.events li:last-child { border-bottom: 0; }
  ol.events time { color: var(--muted); font-variant-numeric: tabular-nums; }
  .kind { font-size: 12px; font-weight: 600; }
  .kind.election, .kind.leader { color: #53389e; } .kind.membership { color: #175cd3; } .kind.role { color: #b54708; } .kind.start { color: #027a48; }
  .empty { color: var(--muted); }
  .columns { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; }
  @media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>dfs</h1>
  <span class="sub" data-testid="node-title">connecting…</span>
  <span class="updated" data-testid="last-updated"><span class="dot"></span>waiting for the first answer</span>
</header>
<main>
  <div class="banner" role="alert" data-testid="unreachable-banner"></div>
  <div class="notice" data-testid="problems"></div>
  <div class="cards">
    <div class="card"><div class="label">Leader</div><div class="value" data-testid="leader">–</div><div class="detail" data-testid="term">term –</div></div>
    <div class="card"><div class="label">Members</div><div class="value" data-testid="members-count">–</div><div class="detail" data-testid="voters">–</div></div>
    <div class="card"><div class="label">Files</div><div class="value" data-testid="files-count">–</div><div class="detail" data-testid="files-detail">in the namespace</div></div>
    <div class="card"><div class="label" data-testid="bytes-label">Bytes stored</div><div class="value" data-testid="bytes-stored">–</div><div class="detail" data-testid="bytes-detail">–</div></div>
    <div class="card"><div class="label">Requests / s · this node</div><div class="value" data-testid="request-rate">–</div><div class="detail" data-testid="request-detail">–</div></div>
    <div class="card"><div class="label">Commits / s · cluster</div><div class="value" data-testid="commit-rate">–</div><div class="detail" data-testid="bytes-rate">–</div></div>
  </div>
  <div class="columns">
    <div>
      <section>
        <h2>Members</h2>
        <div class="caption" data-testid="lag-source">–</div>
        <table>
          <thead><tr><th>member</th><th>role</th><th>suffrage</th><th>address</th><th>match index</th><th>lag (entries)</th></tr></thead>
          <tbody data-testid="members"></tbody>
        </table>
        <div class="indexes" data-testid="indexes"></div>
      </section>
      <section>
        <h2>Requests by method</h2>
        <div class="caption">gRPC calls answered by this node, per second over the last ~10 s</div>
        <table><tbody data-testid="methods"></tbody></table>
      </section>
    </div>
    <section>
      <h2>Recent events</h2>
      <div class="caption">as this node saw them, newest first (elections, leader changes, membership)</div>
      <ol class="events" data-testid="events"></ol>
    </section>
  </div>
</main>
<script>
"use strict";
(function () {
  var intervalMilliseconds = 1000;
  var timeoutMilliseconds = 3000;
  var last = null;
  var lastOkAt = null;
  var $ = function (id) { return document.querySelector('[data-testid="' + id + '"]'); };

  /** An element with text children only: every string goes in as a text node, never as markup. */
  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    if (attributes) for (var name in attributes) {
      var value = attributes[name];
      if (value === null || value === undefined || value === false) continue;
      if (name === 'className') node.className = value; else node.setAttribute(name, String(value));
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    });
    return node;
  }
  function fill(target, children) { target.replaceChildren.apply(target, children); }
  function text(id, value) { var target = $(id); if (target.textContent !== value) target.textContent = value; }
  function number(value) { return value === null || value === undefined ? '–' : Number(value).toLocaleString('en-US'); }
  function rate(value) { return value === null || value === undefined ? '–' : value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1); }
  function bytes(value) {
    if (value === null || value === undefined) return '–';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var sign = value < 0 ? '-' : '';
    var size = Math.abs(value), unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit++; }
    return sign + (unit === 0 ? String(Math.round(size)) : size.toFixed(size >= 100 ? 0 : 1)) + ' ' + units[unit];
  }
  function clock(unixMilliseconds) {
    var date = new Date(unixMilliseconds);
    var two = function (n) { return (n < 10 ? '0' : '') + n; };
    return two(date.getHours()) + ':' + two(date.getMinutes()) + ':' + two(date.getSeconds());
  }
  function ago(unixMilliseconds) {
    var seconds = Math.max(0, Math.round((Date.now() - unixMilliseconds) / 1000));
    if (seconds < 60) return seconds + ' s ago';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min ago';
    return Math.floor(seconds / 3600) + ' h ago';
  }
  function badge(value) { return el('span', { className: 'badge ' + value }, [value]); }

  function render(status) {
    var cluster = status.cluster;
    var node = status.node;
    var members = cluster ? cluster.members : [];
    document.title = 'dfs · ' + status.nodeId + (node ? ' (' + node.role + ')' : '');
    fill($('node-title'), [el('span', null, [status.nodeId + ' · ']), node ? badge(node.role) : 'role unknown', node ? ' term ' + node.term : '']);

    var leader = members.filter(function (member) { return member.leader; })[0];
    text('leader', leader ? '★ ' + leader.id : cluster && cluster.leaderId ? '★ ' + cluster.leaderId : 'none known');
    text('term', cluster ? 'term ' + cluster.term : 'term –');
    text('members-count', cluster ? String(members.length) : '–');
    var voters = members.filter(function (member) { return member.suffrage === 'voter'; }).length;
    text('voters', cluster ? voters + ' voter' + (voters === 1 ? '' : 's') + ', ' + (members.length - voters) + ' learner' + (members.length - voters === 1 ? '' : 's') : '–');

    var store = status.store;
    text('files-count', number(store.files));
    var logical = store.logicalBytes !== null && store.logicalBytes !== undefined;
    text('bytes-label', logical ? 'Bytes stored' : 'State store on disk');
    text('bytes-stored', bytes(logical ? store.logicalBytes : store.diskBytes));
    text('bytes-detail', logical ? 'sum of file sizes · ' + bytes(store.diskBytes) + ' on disk' : 'disk space of the state store (data.mdb)');

    var rates = status.rates;
    text('request-rate', rates ? rate(rates.requestsPerSecond) : '–');
    var inFlight = status.requests && status.requests.inFlight ? number(status.requests.inFlight) + ' in progress · ' : '';
    text('request-detail', rates ? inFlight + rate(rates.readsPerSecond) + ' reads · ' + rate(rates.writesPerSecond) + ' writes · ' + rate(rates.errorsPerSecond) + ' errors' : 'measuring…');
    text('commit-rate', rates && rates.commitsPerSecond !== null && rates.commitsPerSecond !== undefined ? rate(rates.commitsPerSecond) : '–');
    var growth = function (label, value) { return value === null || value === undefined ? null : label + ' ' + (value >= 0 ? '+' : '') + bytes(value) + '/s'; };
    text('bytes-rate', rates ? [rate(rates.proposalsPerSecond) + ' proposed here', growth('files', rates.storedBytesPerSecond), growth('disk', rates.diskBytesPerSecond)].filter(Boolean).join(' · ') : '–');

    if (!cluster) text('lag-source', 'the Raft status is not available');
    else if (cluster.fromLeader) text('lag-source', 'match index and lag as the leader ' + cluster.seenBy + ' reports them' + (cluster.seenBy === status.nodeId ? ' (this node)' : ''));
    else text('lag-source', 'as ' + cluster.seenBy + ' sees it: match index and lag are known on the leader only');

    var largest = 0;
    members.forEach(function (member) { if (member.lagEntries !== null && member.lagEntries > largest) largest = member.lagEntries; });
    // The bar shows how close each member is: full when caught up, shorter the further it lags
    // relative to the largest lag (at least 100 entries, so normal pipelining looks full).
    var scale = Math.max(largest, 100);
    fill($('members'), members.map(function (member) {
      var known = member.lagEntries !== null;
      var lag = known ? member.lagEntries : 0;
      var width = known ? Math.max(3, 100 * (1 - lag / scale)) : 0;
      var tone = !known ? 'none' : lag <= 10 ? '' : lag <= 1000 ? 'warn' : 'bad';
      return el('tr', { className: member.self ? 'self' : '', 'data-testid': 'member-row', 'data-member-id': member.id, 'data-leader': member.leader ? 'true' : 'false' }, [
        el('td', null, [
          member.leader ? el('span', { className: 'star', title: 'leader', 'data-testid': 'leader-mark' }, ['★']) : null,
          el('b', null, [member.id]),
          member.self ? el('span', { className: 'you' }, ['this node']) : null,
        ]),
        el('td', null, [badge(member.role)]),
        el('td', null, [badge(member.suffrage)]),
        el('td', { className: 'mono' }, [member.address]),
        el('td', null, [member.matchIndex === null ? '–' : number(member.matchIndex)]),
        el('td', null, [el('div', { className: 'lag', title: known ? lag + ' entries behind the leader' : 'known on the leader only' }, [
          el('div', { className: 'bar ' + tone }, [el('span', { style: 'width:' + width.toFixed(1) + '%' })]),
          el('span', { className: 'n', 'data-testid': 'lag' }, [known ? number(lag) : '–']),
        ])]),
      ]);
    }));
    var indexes = [];
    if (node) indexes.push(['this node commit', node.commitIndex], ['this node applied', node.appliedIndex], ['this node snapshot', node.snapshotIndex]);
    if (cluster && cluster.seenBy !== status.nodeId) indexes.push([cluster.seenBy + ' commit', cluster.commitIndex], [cluster.seenBy + ' applied', cluster.appliedIndex]);
    fill($('indexes'), indexes.map(function (pair) { return el('div', null, [pair[0] + ' ', el('b', null, [number(pair[1])])]); }));

    var methods = rates ? Object.keys(rates.byMethodPerSecond).sort() : [];
    fill($('methods'), methods.length === 0
      ? [el('tr', null, [el('td', { className: 'empty' }, [rates ? 'no calls in the last ' + Math.round(rates.windowSeconds) + ' s' : 'measuring…'])])]
      : methods.map(function (method) { return el('tr', null, [el('td', null, [method]), el('td', null, [rate(rates.byMethodPerSecond[method]) + ' / s'])]); }));

    fill($('events'), status.events.length === 0 ? [el('li', { className: 'empty' }, ['none yet'])] : status.events.map(function (event) {
      return el('li', { 'data-testid': 'event', 'data-kind': event.kind }, [
        el('time', { title: new Date(event.atUnixMilliseconds).toISOString() + ' (' + ago(event.atUnixMilliseconds) + ')' }, [clock(event.atUnixMilliseconds)]),
        el('span', { className: 'kind ' + event.kind }, [event.kind + (event.term ? ' · t' + event.term : '')]),
        el('span', null, [event.text]),
      ]);
    }));
    text('problems', status.problems.length === 0 ? '' : status.problems.join(' · '));
  }

  function showTime() {
    var target = $('last-updated');
    fill(target, [el('span', { className: 'dot' }), lastOkAt === null ? 'no answer yet' : 'updated ' + clock(lastOkAt)]);
  }

  function tick() {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, timeoutMilliseconds);
    fetch('api/status', { cache: 'no-store', signal: controller.signal })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (status) {
        last = status;
        lastOkAt = Date.now();
        document.body.classList.remove('stale');
        render(status);
        showTime();
      })
      .catch(function (error) {
        document.body.classList.add('stale');
        var reason = error && error.name === 'AbortError' ? 'no answer within ' + timeoutMilliseconds / 1000 + ' s' : String(error && error.message || error);
        text('unreachable-banner', 'Node unreachable: /api/status failed (' + reason + '). ' +
          (last ? 'Showing the last data, from ' + clock(lastOkAt) + '.' : 'No data yet.') + ' Retrying every second.');
        showTime();
      })
      .then(function () {
        clearTimeout(timer);
        setTimeout(tick, intervalMilliseconds);
      });
  }
  tick();
})();
</script>
</body>
</html>
`;
