// dfsctl's argument parser and endpoint list. Goal: every form the help documents parses (options
// before or after the command, --name value, --name=value, -x, `--`, a lone `-` as an argument),
// every mistake is a UsageError (exit code 2) naming the option, and the command is found past the
// values of global options. Method: tables of argv → expected positionals and options.

import t from 'tap';
import { expectPositionals, findCommandIndex, integerOption, parseArgs, type OptionSpec } from '../../src/cli/args.js';
import { resolveEndpoints } from '../../src/cli/endpoints.js';
import { exitCodes } from '../../src/cli/exit-codes.js';
import { globalOptions } from '../../src/cli/help.js';

const specs: OptionSpec[] = [...globalOptions, { name: 'recursive', short: 'r', kind: 'switch', description: '' }, { name: 'mode', kind: 'value', description: '' }];

t.test('forms that parse', async (t) => {
  const cases: Array<[argv: string[], positionals: string[], options: Record<string, string | true>]> = [
    [['a', 'b'], ['a', 'b'], {}],
    [['--json', 'a'], ['a'], { json: true }],
    [['a', '--json'], ['a'], { json: true }],
    [['--endpoints', 'h:1,h:2', 'a'], ['a'], { endpoints: 'h:1,h:2' }],
    [['--endpoints=h:1', 'a'], ['a'], { endpoints: 'h:1' }],
    [['-e', 'h:1', '-r', 'x'], ['x'], { endpoints: 'h:1', recursive: true }],
    [['--mode', '644', '--mode=600'], [], { mode: '600' }],
    [['put', 'k', '-'], ['put', 'k', '-'], {}],
    [['a', '--', '--json', '-r'], ['a', '--json', '-r'], {}],
  ];
  for (const [argv, positionals, options] of cases) {
    const parsed = parseArgs(argv, specs);
    t.same(parsed.positionals, positionals, `${argv.join(' ')}: positionals`);
    t.same(Object.fromEntries(parsed.options), options, `${argv.join(' ')}: options`);
  }
});

t.test('mistakes are usage errors that name the option', async (t) => {
  const cases: Array<[argv: string[], message: RegExp]> = [
    [['--nope'], /unknown option --nope/],
    [['-z'], /unknown option -z/],
    [['--endpoints'], /--endpoints needs a value \(HOST:PORT,\.\.\.\)/],
    [['--json=yes'], /--json takes no value/],
  ];
  for (const [argv, message] of cases) {
    t.throws(() => parseArgs(argv, specs), { name: 'CliError', exitCode: exitCodes.usage, message }, argv.join(' '));
  }
  t.throws(() => integerOption(parseArgs(['--mode', 'x'], specs), 'mode', 0), { exitCode: exitCodes.usage, message: /--mode must be a non-negative integer/ }, 'a non-integer value');
  t.equal(integerOption(parseArgs(['--mode', '12'], specs), 'mode', 0), 12);
  t.throws(() => expectPositionals(parseArgs(['a', 'b', 'c'], specs), 1, 2, 'dfsctl get KEY [FILE]'), { exitCode: exitCodes.usage, message: /expected 1 to 2 arguments, got 3: usage: dfsctl get KEY \[FILE\]/ });
});

t.test('the command is the first token that is not an option or an option value', async (t) => {
  t.equal(findCommandIndex(['ls'], globalOptions), 0);
  t.equal(findCommandIndex(['--endpoints', 'h:1', 'ls'], globalOptions), 2);
  t.equal(findCommandIndex(['-e', 'h:1', '--json', 'ls', 'x'], globalOptions), 3);
  t.equal(findCommandIndex(['--endpoints=h:1', 'ls'], globalOptions), 1);
  t.equal(findCommandIndex(['--json'], globalOptions), -1);
});

t.test('endpoints: flag over environment over the default; malformed ones are usage errors', async (t) => {
  t.same(resolveEndpoints(undefined, undefined), ['127.0.0.1:13000']);
  t.same(resolveEndpoints(undefined, ' '), ['127.0.0.1:13000']);
  t.same(resolveEndpoints(undefined, 'a:1,b:2'), ['a:1', 'b:2']);
  t.same(resolveEndpoints('c:3, c:3 ,[::1]:4', 'a:1'), ['c:3', '[::1]:4'], 'flag wins; duplicates and spaces dropped');
  t.throws(() => resolveEndpoints('localhost', undefined), { exitCode: exitCodes.usage, message: /endpoint "localhost" must be HOST:PORT/ });
  t.throws(() => resolveEndpoints(',', undefined), { exitCode: exitCodes.usage, message: /--endpoints is empty/ });
});
