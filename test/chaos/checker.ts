// A linearizability checker for the history of a key–value register (Put / Get / Delete on a few
// keys, each Put writing a value never written before): is there one order of the operations,
// consistent with real time (an operation that completed before another was invoked comes first),
// in which every Get returns the latest Put's value (null after a Delete or before any Put) and
// every acknowledged Delete saw what it reported (NOT_FOUND: nothing was there)?
//
// Method: Wing & Gong's search, with Lowe's memoisation (as in Porcupine and Knossos), one key at a
// time (a register per key: a history is linearizable iff each key's sub-history is). The search
// repeatedly picks a "minimal" operation — one invoked no later than the earliest completion among
// the operations not yet placed — applies it if the model allows, and backtracks on a dead end;
// the memo remembers (set of placed operations, register value) pairs already explored, so each
// configuration is expanded once. Operations whose outcome is unknown have no completion: they may
// take effect at any instant after their invoke, or never, so the search succeeds once every
// acknowledged operation is placed. Two reductions keep the unknown writes from blowing the search
// up, both exact for this model: an unknown Put whose value no acknowledged Get returned can be
// left out (placing it could only hide the value before it until the next write, which no read
// could tell apart from not placing it), and an unknown Put whose value was read must precede that
// read, so it completes, at the latest, when the read did.
//
// When a key's history is not linearizable the checker also finds the few operations that prove
// it: the earliest point in time at which the history cut there (later operations pending, so
// unknown) is already not linearizable, and then, greedily, which of those operations can be
// weakened (a Get dropped, a write made unknown, an unknown one dropped) while the rest still
// cannot be linearized. What is left is the proof.

import { formatOperation, type Operation } from './history.js';

export type Verdict = 'linearizable' | 'violation' | 'inconclusive';

export interface KeyResult {
  readonly key: string;
  readonly verdict: Verdict;
  /** Operations in the key's history as checked (failed ones and failed reads not counted). */
  readonly checkedOperations: number;
  /** Operations applied to the model during the search. */
  readonly steps: number;
  readonly elapsedMilliseconds: number;
  /** For a violation: the few operations that prove it, in invoke order. */
  readonly proof?: readonly Operation[];
  /** For a violation: in words. */
  readonly explanation?: string;
}

export interface HistoryResult {
  readonly verdict: Verdict;
  readonly keys: readonly KeyResult[];
}

export interface CheckOptions {
  /** Model steps one key's search may take before giving up (inconclusive). */
  readonly stepBudget?: number;
  /** Find the operations that prove a violation (costs more searches). */
  readonly explain?: boolean;
}

const defaultStepBudget = 4_000_000;

/** Checks every key's sub-history; the verdict is the worst of the keys'. */
export function checkHistory(operations: readonly Operation[], options: CheckOptions = {}): HistoryResult {
  const byKey = new Map<string, Operation[]>();
  for (const operation of operations) {
    let list = byKey.get(operation.key);
    if (list === undefined) byKey.set(operation.key, (list = []));
    list.push(operation);
  }
  const keys = [...byKey.keys()].sort().map((key) => checkKey(key, byKey.get(key) ?? [], options));
  const verdict: Verdict = keys.some((key) => key.verdict === 'violation') ? 'violation' : keys.some((key) => key.verdict === 'inconclusive') ? 'inconclusive' : 'linearizable';
  return { verdict, keys };
}

export function checkKey(key: string, operations: readonly Operation[], options: CheckOptions = {}): KeyResult {
  const started = Date.now();
  const budget = options.stepBudget ?? defaultStepBudget;
  const prepared = prepare(operations);
  const outcome = search(prepared, budget);
  const base = { key, checkedOperations: prepared.length, steps: outcome.steps };
  if (outcome.result !== 'violation' || options.explain === false) {
    return { ...base, verdict: outcome.result, elapsedMilliseconds: Date.now() - started };
  }
  const proof = explain(operations, Math.max(100_000, outcome.steps * 2));
  const origin = Math.min(...operations.map((operation) => operation.invokeMilliseconds));
  const explanation = proof.length === 0 ? 'no linearization exists' : `no linearization exists; the operations that prove it (with the history before them as recorded):\n${proof.map((operation) => `  ${formatOperation(operation, origin)}`).join('\n')}`;
  return { ...base, verdict: 'violation', proof, explanation, elapsedMilliseconds: Date.now() - started };
}

