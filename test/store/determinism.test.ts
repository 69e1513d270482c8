// Every node applies the same entries and must end with byte-identical state, whatever batches
// its driver happened to cut the log into, and a node that restarts must not apply anything twice.
// Method: a seeded workload that mixes every command (with collisions, rejections, no-ops and
// malformed entries) is applied to fresh machines in different ways — one batch, random batch
// sizes, one entry at a time, tiny transactions — and their digests and results compared; then a
// machine is stopped halfway, reopened and fed the whole log again from index 1.

import t from 'tap';

import type { CommandResult } from '../../src/store/commands.js';
import { StateMachine, type AppliedEntry } from '../../src/store/state-machine.js';
import { openMachine, removeFolder, temporaryFolder, testMachineOptions } from './state-helpers.js';
import { mixedWorkload, seededRandom } from './state-workload.js';

const entries = mixedWorkload(400, 20240501);

function applyInBatches(machine: StateMachine, all: readonly AppliedEntry[], batchSize: () => number): CommandResult[] {
  const results: CommandResult[] = [];
  for (let position = 0; position < all.length; ) {
    const size = Math.max(1, batchSize());
    results.push(...machine.apply(all.slice(position, position + size)));
    position += size;
  }
  return results;
}

t.test('the same entries give the same state and results, however they are batched', async (t) => {
  const folders = [0, 1, 2, 3].map((number) => temporaryFolder(`determinism-${number}`));
  t.teardown(() => folders.forEach(removeFolder));
  const random = seededRandom(7);
  const ways: [string, (machine: StateMachine) => CommandResult[]][] = [
    ['one batch', (machine) => machine.apply(entries)],
    ['random batches of 1 to 40', (machine) => applyInBatches(machine, entries, () => 1 + Math.floor(random() * 40))],
    ['one entry at a time', (machine) => applyInBatches(machine, entries, () => 1)],
  ];
  const outcomes: { digest: string; results: string }[] = [];
  for (const [number, [way, apply]] of ways.entries()) {
    const machine = openMachine(folders[number] as string);
    const results = apply(machine);
    outcomes.push({ digest: machine.digest(), results: JSON.stringify(results) });
    t.equal(machine.appliedIndex(), entries.length, `${way}: everything applied`);
    await machine.close();
  }
  const small = StateMachine.open(folders[3] as string, { ...testMachineOptions, maxTransactionBytes: 1024 });
  outcomes.push({ digest: (small.apply(entries), small.digest()), results: '' });
  await small.close();

  const [first] = outcomes;
  for (const [number, outcome] of outcomes.entries()) t.equal(outcome.digest, first?.digest, `digest of way ${number} matches`);
  t.equal(outcomes[1]?.results, first?.results, 'results match (random batches)');
  t.equal(outcomes[2]?.results, first?.results, 'results match (one at a time)');

  const results = JSON.parse(first?.results ?? '[]') as CommandResult[];
  const codes = new Set<string>(results.map((result) => (result.ok ? 'ok' : result.code)));
  t.ok(['ok', 'FailedPrecondition', 'KeyNotFound', 'InvalidArgument', 'InvalidKey'].every((code) => codes.has(code)), `the workload exercises rejections too (${[...codes].join(', ')})`);
});

t.test('a restarted machine skips what it applied and ends identical', async (t) => {
  const reference = temporaryFolder('replay-reference');
  const restarted = temporaryFolder('replay-restarted');
  t.teardown(() => [reference, restarted].forEach(removeFolder));
  const whole = openMachine(reference);
  const wholeResults = whole.apply(entries);
  const expected = whole.digest();
  await whole.close();

  const first = openMachine(restarted);
  const firstResults = first.apply(entries.slice(0, 250));
  await first.close();
  const second = openMachine(restarted);
  t.equal(second.appliedIndex(), 250, 'the applied index survived the restart');
  // The driver replays the log from before the applied index: those entries must be skipped.
  const secondResults = second.apply(entries.slice(100));
  t.ok(secondResults.every((result) => result.index > 250), 'no result for an entry applied before the restart');
  t.same(second.apply(entries), [], 'a full replay does nothing');
  t.equal(second.digest(), expected, 'same state as the machine that never stopped');
  t.equal(JSON.stringify([...firstResults, ...secondResults]), JSON.stringify(wholeResults), 'and the same results');
  await second.close();
});
