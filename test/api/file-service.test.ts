// dfs.FileService end to end through a real grpc-js client. Goal: every RPC reaches the backend
// with the request the .proto promises (defaults applied, enums translated, limits enforced) and
// its answer reaches the client in the documented shape; the streams keep memory bounded in both
// directions and stop the backend's work when the client goes away; cancellation and deadlines
// reach the backend through its AbortSignal. Method: a server on 127.0.0.1 with a free port and
// the in-memory FakeBackend (test/api/fake-backend.ts); each test calls the server as an
// application would, then checks the client's view and what the backend recorded.

import t from 'tap';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  callUnary,
  callUnaryError,
  openGetStream,
  openPutStream,
  readGetStream,
  sleep,
  startTestServer,
  waitFor,
} from './helpers.js';
import type { GetRequest, GetStreamRequest, ListRequest } from '../../src/api/backend.js';

const mebibyte = 1024 * 1024;

t.test('Put stores the bytes and Get returns them, without metadata unless asked', async (t) => {
  const { client, backend } = await startTestServer(t);
  const put = await callUnary(client, 'Put', { key: 'docs/a.txt', data: Buffer.from('hello') });
  t.same(put, { version: 1, sizeBytes: 5 }, 'Put answers with the version and size it stored');
  t.same(backend.content('docs/a.txt'), Buffer.from('hello'));

  const plain = await callUnary<{ data: Buffer; info: unknown }>(client, 'Get', { key: 'docs/a.txt' });
  t.same(plain.data, Buffer.from('hello'));
  t.equal(plain.info, null, 'no info unless include_info is set');
  t.equal((backend.lastCall('get')?.request as GetRequest).consistency, 'linearizable', 'linearizable by default');

  const withInfo = await callUnary<{ info: Record<string, unknown> }>(client, 'Get', { key: 'docs/a.txt', includeInfo: true });
  t.same(withInfo.info, {
    key: 'docs/a.txt', sizeBytes: 5, version: 1, modifiedUnixMilliseconds: backend.clockUnixMilliseconds, mode: 0o644,
  });

  await callUnary(client, 'Get', { key: 'docs/a.txt', consistency: 'LOCAL' });
  t.equal((backend.lastCall('get')?.request as GetRequest).consistency, 'local', 'LOCAL reaches the backend');

  await callUnary(client, 'Put', { key: 'script.sh', data: Buffer.from('#!'), mode: 0o755 });
  const stat = await callUnary<{ mode: number }>(client, 'Stat', { key: 'script.sh' });
  t.equal(stat.mode, 0o755, 'an explicit mode is kept');
});

t.test('Put and Get refuse what the proto cannot rule out', async (t) => {
  const { client, backend } = await startTestServer(t);
  const badMode = await callUnaryError(client, 'Put', { key: 'a', data: Buffer.from('x'), mode: 0o10000 });
  t.equal(badMode.code, GrpcStatus.INVALID_ARGUMENT);
  t.match(badMode.details, /mode must be permission bits from 0 to 07777/);
  t.equal(backend.content('a'), undefined, 'nothing stored');

  const badConsistency = await callUnaryError(client, 'Get', { key: 'a', consistency: 7 });
  t.equal(badConsistency.code, GrpcStatus.INVALID_ARGUMENT);
  t.match(badConsistency.details, /consistency must be LINEARIZABLE \(0\) or LOCAL \(1\), got 7/);

  const badKey = await callUnaryError(client, 'Put', { key: 'a/../b', data: Buffer.from('x') });
  t.equal(badKey.code, GrpcStatus.INVALID_ARGUMENT, 'key rules come from the backend as InvalidKey');
  t.match(badKey.details, /"\." or "\.\." segments/);

  const missing = await callUnaryError(client, 'Get', { key: 'nothing/here' });
  t.equal(missing.code, GrpcStatus.NOT_FOUND);
});

t.test('Delete removes a key and reports a missing one', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.seed('a', Buffer.from('x'));
  const deleted = await callUnary<{ version: number }>(client, 'Delete', { key: 'a' });
  t.equal(deleted.version, 2, 'the removal has its own version');
  t.equal(backend.content('a'), undefined);
  t.equal((await callUnaryError(client, 'Delete', { key: 'a' })).code, GrpcStatus.NOT_FOUND);
  t.equal((await callUnaryError(client, 'Get', { key: 'a' })).code, GrpcStatus.NOT_FOUND);
});

