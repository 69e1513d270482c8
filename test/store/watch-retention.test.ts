// -watch-retention reaches the store: the node's configuration (flag, DFS_WATCH_RETENTION or
// dfs.yaml watchRetention) becomes NodeSettings.watchRetainedChanges, which the store worker turns
// into the StateMachine's retainedChanges (stateMachineOptions, the same call workers/store.ts
// makes). Goal: a small retention compacts the change log, and a Watch from a version it dropped
// gets the Compacted error naming the oldest version still kept; the default is the store's.
// Method: loadConfig on a command line, the settings derived as the supervisor does, a real state
// folder opened with them, and Watch served by the gRPC actor's backend over a real StateReader.

import { pino } from 'pino';
import t from 'tap';

import { ClusterBackend } from '../../src/actors/grpc-actor.js';
import { loadConfig } from '../../src/config/index.js';
import { defaultRetainedChanges, StateMachine } from '../../src/store/state-machine.js';
import { readerStatePort } from '../../src/store/state-port.js';
import { StateReader } from '../../src/store/state-reader.js';
import { settingsFromConfig, stateMachineOptions, type NodeSettings } from '../../src/supervisor/settings.js';
import { bytes, LogBuilder, removeFolder, run, temporaryFolder, testMapSizeBytes } from './state-helpers.js';

function settingsFor(argv: readonly string[], env: Record<string, string> = {}): NodeSettings {
  const result = loadConfig({ argv, env, cwd: '/work/node', readFile: () => { throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); } });
  if (result.kind !== 'config') throw new Error(`configuration refused: ${JSON.stringify(result)}`);
  return settingsFromConfig(result.config);
}

t.test('the default retention is the store’s default', async (t) => {
  t.equal(settingsFor([]).watchRetainedChanges, defaultRetainedChanges);
  t.same(stateMachineOptions(settingsFor([])), { retainedChanges: defaultRetainedChanges });
  t.same(stateMachineOptions(settingsFor([], { DFS_WATCH_RETENTION: '42' })), { retainedChanges: 42 });
});

t.test('a small -watch-retention compacts the log; a Watch from before it gets Compacted', async (t) => {
  const folder = temporaryFolder('watch-retention');
  const settings = settingsFor(['-watch-retention', '3']);
  const machine = StateMachine.open(folder, { ...stateMachineOptions(settings), mapSizeBytes: testMapSizeBytes, syncCommits: false });
  const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
  const backend = new ClusterBackend({
    nodeId: settings.nodeId,
    state: readerStatePort(reader),
    toRaft: () => undefined,
    logger: pino({ level: 'silent' }),
    requestTimeoutMilliseconds: 1000,
    chunkSizeBytes: 1024,
    maxChunksInFlight: 2,
    maxPendingRequests: 16,
  });
  t.teardown(async () => {
    backend.close();
    await reader.close();
    await machine.close();
    removeFolder(folder);
  });

  const log = new LogBuilder();
  for (let index = 1; index <= 10; index++) run(machine, log, { type: 'put', key: `k${index}`, data: bytes(String(index)), modeBits: 0o644, modifiedMilliseconds: 1 });
  backend.handleStoreEvent({ type: 'applied', index: 10, results: [] });
  t.same(machine.changeLog(), { startVersion: 8, changeCount: 3 }, 'ten changes applied, the newest three kept');

  const context = { signal: new AbortController().signal, deadlineUnixMilliseconds: Number.POSITIVE_INFINITY };
  await t.rejects(
    backend.watch({ prefix: '', fromVersion: 2 }, context)[Symbol.asyncIterator]().next(),
    { code: 'Compacted', message: /version 2 is no longer in this node's change log: the oldest version still available is 8/ },
    'a Watch from a dropped version is told the oldest one still kept',
  );
  const resumed = backend.watch({ prefix: '', fromVersion: 8 }, context)[Symbol.asyncIterator]();
  const first = await resumed.next();
  t.match(first.value, { version: 8, key: 'k8' }, 'from the oldest kept version it resumes');
  await resumed.return?.(undefined);
});
