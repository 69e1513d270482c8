// Peers and the advertised address. Goal: a bare-host peer means port 12000 (`node1` →
// `node1:12000`), duplicates are removed, this node's own address is dropped from its peer list
// (so one DFS_PEERS serves the whole compose cluster), and the advertised address defaults to the
// raft bind address with the node id standing in for a wildcard host — `-id node1 -raft :12000`
// advertises `node1:12000`. Method: loadConfig with flags and environment, comparing formatted
// addresses.

import t, { type Test } from 'tap';

import { deriveAdvertiseAddress, formatAddress, parseAddress } from '../../src/config/index.js';
import { loadValid } from './helpers.js';

/** The peer list as text. The node is node9 unless argv says otherwise, so that it is none of its peers. */
function peers(t: Test, argv: string[], env: Record<string, string> = {}): string[] {
  return loadValid(t, { argv: ['-id', 'node9', ...argv], env }).peerAddresses.map(formatAddress);
}

function advertised(t: Test, argv: string[], env: Record<string, string> = {}): string {
  return formatAddress(loadValid(t, { argv, env }).advertiseAddress);
}

t.test('a bare host means the default raft port', async (t) => {
  t.same(peers(t, ['-peers', 'node1']), ['node1:12000']);
  t.same(peers(t, ['-peers', 'node1,node2:12001,10.0.0.3,[::1],[fe80::2]:7']),
    ['node1:12000', 'node2:12001', '10.0.0.3:12000', '[::1]:12000', '[fe80::2]:7']);
  t.same(peers(t, ['-peers', ' node1 , node2 ']), ['node1:12000', 'node2:12000'], 'spaces around commas are ignored');
  t.same(peers(t, [], { DFS_PEERS: 'node1' }), ['node1:12000'], 'from the environment, as the issue\'s DFS_PEERS=node1');
});

t.test('a bare-host peer uses 12000 even when this node binds raft elsewhere', async (t) => {
  t.same(peers(t, ['-raft', ':12005', '-peers', 'node1']), ['node1:12000']);
});

t.test('duplicates are removed, keeping the first order', async (t) => {
  t.same(peers(t, ['-peers', 'node2,node1,node2:12000,node1,node3:12001,node3:12002']),
    ['node2:12000', 'node1:12000', 'node3:12001', 'node3:12002']);
});

t.test('this node\'s own address is dropped, so one peer list serves every node', async (t) => {
  const list = 'node1,node2,node3';
  t.same(peers(t, ['-id', 'node1'], { DFS_PEERS: list }), ['node2:12000', 'node3:12000']);
  t.same(peers(t, ['-id', 'node2'], { DFS_PEERS: list }), ['node1:12000', 'node3:12000']);
  t.same(peers(t, ['-id', 'node1', '-raft', ':12001'], { DFS_PEERS: list }), ['node1:12000', 'node2:12000', 'node3:12000'],
    'node1:12000 is another node when this one advertises node1:12001');
  t.same(peers(t, ['-advertise', '10.0.0.1:12000', '-peers', '10.0.0.1,10.0.0.2']), ['10.0.0.2:12000']);
});

t.test('advertise defaults to the raft bind address, with the node id for a wildcard host', async (t) => {
  t.equal(advertised(t, []), 'node1:12000', 'the defaults advertise node1:12000');
  t.equal(advertised(t, ['-id', 'node1', '-raft', ':12000']), 'node1:12000', 'the compose layout');
  t.equal(advertised(t, ['-id', 'node2', '-raft', ':12001']), 'node2:12001');
  t.equal(advertised(t, ['-id', 'node2', '-raft', '0.0.0.0:12001']), 'node2:12001', '0.0.0.0 is a wildcard');
  t.equal(advertised(t, ['-id', 'node2', '-raft', '[::]:12001']), 'node2:12001', ':: is a wildcard');
  t.equal(advertised(t, ['-id', 'node2', '-raft', '127.0.0.1:12001']), '127.0.0.1:12001', 'a specific host is kept');
  t.equal(advertised(t, ['-raft', '[::1]:12001']), '[::1]:12001');
  t.equal(advertised(t, [], { DFS_ID: 'node3', DFS_RAFT: ':12003' }), 'node3:12003');
});

t.test('an explicit advertise wins; a bare host takes the raft port', async (t) => {
  t.equal(advertised(t, ['-advertise', 'public.example.com:443']), 'public.example.com:443');
  t.equal(advertised(t, ['-raft', ':12005', '-advertise', '203.0.113.7']), '203.0.113.7:12005');
  t.equal(advertised(t, ['-advertise', '[2001:db8::1]']), '[2001:db8::1]:12000');
  t.equal(advertised(t, [], { DFS_ADVERTISE: 'nat-host:40000' }), 'nat-host:40000');
});

t.test('deriveAdvertiseAddress alone', async (t) => {
  const wildcard = parseAddress(':12000', { allowEmptyHost: true });
  t.same(deriveAdvertiseAddress(null, wildcard, 'node7'), { host: 'node7', port: 12000 });
  t.same(deriveAdvertiseAddress('edge', wildcard, 'node7'), { host: 'edge', port: 12000 });
  t.same(deriveAdvertiseAddress(null, { host: '10.1.1.1', port: 5 }, 'node7'), { host: '10.1.1.1', port: 5 });
});
