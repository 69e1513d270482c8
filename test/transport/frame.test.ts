// Framing: everything the core can send must come out of the decoder exactly as it went in,
// however TCP splits the stream, and nothing a peer can send may crash the decoder, make it
// buffer more than its limit, or slip an unchecked value through. Method: round-trip every
// Message variant (plus a large entry batch and a snapshot chunk) through encodeFrame and a
// FrameDecoder fed whole, one byte at a time and in seeded random splits; then hand-build each
// kind of bad frame and check its stable error code; then feed seeded random bytes and
// seeded mutations of valid payloads (with a correct checksum, so they reach msgpack and the
// validator) and check that the decoder never throws and never holds more than its limit.

import { isDeepStrictEqual } from 'node:util';
import { crc32 } from 'node:zlib';

import { pack } from 'msgpackr';
import t, { type Test } from 'tap';

import { seededRandom } from '../../src/raft/random.js';
import type { Message } from '../../src/raft/types.js';
import { encodeFrame, FrameDecoder, FrameError, frameHeaderBytes } from '../../src/transport/frame.js';
import { validateMessage } from '../../src/transport/validate.js';
import { allSamples, filled, largeAppendEntries, samples } from './helpers.js';

const maxFrameBytes = 4 * 1024 * 1024;

function newDecoder(limit = maxFrameBytes): FrameDecoder<Message> {
  return new FrameDecoder<Message>({ maxFrameBytes: limit, validate: validateMessage });
}

/** Feeds `chunks` in order; returns the values and the first error (if any). */
function decodeAll(decoder: FrameDecoder<Message>, chunks: Iterable<Uint8Array>): { values: Message[]; error: FrameError | null } {
  const values: Message[] = [];
  let error: FrameError | null = null;
  for (const chunk of chunks) {
    error = decoder.push(chunk, (value) => values.push(value));
    if (error !== null) break;
  }
  return { values, error };
}

/**
 * Deep equality including constructors (a Buffer is not a Uint8Array here). tap's strictSame
 * takes seconds on megabytes of entry data, so it only runs to print the diff of a failure.
 */
function sameMessages(t: Test, actual: readonly Message[], expected: readonly Message[], name: string): void {
  if (isDeepStrictEqual(actual, expected)) t.pass(name);
  else t.strictSame(actual, expected, name);
}

function* bytewise(stream: Uint8Array): Generator<Uint8Array> {
  for (let position = 0; position < stream.length; position++) yield stream.subarray(position, position + 1);
}

function* randomSplits(stream: Uint8Array, random: () => number, maxChunkBytes: number): Generator<Uint8Array> {
  let position = 0;
  while (position < stream.length) {
    // Mostly small pieces, sometimes empty ones (a zero-length chunk must be harmless).
    const length = Math.floor(random() * random() * maxChunkBytes);
    yield stream.subarray(position, position + length);
    position += length;
  }
}

/** A frame with an arbitrary payload and a correct checksum (or the one given). */
function rawFrame(payload: Uint8Array, checksum = crc32(payload)): Buffer {
  const frame = Buffer.alloc(frameHeaderBytes + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(checksum, 4);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

const largeBatch = largeAppendEntries(1000, 1024);
const snapshotChunk: Message = { ...samples.installSnapshot, offset: 3 * 1024 * 1024, data: filled(1024 * 1024, 9), done: true };
const everything: readonly Message[] = [...allSamples, largeBatch, snapshotChunk];
const stream = Buffer.concat(everything.map((message) => encodeFrame(message)));

t.test('every Message variant survives a round trip, frame by frame', async (t) => {
  for (const message of everything) {
    const decoder = newDecoder();
    const { values, error } = decodeAll(decoder, [encodeFrame(message)]);
    t.equal(error, null, `${message.type}: no error`);
    sameMessages(t, values, [message], `${message.type}: decoded as sent`);
    t.equal(decoder.bufferedBytes, 0, `${message.type}: nothing left buffered`);
  }
  const decoded = decodeAll(newDecoder(), [encodeFrame(largeBatch)]).values[0];
  t.ok(decoded?.type === 'appendEntries' && decoded.entries.length === 1000, 'the large batch keeps its 1000 entries');
  if (decoded?.type === 'appendEntries' && decoded.entries[0]?.kind === 'normal') {
    t.equal(decoded.entries[0].data.constructor, Uint8Array, 'entry data is a plain Uint8Array, not a Buffer');
  }
});

t.test('several frames in one chunk come out in order', async (t) => {
  const { values, error } = decodeAll(newDecoder(), [stream]);
  t.equal(error, null);
  sameMessages(t, values, everything, 'same messages');
});

t.test('a stream fed one byte at a time decodes identically', async (t) => {
  const { values, error } = decodeAll(newDecoder(), bytewise(stream));
  t.equal(error, null);
  sameMessages(t, values, everything, 'same messages');
});

t.test('a stream in seeded random splits decodes identically', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = seededRandom(seed);
    const { values, error } = decodeAll(newDecoder(), randomSplits(stream, random, 100_000));
    t.equal(error, null, `seed ${seed}: no error`);
    sameMessages(t, values, everything, `seed ${seed}: same messages`);
  }
});

