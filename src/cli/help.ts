// The --help texts, built from the commands' own declarations so they cannot drift from the parser.

import type { OptionSpec } from './args.js';
import type { Command } from './command.js';
import { exitCodeHelp } from './exit-codes.js';
import { formatTable } from './format.js';

export const globalOptions: readonly OptionSpec[] = [
  { name: 'endpoints', short: 'e', kind: 'value', valueName: 'HOST:PORT,...', description: "nodes' gRPC addresses; the first member with a known leader to answer is used, else the first to answer (default: $DFS_ENDPOINTS, else 127.0.0.1:13000)" },
  { name: 'json', kind: 'switch', description: 'print JSON for scripts instead of tables' },
  { name: 'help', short: 'h', kind: 'switch', description: 'show help (dfsctl COMMAND --help for a command)' },
];

function optionLines(options: readonly OptionSpec[]): string[] {
  return formatTable(
    [{ header: '' }, { header: '' }],
    options.map((option) => [`${option.short === undefined ? '    ' : `-${option.short}, `}--${option.name}${option.kind === 'value' ? ` ${option.valueName ?? 'VALUE'}` : ''}`, option.description]),
  )
    .slice(1)
    .map((line) => `  ${line}`);
}

function exitCodeLines(): string[] {
  return exitCodeHelp.map(([code, meaning]) => `  ${String(code).padStart(3)}  ${meaning}`);
}

export function mainHelp(commands: readonly Command[]): string {
  return [
    'dfsctl: command-line client of a dfs cluster, over gRPC to any node.',
    '',
    'Usage: dfsctl [--endpoints HOST:PORT,...] [--json] COMMAND [ARGS...]',
    '',
    'Commands:',
    ...formatTable(
      [{ header: '' }, { header: '' }],
      commands.map((command) => [command.name, command.summary]),
    )
      .slice(1)
      .map((line) => `  ${line}`),
    '',
    'Options (any command):',
    ...optionLines(globalOptions),
    '',
    'Exit codes:',
    ...exitCodeLines(),
    '',
    'dfsctl COMMAND --help shows a command\'s arguments, options and examples.',
    '',
  ].join('\n');
}

export function commandHelp(command: Command): string {
  return [
    `Usage: ${command.usage}`,
    '',
    command.summary.charAt(0).toUpperCase() + command.summary.slice(1) + '.',
    '',
    command.description,
    '',
    ...(command.options.length > 0 ? ['Options:', ...optionLines(command.options), ''] : []),
    'Options (any command):',
    ...optionLines(globalOptions),
    '',
    'Exit codes:',
    ...exitCodeLines(),
    '',
  ].join('\n');
}
