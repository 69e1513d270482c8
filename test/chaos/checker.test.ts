// Tests of the chaos suite's linearizability checker: a checker that accepts everything would make
// every chaos run pass. Method: hand-built register histories with exact invoke/complete times,
// each bad one next to a good one of the same shape — a stale read, a lost acknowledged write, a
// read of a value never written (or only written by a refused Put), an unknown Put that both did
// and did not apply, a Delete that reports NOT_FOUND over a present value — expecting a violation
// and a proof made of the operations that matter; then large random histories produced by a
// simulated linearizable register (concurrent clients, unknown outcomes that applied late or
// never), which must pass within a bounded time, and the same histories with one read made stale,
// which must fail with a short proof.

import t from 'tap';

import { checkHistory, checkKey } from './checker.js';
import type { Operation, OperationKind, Outcome } from './history.js';

let nextId = 0;

function op(kind: OperationKind, value: string | null, invoke: number, complete: number, outcome: Outcome = 'ok', extra: { key?: string; found?: boolean } = {}): Operation {
  return {
    id: nextId++,
    client: 'c',
    node: 'n',
    kind,
    key: extra.key ?? 'k',
    value,
    ...(extra.found === undefined ? {} : { found: extra.found }),
    invokeMilliseconds: invoke,
    completeMilliseconds: outcome === 'unknown' ? Infinity : complete,
    outcome,
  };
}

const put = (value: string, invoke: number, complete: number, outcome: Outcome = 'ok'): Operation => op('put', value, invoke, complete, outcome);
const get = (value: string | null, invoke: number, complete: number, outcome: Outcome = 'ok'): Operation => op('get', value, invoke, complete, outcome);
const del = (found: boolean | undefined, invoke: number, complete: number, outcome: Outcome = 'ok'): Operation =>
  op('delete', null, invoke, complete, outcome, found === undefined ? {} : { found });

function verdict(operations: Operation[]): string {
  return checkKey('k', operations).verdict;
}

t.test('sequential and concurrent histories that are linearizable', async (t) => {
  t.equal(verdict([]), 'linearizable', 'an empty history');
  t.equal(verdict([get(null, 0, 1)]), 'linearizable', 'a read before any write sees nothing');
  t.equal(verdict([put('a', 0, 1), get('a', 2, 3), del(true, 4, 5), get(null, 6, 7), del(false, 8, 9), put('b', 10, 11), get('b', 12, 13)]), 'linearizable', 'put, get, delete, get, delete again, put, get');
  t.equal(verdict([put('a', 0, 10), get(null, 1, 2), get('a', 3, 4), get('a', 5, 6)]), 'linearizable', 'reads concurrent with a write see before, then after');
  t.equal(verdict([put('a', 0, 10), put('b', 0, 10), get('b', 1, 2), get('a', 3, 4)]), 'linearizable', 'two concurrent writes, read in the order b then a');
  t.equal(verdict([put('a', 0, 1), put('b', 2, 3, 'fail'), get('a', 4, 5)]), 'linearizable', 'a refused write is ignored');
  t.equal(verdict([put('a', 0, 1), get('a', 2, 3, 'unknown'), get('x', 2, 3, 'fail')]), 'linearizable', 'unanswered reads constrain nothing');
});

t.test('unknown outcomes may take effect any time after their invoke, or never', async (t) => {
  t.equal(verdict([put('a', 0, 1), put('b', 2, 3, 'unknown'), get('a', 4, 5), get('a', 6, 7)]), 'linearizable', 'an unknown write that never applied');
  t.equal(verdict([put('a', 0, 1), put('b', 2, 3, 'unknown'), get('a', 4, 5), get('b', 60, 61)]), 'linearizable', 'an unknown write that applied long after its client gave up');
  t.equal(verdict([put('a', 0, 1), del(undefined, 2, 3, 'unknown'), get('a', 4, 5), get(null, 6, 7)]), 'linearizable', 'an unknown delete that applied late');
  t.equal(verdict([put('a', 0, 1), del(undefined, 2, 3, 'unknown'), get('a', 4, 5)]), 'linearizable', 'an unknown delete that never applied');
});

