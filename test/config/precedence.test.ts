// Precedence: defaults < dfs.yaml < DFS_* environment < flags, for every setting. Goal: each of the
// fourteen settings reads from all four layers and the higher layer always wins, and NodeConfig.sources
// says which one did. Method: for each setting, a table gives a distinct valid value per layer (in
// the layer's own form: a YAML value, environment text, flag text) and a projection of NodeConfig;
// the test stacks the layers one at a time and checks the projected value after each step, then
// checks each layer alone. Other settings stay at their defaults throughout.

import t from 'tap';

import { formatAddress, settingKeys, type NodeConfig, type SettingKey } from '../../src/config/index.js';
import { defaultFile, loadValid, workingFolder } from './helpers.js';

interface LayerValues {
  /** The value in dfs.yaml, as YAML text after `key: `. */
  readonly yaml: string;
  readonly environment: string;
  readonly flag: string;
  /** What NodeConfig shows for the default, the YAML, the environment and the flag value. */
  readonly expected: readonly [defaultValue: unknown, yaml: unknown, environment: unknown, flag: unknown];
  readonly project: (config: NodeConfig) => unknown;
}

const cases: Record<SettingKey, LayerValues> = {
  id: {
    yaml: 'from-file', environment: 'from-env', flag: 'from-flag',
    expected: ['node1', 'from-file', 'from-env', 'from-flag'],
    project: (config) => config.nodeId,
  },
  raft: {
    yaml: '":12001"', environment: '127.0.0.1:12002', flag: '[::1]:12003',
    expected: [':12000', ':12001', '127.0.0.1:12002', '[::1]:12003'],
    project: (config) => formatAddress(config.raftBindAddress),
  },
  grpc: {
    yaml: '":13001"', environment: '0.0.0.0:13002', flag: 'localhost:13003',
    expected: [':13000', ':13001', '0.0.0.0:13002', 'localhost:13003'],
    project: (config) => formatAddress(config.grpcBindAddress),
  },
  http: {
    yaml: '":14001"', environment: ':14002', flag: ':14003',
    expected: [':14000', ':14001', ':14002', ':14003'],
    project: (config) => formatAddress(config.httpBindAddress),
  },
  advertise: {
    yaml: 'file-host:1', environment: 'env-host:2', flag: 'flag-host:3',
    expected: ['node1:12000', 'file-host:1', 'env-host:2', 'flag-host:3'],
    project: (config) => formatAddress(config.advertiseAddress),
  },
  peers: {
    yaml: '[file-peer-a, "file-peer-b:2"]', environment: 'env-peer', flag: 'flag-peer-a:3,flag-peer-b',
    expected: [[], ['file-peer-a:12000', 'file-peer-b:2'], ['env-peer:12000'], ['flag-peer-a:3', 'flag-peer-b:12000']],
    project: (config) => config.peerAddresses.map(formatAddress),
  },
  data: {
    yaml: 'file-data', environment: '/var/lib/env-data', flag: '../flag-data',
    expected: [`${workingFolder}/data`, `${workingFolder}/file-data`, '/var/lib/env-data', '/work/flag-data'],
    project: (config) => config.dataFolder,
  },
  mount: {
    yaml: '/file/mount', environment: '/env/mount', flag: 'flag-mount',
    expected: ['/mnt/dfs', '/file/mount', '/env/mount', `${workingFolder}/flag-mount`],
    project: (config) => config.mountFolder,
  },
  cache: {
    yaml: '/file/cache', environment: '/env/cache', flag: 'flag-cache',
    expected: ['/mnt/hostfs', '/file/cache', '/env/cache', `${workingFolder}/flag-cache`],
    project: (config) => config.cacheFolder,
  },
  fuse: {
    yaml: 'false', environment: 'true', flag: 'false',
    expected: [true, false, true, false],
    project: (config) => config.fuseEnabled,
  },
  maxMessageBytes: {
    yaml: '2048', environment: '3KiB', flag: '4MiB',
    expected: [64 * 1024 * 1024, 2048, 3072, 4 * 1024 * 1024],
    project: (config) => config.maxMessageBytes,
  },
  tickMilliseconds: {
    yaml: '50', environment: '250', flag: '1000',
    expected: [100, 50, 250, 1000],
    project: (config) => config.tickMilliseconds,
  },
  snapshotEntries: {
    yaml: '500', environment: '20000', flag: '1',
    expected: [10000, 500, 20000, 1],
    project: (config) => config.snapshotEveryEntries,
  },
  watchRetention: {
    yaml: '5000', environment: '250000', flag: '1',
    expected: [100000, 5000, 250000, 1],
    project: (config) => config.watchRetainedChanges,
  },
  logLevel: {
    yaml: 'debug', environment: 'WARN', flag: 'error',
    expected: ['info', 'debug', 'warn', 'error'],
    project: (config) => config.logLevel,
  },
};

const environmentVariables: Record<SettingKey, string> = {
  id: 'DFS_ID', raft: 'DFS_RAFT', grpc: 'DFS_GRPC', http: 'DFS_HTTP', advertise: 'DFS_ADVERTISE',
  peers: 'DFS_PEERS', data: 'DFS_DATA', mount: 'DFS_MOUNT', cache: 'DFS_CACHE', fuse: 'DFS_FUSE',
  maxMessageBytes: 'DFS_MAX_MESSAGE_BYTES', tickMilliseconds: 'DFS_TICK_MILLISECONDS',
  snapshotEntries: 'DFS_SNAPSHOT_ENTRIES', watchRetention: 'DFS_WATCH_RETENTION', logLevel: 'DFS_LOG_LEVEL',
};

