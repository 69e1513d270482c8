// The cluster as the leader sees it, and leadership transfer, asked of any node. Goal: a
// follower's Raft actor answers a leaderStatus request with the leader's status (every member's
// match index and lag) fetched over the peer network; on the leader, its own at once; when the
// leader does not answer in time, its own status marked as not from the leader; a reply it gave up
// on, or one from another node than it asked, is ignored. A transfer asked of a follower goes on
// to the leader and leadership moves; a stranger is refused at once. The gRPC actor's side
// (ClusterBackend) turns the answers into API statuses and waits for the leader to change.
// Method: three real RaftActors over MemoryStorage with an in-memory peer network that passes
// every message through the transport's validator (as the wire does) and can drop messages; the
// ClusterBackend with a scripted Raft side.

import { pino } from 'pino';
import t, { type Test } from 'tap';

import { ClusterBackend } from '../../src/actors/grpc-actor.js';
import { emptyState } from './empty-state.js';
import type { NodeStatus, RaftReply, RaftRequest } from '../../src/actors/protocol.js';
import { type DurableRaftStorage, type PeerNetwork, RaftActor } from '../../src/actors/raft-actor.js';
import { DfsError } from '../../src/errors.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { bootstrap } from '../../src/raft/storage.js';
import type { Entry, HardState, NodeId, SnapshotChunk, SnapshotMeta } from '../../src/raft/types.js';
import { type PeerMessage, validatePeerMessage } from '../../src/transport/validate.js';

class TestStorage extends MemoryStorage implements DurableRaftStorage {
  private cluster: string | null = 'cluster-1';
  persist(batch: { entries: readonly Entry[]; hardState: HardState | null; snapshotChunk: SnapshotChunk | null }): void {
    if (batch.snapshotChunk !== null) this.writeSnapshotChunk(batch.snapshotChunk);
    if (batch.entries.length > 0) this.append(batch.entries);
    if (batch.hardState !== null) this.setHardState(batch.hardState);
  }
  async flush(): Promise<void> {}
  compactFromFile(_meta: SnapshotMeta, _path: string): void {
    throw new Error('no compaction in this test');
  }
  snapshotPath(): string | null {
    return null;
  }
  path(): string {
    return '/nonexistent';
  }
  clusterId(): string | null {
    return this.cluster;
  }
  setClusterId(clusterId: string): void {
    this.cluster = clusterId;
  }
}

/** Delivers between actors on a later turn, through the validator; drops what a filter matches. */
class Hub {
  readonly handlers = new Map<NodeId, (message: PeerMessage) => void>();
  readonly filters = new Set<(message: PeerMessage) => boolean>();
  readonly sent: PeerMessage[] = [];

  network(id: NodeId): PeerNetwork {
    return {
      send: (message) => this.deliver(message),
      setPeerAddress: () => undefined,
      removePeer: () => undefined,
      setClusterId: () => undefined,
      discover: async () => null,
      onMessage: (handler) => void this.handlers.set(id, handler),
      onDiscover: () => undefined,
    };
  }

  deliver(message: PeerMessage): void {
    this.sent.push(message);
    if ([...this.filters].some((filter) => filter(message))) return;
    const checked = validatePeerMessage(structuredClone(message));
    if (!checked.ok) throw new Error(`invalid message on the wire: ${checked.reason}`);
    setImmediate(() => this.handlers.get(message.to)?.(checked.value));
  }
}

interface Node {
  readonly id: NodeId;
  readonly actor: RaftActor;
  readonly replies: RaftReply[];
}

const ids = ['a', 'b', 'c'];
const addresses = { a: '10.0.0.1:12000', b: '10.0.0.2:12000', c: '10.0.0.3:12000' };

