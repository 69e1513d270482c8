// DfsClient.putStream when the server refuses the upload before it ends (a bad key): the call must
// reject with the server's reason, promptly, however much the caller still had to send — not hang
// waiting for a 'drain' that never comes, nor leave the rejection unhandled. Method: the real gRPC
// server over the in-memory FakeBackend (test/api/helpers.ts) and a source of 64 MiB that would
// fill every buffer.

import t from 'tap';

import { DfsClient } from '../../src/client/client.js';
import { startTestServer } from '../api/helpers.js';

t.test('a refused PutStream rejects with the server reason, without hanging', async (t) => {
  const { address } = await startTestServer(t);
  const client = new DfsClient(address);
  t.teardown(() => client.close());
  const chunk = new Uint8Array(1024 * 1024);
  let produced = 0;
  const source = (function* () {
    for (let index = 0; index < 64; index++) {
      produced++;
      yield chunk;
    }
  })();
  const started = Date.now();
  await t.rejects(client.putStream('bad/../key', source, { timeoutMilliseconds: 30_000 }), { code: 'INVALID_ARGUMENT' }, 'the server reason');
  t.ok(Date.now() - started < 10_000, 'promptly');
  t.ok(produced < 64, `the client stopped reading its source (${produced} of 64 chunks)`);
});