const flags: Record<SettingKey, string> = {
  id: '-id', raft: '-raft', grpc: '-grpc', http: '-http', advertise: '-advertise', peers: '-peers',
  data: '-data', mount: '-mount', cache: '-cache', fuse: '-fuse', maxMessageBytes: '-max-message-bytes',
  tickMilliseconds: '-tick-milliseconds', snapshotEntries: '-snapshot-entries', watchRetention: '-watch-retention',
  logLevel: '-log-level',
};

t.same([...settingKeys].sort(), Object.keys(cases).sort(), 'the table covers every setting');

for (const key of settingKeys) {
  const layer = cases[key];
  const yaml = defaultFile(`${key}: ${layer.yaml}\n`);
  const environment = { [environmentVariables[key]]: layer.environment };
  // Switches take their value after "=", so every flag is written that way here.
  const argv = [`${flags[key]}=${layer.flag}`];

  t.test(`${key}: each layer beats the ones below it`, async (t) => {
    const [fromDefault, fromFile, fromEnvironment, fromFlag] = layer.expected;

    const defaults = loadValid(t);
    t.same(layer.project(defaults), fromDefault, 'default');
    t.equal(defaults.sources[key], 'default');

    const file = loadValid(t, { files: yaml });
    t.same(layer.project(file), fromFile, 'dfs.yaml beats the default');
    t.equal(file.sources[key], 'file');
    t.equal(file.configFile, `${workingFolder}/dfs.yaml`);

    const fileAndEnvironment = loadValid(t, { files: yaml, env: environment });
    t.same(layer.project(fileAndEnvironment), fromEnvironment, 'the environment beats dfs.yaml');
    t.equal(fileAndEnvironment.sources[key], 'environment');

    const all = loadValid(t, { files: yaml, env: environment, argv });
    t.same(layer.project(all), fromFlag, 'the flag beats the environment');
    t.equal(all.sources[key], 'flag');

    t.same(layer.project(loadValid(t, { env: environment })), fromEnvironment, 'the environment alone');
    t.same(layer.project(loadValid(t, { argv })), fromFlag, 'the flag alone');
    t.same(layer.project(loadValid(t, { files: yaml, argv })), fromFlag, 'the flag beats dfs.yaml without environment');

    for (const other of settingKeys.filter((candidate) => candidate !== key)) {
      t.equal(all.sources[other], 'default', `${other} stays at its default`);
    }
  });
}

t.test('a file named by -config beats one named by DFS_CONFIG, which beats dfs.yaml', async (t) => {
  const files = {
    [`${workingFolder}/dfs.yaml`]: 'id: from-default-file\n',
    '/etc/dfs/environment.yaml': 'id: from-environment-file\n',
    [`${workingFolder}/flag.yaml`]: 'id: from-flag-file\n',
  };
  t.equal(loadValid(t, { files }).nodeId, 'from-default-file');
  const environment = { DFS_CONFIG: '/etc/dfs/environment.yaml' };
  t.equal(loadValid(t, { files, env: environment }).nodeId, 'from-environment-file');
  const both = loadValid(t, { files, env: environment, argv: ['-config', 'flag.yaml'] });
  t.equal(both.nodeId, 'from-flag-file', 'a relative -config path is read from the working folder');
  t.equal(both.configFile, `${workingFolder}/flag.yaml`);
});

t.test('settings from different layers combine', async (t) => {
  const config = loadValid(t, {
    files: defaultFile('id: node3\npeers:\n  - node1\n  - node2\nfuse: false\ntickMilliseconds: 50\n'),
    env: { DFS_RAFT: ':12003', DFS_LOG_LEVEL: 'debug', DFS_SNAPSHOT_ENTRIES: '500', DFS_WATCH_RETENTION: '2000' },
    argv: ['--grpc', ':13003', '-data=/var/lib/dfs3'],
  });
  t.equal(config.nodeId, 'node3');
  t.same(config.peerAddresses.map(formatAddress), ['node1:12000', 'node2:12000']);
  t.equal(config.fuseEnabled, false);
  t.equal(formatAddress(config.raftBindAddress), ':12003');
  t.equal(config.logLevel, 'debug');
  t.equal(formatAddress(config.grpcBindAddress), ':13003');
  t.equal(config.dataFolder, '/var/lib/dfs3');
  t.equal(config.tickMilliseconds, 50);
  t.equal(config.snapshotEveryEntries, 500);
  t.equal(config.watchRetainedChanges, 2000);
  t.equal(formatAddress(config.advertiseAddress), 'node3:12003', 'advertise follows the combined id and raft port');
  t.same(config.sources, {
    id: 'file', raft: 'environment', grpc: 'flag', http: 'default', advertise: 'default', peers: 'file',
    data: 'flag', mount: 'default', cache: 'default', fuse: 'file', maxMessageBytes: 'default',
    tickMilliseconds: 'file', snapshotEntries: 'environment', watchRetention: 'environment', logLevel: 'environment',
  });
});

t.test('the configuration is frozen', async (t) => {
  const config = loadValid(t, { argv: ['-peers', 'node2'] });
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.peerAddresses));
  t.ok(Object.isFrozen(config.peerAddresses[0]));
  t.ok(Object.isFrozen(config.raftBindAddress));
  t.ok(Object.isFrozen(config.advertiseAddress));
  t.ok(Object.isFrozen(config.sources));
});
