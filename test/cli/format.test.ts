// Pure formatting for dfsctl's output: tables, records, byte counts, clocks, the status table and
// watch lines. Goal: columns line up (numbers right-aligned), no trailing spaces, units switch at
// 1024, and the status table merges every node's answer with the leader's view and marks the
// leader. Method: fixed inputs → exact expected text.

import t from 'tap';
import type { ClusterStatus } from '../../src/client/client.js';
import { formatStatusTable, statusRows } from '../../src/cli/commands/cluster.js';
import { formatWatchEvent } from '../../src/cli/commands/watch.js';
import { formatBytes, formatClock, formatMode, formatRecord, formatTable, formatTime } from '../../src/cli/format.js';

t.test('tables align, right-align numbers and trim trailing spaces', async (t) => {
  const lines = formatTable(
    [{ header: 'KEY' }, { header: 'SIZE', align: 'right' }, { header: 'NOTE' }],
    [
      ['a', '1 B', ''],
      ['docs/long-name.txt', '20.0 MiB', 'x'],
    ],
  );
  t.same(lines, ['KEY                     SIZE  NOTE', 'a                        1 B', 'docs/long-name.txt  20.0 MiB  x']);
  t.same(formatTable([{ header: 'A' }], []), ['A'], 'no rows: just the header');
  t.same(formatRecord([['key', 'a'], ['version', '7']]), ['key:      a', 'version:  7']);
});

t.test('bytes, clocks, modes and times', async (t) => {
  const bytes: Array<[number, string]> = [[0, '0 B'], [1023, '1023 B'], [1024, '1.00 KiB'], [1536, '1.50 KiB'], [20 * 1024 * 1024, '20.0 MiB'], [200 * 1024 ** 3, '200 GiB']];
  for (const [value, text] of bytes) t.equal(formatBytes(value), text, `${value} bytes`);
  t.equal(formatClock(0), '0:00');
  t.equal(formatClock(61.2), '1:02');
  t.equal(formatClock(3600 * 2 + 5), '2:00:05');
  t.equal(formatClock(NaN), '--:--');
  t.equal(formatMode(0o644), '0644');
  t.equal(formatMode(0), '-');
  t.equal(formatTime(Date.UTC(2026, 0, 2, 3, 4, 5)), '2026-01-02T03:04:05Z');
});

const member = (id: string, role: string, extra: Partial<ClusterStatus['members'][number]> = {}): ClusterStatus['members'][number] => ({ id, address: `10.0.0.${id.slice(-1)}:12000`, role, suffrage: 'VOTER', progressKnown: false, matchIndex: 0, lagEntries: 0, ...extra });

t.test('the status table merges the answers and marks the leader', async (t) => {
  const leader: ClusterStatus = {
    nodeId: 'node2',
    role: 'LEADER',
    term: 4,
    leaderId: 'node2',
    leaderAddress: '10.0.0.2:12000',
    commitIndex: 90,
    appliedIndex: 90,
    members: [member('node1', 'FOLLOWER', { progressKnown: true, matchIndex: 88, lagEntries: 2 }), member('node2', 'LEADER'), member('node3', 'FOLLOWER', { progressKnown: true, matchIndex: 90 })],
  };
  const follower: ClusterStatus = { nodeId: 'node1', role: 'FOLLOWER', term: 4, leaderId: 'node2', leaderAddress: '10.0.0.2:12000', commitIndex: 88, appliedIndex: 87, members: [member('node1', 'FOLLOWER'), member('node2', 'LEADER'), member('node3', 'ROLE_UNKNOWN')] };
  const rows = statusRows([
    { endpoint: 'h1:13001', status: follower },
    { endpoint: 'h2:13002', status: leader },
  ]);
  t.same(formatStatusTable(rows), [
    'NODE     ADDRESS         ENDPOINT  ROLE      SUFFRAGE  TERM  COMMIT  APPLIED  LAG',
    '  node1  10.0.0.1:12000  h1:13001  FOLLOWER  VOTER        4      88       87    2',
    '* node2  10.0.0.2:12000  h2:13002  LEADER    VOTER        4      90       90    0',
    '  node3  10.0.0.3:12000  -         FOLLOWER  VOTER        -       -        -    0',
  ]);
  const onlyFollower = statusRows([{ endpoint: 'h1:13001', status: follower }]);
  t.same(
    onlyFollower.map((row) => [row.id, row.leader, row.role, row.lagEntries]),
    [
      ['node1', false, 'FOLLOWER', null],
      ['node2', true, 'LEADER', null],
      ['node3', false, '', null],
    ],
    "without the leader's answer: the follower's view, the leader still marked, no lag",
  );
});

t.test('watch lines', async (t) => {
  t.equal(formatWatchEvent({ version: 12, type: 'PUT', key: 'docs/a.txt', info: { sizeBytes: 5 } }), '      12  PUT     docs/a.txt  5 B');
  t.equal(formatWatchEvent({ version: 13, type: 'DELETE', key: 'docs/a.txt' }), '      13  DELETE  docs/a.txt');
});