t.test('List pages through a prefix in key order, with the page size bounded', async (t) => {
  const { client, backend } = await startTestServer(t);
  for (let index = 0; index < 25; index++) backend.seed(`logs/${String(index).padStart(2, '0')}`, Buffer.from([index]));
  backend.seed('other/file', Buffer.from('x'));

  const keys: string[] = [];
  let pageToken = '';
  let pages = 0;
  do {
    const page = await callUnary<{ entries: Array<{ key: string; sizeBytes: number }>; nextPageToken: string }>(
      client, 'List', { prefix: 'logs/', pageSize: 10, pageToken });
    keys.push(...page.entries.map((entry) => entry.key));
    t.ok(page.entries.every((entry) => entry.sizeBytes === 1), 'entries carry their metadata');
    pageToken = page.nextPageToken;
    pages += 1;
  } while (pageToken !== '' && pages < 10);
  t.equal(pages, 3, '25 keys in pages of 10');
  t.same(keys, Array.from({ length: 25 }, (_, index) => `logs/${String(index).padStart(2, '0')}`));

  await callUnary(client, 'List', { prefix: '' });
  t.equal((backend.lastCall('list')?.request as ListRequest).pageSize, 1000, 'page size 0 means 1000');
  await callUnary(client, 'List', { prefix: '', pageSize: 50_000, consistency: 'LOCAL' });
  const capped = backend.lastCall('list')?.request as ListRequest;
  t.equal(capped.pageSize, 10_000, 'a larger page size is treated as 10000');
  t.equal(capped.consistency, 'local');

  const badToken = await callUnaryError(client, 'List', { prefix: '', pageToken: '!!not-a-token' });
  t.equal(badToken.code, GrpcStatus.INVALID_ARGUMENT);
});

t.test('Stat describes a file', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.seed('a/b', Buffer.alloc(300), 0o600);
  t.same(await callUnary(client, 'Stat', { key: 'a/b', consistency: 'LOCAL' }), {
    key: 'a/b', sizeBytes: 300, version: 1, modifiedUnixMilliseconds: backend.clockUnixMilliseconds, mode: 0o600,
  });
  t.equal((await callUnaryError(client, 'Stat', { key: 'a/c' })).code, GrpcStatus.NOT_FOUND);
});

t.test('Status, AddPeer and RemovePeer', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.seed('a', Buffer.from('x'));
  const before = await callUnary<Record<string, unknown>>(client, 'Status', {});
  t.same(before, {
    nodeId: 'node1', role: 'LEADER', term: 3, leaderId: 'node1', leaderAddress: '127.0.0.1:12000',
    commitIndex: 1, appliedIndex: 1, snapshotIndex: 0,
    members: [{
      id: 'node1', address: '127.0.0.1:12000', role: 'LEADER', suffrage: 'VOTER',
      progressKnown: true, matchIndex: 0, lagEntries: 0,
    }],
  });

  t.same(await callUnary(client, 'AddPeer', { id: 'node2', address: '127.0.0.1:12001' }), {});
  const after = await callUnary<{ members: Array<{ id: string; suffrage: string; role: string; lagEntries: number }> }>(client, 'Status', {});
  t.same(after.members.map((member) => [member.id, member.role, member.suffrage, member.lagEntries]),
    [['node1', 'LEADER', 'VOTER', 0], ['node2', 'FOLLOWER', 'LEARNER', 1]], 'the new node joins as a learner');

  const again = await callUnaryError(client, 'AddPeer', { id: 'node2', address: '127.0.0.1:12001' });
  t.equal(again.code, GrpcStatus.ALREADY_EXISTS);

  t.same(await callUnary(client, 'RemovePeer', { id: 'node2' }), {});
  const unknown = await callUnaryError(client, 'RemovePeer', { id: 'node9' });
  t.equal(unknown.code, GrpcStatus.FAILED_PRECONDITION);
  t.match(unknown.details, /node9 is not a member/);
});

t.test('PutStream stores the chunks as one value after a header', async (t) => {
  const { client, backend } = await startTestServer(t);
  const { stream, done } = openPutStream(client);
  stream.write({ header: { key: 'big/file', mode: 0o640 } });
  const pieces = [Buffer.alloc(mebibyte, 1), Buffer.alloc(mebibyte, 2), Buffer.from('tail')];
  for (const piece of pieces) stream.write({ chunk: piece });
  stream.end();
  const response = await done;
  t.same(response, { version: 1, sizeBytes: 2 * mebibyte + 4 });
  t.same(backend.content('big/file'), Buffer.concat(pieces));
  t.equal((await callUnary<{ mode: number }>(client, 'Stat', { key: 'big/file' })).mode, 0o640);
});

