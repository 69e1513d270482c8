// Value rules. Goal: every rule of every setting rejects what it should, in whichever layer the bad
// value was written, with an error that names the setting as the user wrote it (`--raft`,
// `DFS_RAFT`, `raft` in the file) and the rule; a bad value that a higher layer overrides is not an
// error; all errors of one start are reported together; and the rules that span settings (port
// clashes, overlapping folders) blame the setting the user set. Method: loadConfig on hand-made
// argv, environments and dfs.yaml texts; expectOneError checks the count, the name and the rule.

import t, { type Test } from 'tap';

import { defaultFile, expectOneError, loadErrors, loadValid } from './helpers.js';

/** A bad value for one setting, checked as a flag, as an environment variable and in dfs.yaml. */
function expectRejectedEverywhere(t: Test, key: string, flag: string, variable: string, text: string, rule: RegExp): void {
  expectOneError(t, { argv: [`-${flag}=${text}`] }, `-${flag}`, rule);
  expectOneError(t, { argv: [`--${flag}`, text] }, `--${flag}`, rule);
  expectOneError(t, { env: { [variable]: text } }, variable, rule);
  expectOneError(t, { files: defaultFile(`${key}: ${JSON.stringify(text)}\n`) }, key, rule);
}

type Rejection = [text: string, rule: RegExp];

const idRule = /must be 1 to 64 characters of letters, digits, "\.", "_" and "-", not starting with "\." or "-"/;

t.test('id', async (t) => {
  const rejections: Rejection[] = [
    ['', idRule], ['.hidden', idRule], ['x'.repeat(65), idRule], ['node 1', idRule], ['nöde', idRule], ['a/b', idRule],
  ];
  for (const [text, rule] of rejections) expectRejectedEverywhere(t, 'id', 'id', 'DFS_ID', text, rule);
  // "-node" can only be given to the flag with "=", as any value starting with a dash.
  expectOneError(t, { argv: ['-id=-node'] }, '-id', idRule);
  expectOneError(t, { env: { DFS_ID: '-node' } }, 'DFS_ID', idRule);
  expectOneError(t, { files: defaultFile('id: 7\n') }, 'id', /must be a string \(quote it in YAML\)/);
  expectOneError(t, { files: defaultFile('id:\n') }, 'id', /must be a string/);
  for (const text of ['a', 'x'.repeat(64), 'node_1.eu-west', '_x', '0']) {
    t.equal(loadValid(t, { argv: ['-id', text] }).nodeId, text, `${text} is a valid id`);
  }
});

const bindRejections: Rejection[] = [
  ['', /must not be empty/],
  ['12000', /needs a port/],
  ['localhost', /needs a port/],
  [':0', /port 0 must be from 1 to 65535/],
  [':65536', /port 65536 must be from 1 to 65535/],
  [':http', /must be a number from 1 to 65535/],
  ['::1:12000', /IPv6 host must be written in brackets/],
  ['[::1:12000', /must be closed/],
  ['[localhost]:12000', /is not an IPv6 address/],
  ['bad host:12000', /may contain only letters/],
];

for (const [key, variable] of [['raft', 'DFS_RAFT'], ['grpc', 'DFS_GRPC'], ['http', 'DFS_HTTP']] as const) {
  t.test(`${key} bind address`, async (t) => {
    for (const [text, rule] of bindRejections) expectRejectedEverywhere(t, key, key, variable, text, rule);
    expectOneError(t, { files: defaultFile(`${key}: 12000\n`) }, key, /must be a string/);
  });
}

t.test('advertise', async (t) => {
  const rejections: Rejection[] = [
    ['', /must not be empty/],
    [':12000', /needs a host/],
    ['0.0.0.0:12000', /listens everywhere but cannot be dialled/],
    ['[::]:12000', /listens everywhere but cannot be dialled/],
    ['0.0.0.0', /listens everywhere/],
    ['host:0', /must be from 1 to 65535/],
    ['::1', /brackets/],
  ];
  for (const [text, rule] of rejections) expectRejectedEverywhere(t, 'advertise', 'advertise', 'DFS_ADVERTISE', text, rule);
});

