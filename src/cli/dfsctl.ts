#!/usr/bin/env node
// The dfsctl command (package.json bin). Ctrl-C aborts the commands that clean up after
// themselves (cp, get, put, watch) and waits for them; any other command exits at once.

import { exitCodes } from './exit-codes.js';
import { describeFailure, toCliError } from './failure.js';
import { runDfsctl } from './main.js';

const interrupt = new AbortController();
let cleansUp = false;
process.on('SIGINT', () => {
  if (!cleansUp || interrupt.signal.aborted) process.exit(exitCodes.interrupted);
  interrupt.abort();
});
// A closed pipe (`dfsctl get big | head`) is not a failure of dfsctl.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(exitCodes.ok);
  throw error;
});

// The client's PutStream can reject its result while the upload loop still waits for the stream
// to drain (a node refusing the stream early); that error surfaces here and still gets its code.
// After Ctrl-C that error is just the cancelled call, already reported as "interrupted".
process.on('unhandledRejection', (reason) => {
  if (interrupt.signal.aborted) process.exit(exitCodes.interrupted);
  const failure = toCliError(reason, process.argv.slice(2).filter((token) => !token.startsWith('-')).join(' '));
  process.stderr.write(describeFailure(failure));
  process.exit(failure.exitCode);
});

const code = await runDfsctl(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, environment: process.env, signal: interrupt.signal }, (command) => {
  cleansUp = command.cleansUpOnInterrupt === true;
});
process.exitCode = code;
