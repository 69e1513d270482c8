// The command codec: every command survives encode → decode unchanged, and decoding input that is
// not exactly a command yields a rejection with a stable code and a message naming the problem —
// never an exception, because the applier decodes whatever the log holds and must not crash on
// it. Method: a round trip of each command type; a table of hand-made malformed payloads (packed
// with msgpackr directly, as a buggy or hostile node would); and a deterministic fuzz of random
// and mutated bytes checking that decodeCommand always returns, and returns the same verdict twice.

import { Packr } from 'msgpackr';
import t from 'tap';

import { chunkHash, decodeCommand, encodeCommand, maxChunksPerFile, maxPutDataBytes, validateCommand, type Command } from '../../src/store/commands.js';
import { maxChunkBytes } from '../../src/store/layout.js';
import { bytes, pseudoRandomBytes } from './state-helpers.js';

const packr = new Packr({ useRecords: false });
const pack = (value: unknown): Uint8Array => Uint8Array.from(packr.pack(value));

const hashA = chunkHash(bytes('a'));
const hashB = chunkHash(bytes('b'));

const examples: Command[] = [
  { type: 'put', requestId: 'node1/1', key: 'docs/a.txt', data: bytes('hello'), modeBits: 0o644, modifiedMilliseconds: 1_700_000_000_123 },
  { type: 'put', requestId: 'node1/2', key: 'empty', data: new Uint8Array(0), modeBits: 0, modifiedMilliseconds: -5 },
  { type: 'putChunk', requestId: 'node2/7', data: pseudoRandomBytes(4096, 7) },
  { type: 'commitFile', requestId: 'node2/8', key: 'big.bin', chunks: [hashA, hashB, hashA], sizeBytes: 3, modeBits: 0o7777, modifiedMilliseconds: 0 },
  { type: 'commitFile', requestId: 'node2/9', key: 'nothing', chunks: [], sizeBytes: 0, modeBits: 0o600, modifiedMilliseconds: 1 },
  { type: 'delete', requestId: '', key: 'a/b' },
  { type: 'deleteFolder', requestId: 'x', key: 'a' },
  { type: 'rename', requestId: 'x', from: 'a/b', to: 'c/d' },
  { type: 'mkdir', requestId: 'x', key: 'empty/folder', modeBits: 0o755, modifiedMilliseconds: 2 ** 50 },
  { type: 'collectGarbage', requestId: 'x', beforeIndex: 12345 },
];

/** The command with byte fields as plain arrays, for deep comparison (decoded bytes are Buffers). */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plain(field)]));
  return value;
}

t.test('every command round-trips', async (t) => {
  for (const command of examples) {
    const decoded = decodeCommand(encodeCommand(command));
    t.ok(decoded.ok, `${command.type} decodes`);
    if (decoded.ok) t.same(plain(decoded.command), plain(command), `${command.type} is unchanged`);
  }
});

