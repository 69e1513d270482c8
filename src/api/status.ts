// THE table from DfsErrorCode to gRPC status code (DESIGN.md, Examples #6): every handler turns a
// thrown error into a status here and nowhere else, and nothing inspects error messages. The
// table is a Record over the DfsErrorCode union, so adding a code to src/errors.ts does not compile
// until this table says how clients see it.
//
// A code that means "try again" (no leader yet, wrong node, overloaded) carries a retry hint in
// two forms: the standard trailer `grpc-retry-pushback-ms`, which gRPC clients with a retry policy
// obey by themselves, and the same delay in the message, for a person reading grpcurl's output.
// An error that is not a DfsError is a bug: the client gets INTERNAL without the error's text
// (it may hold paths or internals) and the full error goes to the log.

import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isDfsError, type DfsErrorCode } from '../errors.js';

interface StatusRule {
  readonly code: GrpcStatus;
  /**
   * For codes worth retrying: the delay suggested when the error does not bring its own. Omitted
   * for codes where repeating the same request cannot help.
   */
  readonly defaultRetryAfterMilliseconds?: number;
}

/** How each operating error reaches a gRPC client. */
export const statusRules: Readonly<Record<DfsErrorCode, StatusRule>> = {
  InvalidKey: { code: GrpcStatus.INVALID_ARGUMENT },
  InvalidArgument: { code: GrpcStatus.INVALID_ARGUMENT },
  KeyNotFound: { code: GrpcStatus.NOT_FOUND },
  // A value larger than a limit: the request can only succeed in another form (PutStream).
  TooLarge: { code: GrpcStatus.RESOURCE_EXHAUSTED },
  // A queue or in-flight limit is full: the same request may succeed a little later.
  ResourceExhausted: { code: GrpcStatus.RESOURCE_EXHAUSTED, defaultRetryAfterMilliseconds: 200 },
  // This node knows the leader but could not hand the request over; the leader is usually
  // reachable again quickly (or this node learns the new one within a heartbeat).
  NotLeader: { code: GrpcStatus.UNAVAILABLE, defaultRetryAfterMilliseconds: 100 },
  // An election is going on; one usually ends within an election timeout (about a second).
  NoLeader: { code: GrpcStatus.UNAVAILABLE, defaultRetryAfterMilliseconds: 500 },
  Unavailable: { code: GrpcStatus.UNAVAILABLE, defaultRetryAfterMilliseconds: 1000 },
  Timeout: { code: GrpcStatus.DEADLINE_EXCEEDED },
  FailedPrecondition: { code: GrpcStatus.FAILED_PRECONDITION },
  // The requested history (a version, a log index) was compacted away: retrying cannot bring it
  // back, the client has to start from a newer point.
  Compacted: { code: GrpcStatus.FAILED_PRECONDITION },
  AlreadyExists: { code: GrpcStatus.ALREADY_EXISTS },
  Internal: { code: GrpcStatus.INTERNAL },
};

/** The trailer gRPC's retry machinery reads (gRFC A6); milliseconds as a decimal string. */
export const retryPushbackMetadataKey = 'grpc-retry-pushback-ms';
/** The leader's id and address, when a NotLeader error names it, so a client can go there. */
export const leaderMetadataKey = 'dfs-leader';

/** Status details longer than this are cut: they travel in an HTTP/2 trailer of bounded size. */
export const maximumDetailsLength = 1024;
/** The longest retry delay ever suggested, whatever an error asks for. */
const maximumRetryAfterMilliseconds = 60_000;

/** The status a handler ends a failed call with; the shape grpc-js takes from a callback. */
export interface CallStatus {
  readonly code: GrpcStatus;
  readonly details: string;
  readonly metadata: Metadata;
}

/** Where an error happened, for the log line of an unexpected one. */
export interface ErrorSite {
  readonly method: string;
}

/**
 * Turns anything a handler caught into the status the client gets. DfsErrors follow the table;
 * anything else is logged as a bug and answered with INTERNAL.
 */
export function toCallStatus(error: unknown, logger: Logger, site: ErrorSite): CallStatus {
  const metadata = new Metadata();
  if (!isDfsError(error)) {
    logger.error({ err: error, method: site.method }, 'unexpected error in a gRPC handler');
    return {
      code: GrpcStatus.INTERNAL,
      details: `internal error in ${site.method}; the server logged the details`,
      metadata,
    };
  }

  const rule = statusRules[error.code];
  if (error.code === 'Internal') {
    // An operating error the backend chose to report as internal (e.g. a corrupt record): its
    // message is meant for the client, but the operator needs to see it too.
    logger.error({ err: error, method: site.method }, 'internal error reported by the backend');
  }
  const leader = error.details.leader;
  if (leader !== undefined && leader !== '') {
    // Metadata values must be printable ASCII; a leader id or address outside that is dropped
    // rather than failing the whole status.
    if (/^[\x20-\x7e]+$/.test(leader)) metadata.set(leaderMetadataKey, leader);
  }
  let retryHint = '';
  const suggested = error.details.retryAfterMilliseconds ?? rule.defaultRetryAfterMilliseconds;
  if (suggested !== undefined && Number.isFinite(suggested)) {
    const delay = Math.min(Math.max(0, Math.round(suggested)), maximumRetryAfterMilliseconds);
    metadata.set(retryPushbackMetadataKey, String(delay));
    retryHint = `; retry in ${delay} ms`;
  }
  // The hint is appended after cutting, so that a long message never loses it.
  const details = truncateDetails(error.message, maximumDetailsLength - retryHint.length) + retryHint;
  return { code: rule.code, details, metadata };
}

/** Cuts a message to at most `maximumLength` characters, marking the cut. */
export function truncateDetails(details: string, maximumLength: number = maximumDetailsLength): string {
  if (details.length <= maximumLength) return details;
  const marker = '… (cut)';
  return details.slice(0, Math.max(0, maximumLength - marker.length)) + marker;
}
