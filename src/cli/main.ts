// dfsctl's main: finds the command, parses its options, connects lazily to a live endpoint, runs
// it, and turns any failure into a message with a hint and an exit code from exit-codes.ts.
// Everything it touches comes in through `io`, so it also runs inside a test.

import { DfsClient } from '../client/client.js';
import { findCommandIndex, parseArgs, stringOption, type ParsedArgs } from './args.js';
import type { Command, CommandContext, Output } from './command.js';
import { cp } from './commands/cp.js';
import { members, snapshot, status, transferLeader } from './commands/cluster.js';
import { get, ls, put, rm, stat } from './commands/files.js';
import { watch } from './commands/watch.js';
import { findLiveEndpoint, resolveEndpoints } from './endpoints.js';
import { exitCodes } from './exit-codes.js';
import { CliError, describeFailure, toCliError, UsageError } from './failure.js';
import { commandHelp, globalOptions, mainHelp } from './help.js';

export const commands: readonly Command[] = [put, get, rm, ls, stat, cp, watch, members, status, transferLeader, snapshot];

export interface Io {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: AsyncIterable<Uint8Array> & { readonly isTTY?: boolean };
  readonly environment: Readonly<Record<string, string | undefined>>;
  readonly signal: AbortSignal;
}

/** Runs one dfsctl command line; resolves with the exit code. */
export async function runDfsctl(argv: readonly string[], io: Io, onCommand: (command: Command) => void = () => undefined): Promise<number> {
  let clientInUse: DfsClient | null = null;
  let what = 'dfsctl';
  try {
    const commandIndex = findCommandIndex(argv, globalOptions);
    const name = commandIndex < 0 ? undefined : argv[commandIndex];
    const rest = commandIndex < 0 ? argv : [...argv.slice(0, commandIndex), ...argv.slice(commandIndex + 1)];
    if (name === undefined || name === 'help') {
      const topic = name === 'help' ? commands.find((command) => command.name === rest.find((token) => !token.startsWith('-'))) : undefined;
      const wantsHelp = name === 'help' || rest.includes('--help') || rest.includes('-h');
      if (!wantsHelp) throw new UsageError('no command given', 'run `dfsctl --help` for the commands');
      io.stdout.write(topic === undefined ? mainHelp(commands) : commandHelp(topic));
      return exitCodes.ok;
    }
    const command = commands.find((candidate) => candidate.name === name);
    if (command === undefined) throw new UsageError(`unknown command "${name}"`, `the commands are: ${commands.map((candidate) => candidate.name).join(', ')}; run \`dfsctl --help\``);
    what = [command.name, ...rest.filter((token) => !token.startsWith('-'))].join(' ');
    const args: ParsedArgs = parseArgs(rest, [...globalOptions, ...command.options]);
    if (args.options.has('help')) {
      io.stdout.write(commandHelp(command));
      return exitCodes.ok;
    }
    onCommand(command);
    const endpoints = resolveEndpoints(stringOption(args, 'endpoints'), io.environment['DFS_ENDPOINTS']);
    const context: CommandContext = {
      args,
      json: args.options.has('json'),
      endpoints,
      client: async () => {
        if (clientInUse === null) clientInUse = (await findLiveEndpoint(endpoints, (endpoint) => new DfsClient(endpoint))).client;
        return clientInUse;
      },
      stdout: io.stdout,
      stderr: io.stderr,
      stdin: io.stdin,
      stdinIsTTY: io.stdin.isTTY === true,
      signal: io.signal,
      now: () => performance.now(),
    };
    return (await command.run(context)) ?? exitCodes.ok;
  } catch (error) {
    const failure = io.signal.aborted ? new CliError(exitCodes.interrupted, `${what}: interrupted`) : toCliError(error, what);
    io.stderr.write(describeFailure(failure));
    return failure.exitCode;
  } finally {
    (clientInUse as DfsClient | null)?.close();
  }
}
