// What every dfsctl command is given and what it declares: its usage, help text and options (for
// --help and the parser), and a run function that prints through the context and returns an exit
// code or throws a CliError.

import type { DfsClient } from '../client/client.js';
import { validateKey } from '../store/keys.js';
import type { OptionSpec, ParsedArgs } from './args.js';
import type { ExitCode } from './exit-codes.js';
import { UsageError } from './failure.js';

export interface Output {
  write(text: string | Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CommandContext {
  readonly args: ParsedArgs;
  /** --json: one JSON document (or one per line for watch) on stdout instead of tables. */
  readonly json: boolean;
  readonly endpoints: readonly string[];
  /** A client of a live endpoint, found on first use. */
  client(): Promise<DfsClient>;
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: AsyncIterable<Uint8Array>;
  /** A terminal on stdin means nobody piped data in. */
  readonly stdinIsTTY: boolean;
  /** Aborted on Ctrl-C for the commands that clean up after themselves. */
  readonly signal: AbortSignal;
  /** Milliseconds since some fixed point, for rates. */
  now(): number;
}

export interface Command {
  readonly name: string;
  /** E.g. `dfsctl get KEY [FILE]`. */
  readonly usage: string;
  readonly summary: string;
  /** Paragraphs for `--help`, examples included. */
  readonly description: string;
  readonly options: readonly OptionSpec[];
  /** Ctrl-C aborts `signal` and waits for this command instead of exiting at once. */
  readonly cleansUpOnInterrupt?: boolean;
  run(context: CommandContext): Promise<ExitCode | void>;
}

export function printLines(context: CommandContext, lines: readonly string[]): void {
  if (lines.length > 0) context.stdout.write(`${lines.join('\n')}\n`);
}

export function printJson(context: CommandContext, value: unknown): void {
  context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes with backpressure, so a large value never piles up in memory. */
export async function writeAll(output: Output, chunk: Uint8Array): Promise<void> {
  if (!output.write(chunk)) await new Promise<void>((resolve) => output.once('drain', resolve));
}

/** dfs keys have no leading slash; `dfs:/a/b`, `/a/b` and `a/b` all mean the key a/b. */
export function toKey(path: string): string {
  return path.replace(/^dfs:/, '').replace(/^\/+/, '');
}

/**
 * Checks a key with the node's own rules before anything is sent: a folder copy with one bad name
 * then fails before the first upload, and a stream is never refused halfway.
 */
export function checkedKey(key: string, argument = key): string {
  const problem = validateKey(key);
  if (problem !== null) throw new UsageError(`"${argument}": ${problem}`, 'keys are relative paths such as docs/a.txt: no empty, "." or ".." segments, at most 4096 bytes');
  return key;
}