// ------------------------------------------------------------------ the search

interface Prepared {
  readonly source: Operation;
  readonly kind: Operation['kind'];
  readonly value: string | null;
  /** delete: what it observed, undefined when unknown. */
  readonly found: boolean | undefined;
  readonly invoke: number;
  /** Infinity for an operation that may never have happened. */
  readonly complete: number;
  /** Must be placed (acknowledged, or an unknown Put whose value was read). */
  readonly required: boolean;
}

/**
 * What the register holds after a Put whose value no Get returned: all such values are alike to
 * the rest of the history (no read can return them, a Delete only sees that something is there),
 * so they share one state and the memo does not tell them apart. Not a possible key value: the
 * recorded values are printable.
 */
const unreadValue = '\u0001unread';

/** The operations the search has to consider, with the exact reductions described on top. */
export function prepare(operations: readonly Operation[]): Prepared[] {
  const readCompletion = new Map<string, number>();
  const absenceObserved: number[] = [];
  const presenceObserved: number[] = [];
  for (const operation of operations) {
    if (operation.outcome !== 'ok') continue;
    if (operation.kind === 'get' && operation.value !== null) {
      readCompletion.set(operation.value, Math.min(readCompletion.get(operation.value) ?? Infinity, operation.completeMilliseconds));
    }
    if ((operation.kind === 'get' && operation.value === null) || (operation.kind === 'delete' && operation.found === false)) absenceObserved.push(operation.completeMilliseconds);
    if (operation.kind === 'delete' && operation.found === true) presenceObserved.push(operation.completeMilliseconds);
  }
  const latestAbsence = absenceObserved.reduce((latest, time) => Math.max(latest, time), -Infinity);
  const latestPresence = presenceObserved.reduce((latest, time) => Math.max(latest, time), -Infinity);
  const prepared: Prepared[] = [];
  for (const operation of operations) {
    if (operation.outcome === 'fail') continue;
    const base = { source: operation, kind: operation.kind, invoke: operation.invokeMilliseconds };
    if (operation.outcome === 'ok') {
      const value = operation.kind === 'put' && (operation.value === null || !readCompletion.has(operation.value)) ? unreadValue : operation.value;
      prepared.push({ ...base, value, found: operation.kind === 'delete' ? (operation.found ?? undefined) : undefined, complete: operation.completeMilliseconds, required: true });
      continue;
    }
    switch (operation.kind) {
      case 'get':
        break; // an unanswered read constrains nothing
      case 'put': {
        const readBy = operation.value === null ? undefined : readCompletion.get(operation.value);
        if (readBy !== undefined) prepared.push({ ...base, value: operation.value, found: undefined, complete: readBy, required: true });
        // Unread, it can still be what a later Delete found there.
        else if (latestPresence >= operation.invokeMilliseconds) prepared.push({ ...base, value: unreadValue, found: undefined, complete: Infinity, required: false });
        break;
      }
      case 'delete':
        // Only an observation of absence completed after its invoke could need it.
        if (latestAbsence >= operation.invokeMilliseconds) prepared.push({ ...base, value: null, found: undefined, complete: Infinity, required: false });
        break;
    }
  }
  prepared.sort((a, b) => a.invoke - b.invoke || a.source.id - b.source.id);
  return prepared;
}

interface SearchOutcome {
  readonly result: Verdict;
  readonly steps: number;
}

interface Frame {
  readonly candidates: readonly number[];
  /** The earliest completion among the required operations not yet placed. */
  readonly limit: number;
  next: number;
  /** The operation placed to reach this frame (-1 at the root), and what placing it changed. */
  readonly placed: number;
  /** The optional operation placed just before it to make it legal, or -1. */
  readonly consumed: number;
  readonly previousState: string | null;
  readonly previousLowestOpen: number;
  readonly previousFirstOpenByCompletion: number;
  readonly previousHighestPlaced: number;
}

type Saved = Pick<Frame, 'previousState' | 'previousLowestOpen' | 'previousFirstOpenByCompletion' | 'previousHighestPlaced'>;