t.test('PutStream refuses a malformed stream and stores nothing', async (t) => {
  const { client, backend } = await startTestServer(t);
  const cases: Array<{ name: string; messages: unknown[]; details: RegExp }> = [
    { name: 'no message at all', messages: [], details: /received no message/ },
    { name: 'a chunk first', messages: [{ chunk: Buffer.from('x') }], details: /first PutStream message must carry the header/ },
    {
      name: 'a second header',
      messages: [{ header: { key: 'k' } }, { chunk: Buffer.from('x') }, { header: { key: 'k2' } }],
      details: /only the first PutStream message may carry a header/,
    },
    { name: 'a bad mode', messages: [{ header: { key: 'k', mode: 0o177777 } }], details: /mode must be/ },
  ];
  for (const testCase of cases) {
    const { stream, done } = openPutStream(client);
    for (const message of testCase.messages) stream.write(message);
    stream.end();
    const error = await done.then(() => undefined, (caught: { code: number; details: string }) => caught);
    t.equal(error?.code, GrpcStatus.INVALID_ARGUMENT, testCase.name);
    t.match(error?.details, testCase.details, testCase.name);
  }
  t.equal(backend.content('k'), undefined);
  t.equal(backend.content('k2'), undefined);

  backend.maximumFileSizeBytes = 1000;
  const { stream, done } = openPutStream(client);
  stream.write({ header: { key: 'k' } });
  stream.write({ chunk: Buffer.alloc(600) });
  stream.write({ chunk: Buffer.alloc(600) });
  stream.end();
  const tooLarge = await done.then(() => undefined, (caught: { code: number }) => caught);
  t.equal(tooLarge?.code, GrpcStatus.RESOURCE_EXHAUSTED, "the backend's size limit");
});

t.test('PutStream reads from the client only as fast as the backend pulls', async (t) => {
  const { client, backend } = await startTestServer(t);
  let resume!: () => void;
  backend.pausePulling(new Promise<void>((resolve) => { resume = resolve; }));
  const { stream, done } = openPutStream(client);
  stream.write({ header: { key: 'slow' } });
  const chunkSizeBytes = 64 * 1024;
  const chunkCount = 400; // 25 MiB, far more than the buffers on the way
  for (let index = 0; index < chunkCount; index++) stream.write({ chunk: Buffer.alloc(chunkSizeBytes, index % 256) });
  stream.end();
  await sleep(500);
  t.equal(backend.pulledChunks, 1, 'the backend holds on to the first chunk and pulls no more');
  t.ok(stream.writableLength > chunkCount / 2,
    `most chunks wait at the client (${stream.writableLength} of ${chunkCount}): backpressure reached it`);
  resume();
  backend.pausePulling(undefined);
  const response = await done;
  t.equal(response['sizeBytes'], chunkCount * chunkSizeBytes);
  t.equal(backend.pulledChunks, chunkCount);
});

t.test('GetStream sends the metadata, then bounded chunks', async (t) => {
  const { client, backend } = await startTestServer(t);
  const content = Buffer.alloc(5 * mebibyte + 10);
  for (let index = 0; index < content.length; index += 4096) content[index] = index % 251;
  backend.seed('big', content);

  const read = await readGetStream(openGetStream(client, { key: 'big', chunkSizeBytes: mebibyte }));
  t.same(read.info, { key: 'big', sizeBytes: content.length, version: 1, modifiedUnixMilliseconds: backend.clockUnixMilliseconds, mode: 0o644 });
  t.equal(read.chunks.length, 6);
  t.ok(read.chunks.every((chunk) => chunk.length <= mebibyte));
  t.ok(Buffer.concat(read.chunks).equals(content), 'the chunks make up the content');

  await readGetStream(openGetStream(client, { key: 'big' }));
  t.equal((backend.lastCall('getStream')?.request as GetStreamRequest).chunkSizeBytes, mebibyte, '0 means 1 MiB');
  const capped = await readGetStream(openGetStream(client, { key: 'big', chunkSizeBytes: 64 * mebibyte, consistency: 'LOCAL' }));
  const cappedRequest = backend.lastCall('getStream')?.request as GetStreamRequest;
  t.equal(cappedRequest.chunkSizeBytes, 4 * mebibyte, 'chunks never exceed 4 MiB');
  t.equal(cappedRequest.consistency, 'local');
  t.same(capped.chunks.map((chunk) => chunk.length), [4 * mebibyte, mebibyte + 10]);

  backend.seed('empty', Buffer.alloc(0));
  const empty = await readGetStream(openGetStream(client, { key: 'empty' }));
  t.equal(empty.chunks.length, 0, 'an empty file is its metadata alone');
  t.match(empty.info, { key: 'empty', sizeBytes: 0 });

  const missing = await readGetStream(openGetStream(client, { key: 'nothing' })).then(() => undefined, (error: { code: number }) => error);
  t.equal(missing?.code, GrpcStatus.NOT_FOUND, 'a missing key fails before any message');
});

