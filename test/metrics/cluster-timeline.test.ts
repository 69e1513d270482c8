// The status page's pure core (src/metrics/cluster-timeline.ts): a ClusterTimeline fed made-up
// samples at made-up times must report the cluster as given (leader marked, lag known only when
// the view is the leader's), turn changes between samples into events (start, leader known,
// election with its term, leader lost, this node's role, members added, promoted, removed),
// keep at most maxEvents of them newest first, and compute request, error, proposal and
// stored-byte rates over its window. No clock and no sleeps: time is the argument to observe.

import t from 'tap';
import type { MemberStatus, NodeStatus } from '../../src/api/backend.js';
import { ActivityCounters, ClusterTimeline, type RequestCounts, type TimelineSample } from '../../src/metrics/cluster-timeline.js';

const start = 1_700_000_000_000;

function member(id: string, overrides: Partial<MemberStatus> = {}): MemberStatus {
  return { id, address: `127.0.0.1:1200${id.slice(-1)}`, role: 'unknown', suffrage: 'voter', progressKnown: false, matchIndex: 0, lagEntries: 0, ...overrides };
}

function status(overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    nodeId: 'node1',
    role: 'follower',
    term: 2,
    leaderId: 'node2',
    leaderAddress: '127.0.0.1:12002',
    commitIndex: 10,
    appliedIndex: 10,
    snapshotIndex: 0,
    members: [member('node1', { role: 'follower' }), member('node2', { role: 'leader' }), member('node3')],
    ...overrides,
  };
}

const noRequests: RequestCounts = { total: 0, reads: 0, writes: 0, errors: 0, byMethod: {}, inFlight: 0 };

function sample(own: NodeStatus | null, overrides: Partial<TimelineSample> = {}): TimelineSample {
  return {
    own,
    cluster: own === null ? null : { status: own, fromLeader: false },
    requests: noRequests,
    proposalsCommitted: 0,
    store: { files: 3, logicalBytes: null, diskBytes: 8192 },
    problems: [],
    ...overrides,
  };
}

t.test('the report shows the cluster as sampled, the leader marked', async (t) => {
  const timeline = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: start });
  const empty = timeline.report();
  t.equal(empty.sampledAtUnixMilliseconds, null, 'nothing sampled yet');
  t.equal(empty.node, null);
  t.equal(empty.cluster, null);
  t.same(empty.events.map((event) => event.kind), ['start'], 'only the start is known');

  timeline.observe(start + 1000, sample(status()));
  const report = timeline.report();
  t.equal(report.nodeId, 'node1');
  t.same(report.node, { role: 'follower', term: 2, leaderId: 'node2', commitIndex: 10, appliedIndex: 10, snapshotIndex: 0 });
  t.equal(report.cluster?.fromLeader, false, "a follower's own view is not the leader's");
  t.equal(report.cluster?.seenBy, 'node1');
  t.same(report.cluster?.members.filter((entry) => entry.leader).map((entry) => entry.id), ['node2'], 'exactly one leader, the one the status names');
  t.same(report.cluster?.members.filter((entry) => entry.self).map((entry) => entry.id), ['node1']);
  t.equal(report.cluster?.members[2]?.lagEntries, null, 'lag unknown off the leader');
  t.same(report.store, { files: 3, logicalBytes: null, diskBytes: 8192 });
  t.equal(report.rates, null, 'no rates from one sample');

  // The leader's view (what leaderStatus gives a follower): progress known, marked as the leader's.
  const leaderView = status({
    nodeId: 'node2',
    role: 'leader',
    commitIndex: 12,
    members: [member('node1', { role: 'follower', progressKnown: true, matchIndex: 12, lagEntries: 0 }), member('node2', { role: 'leader', progressKnown: true, matchIndex: 12 }), member('node3', { role: 'follower', progressKnown: true, matchIndex: 5, lagEntries: 7 })],
  });
  timeline.observe(start + 2000, sample(status(), { cluster: { status: leaderView, fromLeader: true } }));
  const fromLeader = timeline.report().cluster;
  t.equal(fromLeader?.fromLeader, true);
  t.equal(fromLeader?.seenBy, 'node2');
  t.equal(fromLeader?.commitIndex, 12);
  t.same(fromLeader?.members.map((entry) => [entry.id, entry.matchIndex, entry.lagEntries]), [['node1', 12, 0], ['node2', 12, 0], ['node3', 5, 7]]);

  // The leader's own status counts as the leader's view even when asked for as the node's own.
  const asLeader = new ClusterTimeline({ nodeId: 'node2', startedAtUnixMilliseconds: start });
  asLeader.observe(start, sample(leaderView));
  t.equal(asLeader.report().cluster?.fromLeader, true, "the leader's own status is the leader's view");
});

