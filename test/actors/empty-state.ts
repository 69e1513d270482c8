// A StatePort over an empty namespace, for tests of the gRPC actor's backend that only look at
// what it sends to the Raft actor.

import type { StatePort } from '../../src/actors/grpc-actor.js';

export const emptyState: StatePort = {
  encode: () => new Uint8Array([1]),
  chunkHash: () => new Uint8Array(32),
  validateKey: () => null,
  validatePrefix: () => null,
  stat: () => null,
  get: () => null,
  openRead: () => null,
  list: () => ({ entries: [], nextPageToken: '' }),
  appliedIndex: () => 0,
  changes: (from) => ({ changes: [], next: from, appliedIndex: 0, caughtUp: true }),
};