t.test('a large frame in small chunks costs linear time (no whole-buffer copy per chunk)', async (t) => {
  const big = encodeFrame({ ...snapshotChunk, data: filled(maxFrameBytes - 1024, 7) });
  const started = performance.now();
  const { values, error } = decodeAll(newDecoder(), randomSplits(big, seededRandom(11), 2048));
  const elapsedMilliseconds = performance.now() - started;
  t.equal(error, null);
  t.equal(values.length, 1);
  // Quadratic concatenation of 4 MiB in ~1 KiB pieces copies ~8 GiB and takes many seconds.
  t.ok(elapsedMilliseconds < 2000, `decoded in ${elapsedMilliseconds.toFixed(0)} ms`);
});

t.test('a frame over the limit fails from its header alone, before buffering', async (t) => {
  const decoder = newDecoder(1024);
  const header = Buffer.alloc(frameHeaderBytes);
  header.writeUInt32BE(1025, 0);
  const error = decoder.push(header, () => t.fail('no value'));
  t.equal(error?.code, 'FrameTooLarge');
  t.match(error?.message, /1025 bytes exceeds the limit of 1024 bytes/);
  t.equal(decoder.bufferedBytes, 0, 'nothing held');
  const atLimit = decodeAll(newDecoder(1024), [rawFrame(pack('x'.repeat(1000)))]);
  t.equal(atLimit.error?.code, 'InvalidMessage', 'a frame at the limit is read (and then judged on content)');
});

t.test('a corrupted payload fails its checksum', async (t) => {
  const frame = encodeFrame(samples.heartbeat);
  frame[frame.length - 1] = (frame[frame.length - 1] ?? 0) ^ 0x01;
  const { values, error } = decodeAll(newDecoder(), [frame]);
  t.equal(error?.code, 'ChecksumMismatch');
  t.strictSame(values, []);
  const badHeader = encodeFrame(samples.heartbeat);
  badHeader[5] = (badHeader[5] ?? 0) ^ 0x80;
  t.equal(decodeAll(newDecoder(), [badHeader]).error?.code, 'ChecksumMismatch', 'a corrupted checksum field too');
});

t.test('bytes that are not msgpack give MalformedPayload', async (t) => {
  const cases: [string, number[]][] = [
    ['an extension type nobody defined', [0xd4, 0x10, 0x00]],
    ['an array announcing two items with one', [0x92, 0x01]],
    ['a str8 longer than the payload', [0xd9, 0x20, 0x61]],
    ['an empty payload', []],
    ['a value followed by trailing bytes', [0x01, 0x02]],
  ];
  for (const [name, bytes] of cases) {
    const { error } = decodeAll(newDecoder(), [rawFrame(Uint8Array.from(bytes))]);
    t.equal(error?.code, 'MalformedPayload', name);
    t.ok(error instanceof FrameError, `${name}: a FrameError`);
  }
});

t.test('valid msgpack that is not a Message gives InvalidMessage naming the field', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['a map of something else', { hello: 'world' }, /message\.type must be a known message type/],
    ['a number', 42, /message must be an object/],
    ['an array', [samples.heartbeat], /message must be an object/],
    ['an unknown type', { ...samples.heartbeat, type: 'gossip' }, /message\.type/],
    ['a negative term', { ...samples.heartbeat, term: -1 }, /heartbeat\.term must be a non-negative safe integer/],
    ['a fractional index', { ...samples.heartbeat, commit: 1.5 }, /heartbeat\.commit/],
    ['a missing field', { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 1 }, /heartbeat\.readRound/],
    ['a string for a boolean', { ...samples.preVoteResponse, granted: 'yes' }, /preVoteResponse\.granted must be a boolean/],
    ['an empty sender', { ...samples.timeoutNow, from: '' }, /timeoutNow\.from must be a non-empty string/],
    [
      'entry data that is a string',
      { ...samples.appendEntries, entries: [{ index: 1, term: 1, kind: 'normal', data: 'abc' }] },
      /appendEntries\.entries\[0\]\.data must be bytes, got a string/,
    ],
    [
      'an unknown conf change',
      { ...samples.appendEntries, entries: [{ index: 1, term: 1, kind: 'config', change: { type: 'merge' }, config: { voters: [], learners: [] } }] },
      /appendEntries\.entries\[0\]\.change\.type/,
    ],
    ['snapshot data that is an array', { ...samples.installSnapshot, data: [1, 2, 3] }, /installSnapshot\.data must be bytes/],
    ['a snapshot meta with voters not a list', { ...samples.installSnapshot, meta: { ...samples.installSnapshot.meta, config: { voters: 'a', learners: [] } } }, /installSnapshot\.meta\.config\.voters must be an array/],
    ['proposal data with a number inside', { ...samples.propose, data: [new Uint8Array(1), 5] }, /propose\.data\[1\] must be bytes/],
  ];
  for (const [name, value, reason] of cases) {
    const { error } = decodeAll(newDecoder(), [rawFrame(pack(value))]);
    t.equal(error?.code, 'InvalidMessage', name);
    t.match(error?.message, reason, `${name}: the reason names the field`);
  }
});