t.test('chunkHash is sha256', async (t) => {
  t.equal(Buffer.from(chunkHash(bytes('abc'))).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

t.test('encodeCommand refuses a command that breaks a rule (a proposer bug)', async (t) => {
  t.throws(() => encodeCommand({ type: 'delete', requestId: 'x', key: '../etc' }), { code: 'InvalidKey' });
  t.throws(() => encodeCommand({ type: 'putChunk', requestId: 'x', data: new Uint8Array(0) }), { code: 'InvalidArgument' });
});

t.test('validateCommand checks limits and integers', async (t) => {
  const cases: [Command, string, RegExp][] = [
    [{ type: 'put', requestId: 'x', key: 'a//b', data: bytes(''), modeBits: 0, modifiedMilliseconds: 0 }, 'InvalidKey', /empty segment/],
    [{ type: 'put', requestId: 'x', key: 'a', data: new Uint8Array(maxPutDataBytes + 1), modeBits: 0, modifiedMilliseconds: 0 }, 'TooLarge', /67108865 bytes/],
    [{ type: 'put', requestId: 'x', key: 'a', data: bytes(''), modeBits: 0o10000, modifiedMilliseconds: 0 }, 'InvalidArgument', /modeBits/],
    [{ type: 'put', requestId: 'x', key: 'a', data: bytes(''), modeBits: 1.5, modifiedMilliseconds: 0 }, 'InvalidArgument', /modeBits/],
    [{ type: 'put', requestId: 'x', key: 'a', data: bytes(''), modeBits: 0, modifiedMilliseconds: 0.5 }, 'InvalidArgument', /modifiedMilliseconds/],
    [{ type: 'put', requestId: 'x', key: 'a', data: bytes(''), modeBits: 0, modifiedMilliseconds: Number.NaN }, 'InvalidArgument', /modifiedMilliseconds/],
    [{ type: 'putChunk', requestId: 'x', data: new Uint8Array(maxChunkBytes + 1) }, 'TooLarge', /limit/],
    [{ type: 'commitFile', requestId: 'x', key: 'a', chunks: [new Uint8Array(31)], sizeBytes: 0, modeBits: 0, modifiedMilliseconds: 0 }, 'InvalidArgument', /32 bytes/],
    [{ type: 'commitFile', requestId: 'x', key: 'a', chunks: [], sizeBytes: -1, modeBits: 0, modifiedMilliseconds: 0 }, 'InvalidArgument', /sizeBytes/],
    [{ type: 'rename', requestId: 'x', from: 'a', to: 'a' }, 'InvalidArgument', /the same key/],
    [{ type: 'rename', requestId: 'x', from: 'a', to: 'a/b' }, 'InvalidArgument', /into itself/],
    [{ type: 'rename', requestId: 'x', from: 'a', to: '/b' }, 'InvalidKey', /^to: /],
    [{ type: 'collectGarbage', requestId: 'x', beforeIndex: -1 }, 'InvalidArgument', /beforeIndex/],
    [{ type: 'delete', requestId: 'r'.repeat(257), key: 'a' }, 'InvalidArgument', /requestId/],
  ];
  for (const [command, code, message] of cases) {
    const rejection = validateCommand(command);
    t.equal(rejection?.code, code, `${command.type}: ${code}`);
    t.match(rejection?.message, message);
  }
});

t.test('malformed entries decode to rejections, never exceptions', async (t) => {
  const put = { type: 'put', requestId: 'node1/5', key: 'a', data: bytes('x'), modeBits: 0o644, modifiedMilliseconds: 1 };
  const cases: [Uint8Array, string, RegExp, string][] = [
    [Uint8Array.from([0xc1]), 'InvalidArgument', /not (msgpack|a msgpack map)/, 'a byte msgpack never uses'],
    [Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), 'InvalidArgument', /not msgpack/, 'an array claiming 4 billion elements'],
    [pack([1, 2, 3]), 'InvalidArgument', /not a msgpack map/, 'an array'],
    [pack('put'), 'InvalidArgument', /not a msgpack map/, 'a string'],
    [pack(null), 'InvalidArgument', /not a msgpack map/, 'nil'],
    [Uint8Array.from([0xd6, 0xff, 0, 0, 0, 0]), 'InvalidArgument', /not a msgpack map/, 'a timestamp extension (decodes to a Date)'],
    [pack({ type: 'explode', requestId: 'r' }), 'InvalidArgument', /unknown type "explode"/, 'an unknown type'],
    [pack({ type: 'toString', requestId: 'r' }), 'InvalidArgument', /unknown type/, 'a type named like an Object method'],
    [pack({ ...put, extra: 1 }), 'InvalidArgument', /unknown field "extra"/, 'an unknown field'],
    [pack({ ...put, ...(JSON.parse('{"__proto__": {"polluted": true}}') as object) }), 'InvalidArgument', /unknown field/, 'a __proto__ field'],
    [pack({ type: 'put', requestId: 'r', key: 'a', data: bytes('x'), modeBits: 1 }), 'InvalidArgument', /missing field "modifiedMilliseconds"/, 'a missing field'],
    [pack({ ...put, key: 5 }), 'InvalidArgument', /key must be a string/, 'a number for a string'],
    [pack({ ...put, data: 'text' }), 'InvalidArgument', /data must be bytes/, 'a string for bytes'],
    [pack({ ...put, modeBits: '644' }), 'InvalidArgument', /modeBits must be a number/, 'a string for a number'],
    [pack({ ...put, key: '../x' }), 'InvalidKey', /'\.\.' segment/, 'a key that breaks the rules'],
    [pack({ ...put, requestId: 7 }), 'InvalidArgument', /requestId must be a string/, 'a numeric request id'],
    [pack({ type: 'commitFile', requestId: 'r', key: 'a', chunks: new Uint8Array(33), sizeBytes: 0, modeBits: 0, modifiedMilliseconds: 0 }), 'InvalidArgument', /whole 32-byte hashes/, 'a partial hash'],
    [pack({ type: 'commitFile', requestId: 'r', key: 'a', chunks: [hashA], sizeBytes: 0, modeBits: 0, modifiedMilliseconds: 0 }), 'InvalidArgument', /chunks must be bytes/, 'hashes as an array'],
    [
      pack({ type: 'commitFile', requestId: 'r', key: 'a', chunks: new Uint8Array((maxChunksPerFile + 1) * 32), sizeBytes: 0, modeBits: 0, modifiedMilliseconds: 0 }),
      'TooLarge',
      /at most 65536 chunks/,
      'too many chunks',
    ],
    [pack({ type: 'putChunk', requestId: 'r', data: new Uint8Array(0) }), 'InvalidArgument', /must not be empty/, 'an empty chunk'],
  ];
  for (const [data, code, message, why] of cases) {
    let decoded: ReturnType<typeof decodeCommand> | undefined;
    t.doesNotThrow(() => {
      decoded = decodeCommand(data);
    }, why);
    t.equal(decoded?.ok, false, `${why}: rejected`);
    if (decoded !== undefined && !decoded.ok) {
      t.equal(decoded.code, code, `${why}: ${code}`);
      t.match(decoded.message, message, why);
    }
  }
});

t.test('a rejection carries the request id when the entry has one', async (t) => {
  const decoded = decodeCommand(pack({ type: 'delete', requestId: 'node3/99', key: '' }));
  t.same(decoded, { ok: false, requestId: 'node3/99', code: 'InvalidKey', message: 'key must not be empty' });
  const broken = decodeCommand(Uint8Array.from([0x92, 0x01]));
  t.equal(broken.ok ? null : broken.requestId, '', 'no request id to be found');
});

t.test('fuzz: random and mutated entries always decode to a verdict, the same one twice', async (t) => {
  const seeds = examples.map((command) => encodeCommand(command));
  const verdict = (decoded: ReturnType<typeof decodeCommand>): unknown => (decoded.ok ? { ok: true, command: plain(decoded.command) } : decoded);
  const differing: number[] = [];
  let rejected = 0;
  for (let round = 0; round < 3000; round++) {
    let data: Uint8Array;
    if (round % 2 === 0) {
      data = pseudoRandomBytes(1 + (round % 97), round + 1);
    } else {
      // Flip a few bytes of a real command: mostly still msgpack, so it reaches the field checks.
      const seed = seeds[round % seeds.length] as Uint8Array;
      data = Uint8Array.from(seed);
      const noise = pseudoRandomBytes(6, round + 1);
      for (let flip = 0; flip < 3; flip++) {
        const position = (noise.readUInt16LE(flip * 2) % data.length) | 0;
        data[position] = (data[position] ?? 0) ^ (noise[flip] ?? 1) ^ 0x5a;
      }
    }
    const first = JSON.stringify(verdict(decodeCommand(data)));
    const second = JSON.stringify(verdict(decodeCommand(data)));
    if (first !== second) differing.push(round);
    if (!first.startsWith('{"ok":true')) rejected++;
  }
  t.same(differing, [], 'every entry decides the same way twice');
  t.ok(rejected > 1000, `most corrupted entries are rejected (${rejected} of 3000)`);
});
