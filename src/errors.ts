// Operating errors with a stable `code`, shared by every layer. The gRPC layer maps codes to
// status codes in one table (src/api/status.ts) and the FUSE layer to errno in another; nothing
// else inspects messages. Programmer errors are plain Errors and crash the actor instead.

export type DfsErrorCode =
  | 'InvalidKey'
  | 'InvalidArgument'
  | 'KeyNotFound'
  | 'TooLarge'
  | 'NotLeader'
  | 'NoLeader'
  | 'Unavailable'
  | 'Timeout'
  | 'FailedPrecondition'
  | 'AlreadyExists'
  | 'Compacted'
  | 'ResourceExhausted'
  | 'Internal';

export class DfsError extends Error {
  override readonly name = 'DfsError';
  constructor(
    readonly code: DfsErrorCode,
    message: string,
    /** Extra facts for the caller: the leader's id and address, a retry delay. */
    readonly details: { readonly leader?: string; readonly retryAfterMilliseconds?: number } = {},
  ) {
    super(message);
  }
}

export function isDfsError(value: unknown): value is DfsError {
  return value instanceof DfsError;
}
