// THE table of dfsctl's exit codes: every exit goes through one of these, so scripts can switch on
// the number, and --help and README.md print this same table.

export const exitCodes = {
  ok: 0,
  /** The operation failed on the node (the message names the gRPC code) or locally (a file error). */
  failed: 1,
  /** The command line is wrong, or the node refused an argument (INVALID_ARGUMENT): fix and rerun. */
  usage: 2,
  /** The key, prefix, member or local file does not exist (NOT_FOUND). */
  notFound: 3,
  /** No endpoint answered: no node is reachable. */
  noLiveEndpoint: 4,
  /** The request does not fit the cluster's state (ALREADY_EXISTS, FAILED_PRECONDITION). */
  conflict: 5,
  /** Interrupted by Ctrl-C (SIGINT), as shells report 128 + 2. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

export const exitCodeHelp: ReadonlyArray<readonly [ExitCode, string]> = [
  [exitCodes.ok, 'success'],
  [exitCodes.failed, 'the operation failed (the message names the gRPC code)'],
  [exitCodes.usage, 'usage error: a wrong command, option or argument (also INVALID_ARGUMENT)'],
  [exitCodes.notFound, 'not found: no such key, prefix, member or local file'],
  [exitCodes.noLiveEndpoint, 'no live endpoint: no node answered'],
  [exitCodes.conflict, 'conflict: ALREADY_EXISTS or FAILED_PRECONDITION'],
  [exitCodes.interrupted, 'interrupted (Ctrl-C)'],
];
