// The YAML file and the environment as sources of names. Goal: which file is read (dfs.yaml in the
// working folder if present, else the file -config or DFS_CONFIG names, which must exist), and
// that every way a file or a DFS_* variable can be wrong — unparsable YAML, a document that is not
// a mapping, an unknown key, a misspelt DFS_* variable, a missing or unreadable named file — is an
// error naming the file, key or variable, with the closest known name for typos. Method:
// loadConfig over an in-memory file system (a path maps to its text; a missing path is ENOENT).

import t from 'tap';

import { formatAddress, formatConfigErrors } from '../../src/config/index.js';
import { defaultFile, expectOneError, load, loadErrors, loadValid, workingFolder } from './helpers.js';

const defaultPath = `${workingFolder}/dfs.yaml`;

t.test('which file is read', async (t) => {
  t.equal(loadValid(t).configFile, null, 'no dfs.yaml: defaults, no error');
  t.equal(loadValid(t, { files: defaultFile('id: node2\n') }).configFile, defaultPath);
  const named = loadValid(t, { argv: ['-config', '/etc/dfs/node.yaml'], files: { '/etc/dfs/node.yaml': 'id: named\n', ...defaultFile('id: ignored\n') } });
  t.equal(named.nodeId, 'named', 'a named file replaces dfs.yaml; it does not stack on it');
  t.equal(named.configFile, '/etc/dfs/node.yaml');
  t.equal(loadValid(t, { env: { DFS_CONFIG: 'conf/node.yaml' }, files: { [`${workingFolder}/conf/node.yaml`]: 'id: x\n' } }).nodeId, 'x',
    'a relative DFS_CONFIG is read from the working folder');
  t.equal(loadValid(t, { argv: ['--config=/a.yaml'], files: { '/a.yaml': 'id: dashes\n' } }).nodeId, 'dashes');
});

t.test('empty files and comments set nothing', async (t) => {
  for (const text of ['', '\n', '# nothing yet\n', '---\n']) {
    const config = loadValid(t, { files: defaultFile(text) });
    t.equal(config.nodeId, 'node1', JSON.stringify(text));
  }
});

t.test('a named file that does not exist', async (t) => {
  expectOneError(t, { argv: ['-config', 'missing.yaml'] }, '-config', /file \/work\/node\/missing.yaml does not exist/);
  expectOneError(t, { argv: ['--config=/etc/none.yaml'] }, '--config', /does not exist/);
  expectOneError(t, { env: { DFS_CONFIG: '/etc/none.yaml' } }, 'DFS_CONFIG', /file \/etc\/none.yaml does not exist/);
  expectOneError(t, { env: { DFS_CONFIG: '' } }, 'DFS_CONFIG', /must name a YAML file/);
  expectOneError(t, { argv: ['-config='] }, '-config', /must name a YAML file/);
  const [error] = loadErrors(t, { env: { DFS_CONFIG: '/etc/none.yaml' }, argv: ['-config', '/etc/also-none.yaml'] });
  t.match(error?.message, /also-none/, 'the flag, not the environment, names the file that is looked for');
});

t.test('a file that cannot be read', async (t) => {
  expectOneError(t, { argv: ['-config', '/secret.yaml'], files: { '/secret.yaml': null } }, '-config', /cannot be read: EACCES/);
  expectOneError(t, { files: { [defaultPath]: null } }, defaultPath, /cannot be read: EACCES/);
});

t.test('a file that is not valid YAML', async (t) => {
  const error = expectOneError(t, { files: defaultFile('id: [node1\n') }, defaultPath, /is not valid YAML: /);
  t.equal(error?.source, 'file');
  expectOneError(t, { files: defaultFile('id: a\nid: b\n') }, defaultPath, /is not valid YAML: .*unique/i);
  expectOneError(t, { files: defaultFile('raft: :12000\n  peers: x\n') }, defaultPath, /is not valid YAML/);
  expectOneError(t, { argv: ['-config=/x.yaml'], files: { '/x.yaml': '\tid: a\n' } }, '/x.yaml', /is not valid YAML/);
});

t.test('a file that is not a mapping', async (t) => {
  for (const text of ['- id\n- raft\n', 'node1\n', '42\n', '"id: node1"\n']) {
    expectOneError(t, { files: defaultFile(text) }, defaultPath, /must be a YAML mapping of settings/);
  }
});

