// Choosing a live endpoint. Goal: the first endpoint whose Status shows a member of a cluster with
// a known leader is used whatever the order of answers (else the first that answered at all), every other client is closed, and when none answers the error lists each
// endpoint with its reason in the order given, exits 4 and says what to do. Also the mapping of
// client errors to exit codes. Method: fake clients whose Status answers or fails after a delay.

import t from 'tap';
import { findLiveEndpoint, NoLiveEndpointError, probeAll, servesCluster, type ProbeClient } from '../../src/cli/endpoints.js';
import { exitCodes } from '../../src/cli/exit-codes.js';
import { describeFailure, toCliError } from '../../src/cli/failure.js';
import { DfsClientError } from '../../src/client/client.js';

class FakeClient implements ProbeClient {
  closed = false;
  constructor(
    readonly endpoint: string,
    private readonly answer: { delayMilliseconds: number; error?: Error },
  ) {}
  async status(): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, this.answer.delayMilliseconds));
    if (this.answer.error !== undefined) throw this.answer.error;
    return { nodeId: this.endpoint };
  }
  close(): void {
    this.closed = true;
  }
}

const refused = (endpoint: string): DfsClientError => new DfsClientError('UNAVAILABLE', `No connection established. Last error: Error: connect ECONNREFUSED ${endpoint}. Resolution note: `);

t.test('the first to answer wins; the others are closed', async (t) => {
  const clients = new Map<string, FakeClient>();
  const answers: Record<string, { delayMilliseconds: number; error?: Error }> = {
    'a:1': { delayMilliseconds: 5, error: refused('a:1') },
    'b:2': { delayMilliseconds: 40 },
    'c:3': { delayMilliseconds: 10 },
  };
  const connect = (endpoint: string): FakeClient => {
    const client = new FakeClient(endpoint, answers[endpoint] ?? { delayMilliseconds: 0 });
    clients.set(endpoint, client);
    return client;
  };
  const chosen = await findLiveEndpoint(['a:1', 'b:2', 'c:3'], connect);
  t.equal(chosen.endpoint, 'c:3', 'the fastest live endpoint');
  t.equal(chosen.client.closed, false, 'its client stays open');
  t.same([...clients.values()].filter((client) => client.closed).map((client) => client.endpoint).sort(), ['a:1', 'b:2'], 'the rest are closed');
});

t.test('a node that knows no leader, or is no longer a member, is passed over for one that serves the cluster', async (t) => {
  const statuses: Record<string, { delayMilliseconds: number; status: unknown }> = {
    // Removed from the cluster but still running: answers first, knows no leader.
    'a:1': { delayMilliseconds: 1, status: { nodeId: 'node1', leaderId: '', members: [] } },
    // Removed, and still believes in the old leader: not among the members it knows.
    'b:2': { delayMilliseconds: 5, status: { nodeId: 'node2', leaderId: 'node3', members: [{ id: 'node3' }, { id: 'node4' }] } },
    'c:3': { delayMilliseconds: 30, status: { nodeId: 'node3', leaderId: 'node3', members: [{ id: 'node3' }, { id: 'node4' }] } },
  };
  const clients: Array<{ endpoint: string; closed: boolean }> = [];
  const connect = (endpoint: string) => {
    const client = {
      endpoint,
      closed: false,
      status: async () => {
        const answer = statuses[endpoint];
        await new Promise((resolve) => setTimeout(resolve, answer?.delayMilliseconds ?? 0));
        return answer?.status;
      },
      close: () => {
        client.closed = true;
      },
    };
    clients.push(client);
    return client;
  };
  const chosen = await findLiveEndpoint(['a:1', 'b:2', 'c:3'], connect);
  t.equal(chosen.endpoint, 'c:3', 'the member that knows its leader');
  t.same(clients.filter((client) => client.closed).map((client) => client.endpoint), ['a:1', 'b:2'], 'the others are closed');

  // During an election nobody knows a leader: the first to answer is used (its error will say so).
  statuses['c:3'] = { delayMilliseconds: 30, status: { nodeId: 'node3', leaderId: '', members: [{ id: 'node3' }] } };
  const fallback = await findLiveEndpoint(['a:1', 'b:2', 'c:3'], connect);
  t.equal(fallback.endpoint, 'a:1', 'the first that answered');
  t.ok(servesCluster({ nodeId: 'x', leaderId: 'y' }), 'a known leader without a member list is enough');
  t.notOk(servesCluster(null));
});

t.test('none answers: every endpoint with its reason, exit 4, and what to do', async (t) => {
  const connect = (endpoint: string): FakeClient => new FakeClient(endpoint, endpoint === 'b:2' ? { delayMilliseconds: 20, error: new DfsClientError('DEADLINE_EXCEEDED', 'Deadline exceeded') } : { delayMilliseconds: 1, error: refused(endpoint) });
  const error = await findLiveEndpoint(['a:1', 'b:2'], connect).then(
    () => null,
    (failure: unknown) => failure,
  );
  t.ok(error instanceof NoLiveEndpointError);
  const failure = error as NoLiveEndpointError;
  t.equal(failure.exitCode, exitCodes.noLiveEndpoint);
  t.equal(failure.message, 'no live endpoint: a:1 (UNAVAILABLE: connect ECONNREFUSED a:1); b:2 (DEADLINE_EXCEEDED: Deadline exceeded)');
  t.match(describeFailure(failure), /hint: is a dfs node running\? start one with `npm run cluster` or pass --endpoints/);
});

t.test('probeAll: every endpoint, answers and reasons in order, every client closed', async (t) => {
  const clients: FakeClient[] = [];
  const results = await probeAll(
    ['a:1', 'b:2'],
    (endpoint) => {
      const client = new FakeClient(endpoint, endpoint === 'a:1' ? { delayMilliseconds: 10 } : { delayMilliseconds: 1, error: refused(endpoint) });
      clients.push(client);
      return client;
    },
    (client) => client.status(),
  );
  t.same(results, [
    { endpoint: 'a:1', status: { nodeId: 'a:1' } },
    { endpoint: 'b:2', reason: 'UNAVAILABLE: connect ECONNREFUSED b:2' },
  ]);
  t.ok(clients.every((client) => client.closed));
});

t.test('client errors map to exit codes with the gRPC code and a hint', async (t) => {
  const cases: Array<[code: string, exitCode: number, hint: RegExp]> = [
    ['NOT_FOUND', exitCodes.notFound, /dfsctl ls/],
    ['INVALID_ARGUMENT', exitCodes.usage, /relative paths/],
    ['ALREADY_EXISTS', exitCodes.conflict, /remove it first/],
    ['FAILED_PRECONDITION', exitCodes.conflict, /members list/],
    ['UNAVAILABLE', exitCodes.failed, /retry/],
    ['DEADLINE_EXCEEDED', exitCodes.failed, /majority/],
    ['INTERNAL', exitCodes.failed, /log/],
    ['STATUS_99', exitCodes.failed, /^$/],
  ];
  for (const [code, exitCode, hint] of cases) {
    const failure = toCliError(new DfsClientError(code, 'the message'), 'get k');
    t.equal(failure.exitCode, exitCode, code);
    t.equal(failure.message, `get k: the message (${code})`);
    t.match(failure.hint, hint);
  }
  const local = toCliError(Object.assign(new Error("ENOENT: no such file or directory, open 'x'"), { code: 'ENOENT' }), 'cp x dfs:y');
  t.equal(local.exitCode, exitCodes.notFound, 'a missing local file is not found');
  t.equal(toCliError(new Error('boom'), 'ls').exitCode, exitCodes.failed);
});