t.test('a stale read is rejected, and the proof names the writes it skipped', async (t) => {
  const first = put('a', 0, 1);
  const second = put('b', 2, 3);
  const stale = get('a', 4, 5);
  const noise = [get('a', 1.5, 1.8), get('b', 3.5, 3.8), put('c', 6, 7), get('c', 8, 9)];
  const result = checkKey('k', [first, second, stale, ...noise]);
  t.equal(result.verdict, 'violation');
  t.same(result.proof?.map((operation) => operation.id).sort(), [first.id, second.id, stale.id].sort(), 'the proof: put a, put b completed, then a read of a');
  t.match(result.explanation ?? '', /no linearization exists/);
  t.equal(verdict([first, put('b', 2, 6), stale]), 'linearizable', 'the same read is fine while b is still in flight');
});

t.test('a lost acknowledged write is rejected', async (t) => {
  t.equal(verdict([put('a', 0, 1), get(null, 2, 3)]), 'violation', 'a read after an acknowledged put sees nothing');
  t.equal(verdict([put('a', 0, 1), put('b', 2, 3), get('a', 10, 11), get('a', 12, 13)]), 'violation', 'the later acknowledged write vanished');
  t.equal(verdict([put('a', 0, 1), del(false, 2, 3)]), 'violation', 'a delete reports NOT_FOUND right after an acknowledged put');
  t.equal(verdict([put('a', 0, 1), del(true, 2, 3), del(true, 4, 5)]), 'violation', 'two acknowledged deletes both found the value');
});

t.test('a read of a value never written is rejected', async (t) => {
  t.equal(verdict([get('ghost', 0, 1)]), 'violation', 'nothing ever wrote it');
  t.equal(verdict([put('a', 0, 1, 'fail'), get('a', 2, 3)]), 'violation', 'only a write that was refused (provably not applied) wrote it');
  t.equal(verdict([get('a', 0, 1), put('a', 2, 3)]), 'violation', 'its write was invoked only after the read completed');
  t.equal(verdict([get('a', 0, 1), put('a', 2, 3, 'unknown')]), 'violation', 'its unknown write was invoked only after the read completed');
});

t.test('an unknown operation that both did and did not apply is rejected', async (t) => {
  t.equal(verdict([put('a', 0, 1), put('b', 2, 3, 'unknown'), get('b', 4, 5), get('a', 6, 7)]), 'violation', 'b was read, then a (written before b) again');
  t.equal(verdict([put('b', 2, 3, 'unknown'), get('b', 4, 5), get(null, 6, 7)]), 'violation', 'b was read, then nothing, with no delete');
  t.equal(verdict([put('a', 0, 1), del(undefined, 2, 3, 'unknown'), get(null, 4, 5), get('a', 6, 7)]), 'violation', 'the delete applied (a read saw nothing), then a was back');
});

t.test('keys are independent registers', async (t) => {
  const history = [op('put', 'a', 0, 1, 'ok', { key: 'x' }), op('put', 'b', 0, 1, 'ok', { key: 'y' }), op('get', 'a', 2, 3, 'ok', { key: 'x' }), op('get', 'b', 2, 3, 'ok', { key: 'y' })];
  t.equal(checkHistory(history).verdict, 'linearizable');
  const crossed = [...history, op('get', 'b', 4, 5, 'ok', { key: 'x' })];
  const result = checkHistory(crossed);
  t.equal(result.verdict, 'violation', 'x cannot hold the value written to y');
  t.same(result.keys.map((key) => `${key.key}:${key.verdict}`), ['x:violation', 'y:linearizable']);
});

/**
 * A linearizable register driven by `clientCount` concurrent clients: each operation gets a random
 * interval and a linearization point inside it; the results come from applying the operations in
 * linearization-point order. Some writes are unknown: they apply at their point or never.
 */
