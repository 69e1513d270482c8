// dfsctl's command-line parser: pure (argv in, options and positionals out, or a UsageError), so
// every rule is unit-tested without a process. Options may come before or after the command and
// its arguments; `--name value`, `--name=value` and one-letter `-x` forms; `--` ends options.

import { UsageError } from './failure.js';

export interface OptionSpec {
  /** The long name, without dashes: `json` is `--json`. */
  readonly name: string;
  /** A switch takes no value; a value option takes exactly one. */
  readonly kind: 'switch' | 'value';
  readonly short?: string;
  /** How the value is shown in help, e.g. HOST:PORT. */
  readonly valueName?: string;
  readonly description: string;
}

export interface ParsedArgs {
  readonly positionals: readonly string[];
  /** By long name: `true` for a switch given, the last value for a value option. */
  readonly options: ReadonlyMap<string, string | true>;
}

function findSpec(specs: readonly OptionSpec[], token: string): { spec: OptionSpec; inlineValue: string | undefined } {
  const long = token.startsWith('--');
  const body = token.slice(long ? 2 : 1);
  const equals = body.indexOf('=');
  const name = equals >= 0 ? body.slice(0, equals) : body;
  const inlineValue = equals >= 0 ? body.slice(equals + 1) : undefined;
  const spec = specs.find((candidate) => (long ? candidate.name === name : candidate.short === name));
  if (spec === undefined) throw new UsageError(`unknown option ${long ? '--' : '-'}${name}`);
  return { spec, inlineValue };
}

/** Parses `argv` (without node and the script) against `specs`. */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[]): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] as string;
    if (token === '--') {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    // A lone '-' is a positional: it means stdin or stdout.
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const { spec, inlineValue } = findSpec(specs, token);
    if (spec.kind === 'switch') {
      if (inlineValue !== undefined) throw new UsageError(`--${spec.name} takes no value`);
      options.set(spec.name, true);
      continue;
    }
    const value = inlineValue ?? argv[++index];
    if (value === undefined) throw new UsageError(`--${spec.name} needs a value (${spec.valueName ?? 'VALUE'})`);
    options.set(spec.name, value);
  }
  return { positionals, options };
}

/**
 * The command's name: the first token that is neither an option nor the value of a value option
 * among `specs`; returns its index, or -1 when there is none.
 */
export function findCommandIndex(argv: readonly string[], specs: readonly OptionSpec[]): number {
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] as string;
    if (token === '--') return index + 1 < argv.length ? index + 1 : -1;
    if (!token.startsWith('-') || token === '-') return index;
    const long = token.startsWith('--');
    const name = token.slice(long ? 2 : 1).split('=')[0];
    const spec = specs.find((candidate) => (long ? candidate.name === name : candidate.short === name));
    if (spec?.kind === 'value' && !token.includes('=')) index++;
  }
  return -1;
}

/** A value option as a non-negative integer, or `fallback` when absent. */
export function integerOption(args: ParsedArgs, name: string, fallback: number): number {
  const value = args.options.get(name);
  if (value === undefined || value === true) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer, got "${value}"`);
  return Number(value);
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const value = args.options.get(name);
  return typeof value === 'string' ? value : undefined;
}

/** The positionals, checked against a count; `usage` is the command's usage line for the message. */
export function expectPositionals(args: ParsedArgs, minimum: number, maximum: number, usage: string): readonly string[] {
  const count = args.positionals.length;
  if (count < minimum || count > maximum) {
    const wanted = minimum === maximum ? `${minimum}` : maximum === Infinity ? `at least ${minimum}` : `${minimum} to ${maximum}`;
    throw new UsageError(`expected ${wanted} argument${maximum === 1 && minimum === 1 ? '' : 's'}, got ${count}: usage: ${usage}`, `run \`${usage.split(' ').slice(0, 2).join(' ')} --help\``);
  }
  return args.positionals;
}
