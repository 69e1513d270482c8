// Error mapping. Goal: every DfsError code reaches a gRPC client as the status code the design
// promises (DESIGN.md "Bad input", Examples #6), with the backend's message; codes that mean
// "retry" carry the delay in the `grpc-retry-pushback-ms` trailer and in the message, and a
// NotLeader error names the leader in `dfs-leader`; an unexpected error becomes INTERNAL, is
// logged, and does not leak its text. Method: the FakeBackend throws each error from Get, a real
// grpc-js client reads the status and trailers; the expected table is written out here
// independently of src/api/status.ts so that a change to either shows up.

import t from 'tap';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DfsError, type DfsErrorCode } from '../../src/errors.js';
import { maximumDetailsLength, statusRules } from '../../src/api/status.js';
import { callUnaryError, startTestServer } from './helpers.js';

const expected: Record<DfsErrorCode, { code: GrpcStatus; retry: boolean }> = {
  InvalidKey: { code: GrpcStatus.INVALID_ARGUMENT, retry: false },
  InvalidArgument: { code: GrpcStatus.INVALID_ARGUMENT, retry: false },
  KeyNotFound: { code: GrpcStatus.NOT_FOUND, retry: false },
  TooLarge: { code: GrpcStatus.RESOURCE_EXHAUSTED, retry: false },
  ResourceExhausted: { code: GrpcStatus.RESOURCE_EXHAUSTED, retry: true },
  NotLeader: { code: GrpcStatus.UNAVAILABLE, retry: true },
  NoLeader: { code: GrpcStatus.UNAVAILABLE, retry: true },
  Unavailable: { code: GrpcStatus.UNAVAILABLE, retry: true },
  Timeout: { code: GrpcStatus.DEADLINE_EXCEEDED, retry: false },
  FailedPrecondition: { code: GrpcStatus.FAILED_PRECONDITION, retry: false },
  Compacted: { code: GrpcStatus.FAILED_PRECONDITION, retry: false },
  AlreadyExists: { code: GrpcStatus.ALREADY_EXISTS, retry: false },
  Internal: { code: GrpcStatus.INTERNAL, retry: false },
};

t.test('the table covers every code, as specified', async (t) => {
  t.same(Object.keys(statusRules).sort(), Object.keys(expected).sort());
  for (const [code, rule] of Object.entries(statusRules)) {
    t.equal(rule.code, expected[code as DfsErrorCode].code, code);
  }
});

t.test('each DfsError code reaches the client as its status', async (t) => {
  const { client, backend } = await startTestServer(t);
  for (const [dfsCode, { code, retry }] of Object.entries(expected)) {
    backend.failNext('get', new DfsError(dfsCode as DfsErrorCode, `scripted ${dfsCode}`));
    const error = await callUnaryError(client, 'Get', { key: 'a' });
    t.equal(error.code, code, `${dfsCode} → ${GrpcStatus[code]}`);
    t.match(error.details, new RegExp(`^scripted ${dfsCode}`), `${dfsCode} keeps the backend's message`);
    const pushback = error.metadata.get('grpc-retry-pushback-ms');
    if (retry) {
      t.equal(pushback.length, 1, `${dfsCode} carries a retry delay`);
      t.match(error.details, new RegExp(`; retry in ${String(pushback[0])} ms$`), `${dfsCode} says when to retry`);
    } else {
      t.equal(pushback.length, 0, `${dfsCode} suggests no retry`);
    }
  }
});

t.test('a retry hint uses the delay and leader the error names', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.failNext('put', new DfsError('NotLeader', 'not the leader', { leader: 'node2@10.0.0.2:12000', retryAfterMilliseconds: 250 }));
  const error = await callUnaryError(client, 'Put', { key: 'a', data: Buffer.from('x') });
  t.equal(error.code, GrpcStatus.UNAVAILABLE);
  t.equal(error.details, 'not the leader; retry in 250 ms');
  t.same(error.metadata.get('grpc-retry-pushback-ms'), ['250']);
  t.same(error.metadata.get('dfs-leader'), ['node2@10.0.0.2:12000']);

  backend.failNext('put', new DfsError('NoLeader', 'no leader', { retryAfterMilliseconds: 10_000_000 }));
  const capped = await callUnaryError(client, 'Put', { key: 'a', data: Buffer.from('x') });
  t.same(capped.metadata.get('grpc-retry-pushback-ms'), ['60000'], 'a delay is capped at one minute');
});

t.test('a long message is cut, but keeps its retry hint', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.failNext('get', new DfsError('Unavailable', 'x'.repeat(100_000)));
  const error = await callUnaryError(client, 'Get', { key: 'a' });
  t.ok(error.details.length <= maximumDetailsLength, `details are ${error.details.length} characters`);
  t.match(error.details, /… \(cut\); retry in 1000 ms$/);
});

t.test('an unexpected error is INTERNAL, logged, and not shown to the client', async (t) => {
  const { client, backend, logLines } = await startTestServer(t);
  backend.failNext('stat', new TypeError('secret path /var/lib/dfs/state.mdb broke'));
  const error = await callUnaryError(client, 'Stat', { key: 'a' });
  t.equal(error.code, GrpcStatus.INTERNAL);
  t.notMatch(error.details, /secret/, 'the error text stays on the server');
  t.match(error.details, /internal error in Stat/);
  const logged = logLines.find((line) => line['msg'] === 'unexpected error in a gRPC handler');
  t.ok(logged, 'the error is logged');
  t.match(logged, { level: 50, method: 'Stat', err: { message: /secret path/ } });

  backend.failNext('stat', 'a thrown string');
  t.equal((await callUnaryError(client, 'Stat', { key: 'a' })).code, GrpcStatus.INTERNAL, 'even a non-Error');
});
