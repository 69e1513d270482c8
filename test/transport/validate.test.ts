// Validation is the gate between what a peer sent and what the Raft core trusts. Goal: a valid
// message comes out as a fresh object with exactly its declared fields (unknown fields dropped,
// Buffers turned into plain Uint8Array views), and anything else is rejected with a reason
// naming the field. Method: call the validators directly on hand-built values, including values
// shaped the way msgpackr can produce them (Buffers, null-prototype objects, Dates, Maps).

import t from 'tap';

import {
  maxIdentifierLength,
  maxInitialMembers,
  maxStatusMembers,
  validateHello,
  validateMessage,
  validatePeerFrame,
  validatePeerMessage,
} from '../../src/transport/validate.js';
import { allPeerSamples, allSamples, driverSamples, samples } from './helpers.js';

t.test('every sample is valid and comes back equal but not the same object', async (t) => {
  for (const message of allSamples) {
    const result = validateMessage(message);
    t.ok(result.ok, message.type);
    if (result.ok) {
      t.strictSame(result.value, message, `${message.type}: equal`);
      t.not(result.value, message, `${message.type}: a fresh object`);
    }
  }
});

t.test('unknown fields are dropped, not passed on', async (t) => {
  const result = validateMessage({ ...samples.heartbeat, extra: 'from a newer version' });
  t.ok(result.ok);
  if (result.ok) t.strictSame(Object.keys(result.value).sort(), ['commit', 'from', 'readRound', 'term', 'to', 'type']);
});

t.test('Buffers become plain Uint8Array views over the same memory', async (t) => {
  const buffer = Buffer.from('hello');
  const result = validateMessage({ ...samples.installSnapshot, data: buffer });
  t.ok(result.ok);
  if (result.ok && result.value.type === 'installSnapshot') {
    t.equal(result.value.data.constructor, Uint8Array);
    t.equal(result.value.data.buffer, buffer.buffer, 'no copy');
    t.strictSame(Array.from(result.value.data), Array.from(buffer));
  }
});

t.test('a null-prototype map is accepted; class instances are not', async (t) => {
  const bare = Object.assign(Object.create(null) as object, samples.timeoutNow);
  t.ok(validateMessage(bare).ok, 'null prototype');
  t.notOk(validateMessage(new Date()).ok, 'a Date');
  t.notOk(validateMessage(new Map(Object.entries(samples.timeoutNow))).ok, 'a Map');
  const result = validateMessage({ ...samples.installSnapshot, meta: new Date() });
  t.match(result.ok ? '' : result.reason, /installSnapshot\.meta must be a plain object/);
});

t.test('member addresses: optional, a map of id to a bounded string, never a prototype', async (t) => {
  const meta = samples.installSnapshot.meta;
  const without = validateMessage({ ...samples.installSnapshot, meta: { ...meta, config: { voters: ['a'], learners: [] } } });
  t.ok(without.ok && without.value.type === 'installSnapshot' && !('addresses' in without.value.meta.config), 'absent stays absent');
  const sneaky = JSON.parse('{"__proto__": "10.0.0.9:1", "a": "10.0.0.1:1"}') as unknown;
  const result = validateMessage({ ...samples.installSnapshot, meta: { ...meta, config: { voters: ['a'], learners: [], addresses: sneaky } } });
  t.ok(result.ok, 'a key named __proto__ is just a key');
  if (result.ok && result.value.type === 'installSnapshot') {
    const addresses = result.value.meta.config.addresses ?? {};
    t.equal(Object.getPrototypeOf(addresses), Object.prototype, 'the prototype is untouched');
    t.equal(Object.getOwnPropertyDescriptor(addresses, '__proto__')?.value, '10.0.0.9:1');
  }
  const bad = validateMessage({ ...samples.installSnapshot, meta: { ...meta, config: { voters: [], learners: [], addresses: { a: 5 } } } });
  t.match(bad.ok ? '' : bad.reason, /installSnapshot\.meta\.config\.addresses\["a"\] must be a non-empty string/);
  const change = validateMessage({ ...samples.proposeConfChange, change: { type: 'addLearner', nodeId: 'd', address: '' } });
  t.match(change.ok ? '' : change.reason, /proposeConfChange\.change\.address/);
  const noAddress = validateMessage({ ...samples.proposeConfChange, change: { type: 'addLearner', nodeId: 'd' } });
  t.ok(noAddress.ok && noAddress.value.type === 'proposeConfChange' && !('address' in noAddress.value.change), 'address is optional');
});