t.test('elections, leader changes, role changes and membership changes become events', async (t) => {
  const timeline = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: start });
  let now = start;
  const observe = (own: NodeStatus | null): void => {
    now += 1000;
    timeline.observe(now, sample(own));
  };
  observe(null); // the Raft actor did not answer: nothing to compare yet
  observe(status());
  observe(status()); // nothing changed
  observe(status({ leaderId: '', role: 'follower' })); // the leader went away, same term
  observe(status({ term: 3, leaderId: '', role: 'candidate' })); // this node campaigns
  observe(status({ term: 3, leaderId: 'node1', role: 'leader' })); // and wins
  const withNode4 = [...status().members, member('node4', { suffrage: 'learner' })];
  observe(status({ term: 3, leaderId: 'node1', role: 'leader', members: withNode4 }));
  observe(status({ term: 3, leaderId: 'node1', role: 'leader', members: withNode4.map((entry) => (entry.id === 'node4' ? { ...entry, suffrage: 'voter' as const } : entry)) }));
  observe(status({ term: 3, leaderId: 'node1', role: 'leader', members: status().members.filter((entry) => entry.id !== 'node3').concat(member('node4')) }));
  observe(status({ term: 5, leaderId: 'node2', role: 'follower', members: status().members.filter((entry) => entry.id !== 'node3').concat(member('node4')) }));

  const events = timeline.report().events;
  t.same(events.map((event) => [event.kind, event.term, event.subject]).reverse(), [
    ['start', 0, 'node1'],
    ['leader', 2, 'node2'],
    ['leader', 2, 'node2'],
    ['election', 3, ''],
    ['role', 3, 'node1'],
    ['leader', 3, 'node1'],
    ['role', 3, 'node1'],
    ['membership', 3, 'node4'],
    ['membership', 3, 'node4'],
    ['membership', 3, 'node3'],
    ['election', 5, 'node2'],
    ['role', 5, 'node1'],
  ], 'each change once, in order, newest first in the report');
  t.same(events.map((event) => event.text).reverse(), [
    'node1 started',
    'node2 leads (term 2), as node1 first saw it',
    'leader node2 lost (term 2)',
    'election: term 2 → 3, no leader yet',
    'node1: follower → candidate',
    'node1 elected leader (term 3)',
    'node1: candidate → leader',
    'node4 added as a learner (127.0.0.1:12004)',
    'node4 promoted to voter',
    'node3 removed',
    'election: term 3 → 5, node2 elected leader',
    'node1: leader → follower',
  ]);
  t.equal(events[0]?.atUnixMilliseconds, now, 'stamped with the time of the sample that showed it');
  t.equal(events.at(-1)?.atUnixMilliseconds, start, 'the start is stamped with the start time');
});

t.test('members learnt at start are one event, not one per member', async (t) => {
  const timeline = new ClusterTimeline({ nodeId: 'node4', startedAtUnixMilliseconds: start });
  timeline.observe(start + 1000, sample(status({ nodeId: 'node4', term: 0, leaderId: '', members: [] })));
  timeline.observe(start + 2000, sample(status({ nodeId: 'node4', members: [...status().members, member('node4', { suffrage: 'learner' })] })));
  t.same(timeline.report().events.filter((event) => event.kind === 'membership').map((event) => event.text), ['members: node1 (voter), node2 (voter), node3 (voter), node4 (learner)']);
});