function startCluster(t: Test): { hub: Hub; nodes: Node[] } {
  const hub = new Hub();
  const nodes = ids.map((id): Node => {
    const storage = new TestStorage();
    bootstrap(storage, ids, addresses);
    const replies: RaftReply[] = [];
    let actor: RaftActor | null = null;
    actor = new RaftActor({
      nodeId: id,
      advertise: addresses[id as keyof typeof addresses],
      peers: [],
      storage,
      network: hub.network(id),
      toStore: (request) => {
        if (request.type === 'apply') {
          const last = request.entries[request.entries.length - 1];
          if (last !== undefined) setImmediate(() => actor?.handleStoreReport({ type: 'applied', index: last.index }));
        }
      },
      toApi: (reply) => replies.push(reply),
      logger: pino({ level: 'silent' }),
      tickMilliseconds: 5,
      electionTimeoutTicks: 10,
      snapshotEveryEntries: 1_000_000,
      maxMessageBytes: 1 << 20,
      onFatal: (message) => t.fail(`fatal on ${id}: ${message}`),
      onHealth: () => undefined,
    });
    return { id, actor, replies };
  });
  for (const node of nodes) node.actor.start();
  t.teardown(() => {
    for (const node of nodes) node.actor.stop();
  });
  return { hub, nodes };
}