t.test('identifiers are bounded', async (t) => {
  const long = 'x'.repeat(maxIdentifierLength + 1);
  const result = validateMessage({ ...samples.readIndex, requestId: long });
  t.match(result.ok ? '' : result.reason, /readIndex\.requestId must be a non-empty string of at most 256 characters/);
  t.ok(validateMessage({ ...samples.readIndex, requestId: long.slice(1) }).ok, 'exactly at the bound');
});

t.test('numbers must be non-negative safe integers', async (t) => {
  for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null]) {
    const result = validateMessage({ ...samples.preVote, lastLogIndex: bad });
    t.notOk(result.ok, `lastLogIndex ${String(bad)}`);
  }
  t.ok(validateMessage({ ...samples.preVote, lastLogIndex: 2 ** 53 - 1 }).ok, '2^53 - 1 is fine');
});

t.test('hello: cluster id may be empty, node id may not', async (t) => {
  t.strictSame(validateHello({ kind: 'hello', clusterId: '', nodeId: 'a' }), {
    ok: true,
    value: { kind: 'hello', clusterId: '', nodeId: 'a', advertise: '' },
  }, 'an older peer without an advertise address is accepted');
  t.strictSame(validateHello({ kind: 'hello', clusterId: 'c', nodeId: 'a', advertise: '127.0.0.1:12000' }).ok, true);
  t.match(validateHello({ kind: 'hello', clusterId: 'c', nodeId: 'a', advertise: 7 }), { ok: false, reason: /hello\.advertise/ });
  t.match(validateHello({ kind: 'hello', clusterId: 'x', nodeId: '' }), { ok: false, reason: /hello\.nodeId/ });
  t.match(validateHello({ kind: 'hello', clusterId: 7, nodeId: 'a' }), { ok: false, reason: /hello\.clusterId/ });
  t.match(validateHello({ kind: 'goodbye', clusterId: '', nodeId: 'a' }), { ok: false, reason: /hello\.kind/ });
});

t.test('a peer frame is a hello (tagged kind) or a message (tagged type)', async (t) => {
  t.match(validatePeerFrame({ kind: 'hello', clusterId: 'c', nodeId: 'a' }), { ok: true, value: { kind: 'hello' } });
  t.match(validatePeerFrame(samples.heartbeat), { ok: true, value: { type: 'heartbeat' } });
  t.match(validatePeerFrame({ kind: 'bye' }), { ok: false, reason: /frame kind must be 'hello', 'discover' or 'discoverReply', got a string/ });
  const discover = { kind: 'discover', nodeId: 'b', advertise: '10.0.0.2:12000', nonce: 'abc', initialMembers: ['10.0.0.1:12000', '10.0.0.2:12000'] };
  t.strictSame(validatePeerFrame(discover), { ok: true, value: discover });
  const reply = { ...discover, kind: 'discoverReply', clusterId: '' };
  t.strictSame(validatePeerFrame(reply), { ok: true, value: reply });
  t.match(validatePeerFrame({ ...reply, clusterId: undefined }), { ok: false, reason: /discoverReply\.clusterId/ });
  const crowd = Array.from({ length: maxInitialMembers + 1 }, (_, index) => `10.0.0.${index}:1`);
  t.match(validatePeerFrame({ ...discover, initialMembers: crowd }), { ok: false, reason: /discover\.initialMembers must be at most 64 addresses/ });
  t.match(validatePeerFrame('hello'), { ok: false });
});

