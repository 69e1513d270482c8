// Command-line flags. Goal: the seed's single-dash forms (`-id node2`, `-id=node2`) and the
// double-dash forms (`--id node2`, `--id=node2`) all work for every setting; switches work as
// `-fuse`, `-fuse=false`, `-no-fuse`; help is recognised in every spelling; and every flag mistake
// (unknown flag, missing value, stray argument, a value given to -no-fuse) is an error naming the
// flag exactly as it was typed. Method: loadConfig on argument lists, with no file and no environment.

import t from 'tap';

import { formatAddress, settingKeys, settings } from '../../src/config/index.js';
import { expectOneError, load, loadErrors, loadValid } from './helpers.js';

t.test('every setting accepts all four flag forms', async (t) => {
  const values: Record<string, string> = {
    id: 'node2', raft: ':12002', grpc: ':13002', http: ':14002', advertise: 'host2:12002',
    peers: 'node1,node3', data: 'data2', mount: '/mnt/dfs2', cache: '/mnt/hostfs2',
    maxMessageBytes: '1MiB', tickMilliseconds: '50', snapshotEntries: '500', watchRetention: '5000', logLevel: 'debug',
  };
  for (const key of settingKeys.filter((candidate) => !settings[candidate].isSwitch)) {
    const flag = settings[key].flag;
    const value = values[key] ?? '';
    const forms = [[`-${flag}`, value], [`-${flag}=${value}`], [`--${flag}`, value], [`--${flag}=${value}`]];
    const configs = forms.map((argv) => loadValid(t, { argv }));
    for (const [index, config] of configs.entries()) {
      t.equal(config.sources[key], 'flag', `${forms[index]?.join(' ')} sets ${key}`);
      t.same(config, configs[0], `${forms[index]?.join(' ')} reads the same as ${forms[0]?.join(' ')}`);
    }
  }
});

t.test('the seed\'s command line', async (t) => {
  const config = loadValid(t, { argv: ['-id', 'node2', '-raft', ':12001', '-grpc', ':13001', '-data', 'data2', '-peers', 'node1'] });
  t.equal(config.nodeId, 'node2');
  t.equal(formatAddress(config.raftBindAddress), ':12001');
  t.equal(formatAddress(config.grpcBindAddress), ':13001');
  t.equal(config.dataFolder, '/work/node/data2');
  t.same(config.peerAddresses.map(formatAddress), ['node1:12000']);
});

t.test('switches: -fuse, -fuse=false, -no-fuse, and both dash counts', async (t) => {
  const cases: Array<[argv: string[], fuseEnabled: boolean]> = [
    [['-fuse'], true], [['--fuse'], true], [['-fuse=true'], true], [['--fuse=false'], false],
    [['-fuse=false'], false], [['-no-fuse'], false], [['--no-fuse'], false], [['-fuse=0'], false],
    [['-fuse=off'], false], [['-fuse=yes'], true], [['-fuse=FALSE'], false],
  ];
  for (const [argv, fuseEnabled] of cases) {
    t.equal(loadValid(t, { argv }).fuseEnabled, fuseEnabled, argv.join(' '));
  }
  t.equal(loadValid(t, { argv: ['-no-fuse', '-fuse'] }).fuseEnabled, true, 'the last of repeated switches wins');
  t.equal(loadValid(t, { env: { DFS_FUSE: 'true' }, argv: ['-no-fuse'] }).fuseEnabled, false, '-no-fuse beats DFS_FUSE');
  const config = loadValid(t, { argv: ['-fuse', '-id', 'node2'] });
  t.equal(config.nodeId, 'node2', 'a switch does not take the next flag as its value');
});

t.test('the last of a repeated flag wins', async (t) => {
  t.equal(loadValid(t, { argv: ['-id', 'first', '--id=second'] }).nodeId, 'second');
});

t.test('values that contain "=" or look like flags', async (t) => {
  t.equal(loadValid(t, { argv: ['-data=a=b'] }).dataFolder, '/work/node/a=b', 'only the first "=" separates');
  t.equal(loadValid(t, { argv: ['-data=-odd'] }).dataFolder, '/work/node/-odd', 'a value starting with "-" after "="');
  t.equal(loadValid(t, { argv: ['-data', '-odd'] }).dataFolder, '/work/node/-odd', 'a value starting with "-" that is no flag');
  t.equal(loadValid(t, { argv: ['-data=-raft'] }).dataFolder, '/work/node/-raft', 'a value named like a flag, after "="');
});

t.test('help in every spelling, even among mistakes', async (t) => {
  for (const argv of [['-h'], ['--h'], ['-help'], ['--help'], ['-id', 'node2', '--help'], ['-unknown', '-h']]) {
    const result = load({ argv, env: { DFS_TYPO: 'x' } });
    t.equal(result.kind, 'help', argv.join(' '));
    if (result.kind === 'help') t.match(result.text, /Usage: dfs/);
  }
});

t.test('an unknown flag names the closest known one, in the dashes it was typed with', async (t) => {
  expectOneError(t, { argv: ['-pears', 'node1'] }, '-pears', /unknown flag; did you mean -peers\?/);
  expectOneError(t, { argv: ['--pears=node1'] }, '--pears', /unknown flag; did you mean --peers\?/);
  expectOneError(t, { argv: ['-maxMessageBytes=1MiB'] }, '-maxMessageBytes', /did you mean -max-message-bytes\?/);
  expectOneError(t, { argv: ['-nofuse'] }, '-nofuse', /did you mean -no-fuse\?/);
  expectOneError(t, { argv: ['-no-id'] }, '-no-id', /unknown flag/);
  expectOneError(t, { argv: ['-ID', 'node2'] }, '-ID', /did you mean -id\?/);
});

t.test('a flag without its value', async (t) => {
  expectOneError(t, { argv: ['-id'] }, '-id', /needs a value: -id VALUE or -id=VALUE/);
  expectOneError(t, { argv: ['--peers'] }, '--peers', /needs a value/);
  expectOneError(t, { argv: ['-config'] }, '-config', /needs a value/);
  expectOneError(t, { argv: ['-data', '-no-fuse'] }, '-data', /needs a value/);
  const error = expectOneError(t, { argv: ['-id', '-raft', ':12001'] }, '-id', /needs a value/);
  t.ok(error, 'a following flag is not taken as the value');
});

t.test('stray arguments', async (t) => {
  expectOneError(t, { argv: ['node2'] }, 'node2', /unexpected argument/);
  expectOneError(t, { argv: ['-fuse', 'false'] }, 'false', /unexpected argument.*-fuse=false/);
  expectOneError(t, { argv: ['-'] }, '-', /unexpected argument/);
  expectOneError(t, { argv: ['--', 'extra'] }, 'extra', /unexpected argument/);
  t.equal(load({ argv: ['-id', 'node2', '--'] }).kind, 'config', 'a final "--" is harmless');
});

t.test('-no-fuse takes no value', async (t) => {
  expectOneError(t, { argv: ['-no-fuse=true'] }, '-no-fuse', /takes no value; write -fuse=true instead/);
});

t.test('every flag mistake is reported, not just the first', async (t) => {
  const errors = loadErrors(t, { argv: ['-idd', 'x', 'stray', '--raft=:0', '-log-level'] });
  t.same(errors.map((error) => error.setting), ['-idd', 'stray', '-log-level', '--raft'],
    'the unknown flag takes its value along; the value errors follow the name errors');
});