t.test('unknown keys name the closest known key', async (t) => {
  expectOneError(t, { files: defaultFile('peer: [node1]\n') }, 'peer', /unknown key; did you mean peers\?/);
  expectOneError(t, { files: defaultFile('max_message_bytes: 1MiB\n') }, 'max_message_bytes', /did you mean maxMessageBytes\?/);
  expectOneError(t, { files: defaultFile('log-level: debug\n') }, 'log-level', /did you mean logLevel\?/);
  expectOneError(t, { files: defaultFile('DFS_ID: node2\n') }, 'DFS_ID', /did you mean id\?/);
  const error = expectOneError(t, { files: defaultFile('grcp: ":13001"\n') }, 'grcp', /did you mean grpc\?/);
  t.equal(error?.message, `grcp in ${defaultPath}: unknown key; did you mean grpc?`, 'the message names the file');
  expectOneError(t, { files: defaultFile('config: other.yaml\n') }, 'config', /cannot be set inside the config file; use -config or DFS_CONFIG/);
  t.equal(loadErrors(t, { files: defaultFile('a: 1\nb: 2\nid: node2\n') }).length, 2, 'each unknown key is reported');
});

t.test('YAML lists and text both work for peers', async (t) => {
  const list = loadValid(t, { files: defaultFile('peers:\n  - node2\n  - "node3:12001"\n') });
  const text = loadValid(t, { files: defaultFile('peers: node2, node3:12001\n') });
  t.same(list.peerAddresses.map(formatAddress), ['node2:12000', 'node3:12001']);
  t.same(text.peerAddresses, list.peerAddresses);
  t.same(loadValid(t, { files: defaultFile('peers: []\n') }).peerAddresses, []);
});

t.test('unknown DFS_* variables name the closest known one; other variables are ignored', async (t) => {
  expectOneError(t, { env: { DFS_PEER: 'node1' } }, 'DFS_PEER', /unknown environment variable; did you mean DFS_PEERS\?/);
  expectOneError(t, { env: { DFS_MAX_MESSAGE_SIZE: '1MiB' } }, 'DFS_MAX_MESSAGE_SIZE', /did you mean DFS_MAX_MESSAGE_BYTES\?/);
  expectOneError(t, { env: { DFS_LOGLEVEL: 'debug' } }, 'DFS_LOGLEVEL', /did you mean DFS_LOG_LEVEL\?/);
  expectOneError(t, { env: { DFS_CONFIG_FILE: '/x' } }, 'DFS_CONFIG_FILE', /did you mean DFS_CONFIG\?/);
  expectOneError(t, { env: { DFS_NODE_ID: 'node2' } }, 'DFS_NODE_ID', /did you mean DFS_[A-Z_]+\?/);
  const config = loadValid(t, { env: { PATH: '/usr/bin', HOME: '/root', dfs_id: 'lower', DFSID: 'x', DFS_ID: undefined } });
  t.equal(config.nodeId, 'node1', 'only DFS_-prefixed variables are read');
  const shared = loadValid(t, { env: { DFS_ENDPOINTS: '127.0.0.1:13001', DFS_CLUSTER_DATA: 'x', DFS_CLUSTER_FUSE: 'false', DFS_ID: 'node7' } });
  t.equal(shared.nodeId, 'node7', "dfsctl's and npm run cluster's variables do not stop a node");
  t.same(
    loadErrors(t, { env: { DFS_B: '1', DFS_A: '1' } }).map((error) => error.setting),
    ['DFS_A', 'DFS_B'],
    'reported in name order, whatever the environment\'s order',
  );
});

t.test('an empty DFS_PEERS means no peers; other empty variables are errors', async (t) => {
  t.same(loadValid(t, { env: { DFS_PEERS: '' } }).peerAddresses, []);
  t.same(loadValid(t, { env: { DFS_PEERS: '  ' } }).peerAddresses, []);
  expectOneError(t, { env: { DFS_GRPC: '' } }, 'DFS_GRPC', /must not be empty/);
});

t.test('formatConfigErrors prints one line per error and a pointer to -h', async (t) => {
  const errors = loadErrors(t, { env: { DFS_PEER: 'x', DFS_RAFT: ':0' } });
  t.equal(formatConfigErrors(errors), [
    'dfs: DFS_PEER: unknown environment variable; did you mean DFS_PEERS?',
    'dfs: DFS_RAFT=":0": port 0 must be from 1 to 65535',
    'dfs: run "dfs -h" to list every setting',
    '',
  ].join('\n'));
});

t.test('loadConfig insists on an absolute working folder', async (t) => {
  t.throws(() => load({ cwd: 'relative' }), /absolute cwd/);
});