t.test('after an error the decoder refuses all further input; earlier frames were delivered', async (t) => {
  const decoder = newDecoder();
  const good = encodeFrame(samples.heartbeat);
  const bad = rawFrame(Uint8Array.from([0x92, 0x01]));
  const values: Message[] = [];
  const first = decoder.push(Buffer.concat([good, bad, good]), (value) => values.push(value));
  t.equal(first?.code, 'MalformedPayload');
  t.strictSame(values, [samples.heartbeat], 'the frame before the bad one, and not the one after');
  const again = decoder.push(good, (value) => values.push(value));
  t.equal(again, first, 'the same error again');
  t.equal(decoder.error, first);
  t.equal(values.length, 1, 'nothing more delivered');
  t.equal(decoder.bufferedBytes, 0, 'nothing held after failing');
});

t.test('the limit may change between frames (hello first, then full size)', async (t) => {
  const decoder = newDecoder(64);
  const values: Message[] = [];
  const error = decoder.push(Buffer.concat([encodeFrame(samples.timeoutNow), encodeFrame(snapshotChunk)]), (value) => {
    values.push(value);
    decoder.maxFrameBytes = maxFrameBytes;
  });
  t.equal(error, null, 'the second frame is judged by the limit set after the first');
  t.equal(values.length, 2);
});

t.test('seeded random bytes never throw and never make the decoder hold more than its limit', async (t) => {
  const limit = 1024;
  const random = seededRandom(20240601);
  const codes = new Map<string, number>();
  for (let run = 0; run < 500; run++) {
    const length = Math.floor(random() * 8192);
    const bytes = new Uint8Array(length);
    for (let position = 0; position < length; position++) bytes[position] = Math.floor(random() * 256);
    // Half the runs use small lengths in the header so that payloads are read and checksummed.
    if (run % 2 === 0 && length >= 4) new DataView(bytes.buffer).setUint32(0, Math.floor(random() * 2 * limit));
    const decoder = newDecoder(limit);
    let error: FrameError | null = null;
    for (const chunk of randomSplits(bytes, random, 512)) {
      error = decoder.push(chunk, () => undefined);
      if (decoder.bufferedBytes > limit + frameHeaderBytes) t.fail(`run ${run}: holds ${decoder.bufferedBytes} bytes`);
    }
    codes.set(error?.code ?? 'none (waiting for more)', (codes.get(error?.code ?? 'none (waiting for more)') ?? 0) + 1);
  }
  t.ok(codes.has('FrameTooLarge') && codes.has('ChecksumMismatch'), `outcomes: ${JSON.stringify([...codes])}`);
});

t.test('seeded mutations of valid payloads (checksum fixed up) never throw', async (t) => {
  const random = seededRandom(7);
  const payloads = allSamples.map((message) => encodeFrame(message).subarray(frameHeaderBytes));
  const codes = new Map<string, number>();
  for (let run = 0; run < 3000; run++) {
    const source = payloads[run % payloads.length] ?? new Uint8Array(0);
    const payload = Uint8Array.from(source);
    const flips = 1 + Math.floor(random() * 4);
    for (let flip = 0; flip < flips; flip++) payload[Math.floor(random() * payload.length)] = Math.floor(random() * 256);
    const { error } = decodeAll(newDecoder(1024 * 1024), [rawFrame(payload)]);
    const outcome = error?.code ?? 'decoded';
    codes.set(outcome, (codes.get(outcome) ?? 0) + 1);
  }
  t.ok(codes.has('MalformedPayload') && codes.has('InvalidMessage'), `outcomes: ${JSON.stringify([...codes])}`);
});
