// Files of any size go through the state machine with bounded memory: uploaded as content chunks
// (putChunk), made visible by one commitFile, read back a stored chunk at a time (readFile) or by
// range (readRange, what FUSE reads use). Method: a 50 MiB file through a child process that
// measures its retained memory while writing and while streaming the file back (the growth must
// stay far below the file's size); in this process, a file of uneven chunks read by ranges across
// every chunk boundary and as a stream of small pieces, compared byte for byte with the original,
// and a stream that fails cleanly when its file is overwritten under it.

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { chunkHash } from '../../src/store/commands.js';
import { openFixture, pseudoRandomBytes, removeFolder, temporaryFolder } from './state-helpers.js';

const mebibyte = 1024 * 1024;
const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'state-large-file.js');

t.test('a 50 MiB file: upload, commit and stream back with bounded memory', async (t) => {
  const folder = temporaryFolder('large');
  t.teardown(() => removeFolder(folder));
  const sizeBytes = 50 * mebibyte + 12_345;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, folder, String(sizeBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`the child exited with ${String(code)}`))));
  });
  const result = JSON.parse(output) as {
    commit: { ok: boolean };
    info: { sizeBytes: number; chunkCount: number };
    readBytes: number;
    pieces: number;
    writtenSha256: string;
    readSha256: string;
    peaks: { writeAnonymous: number; writeArrayBuffers: number; readAnonymous: number; readArrayBuffers: number };
  };
  t.equal(result.commit.ok, true, 'committed');
  t.match(result.info, { sizeBytes, chunkCount: 51 });
  t.equal(result.readBytes, sizeBytes);
  t.equal(result.readSha256, result.writtenSha256, 'read back byte for byte');
  t.ok(result.pieces >= 200, `streamed in ${result.pieces} pieces of at most 256 KiB`);
  // Resident memory is what a file-sized leak would show in; ArrayBuffer memory also counts the
  // reusable buffers msgpackr and lmdb-js allocate in steps (up to ~14 MiB measured for 20 MiB to
  // 200 MiB files alike, mostly never touched), so its bound is looser.
  const megabytes = (bytes: number): string => `${(bytes / mebibyte).toFixed(1)} MiB`;
  const { peaks } = result;
  t.ok(peaks.writeAnonymous < 16 * mebibyte, `writing: resident memory grew by at most ${megabytes(peaks.writeAnonymous)} for a 50 MiB file`);
  t.ok(peaks.writeArrayBuffers < 20 * mebibyte, `writing: buffers grew by at most ${megabytes(peaks.writeArrayBuffers)}`);
  t.ok(peaks.readAnonymous < 16 * mebibyte, `reading: resident memory grew by at most ${megabytes(peaks.readAnonymous)}`);
  t.ok(peaks.readArrayBuffers < 20 * mebibyte, `reading: buffers grew by at most ${megabytes(peaks.readArrayBuffers)}`);
});

t.test('readRange and readFile across uneven chunk boundaries', async (t) => {
  const fixture = openFixture('ranges');
  t.teardown(fixture.close);
  const { reader } = fixture;
  // Chunks of uneven sizes, one of them used twice.
  const pieces = [pseudoRandomBytes(700_000, 1), pseudoRandomBytes(mebibyte, 2), pseudoRandomBytes(1, 3), pseudoRandomBytes(333_333, 4)];
  const order = [0, 1, 2, 1, 3];
  const whole = Buffer.concat(order.map((number) => pieces[number] as Buffer));
  for (const piece of pieces) fixture.run({ type: 'putChunk', data: piece });
  const commit = fixture.run({
    type: 'commitFile',
    key: 'uneven.bin',
    chunks: order.map((number) => chunkHash(pieces[number] as Buffer)),
    sizeBytes: whole.length,
    modeBits: 0o644,
    modifiedMilliseconds: 0,
  });
  t.match(commit, { ok: true, version: 5 });

  const boundaries = [0, 700_000, 700_000 + mebibyte, 700_001 + mebibyte, 700_001 + 2 * mebibyte, whole.length];
  const ranges: [number, number][] = [[0, whole.length], [whole.length - 10, 100], [whole.length, 10], [whole.length + 5, 10], [0, 0]];
  for (const boundary of boundaries) for (const delta of [-1, 0, 1]) ranges.push([Math.max(0, boundary + delta), 3], [Math.max(0, boundary + delta), 1_500_000]);
  const wrong: string[] = [];
  for (const [offset, length] of ranges) {
    const data = reader.readRange('uneven.bin', offset, length);
    const expected = whole.subarray(Math.min(offset, whole.length), Math.min(offset + length, whole.length));
    if (data === null || Buffer.compare(Buffer.from(data), expected) !== 0) wrong.push(`${offset}+${length}`);
  }
  t.same(wrong, [], `${ranges.length} ranges, each byte-exact (also spanning three chunks and past the end)`);
  t.equal(reader.readRange('missing', 0, 1), null);
  t.throws(() => reader.readRange('uneven.bin', 0, 1, 4), { code: 'FailedPrecondition' }, 'a handle opened on another version');
  t.ok(reader.readRange('uneven.bin', 0, 1, 5));
  t.throws(() => reader.readRange('uneven.bin', -1, 1), { code: 'InvalidArgument' });
  t.throws(() => reader.get('uneven.bin', mebibyte), { code: 'TooLarge' }, 'get refuses what does not fit its limit');

  const stream = reader.readFile('uneven.bin', { chunkSizeBytes: 300_000 });
  const received: Buffer[] = [];
  for await (const piece of stream?.chunks ?? []) {
    t.ok(piece.length <= 300_000);
    received.push(Buffer.from(piece));
  }
  t.ok(Buffer.concat(received).equals(whole), 'streamed in pieces of at most 300,000 bytes, byte-exact');
});

t.test('a stream whose file is overwritten fails cleanly instead of mixing versions', async (t) => {
  const fixture = openFixture('stream-change');
  t.teardown(fixture.close);
  const original = pseudoRandomBytes(3 * mebibyte, 8);
  fixture.run({ type: 'put', key: 'f', data: original, modeBits: 0o644, modifiedMilliseconds: 0 });
  const stream = fixture.reader.readFile('f', { chunkSizeBytes: mebibyte });
  if (stream === null) throw new Error('missing');
  const iterator = stream.chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  t.ok(first.done !== true && Buffer.from(first.value).equals(original.subarray(0, mebibyte)), 'the first piece is of the version opened');
  fixture.run({ type: 'put', key: 'f', data: pseudoRandomBytes(3 * mebibyte, 9), modeBits: 0o644, modifiedMilliseconds: 0 });
  await t.rejects(iterator.next(), { code: 'FailedPrecondition', message: /changed while it was being read/ });
  t.equal(stream.info.version, 1, 'the stream described the version it started with');
});