t.test('peers', async (t) => {
  const rejections: Rejection[] = [
    ['node1,,node2', /must not contain an empty entry/],
    ['node1,', /must not contain an empty entry/],
    [',node1', /must not contain an empty entry/],
    ['node1, ,node2', /must not contain an empty entry/],
    [':12000', /peer ":12000": needs a host/],
    ['node1,0.0.0.0', /peer "0.0.0.0": host "0.0.0.0" listens everywhere/],
    ['node1:99999', /peer "node1:99999": port 99999 must be from 1 to 65535/],
    ['::1', /peer "::1": an IPv6 host must be written in brackets/],
    ['no de', /may contain only letters/],
  ];
  for (const [text, rule] of rejections) expectRejectedEverywhere(t, 'peers', 'peers', 'DFS_PEERS', text, rule);
  expectOneError(t, { files: defaultFile('peers:\n  - node1\n  - ""\n') }, 'peers', /must not contain an empty entry/);
  expectOneError(t, { files: defaultFile('peers: [node1, 12000]\n') }, 'peers', /each peer must be a string host\[:port\]; found 12000/);
  expectOneError(t, { files: defaultFile('peers:\n  node1: 12000\n') }, 'peers', /must be a list of host\[:port\]/);
  expectOneError(t, { files: defaultFile('peers: 5\n') }, 'peers', /must be a list/);
});

t.test('folders', async (t) => {
  for (const [key, variable] of [['data', 'DFS_DATA'], ['mount', 'DFS_MOUNT'], ['cache', 'DFS_CACHE']] as const) {
    expectRejectedEverywhere(t, key, key, variable, '', /must name a folder \(it is empty\)/);
    expectRejectedEverywhere(t, key, key, variable, '  ', /must name a folder/);
    expectOneError(t, { env: { [variable]: 'a\0b' } }, variable, /must not contain a NUL character/);
    expectOneError(t, { files: defaultFile(`${key}: [a, b]\n`) }, key, /must be a string/);
  }
});

t.test('fuse', async (t) => {
  for (const text of ['maybe', '', '2', 'enabled']) {
    expectOneError(t, { argv: [`-fuse=${text}`] }, '-fuse', /must be true or false/);
    expectOneError(t, { env: { DFS_FUSE: text } }, 'DFS_FUSE', /must be true or false/);
  }
  expectOneError(t, { files: defaultFile('fuse: maybe\n') }, 'fuse', /must be true or false/);
  expectOneError(t, { files: defaultFile('fuse: 1\n') }, 'fuse', /must be true or false/);
  t.equal(loadValid(t, { files: defaultFile('fuse: "false"\n') }).fuseEnabled, false, 'quoted YAML text is read too');
});

t.test('max message bytes', async (t) => {
  const unreadable = /must be a whole number of bytes, optionally with a unit B, KiB, MiB or GiB/;
  const outOfRange = /must be from 1KiB \(1024\) to 1GiB \(1073741824\) bytes/;
  const rejections: Rejection[] = [
    ['1023', outOfRange], ['0', outOfRange], ['1025MiB', outOfRange], ['2GiB', outOfRange], ['1073741825', outOfRange],
    ['64MB', unreadable], ['64 megabytes', unreadable], ['1.5MiB', unreadable], ['-1', unreadable], ['', unreadable],
    ['99999999999999999999', unreadable],
  ];
  for (const [text, rule] of rejections) {
    expectRejectedEverywhere(t, 'maxMessageBytes', 'max-message-bytes', 'DFS_MAX_MESSAGE_BYTES', text, rule);
  }
  expectOneError(t, { files: defaultFile('maxMessageBytes: 1.5\n') }, 'maxMessageBytes', unreadable);
  expectOneError(t, { files: defaultFile('maxMessageBytes: -4096\n') }, 'maxMessageBytes', outOfRange);
  expectOneError(t, { files: defaultFile('maxMessageBytes: true\n') }, 'maxMessageBytes', unreadable);
  const accepted: Array<[string, number]> = [
    ['1024', 1024], ['1KiB', 1024], ['1kib', 1024], ['64 MiB', 64 * 1024 * 1024], ['1GiB', 1024 ** 3], ['2048B', 2048],
  ];
  for (const [text, bytes] of accepted) {
    t.equal(loadValid(t, { argv: ['-max-message-bytes', text] }).maxMessageBytes, bytes, `${text} is ${bytes} bytes`);
  }
});