t.test('transferLeader: the target is a node id, or null (absent) for "the leader chooses"', async (t) => {
  t.strictSame(validateMessage(samples.transferLeader), { ok: true, value: samples.transferLeader });
  t.strictSame(validateMessage({ ...samples.transferLeader, target: null }), { ok: true, value: { ...samples.transferLeader, target: null } });
  const { target: _omitted, ...absent } = samples.transferLeader;
  t.strictSame(validateMessage(absent), { ok: true, value: { ...samples.transferLeader, target: null } }, 'absent is null');
  for (const bad of ['', 7, true, ['c'], { id: 'c' }, 'x'.repeat(maxIdentifierLength + 1)]) {
    t.match(validateMessage({ ...samples.transferLeader, target: bad }), { ok: false, reason: /transferLeader\.target must be a non-empty string/ }, `target ${JSON.stringify(bad)}`);
  }
  t.match(validateMessage({ ...samples.transferLeader, from: '' }), { ok: false, reason: /transferLeader\.from/ });
});

t.test('status query and reply: valid ones come back as fresh, exact copies; they are not Raft messages', async (t) => {
  for (const message of allPeerSamples) {
    const result = validatePeerMessage(message);
    t.ok(result.ok, message.type);
    if (result.ok) {
      t.strictSame(result.value, message, `${message.type}: equal`);
      t.not(result.value, message, `${message.type}: a fresh object`);
    }
    t.match(validatePeerFrame(message), { ok: true, value: { type: message.type } }, `${message.type} as a frame`);
  }
  t.match(validateMessage(driverSamples.statusQuery), { ok: false, reason: /message\.type must be a known message type/ }, 'the Raft validator alone refuses them');
  const extra = validatePeerMessage({ ...driverSamples.statusReply, extra: 1, status: { ...driverSamples.statusReply.status, extra: 2 } });
  t.ok(extra.ok && extra.value.type === 'statusReply' && !('extra' in extra.value) && !('extra' in extra.value.status), 'unknown fields are dropped');
});

t.test('a malformed status query or reply is refused with the field named', async (t) => {
  const reply = driverSamples.statusReply;
  const status = reply.status;
  const member = status.members[0];
  const cases: Array<[unknown, RegExp]> = [
    [{ ...driverSamples.statusQuery, requestId: '' }, /statusQuery\.requestId must be a non-empty string/],
    [{ ...driverSamples.statusQuery, requestId: 'x'.repeat(maxIdentifierLength + 1) }, /statusQuery\.requestId/],
    [{ ...driverSamples.statusQuery, to: 5 }, /statusQuery\.to/],
    [{ ...driverSamples.statusQuery, term: -1 }, /statusQuery\.term must be a non-negative safe integer/],
    [{ ...reply, status: undefined }, /statusReply\.status must be an object/],
    [{ ...reply, status: new Date() }, /statusReply\.status must be a plain object/],
    [{ ...reply, status: { ...status, role: 'king' } }, /statusReply\.status\.role must be one of/],
    [{ ...reply, status: { ...status, leader: '' } }, /statusReply\.status\.leader/],
    [{ ...reply, status: { ...status, leader: undefined } }, /statusReply\.status\.leader/],
    [{ ...reply, status: { ...status, commitIndex: Number.NaN } }, /statusReply\.status\.commitIndex/],
    [{ ...reply, status: { ...status, members: 'a,b' } }, /statusReply\.status\.members must be an array/],
    [{ ...reply, status: { ...status, members: [{ ...member, matchIndex: -1 }] } }, /statusReply\.status\.members\[0\]\.matchIndex/],
    [{ ...reply, status: { ...status, members: [{ ...member, voter: 'yes' }] } }, /statusReply\.status\.members\[0\]\.voter must be a boolean/],
    [{ ...reply, status: { ...status, members: [{ ...member, address: 'x'.repeat(600) }] } }, /statusReply\.status\.members\[0\]\.address/],
    [{ ...reply, status: { ...status, members: [null] } }, /statusReply\.status\.members\[0\] must be an object/],
    [{ ...reply, status: { ...status, members: Array.from({ length: maxStatusMembers + 1 }, () => member) } }, /at most 1024 members/],
  ];
  for (const [value, reason] of cases) t.match(validatePeerFrame(value), { ok: false, reason }, reason.source);
  t.match(validatePeerFrame({ ...driverSamples.statusQuery, type: 'statusQuestion' }), { ok: false, reason: /message\.type must be a known message type/ });
});