/**
 * Wing–Gong/Lowe over prepared operations (sorted by invoke). Iterative (histories of thousands of
 * operations would overflow the call stack).
 *
 * Optional operations (unknown outcome, may never have happened) are never tried on their own:
 * one only matters right before an operation that observes what it did — an unknown Delete right
 * before a read of "not found" (or a Delete that found nothing), an unread unknown Put right
 * before a Delete that found something — and can always be moved there (it has no completion
 * that would hold it back, and anything between would either observe it the same way or
 * overwrite it). So when such an observation is illegal in the current state, the first optional
 * operation that is minimal and has the needed effect is placed just before it; which one does
 * not matter (they are alike, and one minimal now stays minimal later).
 *
 * The memo key is the register value, the index below which every required operation is placed,
 * the optional ones placed, and the placed ones from that index up to the highest placed index:
 * short, because the placed set is nearly a prefix of the invoke order.
 */
function search(operations: readonly Prepared[], stepBudget: number): SearchOutcome {
  const count = operations.length;
  const placed = new Uint8Array(count);
  const requiredByCompletion: number[] = [];
  /** Optional operations' indices, ascending (so in invoke order). */
  const optionalDeletes: number[] = [];
  const optionalPuts: number[] = [];
  for (let index = 0; index < count; index++) {
    const operation = operations[index] as Prepared;
    if (operation.required) requiredByCompletion.push(index);
    else if (operation.kind === 'delete') optionalDeletes.push(index);
    else if (operation.kind === 'put') optionalPuts.push(index);
  }
  requiredByCompletion.sort((a, b) => (operations[a] as Prepared).complete - (operations[b] as Prepared).complete);
  let requiredLeft = requiredByCompletion.length;
  let state: string | null = null;
  /** Every required operation below this index is placed. */
  let lowestOpen = 0;
  /** Every required operation before this position of requiredByCompletion is placed. */
  let firstOpenByCompletion = 0;
  let highestPlaced = -1;
  let steps = 0;
  const seen = new Set<string>();

  const advance = (): void => {
    while (lowestOpen < count && (placed[lowestOpen] === 1 || !(operations[lowestOpen] as Prepared).required)) lowestOpen++;
    while (firstOpenByCompletion < requiredByCompletion.length && placed[requiredByCompletion[firstOpenByCompletion] as number] === 1) firstOpenByCompletion++;
  };
  const currentLimit = (): number => {
    const first = requiredByCompletion[firstOpenByCompletion];
    return first === undefined ? Infinity : (operations[first] as Prepared).complete;
  };
  /** The minimal required operations: invoked no later than the earliest completion left. */
  const candidates = (limit: number): number[] => {
    const found: number[] = [];
    for (let index = lowestOpen; index < count; index++) {
      const operation = operations[index] as Prepared;
      if (operation.invoke > limit) break;
      if (placed[index] === 1 || !operation.required) continue;
      // A minimal operation that leaves the register as it is and is legal now can be placed now
      // without trying the alternatives: nothing has to precede it, and in any linearization that
      // places it later it can be moved here without changing what anything else sees (Lowe's
      // observation for read-only operations). This is what keeps many concurrent reads cheap.
      if ((operation.kind === 'get' && operation.value === state) || (operation.kind === 'delete' && operation.found === false && state === null)) return [index];
      found.push(index);
    }
    return found;
  };
  const firstMinimal = (list: readonly number[], limit: number): number => {
    for (const index of list) {
      if ((operations[index] as Prepared).invoke > limit) return -1;
      if (placed[index] === 0) return index;
    }
    return -1;
  };
  const memoKey = (): string => {
    let key = `${state === null ? '\u0000' : `=${state}`}|${lowestOpen}|`;
    for (const list of [optionalDeletes, optionalPuts]) for (const index of list) if (placed[index] === 1) key += `${index},`;
    key += '|';
    for (let index = lowestOpen; index <= highestPlaced; index++) if (placed[index] === 1 && (operations[index] as Prepared).required) key += `${index},`;
    return key;
  };
  const restore = (saved: Saved): void => {
    state = saved.previousState;
    lowestOpen = saved.previousLowestOpen;
    firstOpenByCompletion = saved.previousFirstOpenByCompletion;
    highestPlaced = saved.previousHighestPlaced;
  };

  const stack: Frame[] = [];
  advance();
  const rootLimit = currentLimit();
  let frame: Frame = { candidates: candidates(rootLimit), limit: rootLimit, next: 0, placed: -1, consumed: -1, previousState: null, previousLowestOpen: 0, previousFirstOpenByCompletion: 0, previousHighestPlaced: -1 };
  seen.add(memoKey());
  for (;;) {
    if (requiredLeft === 0) return { result: 'linearizable', steps };
    if (frame.next >= frame.candidates.length) {
      // Dead end: undo the operation that led here and go on with its siblings.
      if (frame.placed < 0) return { result: 'violation', steps };
      requiredLeft++;
      placed[frame.placed] = 0;
      if (frame.consumed >= 0) placed[frame.consumed] = 0;
      restore(frame);
      frame = stack.pop() as Frame;
      continue;
    }
    const index = frame.candidates[frame.next++] as number;
    const operation = operations[index] as Prepared;
    let consumed = -1;
    let before: string | null = state;
    switch (operation.kind) {
      case 'put':
        break;
      case 'get':
        if (operation.value === state) break;
        if (operation.value !== null) continue;
        consumed = firstMinimal(optionalDeletes, frame.limit);
        if (consumed < 0) continue;
        before = null;
        break;
      case 'delete':
        if (operation.found === (state !== null)) break;
        consumed = firstMinimal(operation.found ? optionalPuts : optionalDeletes, frame.limit);
        if (consumed < 0) continue;
        before = operation.found ? unreadValue : null;
        break;
    }
    if (++steps > stepBudget) return { result: 'inconclusive', steps };
    const saved: Saved = { previousState: state, previousLowestOpen: lowestOpen, previousFirstOpenByCompletion: firstOpenByCompletion, previousHighestPlaced: highestPlaced };
    placed[index] = 1;
    if (consumed >= 0) placed[consumed] = 1;
    state = operation.kind === 'put' ? operation.value : operation.kind === 'delete' ? null : before;
    highestPlaced = Math.max(highestPlaced, index);
    advance();
    const key = memoKey();
    if (seen.has(key)) {
      placed[index] = 0;
      if (consumed >= 0) placed[consumed] = 0;
      restore(saved);
      continue;
    }
    seen.add(key);
    requiredLeft--;
    stack.push(frame);
    const limit = currentLimit();
    frame = { candidates: candidates(limit), limit, next: 0, placed: index, consumed, ...saved };
  }
}