t.test('tick milliseconds', async (t) => {
  const unreadable = /must be a whole number of milliseconds, without a unit, e\.g\. "100"/;
  const outOfRange = /must be from 10 to 10000 milliseconds/;
  const rejections: Rejection[] = [
    ['9', outOfRange], ['0', outOfRange], ['-100', outOfRange], ['10001', outOfRange], ['99999999999999999999', outOfRange],
    ['100ms', unreadable], ['1s', unreadable], ['100 ms', unreadable], ['1.5', unreadable], ['1e2', unreadable],
    ['10_000', unreadable], ['0x64', unreadable], ['', unreadable], ['fast', unreadable],
  ];
  for (const [text, rule] of rejections) {
    expectRejectedEverywhere(t, 'tickMilliseconds', 'tick-milliseconds', 'DFS_TICK_MILLISECONDS', text, rule);
  }
  expectOneError(t, { files: defaultFile('tickMilliseconds: 100.5\n') }, 'tickMilliseconds', unreadable);
  expectOneError(t, { files: defaultFile('tickMilliseconds: .inf\n') }, 'tickMilliseconds', unreadable);
  expectOneError(t, { files: defaultFile('tickMilliseconds: true\n') }, 'tickMilliseconds', unreadable);
  expectOneError(t, { files: defaultFile('tickMilliseconds: [100]\n') }, 'tickMilliseconds', unreadable);
  expectOneError(t, { files: defaultFile('tickMilliseconds: -50\n') }, 'tickMilliseconds', outOfRange);
  expectOneError(t, { files: defaultFile('tickMilliseconds: 20000\n') }, 'tickMilliseconds', outOfRange);
  const accepted: Array<[string, number]> = [['10', 10], ['10000', 10000], ['100', 100], [' 250 ', 250], ['+50', 50], ['0100', 100]];
  for (const [text, milliseconds] of accepted) {
    t.equal(loadValid(t, { argv: ['-tick-milliseconds', text] }).tickMilliseconds, milliseconds, `${JSON.stringify(text)} is ${milliseconds}`);
  }
  t.equal(loadValid(t, { files: defaultFile('tickMilliseconds: 10000\n') }).tickMilliseconds, 10000, 'a YAML integer');
  t.equal(loadValid(t, { files: defaultFile('tickMilliseconds: "20"\n') }).tickMilliseconds, 20, 'quoted YAML text is read too');
});

t.test('snapshot entries', async (t) => {
  const unreadable = /must be a whole number of entries, without a unit, e\.g\. "10000"/;
  const outOfRange = /must be from 1 to 100000000 entries/;
  const rejections: Rejection[] = [
    ['0', outOfRange], ['-1', outOfRange], ['100000001', outOfRange], ['99999999999999999999', outOfRange],
    ['10k', unreadable], ['10000 entries', unreadable], ['1.0', unreadable], ['1e4', unreadable],
    ['10,000', unreadable], ['', unreadable], ['many', unreadable],
  ];
  for (const [text, rule] of rejections) {
    expectRejectedEverywhere(t, 'snapshotEntries', 'snapshot-entries', 'DFS_SNAPSHOT_ENTRIES', text, rule);
  }
  expectOneError(t, { files: defaultFile('snapshotEntries: 2.5\n') }, 'snapshotEntries', unreadable);
  expectOneError(t, { files: defaultFile('snapshotEntries: false\n') }, 'snapshotEntries', unreadable);
  expectOneError(t, { files: defaultFile('snapshotEntries:\n') }, 'snapshotEntries', unreadable);
  expectOneError(t, { files: defaultFile('snapshotEntries: 0\n') }, 'snapshotEntries', outOfRange);
  expectOneError(t, { files: defaultFile('snapshotEntries: 1000000000\n') }, 'snapshotEntries', outOfRange);
  const accepted: Array<[string, number]> = [['1', 1], ['100000000', 100_000_000], ['10000', 10_000], ['  42', 42]];
  for (const [text, entries] of accepted) {
    t.equal(loadValid(t, { argv: ['-snapshot-entries', text] }).snapshotEveryEntries, entries, `${JSON.stringify(text)} is ${entries}`);
  }
  t.equal(loadValid(t, { files: defaultFile('snapshotEntries: 500\n') }).snapshotEveryEntries, 500, 'a YAML integer');
});