async function waitFor<T>(what: string, probe: () => T | null | undefined | false, timeoutMilliseconds = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMilliseconds;
  for (;;) {
    const value = probe();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function leaderOf(nodes: readonly Node[]): Promise<Node> {
  return waitFor('one leader all follow', () => {
    const leaders = nodes.filter((node) => node.actor.status().role === 'leader');
    const leader = leaders[0];
    if (leaders.length !== 1 || leader === undefined) return null;
    return nodes.every((node) => node.actor.status().leader === leader.id) ? leader : null;
  });
}

function reply<T extends RaftReply['type']>(node: Node, type: T, requestId: string): Extract<RaftReply, { type: T }> | undefined {
  return node.replies.find((each): each is Extract<RaftReply, { type: T }> => each.type === type && 'requestId' in each && each.requestId === requestId);
}

t.test('the Raft actor: the leader status from any node, with a fallback and stale replies ignored', async (t) => {
  const { hub, nodes } = startCluster(t);
  const leader = await leaderOf(nodes);
  const [follower, other] = nodes.filter((node) => node !== leader) as [Node, Node];
  // Just elected, the leader knows its followers' progress only once they answered its first append.
  await waitFor('every member\'s progress known on the leader', () => leader.actor.status().members.every((member) => member.matchIndex >= 1) || null);

  leader.actor.handleRequest({ type: 'leaderStatus', requestId: 'on-leader', timeoutMilliseconds: 1000 });
  const own = reply(leader, 'leaderStatus', 'on-leader');
  t.ok(own?.fromLeader, 'the leader answers at once, with its own status');

  follower.actor.handleRequest({ type: 'leaderStatus', requestId: 'q1', timeoutMilliseconds: 1000 });
  const answered = await waitFor('the leader status', () => reply(follower, 'leaderStatus', 'q1'));
  t.equal(answered.fromLeader, true);
  const status: NodeStatus = answered.status;
  t.equal(status.id, leader.id, 'it is the leader’s status');
  t.equal(status.role, 'leader');
  t.equal(status.leader, leader.id);
  t.equal(status.leaderAddress, addresses[leader.id as keyof typeof addresses]);
  t.equal(status.clusterId, 'cluster-1');
  t.same(status.members.map((member) => member.id).sort(), ids);
  for (const member of status.members) {
    t.ok(member.matchIndex >= 1, `${member.id}: match index ${member.matchIndex} is known`);
    t.ok(member.lagEntries >= 0, `${member.id}: lag ${member.lagEntries} is known`);
    t.equal(member.voter, true);
    t.equal(member.address, addresses[member.id as keyof typeof addresses]);
  }
  t.same([...status.config.voters].sort(), ids);
  t.same(follower.actor.status().members.map((member) => member.matchIndex), [-1, -1, -1], 'the follower’s own status does not know them');

  // The leader does not answer: after the timeout, the follower's own status, not from the leader.
  let dropped: PeerMessage | null = null;
  const drop = (message: PeerMessage): boolean => {
    if (message.type !== 'statusQuery') return false;
    dropped = message;
    return true;
  };
  hub.filters.add(drop);
  const started = Date.now();
  follower.actor.handleRequest({ type: 'leaderStatus', requestId: 'q2', timeoutMilliseconds: 150 });
  const fallback = await waitFor('the fallback', () => reply(follower, 'leaderStatus', 'q2'));
  t.ok(Date.now() - started >= 140, `after about the timeout (${Date.now() - started} ms)`);
  t.equal(fallback.fromLeader, false);
  t.equal(fallback.status.id, follower.id, 'its own status');
  hub.filters.delete(drop);

  // A late reply to the query it gave up on is ignored: no second answer.
  const late = dropped as PeerMessage | null;
  if (late === null || late.type !== 'statusQuery') throw new Error('no query was dropped');
  const lateReply: PeerMessage = {
    type: 'statusReply',
    from: leader.id,
    to: follower.id,
    term: 1,
    requestId: late.requestId,
    status: { role: 'leader', leader: leader.id, commitIndex: 1, appliedIndex: 1, firstIndex: 1, lastIndex: 1, members: [] },
  };
  hub.deliver(lateReply);
  hub.deliver({ ...lateReply, requestId: 'never-asked' });
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(follower.replies.filter((each) => each.type === 'leaderStatus' && each.requestId === 'q2').length, 1, 'the stale reply changed nothing');

  // A reply from another node than the one asked is ignored too; the real one still counts.
  const hold = (message: PeerMessage): boolean => message.type === 'statusQuery';
  hub.filters.add(hold);
  follower.actor.handleRequest({ type: 'leaderStatus', requestId: 'q3', timeoutMilliseconds: 1000 });
  const query = hub.sent.filter((message) => message.type === 'statusQuery').pop();
  if (query === undefined || query.type !== 'statusQuery') throw new Error('no query');
  hub.filters.delete(hold);
  hub.deliver({ ...lateReply, from: other.id, requestId: query.requestId });
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(reply(follower, 'leaderStatus', 'q3'), undefined, 'a reply from a node not asked is no answer');
  hub.deliver({ ...query });
  const real = await waitFor('the real answer', () => reply(follower, 'leaderStatus', 'q3'));
  t.equal(real.fromLeader, true);
});

t.test('the Raft actor: a transfer asked of a follower moves leadership; a stranger is refused at once', async (t) => {
  const { nodes } = startCluster(t);
  const leader = await leaderOf(nodes);
  const [follower, target] = nodes.filter((node) => node !== leader) as [Node, Node];

  follower.actor.handleRequest({ type: 'transferLeadership', requestId: 'stranger', to: 'x' });
  t.match(reply(follower, 'failed', 'stranger'), { code: 'InvalidArgument', message: /"x" is not a member; the members are a, b, c/ });

  follower.actor.handleRequest({ type: 'transferLeadership', requestId: 't1', to: target.id });
  t.same(reply(follower, 'transferForwarded', 't1'), { type: 'transferForwarded', requestId: 't1', to: target.id, leader: leader.id });
  await waitFor('the target leads and all follow it', () => nodes.every((node) => node.actor.status().leader === target.id));
  t.equal(target.actor.status().role, 'leader', 'the target leads');
  await waitFor('the follower told its gRPC actor', () => follower.replies.some((each) => each.type === 'leadership' && each.leader === target.id));
  t.ok(
    follower.replies.some((each) => each.type === 'leadership' && each.leader === target.id),
    'the follower told its gRPC actor of the new leader',
  );

  follower.actor.handleRequest({ type: 'transferLeadership', requestId: 't2', to: null });
  t.same(reply(follower, 'transferForwarded', 't2'), { type: 'transferForwarded', requestId: 't2', to: null, leader: target.id });
  const after = await waitFor('a new leader', () => {
    const leaders = nodes.filter((node) => node.actor.status().role === 'leader');
    return leaders.length === 1 && leaders[0]?.id !== target.id ? leaders[0] : null;
  });
  t.not(after.id, target.id, `without a target, leadership moved on to ${after.id}`);
});

// ---------------------------------------------------------------- the gRPC actor's side


function backendWith(answer: (request: RaftRequest, backend: ClusterBackend) => void, nodeId = 'b'): { backend: ClusterBackend; sent: RaftRequest[] } {
  const sent: RaftRequest[] = [];
  let backend: ClusterBackend | null = null;
  backend = new ClusterBackend({
    nodeId,
    state: emptyState,
    toRaft: (request) => {
      sent.push(request);
      queueMicrotask(() => answer(request, backend as ClusterBackend));
    },
    logger: pino({ level: 'silent' }),
    requestTimeoutMilliseconds: 60_000,
    chunkSizeBytes: 1024 * 1024,
    maxChunksInFlight: 8,
    maxPendingRequests: 16,
  });
  return { backend, sent };
}

function context(timeoutMilliseconds: number) {
  return { signal: new AbortController().signal, deadlineUnixMilliseconds: Date.now() + timeoutMilliseconds };
}

const leaderView: NodeStatus = {
  id: 'a',
  clusterId: 'cluster-1',
  role: 'leader',
  term: 4,
  leader: 'a',
  leaderAddress: '10.0.0.1:12000',
  commitIndex: 20,
  appliedIndex: 19,
  firstIndex: 11,
  lastIndex: 21,
  members: [
    { id: 'a', address: '10.0.0.1:12000', voter: true, matchIndex: 21, lagEntries: 0 },
    { id: 'b', address: '10.0.0.2:12000', voter: true, matchIndex: 18, lagEntries: 3 },
    { id: 'd', address: '10.0.0.4:12000', voter: false, matchIndex: 5, lagEntries: 16 },
  ],
  config: { voters: ['a', 'b'], learners: ['d'] },
};

t.test('ClusterBackend.leaderStatus: the leader’s view in API terms, asked with a timeout inside the deadline', async (t) => {
  const { backend, sent } = backendWith((request, self) => {
    if (request.type === 'leaderStatus') self.handleRaftReply({ type: 'leaderStatus', requestId: request.requestId, status: leaderView, fromLeader: true });
  });
  const result = await backend.leaderStatus(context(1000));
  t.equal(result.fromLeader, true);
  t.match(result.status, { nodeId: 'a', role: 'leader', term: 4, leaderId: 'a', commitIndex: 20, appliedIndex: 19, snapshotIndex: 10 });
  t.same(
    result.status.members.map(({ id, role, suffrage, progressKnown, matchIndex, lagEntries }) => ({ id, role, suffrage, progressKnown, matchIndex, lagEntries })),
    [
      { id: 'a', role: 'leader', suffrage: 'voter', progressKnown: true, matchIndex: 21, lagEntries: 0 },
      { id: 'b', role: 'follower', suffrage: 'voter', progressKnown: true, matchIndex: 18, lagEntries: 3 },
      { id: 'd', role: 'follower', suffrage: 'learner', progressKnown: true, matchIndex: 5, lagEntries: 16 },
    ],
  );
  const asked = sent[0];
  t.ok(asked?.type === 'leaderStatus' && asked.timeoutMilliseconds < 1000 && asked.timeoutMilliseconds >= 700, `the Raft actor gives up first (${asked?.type === 'leaderStatus' ? asked.timeoutMilliseconds : '?'} ms)`);
});

t.test('ClusterBackend.transferLeader on a follower: returns once the leader changes, or fails at the deadline saying why', async (t) => {
  const { backend } = backendWith((request, self) => {
    if (request.type !== 'transferLeadership') return;
    self.handleRaftReply({ type: 'transferForwarded', requestId: request.requestId, to: request.to, leader: 'a' });
    if (request.to === 'c' || request.to === null) setTimeout(() => self.handleRaftReply({ type: 'leadership', leader: 'c' }), 20);
  });
  backend.handleRaftReply({ type: 'leadership', leader: 'a' });
  t.same(await backend.transferLeader('c', context(2000)), { leaderId: 'c' });
  backend.handleRaftReply({ type: 'leadership', leader: 'a' });
  t.same(await backend.transferLeader('', context(2000)), { leaderId: 'c' }, 'no target: done when anybody else leads');
  backend.handleRaftReply({ type: 'leadership', leader: 'a' });
  const error = await backend.transferLeader('b', context(100)).then(
    () => null,
    (caught: unknown) => caught,
  );
  t.ok(error instanceof DfsError && error.code === 'Timeout', 'b never takes over: Timeout');
  t.match(String((error as Error).message), /leadership did not move to b within \d+ ms: this node sent the request on to a/);
});

t.test('the Raft actor: handOver (graceful shutdown) hands leadership to a caught-up voter', async (t) => {
  const { nodes } = startCluster(t);
  const leader = await leaderOf(nodes);
  const to = await leader.actor.handOver(2000);
  t.ok(to !== null && to !== leader.id, `handed over to ${String(to)}`);
  await waitFor('the others follow it', () => nodes.every((node) => node.actor.status().leader === to));
  const follower = nodes.find((node) => node.id !== to);
  t.equal(await follower?.actor.handOver(100), null, 'a follower has nothing to hand over');
});