// ------------------------------------------------------------------ explaining a violation

function isViolation(operations: readonly Operation[], budget: number): boolean {
  // Inconclusive counts as "not shown to fail": the proof then keeps more operations, never fewer.
  return search(prepare(operations), budget).result === 'violation';
}

/** The history as it stood at `cutMilliseconds`: later invocations absent, later answers unknown. */
export function cutAt(operations: readonly Operation[], cutMilliseconds: number): Operation[] {
  const cut: Operation[] = [];
  for (const operation of operations) {
    if (operation.invokeMilliseconds > cutMilliseconds) continue;
    if (operation.completeMilliseconds <= cutMilliseconds || operation.outcome !== 'ok') cut.push(operation);
    else cut.push(asUnknown(operation));
  }
  return cut;
}

function asUnknown(operation: Operation): Operation {
  const { found: _found, ...rest } = operation;
  return { ...rest, outcome: 'unknown', completeMilliseconds: Infinity };
}

/**
 * A weaker claim about the same operation: a read dropped (one constraint less), an acknowledged
 * write made unknown (it may have happened at any time after its invoke, or never). Nothing is
 * weaker than an unknown write: dropping it would take away a possible explanation.
 */
function weaken(operation: Operation): Operation | null | 'strongest' {
  if (operation.kind === 'get') return null;
  if (operation.outcome === 'ok') return asUnknown(operation);
  return 'strongest';
}

/**
 * The few operations that prove a violation: cut the history at the earliest completion where it
 * already fails (binary search: failing is monotone in the cut, a shorter cut being a truncation),
 * then weaken, ddmin-style (the whole window, halves, quarters, …, single operations), the last
 * `windowOperations` operations before the cut, keeping every weakening after which it still
 * fails. The earlier history stays as recorded: weakening it would give the search more freedom
 * than it can afford to exhaust. The proof is what stays as recorded in the window (plus the
 * writes made unknown whose value a remaining read returned), in invoke order. Bounded by
 * `budget` steps per search and by `timeMilliseconds`.
 */