t.test('GetStream produces chunks only as fast as the client reads them', async (t) => {
  const { client, backend } = await startTestServer(t);
  const chunkSizeBytes = 64 * 1024;
  const chunkCount = 1024; // 64 MiB
  backend.seed('huge', Buffer.alloc(chunkSizeBytes * chunkCount, 7));
  const stream = openGetStream(client, { key: 'huge', chunkSizeBytes });
  // Take the first message, then stop reading. (A grpc-js client paused before its first read
  // buffers everything it receives itself, which would hide the server's behaviour.)
  const first = await new Promise<unknown>((resolve) => stream.once('data', resolve));
  stream.pause();
  await sleep(700);
  const producedWhilePaused = backend.producedChunks;
  // The bound is the server's two chunks in flight, the client's 16-message read buffer and the
  // 64 KiB HTTP/2 window: about 20 chunks. Without backpressure it would be all 1024.
  t.ok(producedWhilePaused < 64, `produced ${producedWhilePaused} of ${chunkCount} chunks while the client read nothing`);
  await sleep(300);
  t.equal(backend.producedChunks, producedWhilePaused, 'and no more while the client still reads nothing');
  const read = await readGetStream(stream);
  t.match(first, { message: 'info' });
  t.equal(read.chunks.length, chunkCount);
  t.equal(backend.producedChunks, chunkCount);
});

t.test('a client that leaves a GetStream stops the backend stream', async (t) => {
  const { client, backend } = await startTestServer(t);
  backend.seed('huge', Buffer.alloc(32 * mebibyte));
  const stream = openGetStream(client, { key: 'huge', chunkSizeBytes: 64 * 1024 });
  stream.on('error', () => undefined);
  await new Promise<void>((resolve) => stream.once('data', () => resolve()));
  stream.cancel();
  await waitFor(() => backend.abandonedStreams === 1);
  t.equal(backend.abandonedStreams, 1, 'the backend iterator was closed before its end');
  t.ok(backend.producedChunks < 512, `only ${backend.producedChunks} of 512 chunks were produced`);
});

t.test('cancellation and deadlines reach the backend through its signal', async (t) => {
  const { client, backend } = await startTestServer(t);
  const held = backend.holdNext('put');
  const call = (client['Put'] as (...parameters: unknown[]) => { cancel(): void })
    .call(client, { key: 'a', data: Buffer.from('x') }, () => undefined);
  const context = await held.arrived;
  t.equal(context.deadlineUnixMilliseconds, Infinity, 'no deadline set: Infinity');
  t.notOk(context.signal.aborted);
  call.cancel();
  await waitFor(() => context.signal.aborted);
  t.ok(context.signal.aborted, 'a cancelled call aborts the backend call');

  const heldGet = backend.holdNext('get');
  const deadline = Date.now() + 300;
  const late = callUnaryError(client, 'Get', { key: 'a' }, { deadline });
  const getContext = await heldGet.arrived;
  t.ok(Math.abs(getContext.deadlineUnixMilliseconds - deadline) < 1000, 'the backend sees the client deadline');
  t.equal((await late).code, GrpcStatus.DEADLINE_EXCEEDED);
  await waitFor(() => getContext.signal.aborted);
  t.ok(getContext.signal.aborted, 'a passed deadline aborts the backend call');
  heldGet.release();
  t.equal((await callUnaryError(client, 'Get', { key: 'a' })).code, GrpcStatus.NOT_FOUND, 'the server goes on serving');
});
