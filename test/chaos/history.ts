// The history a chaos run records: every Put, Get and Delete the clients issued, one record per
// attempt (the node has no request-id de-duplication, so a retried write may apply twice; the
// clients therefore never retry behind the history's back), each with when it was invoked and
// when its answer came, and what the answer proves:
//
// - ok: the operation took effect at some instant between invoke and complete (a Get's value, a
//   Delete's "there was something to delete" are what it observed);
// - fail: provably not applied (refused before anything was proposed, or never sent), so the
//   checker ignores it;
// - unknown: the answer was lost (deadline, connection dropped, node killed or paused, shutting
//   down): a write may have taken effect at any instant after its invoke, or never.
//
// Times are milliseconds of one monotonic clock (performance.now()) of the one process that runs
// every client, so "A completed before B was invoked" is meaningful across clients.

import { performance } from 'node:perf_hooks';

import { DfsClientError } from '../../src/client/client.js';

export type OperationKind = 'put' | 'get' | 'delete';
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface Operation {
  /** Position in the history, unique per run. */
  readonly id: number;
  /** Which client issued it ('final' for the post-heal reads). */
  readonly client: string;
  /** The node the request was sent to. */
  readonly node: string;
  readonly kind: OperationKind;
  readonly key: string;
  /**
   * put: the value written (unique per run). get: the value read, null for "no such key"
   * (meaningful only when ok). delete: unused (null).
   */
  readonly value: string | null;
  /** delete when ok: whether a file was there to delete (NOT_FOUND means it was not). */
  readonly found?: boolean;
  readonly invokeMilliseconds: number;
  /** When the answer came; for unknown operations, when the client gave up. */
  readonly completeMilliseconds: number;
  readonly outcome: Outcome;
  /** The gRPC status name and message of a failed or unknown call. */
  readonly error?: string;
}

/** Milliseconds on the clock every operation is stamped with. */
export function now(): number {
  return performance.now();
}

export class History {
  private readonly operations: Operation[] = [];

  record(operation: Omit<Operation, 'id'>): Operation {
    const recorded: Operation = { ...operation, id: this.operations.length };
    this.operations.push(recorded);
    return recorded;
  }

  all(): readonly Operation[] {
    return this.operations;
  }
}

/**
 * Refusals that provably happened before anything was proposed (see src/raft/node.ts propose and
 * src/actors/raft-actor.ts: they are answered synchronously, without a log entry), and calls that
 * never left this process (grpc-js fails a call with "No connection established" only when it had
 * no connection to send it on). Matched on the message because the gRPC code (UNAVAILABLE) is the
 * same as for a node that dropped the call after proposing (shutting down), which is unknown.
 */
const notSentOrRefusedBeforeProposing = [
  /No connection established/,
  /no leader is known/,
  /has not joined a cluster yet/,
  /leadership is moving to/,
];

/**
 * What a failed write call proves. INVALID_ARGUMENT and FAILED_PRECONDITION are refusals of the
 * request itself. RESOURCE_EXHAUSTED is NOT a refusal: the gRPC actor proposes even when its
 * table of waiting calls is full (ClusterBackend.await sends after the wait was refused), so the
 * write may still apply. Everything else (deadline, cancelled, connection lost, shutting down,
 * internal) may or may not have taken effect.
 */
export function classifyWriteError(error: unknown): Outcome {
  if (!(error instanceof DfsClientError)) return 'unknown';
  if (error.code === 'INVALID_ARGUMENT' || error.code === 'FAILED_PRECONDITION') return 'fail';
  if (error.code === 'UNAVAILABLE' && notSentOrRefusedBeforeProposing.some((pattern) => pattern.test(error.message))) return 'fail';
  return 'unknown';
}

/**
 * A failed read proves nothing either way and constrains nothing: it is "fail" when it provably
 * did not run, otherwise "unknown"; the checker ignores both kinds of failed reads.
 */
export function classifyReadError(error: unknown): Outcome {
  return classifyWriteError(error);
}

export function describeError(error: unknown): string {
  if (error instanceof DfsClientError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** One line per operation, for reports: times relative to `originMilliseconds`. */
export function formatOperation(operation: Operation, originMilliseconds: number): string {
  const invoke = ((operation.invokeMilliseconds - originMilliseconds) / 1000).toFixed(3);
  const complete = Number.isFinite(operation.completeMilliseconds) ? ((operation.completeMilliseconds - originMilliseconds) / 1000).toFixed(3) : '∞';
  let what: string;
  switch (operation.kind) {
    case 'put':
      what = `put(${operation.key}, ${operation.value})`;
      break;
    case 'get':
      what = operation.outcome === 'ok' ? `get(${operation.key}) → ${operation.value === null ? 'not found' : operation.value}` : `get(${operation.key})`;
      break;
    case 'delete':
      what = operation.outcome === 'ok' ? `delete(${operation.key}) → ${operation.found === true ? 'deleted' : 'not found'}` : `delete(${operation.key})`;
      break;
  }
  const error = operation.error === undefined ? '' : ` [${operation.error.slice(0, 120)}]`;
  return `#${operation.id} ${operation.client}@${operation.node} [${invoke}s, ${complete}s] ${what} ${operation.outcome}${error}`;
}