function explain(operations: readonly Operation[], budget: number, timeMilliseconds = 30_000, windowOperations = 40): Operation[] {
  const deadline = Date.now() + timeMilliseconds;
  const present = (list: readonly (Operation | null)[]): Operation[] => list.filter((operation): operation is Operation => operation !== null);
  const completions = [...new Set(operations.filter((operation) => operation.outcome === 'ok').map((operation) => operation.completeMilliseconds))].sort((a, b) => a - b);
  let low = 0;
  let high = completions.length - 1;
  while (low < high && Date.now() < deadline) {
    const middle = (low + high) >> 1;
    if (isViolation(cutAt(operations, completions[middle] as number), budget)) high = middle;
    else low = middle + 1;
  }
  const cutTime = completions[high] ?? Infinity;
  let current: (Operation | null)[] = cutAt(operations, cutTime);
  if (!isViolation(present(current), budget)) current = operations.slice();
  // The window: the operations that completed last before the cut (the unknown ones by invoke).
  const byRecency = current
    .map((operation, index) => ({ index, time: operation === null ? -Infinity : Number.isFinite(operation.completeMilliseconds) ? operation.completeMilliseconds : operation.invokeMilliseconds }))
    .sort((a, b) => b.time - a.time)
    .slice(0, windowOperations)
    .map((entry) => entry.index)
    .sort((a, b) => a - b);
  const weakened = new Set<number>();
  // Reads first, then writes: a proof that keeps the writes as acknowledged and drops the reads
  // that do not matter reads best ("these writes completed, then this read saw an older value").
  for (const pass of ['get', 'write'] as const) {
    const positions = byRecency.filter((index) => (current[index]?.kind === 'get') === (pass === 'get'));
    for (let chunkSize = positions.length; chunkSize >= 1 && Date.now() < deadline; ) {
      let changed = false;
      for (let start = 0; start < positions.length && Date.now() < deadline; start += chunkSize) {
        const trial = current.slice();
        const touched: number[] = [];
        for (const index of positions.slice(start, start + chunkSize)) {
          const operation = trial[index];
          if (operation === null || operation === undefined) continue;
          const weaker = weaken(operation);
          if (weaker === 'strongest') continue;
          trial[index] = weaker;
          touched.push(index);
        }
        if (touched.length === 0) continue;
        if (isViolation(present(trial), budget)) {
          for (const index of touched) weakened.add(current[index]?.id ?? -1);
          current = trial;
          changed = true;
        }
      }
      if (chunkSize === 1 && !changed) break;
      if (!changed) chunkSize = Math.max(1, Math.floor(chunkSize / 2));
    }
  }
  const window = new Set(byRecency.map((index) => current[index]?.id ?? -1));
  const remaining = present(current).filter((operation) => window.has(operation.id));
  const readValues = new Set(remaining.filter((operation) => operation.kind === 'get' && operation.value !== null).map((operation) => operation.value));
  const kept = new Set(
    remaining.filter((operation) => (!weakened.has(operation.id) && operation.outcome === 'ok') || (operation.kind === 'put' && readValues.has(operation.value))).map((operation) => operation.id),
  );
  // Context from before the window, for a reader: each read's write, and the last acknowledged
  // write that completed before the read began (what a linearizable read had to see, at least).
  for (const read of remaining.filter((operation) => kept.has(operation.id) && operation.kind === 'get')) {
    const source = operations.find((operation) => operation.kind === 'put' && operation.value === read.value && read.value !== null);
    if (source !== undefined) kept.add(source.id);
    let latest: Operation | undefined;
    for (const operation of operations) {
      if (operation.kind === 'get' || operation.outcome !== 'ok' || operation.completeMilliseconds >= read.invokeMilliseconds) continue;
      if (latest === undefined || operation.completeMilliseconds > latest.completeMilliseconds) latest = operation;
    }
    if (latest !== undefined) kept.add(latest.id);
  }
  // Report the operations as they were recorded (the weakened ones only mattered to the search).
  return operations.filter((operation) => kept.has(operation.id)).sort((a, b) => a.invokeMilliseconds - b.invokeMilliseconds);
}