t.test('watch retention', async (t) => {
  const unreadable = /must be a whole number of changes, without a unit, e\.g\. "100000"/;
  const outOfRange = /must be from 1 to 100000000 changes/;
  const rejections: Rejection[] = [
    ['0', outOfRange], ['-1', outOfRange], ['-100000', outOfRange], ['100000001', outOfRange], ['99999999999999999999', outOfRange],
    ['1.5', unreadable], ['100000.0', unreadable], ['1e5', unreadable], ['100k', unreadable], ['100,000', unreadable],
    ['100000 changes', unreadable], ['', unreadable], ['all', unreadable],
  ];
  for (const [text, rule] of rejections) {
    expectRejectedEverywhere(t, 'watchRetention', 'watch-retention', 'DFS_WATCH_RETENTION', text, rule);
  }
  expectOneError(t, { files: defaultFile('watchRetention: 2.5\n') }, 'watchRetention', unreadable);
  expectOneError(t, { files: defaultFile('watchRetention: true\n') }, 'watchRetention', unreadable);
  expectOneError(t, { files: defaultFile('watchRetention:\n') }, 'watchRetention', unreadable);
  expectOneError(t, { files: defaultFile('watchRetention: [5]\n') }, 'watchRetention', unreadable);
  expectOneError(t, { files: defaultFile('watchRetention: 0\n') }, 'watchRetention', outOfRange);
  expectOneError(t, { files: defaultFile('watchRetention: -5\n') }, 'watchRetention', outOfRange);
  expectOneError(t, { files: defaultFile('watchRetention: 1000000000\n') }, 'watchRetention', outOfRange);
  const accepted: Array<[string, number]> = [['1', 1], ['100000000', 100_000_000], ['100000', 100_000], [' 42 ', 42], ['+7', 7]];
  for (const [text, changes] of accepted) {
    t.equal(loadValid(t, { argv: ['-watch-retention', text] }).watchRetainedChanges, changes, `${JSON.stringify(text)} is ${changes}`);
  }
  t.equal(loadValid(t, { files: defaultFile('watchRetention: 500\n') }).watchRetainedChanges, 500, 'a YAML integer');
  t.equal(loadValid(t, {}).watchRetainedChanges, 100_000, 'the default');
});

t.test('log level', async (t) => {
  const rule = /must be one of trace, debug, info, warn, error, fatal, silent/;
  for (const text of ['verbose', '', 'warning']) {
    expectRejectedEverywhere(t, 'logLevel', 'log-level', 'DFS_LOG_LEVEL', text, rule);
  }
  expectOneError(t, { files: defaultFile('logLevel: 30\n') }, 'logLevel', rule);
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', 'Debug']) {
    t.equal(loadValid(t, { argv: ['-log-level', level] }).logLevel, level.toLowerCase(), level);
  }
});

t.test('a bad value that a higher layer overrides is not an error', async (t) => {
  const config = loadValid(t, {
    files: defaultFile('raft: ":99999"\nfuse: maybe\n'),
    env: { DFS_RAFT: 'bad', DFS_ID: '.bad', DFS_MAX_MESSAGE_BYTES: 'lots', DFS_TICK_MILLISECONDS: '5' },
    argv: ['-raft', ':12001', '-fuse=false', '-id', 'node2', '-max-message-bytes', '1MiB', '-tick-milliseconds', '20'],
  });
  t.equal(config.nodeId, 'node2');
  t.equal(config.raftBindAddress.port, 12001);
  t.equal(config.fuseEnabled, false);
  t.equal(config.maxMessageBytes, 1024 * 1024);
  t.equal(config.tickMilliseconds, 20);
});

t.test('an overridden value does not hide the bad value in effect', async (t) => {
  expectOneError(t, { files: defaultFile('raft: ":12001"\n'), env: { DFS_RAFT: ':0' } }, 'DFS_RAFT', /port 0/);
  expectOneError(t, { env: { DFS_FUSE: 'false' }, argv: ['-fuse=nope'] }, '-fuse', /must be true or false/);
});

