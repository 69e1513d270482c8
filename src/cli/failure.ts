// Turns every failure into one exit code and a message that says what to do next. Client errors
// are switched on their gRPC code (never on message text); the hints follow USAGE.md's "Errors and
// what to do".

import { exitCodes, type ExitCode } from './exit-codes.js';

/** A failure dfsctl reports and exits with; `hint` is the next step for the person at the terminal. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly hint = '',
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string, hint = 'run `dfsctl --help` for the commands and their options') {
    super(exitCodes.usage, message, hint);
  }
}

interface CodedError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
}

function isCoded(error: unknown): error is CodedError {
  return error instanceof Error && typeof (error as Partial<CodedError>).code === 'string';
}

const grpcRules: Readonly<Record<string, { readonly exitCode: ExitCode; readonly hint: string }>> = {
  NOT_FOUND: { exitCode: exitCodes.notFound, hint: 'check the key with `dfsctl ls PREFIX`' },
  INVALID_ARGUMENT: { exitCode: exitCodes.usage, hint: 'keys are relative paths such as docs/a.txt: no empty, "." or ".." segments; fix the argument' },
  ALREADY_EXISTS: { exitCode: exitCodes.conflict, hint: 'nothing to do, or remove it first' },
  FAILED_PRECONDITION: { exitCode: exitCodes.conflict, hint: '`dfsctl members list` and `dfsctl status` show the current state' },
  UNAVAILABLE: { exitCode: exitCodes.failed, hint: 'no leader right now or the node is stopping: retry in a few seconds; `dfsctl status` shows who leads and which nodes answer' },
  DEADLINE_EXCEEDED: { exitCode: exitCodes.failed, hint: 'check that a majority of the nodes is up (`dfsctl status`); a write that timed out may still take effect, so read before repeating it' },
  RESOURCE_EXHAUSTED: { exitCode: exitCodes.failed, hint: 'too large for one message (use `dfsctl cp`, which streams) or the node is busy: retry later' },
  UNIMPLEMENTED: { exitCode: exitCodes.failed, hint: 'the node does not serve this call: it is older than dfsctl; upgrade the node' },
  INTERNAL: { exitCode: exitCodes.failed, hint: "a bug in the node: report it with the node's log" },
  CANCELLED: { exitCode: exitCodes.interrupted, hint: '' },
};

const localRules: Readonly<Record<string, { readonly exitCode: ExitCode; readonly hint: string }>> = {
  ENOENT: { exitCode: exitCodes.notFound, hint: 'check the local path' },
  EACCES: { exitCode: exitCodes.failed, hint: 'check the permissions of the local path' },
  EISDIR: { exitCode: exitCodes.failed, hint: 'name a file, not a folder' },
  ENOTDIR: { exitCode: exitCodes.failed, hint: 'a part of the local path is a file, not a folder' },
  ENOSPC: { exitCode: exitCodes.failed, hint: 'the local disk is full' },
};

/** What dfsctl says and returns for `error`, which happened while doing `what` (e.g. `get docs/a.txt`). */
export function toCliError(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error;
  if (isCoded(error)) {
    const grpc = grpcRules[error.code];
    if (error.name === 'DfsClientError') return new CliError(grpc?.exitCode ?? exitCodes.failed, `${what}: ${error.message} (${error.code})`, grpc?.hint ?? '');
    const local = localRules[error.code];
    if (local !== undefined) return new CliError(local.exitCode, `${what}: ${error.message}`, local.hint);
  }
  return new CliError(exitCodes.failed, `${what}: ${error instanceof Error ? error.message : String(error)}`);
}

/** The text printed on stderr for a failure. */
export function describeFailure(error: CliError): string {
  return `dfsctl: ${error.message}\n${error.hint === '' ? '' : `hint: ${error.hint}\n`}`;
}