t.test('events are bounded, newest kept', async (t) => {
  const timeline = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: start, maxEvents: 5 });
  for (let term = 2; term < 30; term++) timeline.observe(start + term * 1000, sample(status({ term })));
  const events = timeline.report().events;
  t.equal(events.length, 5, 'at most maxEvents');
  t.same(events.map((event) => event.term), [29, 28, 27, 26, 25], 'the newest, newest first');
});

t.test('rates over the window: requests split by kind, errors, proposals, stored bytes', async (t) => {
  const counters = new ActivityCounters();
  const timeline = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: start, rateWindowMilliseconds: 10_000 });
  let commitIndex = 100;
  const take = (at: number, diskBytes: number, logicalBytes: number | null = null): void => {
    timeline.observe(at, sample(status({ commitIndex }), { requests: counters.requests(2), proposalsCommitted: counters.proposalsCommitted, store: { files: 1, logicalBytes, diskBytes } }));
  };
  take(start, 1000);
  commitIndex = 160;
  for (let index = 0; index < 20; index++) counters.observeCall('Put', 0);
  for (let index = 0; index < 10; index++) counters.observeCall('Get', index < 4 ? 5 : 0); // 4 NOT_FOUND
  counters.observeCall('Status', 0);
  for (let index = 0; index < 20; index++) counters.observeProposal(index < 18 ? 'committed' : 'failed');
  take(start + 2000, 5000);
  const rates = timeline.report().rates;
  t.equal(rates?.windowSeconds, 2);
  t.equal(rates?.requestsPerSecond, 15.5);
  t.equal(rates?.writesPerSecond, 10);
  t.equal(rates?.readsPerSecond, 5);
  t.equal(rates?.errorsPerSecond, 2, 'non-OK statuses are errors');
  t.same(rates?.byMethodPerSecond, { Put: 10, Get: 5, Status: 0.5 });
  t.equal(rates?.proposalsPerSecond, 9, 'committed proposals only');
  t.equal(rates?.commitsPerSecond, 30, 'entries committed in the cluster, through any node');
  t.equal(rates?.storedBytesPerSecond, null, 'no logical rate when the store does not report the total');
  t.equal(rates?.diskBytesPerSecond, 2000, 'the data file\'s growth');
  t.same(timeline.report().requests, { total: 31, reads: 10, writes: 20, errors: 4, byMethod: { Put: 20, Get: 10, Status: 1 }, inFlight: 2 }, 'the totals too, and the calls in flight');

  // Samples older than the window fall out (the newest one before it is kept as its start).
  for (let second = 3; second <= 30; second++) take(start + second * 1000, 5000);
  const later = timeline.report().rates;
  t.ok(later !== null && later.windowSeconds >= 10 && later.windowSeconds < 11, `the rates cover the last ~10 s (${later?.windowSeconds} s)`);
  t.equal(later?.requestsPerSecond, 0, 'no calls in the window');
  t.same(later?.byMethodPerSecond, {}, 'idle methods are left out');
  t.equal(later?.diskBytesPerSecond, 0);

  // With a logical total: both rates.
  const logical = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: start });
  logical.observe(start, sample(status(), { store: { files: 1, logicalBytes: 100, diskBytes: 5000 } }));
  logical.observe(start + 4000, sample(status(), { store: { files: 2, logicalBytes: 4100, diskBytes: 1_000_000 } }));
  t.equal(logical.report().rates?.storedBytesPerSecond, 1000, 'logical bytes per second');
  t.equal(logical.report().rates?.diskBytesPerSecond, 248_750, 'disk bytes per second');
});

t.test('a sample without a status keeps the last known figures out and says why', async (t) => {
  const timeline = new ClusterTimeline({ nodeId: 'node1', startedAtUnixMilliseconds: start });
  timeline.observe(start, sample(status()));
  timeline.observe(start + 1000, sample(null, { problems: ['the Raft actor did not answer'] }));
  const report = timeline.report();
  t.equal(report.node, null, 'no own status in this sample');
  t.same(report.problems, ['the Raft actor did not answer']);
  t.same(report.events.map((event) => event.kind), ['leader', 'start'], 'a missing status is not a change');
  timeline.observe(start + 2000, sample(status()));
  t.same(timeline.report().events.map((event) => event.kind), ['leader', 'start'], 'nor is its return');
});