function simulatedHistory(seed: number, shape: { operationCount: number; clientCount: number; thinkTime: number }): Operation[] {
  const { operationCount, clientCount, thinkTime } = shape;
  let random = seed >>> 0 || 1;
  const next = (): number => {
    random ^= random << 13;
    random >>>= 0;
    random ^= random >>> 17;
    random ^= random << 5;
    random >>>= 0;
    return random / 0x100000000;
  };
  interface Planned {
    kind: OperationKind;
    value: string | null;
    invoke: number;
    complete: number;
    point: number;
    outcome: Outcome;
    applies: boolean;
    found?: boolean;
  }
  const planned: Planned[] = [];
  const clientTime = new Array<number>(clientCount).fill(0);
  for (let index = 0; index < operationCount; index++) {
    const client = Math.floor(next() * clientCount);
    const invoke = (clientTime[client] as number) + next() * thinkTime;
    const complete = invoke + 1 + next() * 10;
    clientTime[client] = complete;
    const roll = next();
    const kind: OperationKind = roll < 0.45 ? 'put' : roll < 0.9 ? 'get' : 'delete';
    const unknown = kind !== 'get' && next() < 0.02;
    const applies = !unknown || next() < 0.5;
    // An unknown write that applied may apply long after its client gave up.
    const point = unknown && applies ? invoke + next() * 200 : invoke + next() * (complete - invoke);
    planned.push({ kind, value: kind === 'put' ? `v${index}` : null, invoke, complete, point, outcome: unknown ? 'unknown' : 'ok', applies });
  }
  let state: string | null = null;
  for (const operation of [...planned].sort((a, b) => a.point - b.point)) {
    if (!operation.applies) continue;
    if (operation.kind === 'put') state = operation.value;
    else if (operation.kind === 'get') operation.value = state;
    else {
      operation.found = state !== null;
      state = null;
    }
  }
  return planned.map((operation) =>
    op(operation.kind, operation.value, operation.invoke, operation.complete, operation.outcome, operation.found === undefined || operation.outcome !== 'ok' ? {} : { found: operation.found }),
  );
}

t.test('large simulated linearizable histories pass quickly', async (t) => {
  for (const seed of [1, 2, 3]) {
    const history = simulatedHistory(seed, { operationCount: 4000, clientCount: 8, thinkTime: 5 });
    const started = Date.now();
    const result = checkKey('k', history);
    const elapsed = Date.now() - started;
    t.equal(result.verdict, 'linearizable', `seed ${seed}: ${history.length} operations, 8 busy clients, ${result.steps} steps, ${elapsed} ms`);
    t.ok(elapsed < 20_000, 'within the time bound');
  }
});

t.test('a simulated history with one read made stale fails, with a short proof naming the read', async (t) => {
  for (const seed of [4, 5, 6]) {
    const history = simulatedHistory(seed, { operationCount: 1200, clientCount: 6, thinkTime: 30 });
    t.equal(checkKey('k', history).verdict, 'linearizable', `seed ${seed}: as simulated it is linearizable`);
    // Make one late read stale: it returns the value of a write that was overwritten by another
    // write, both completed before the read was invoked.
    const puts = history.filter((operation) => operation.kind === 'put' && operation.outcome === 'ok');
    let mutated: Operation[] | null = null;
    let staleRead: Operation | null = null;
    for (let index = history.length - 1; index > history.length / 2 && mutated === null; index--) {
      const read = history[index] as Operation;
      if (read.kind !== 'get' || read.outcome !== 'ok') continue;
      const overwriting = puts.find((second) => second.completeMilliseconds < read.invokeMilliseconds && second.completeMilliseconds > read.invokeMilliseconds - 100);
      const overwritten = overwriting === undefined ? undefined : puts.find((first) => first.completeMilliseconds < overwriting.invokeMilliseconds && first.completeMilliseconds > overwriting.invokeMilliseconds - 100);
      if (overwritten === undefined) continue;
      staleRead = { ...read, value: overwritten.value };
      mutated = history.map((operation) => (operation === read ? (staleRead as Operation) : operation));
    }
    if (mutated === null || staleRead === null) throw new Error('no read to make stale');
    const started = Date.now();
    const broken = checkKey('k', mutated);
    t.equal(broken.verdict, 'violation', `seed ${seed}: the stale read is found (${Date.now() - started} ms with the proof)`);
    const proof = broken.proof ?? [];
    t.ok(proof.length > 0 && proof.length <= 8, `seed ${seed}: proof of ${proof.length} operations`);
    t.ok(proof.some((operation) => operation.id === (staleRead as Operation).id), 'the proof holds the stale read');
  }
});

t.test('a search that exceeds its budget is inconclusive, not a verdict', async (t) => {
  const history = simulatedHistory(7, { operationCount: 2000, clientCount: 12, thinkTime: 5 });
  t.equal(checkKey('k', history, { stepBudget: 10 }).verdict, 'inconclusive');
});