t.test('all errors of one start are reported together, in a stable order', async (t) => {
  const errors = loadErrors(t, {
    files: defaultFile('idd: node1\nraft: ":0"\n'),
    env: { DFS_PEER: 'node1', DFS_LOG_LEVEL: 'loud' },
    argv: ['-fusee', '-id=.x', '-max-message-bytes=1', '-snapshot-entries=0'],
  });
  t.same(errors.map((error) => [error.source, error.setting]), [
    ['flag', '-fusee'],
    ['environment', 'DFS_PEER'],
    ['file', 'idd'],
    ['flag', '-id'],
    ['file', 'raft'],
    ['flag', '-max-message-bytes'],
    ['flag', '-snapshot-entries'],
    ['environment', 'DFS_LOG_LEVEL'],
  ]);
  for (const error of errors) t.ok(error.message.startsWith(error.setting), error.message);
});

t.test('messages show the value as written and where', async (t) => {
  const [flag] = loadErrors(t, { argv: ['--raft', ':0'] });
  t.equal(flag?.message, '--raft ":0": port 0 must be from 1 to 65535');
  const [environment] = loadErrors(t, { env: { DFS_RAFT: ':0' } });
  t.equal(environment?.message, 'DFS_RAFT=":0": port 0 must be from 1 to 65535');
  const [file] = loadErrors(t, { files: defaultFile('raft: ":0"\n') });
  t.equal(file?.message, 'raft ":0" in /work/node/dfs.yaml: port 0 must be from 1 to 65535');
  const [long] = loadErrors(t, { env: { DFS_ID: 'x'.repeat(200) } });
  t.ok((long?.message.length ?? 0) < 200, 'a long value is shown cut short');
});

t.test('bind ports must not clash, and the clash is blamed on the setting the user set', async (t) => {
  expectOneError(t, { argv: ['-grpc', ':12000'] }, '-grpc', /port 12000 is also the raft port \(-raft \(default ":12000"\)\)/);
  expectOneError(t, { env: { DFS_RAFT: ':13000' } }, 'DFS_RAFT', /port 13000 is also the grpc port/);
  expectOneError(t, { argv: ['-http', '127.0.0.1:13000'] }, '-http', /port 13000 is also the grpc port/);
  expectOneError(t, { env: { DFS_GRPC: ':13001' }, argv: ['-http=:13001'] }, '-http', /also the grpc port \(DFS_GRPC=":13001"\)/);
  expectOneError(t, { files: defaultFile('http: ":13001"\n'), env: { DFS_GRPC: ':13001' } }, 'DFS_GRPC', /also the http port/);
  const errors = loadErrors(t, { argv: ['-grpc', ':12000', '-http', ':12000'] });
  t.equal(errors.length, 3, 'three addresses on one port clash pairwise');
  loadValid(t, { argv: ['-raft', '127.0.0.1:12000', '-grpc', '127.0.0.2:12000', '-http', '[::1]:12000'] });
});

t.test('with FUSE on, the mount, cache and data folders must not overlap', async (t) => {
  expectOneError(t, { argv: ['-cache', '/mnt/dfs'] }, '-cache', /the mount and the cache folder must be separate/);
  expectOneError(t, { argv: ['-cache', '/mnt/dfs/cache'] }, '-cache', /must be separate, neither inside the other/);
  expectOneError(t, { env: { DFS_MOUNT: '/mnt/hostfs/view' } }, 'DFS_MOUNT', /must be separate/);
  expectOneError(t, { argv: ['-data', '/mnt/dfs/data'] }, '-data', /must not be inside the mount \/mnt\/dfs, which hides it/);
  expectOneError(t, { argv: ['-data', '/mnt/hostfs/data'] }, '-data', /must not be inside the cache folder \/mnt\/hostfs, which would replicate it/);
  expectOneError(t, { env: { DFS_DATA: '/srv/data' }, argv: ['-cache', '/srv'] }, '-cache', /would replicate it/);
  loadValid(t, { argv: ['-cache', '/mnt/dfs-cache'] });
  const config = loadValid(t, { argv: ['-no-fuse', '-cache', '/mnt/dfs', '-data', '/mnt/dfs/data'] });
  t.equal(config.fuseEnabled, false, 'without FUSE the mount and cache folders are unused, so they may overlap');
});
