// Framing for the peer transport: [u32 BE payload length][u32 BE CRC-32 of the payload][msgpack].
//
// TCP delivers a byte stream, so frames arrive split anywhere and several to a chunk; the
// decoder reassembles them. The length is checked against `maxFrameBytes` from the header alone,
// before any payload byte is kept, so a peer cannot make us buffer more than the limit. The
// checksum catches corruption that TCP's weak 16-bit checksum lets through (and bugs in our own
// reassembly) before msgpack sees the bytes. A bad frame poisons the stream: after it we no
// longer know where the next frame starts, so the decoder refuses further input and the owner
// closes the connection.

import { crc32 } from 'node:zlib';

import { Packr, Unpackr } from 'msgpackr';

import type { Validation } from './validate.js';

export const frameHeaderBytes = 8;

/** First allocation for a payload that arrives in pieces; small frames then need one copy. */
const minimumPayloadCapacityBytes = 64 * 1024;

export type FrameErrorCode = 'FrameTooLarge' | 'ChecksumMismatch' | 'MalformedPayload' | 'InvalidMessage';

/** A malformed frame: an operating error (a peer sent it), returned by the decoder, never thrown. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// Plain msgpack: no records (msgpackr's shared-structure extension would make a frame depend on
// earlier frames), and 64-bit integers as numbers so that validation sees one numeric type.
const packr = new Packr({ useRecords: false, int64AsType: 'number' });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Encodes one value as a complete frame (header and payload in one buffer, ready to write). */
export function encodeFrame(value: unknown): Buffer {
  const payload = packr.pack(value);
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(crc32(payload), 4);
  // msgpackr packs into a buffer it reuses, so the payload is copied out before the next pack.
  frame.set(payload, frameHeaderBytes);
  return frame;
}

export interface FrameDecoderOptions<T> {
  /** Largest payload accepted; a header announcing more fails with FrameTooLarge. */
  readonly maxFrameBytes: number;
  /** Turns a decoded value into a `T` or says why it is not one (InvalidMessage). */
  readonly validate: (value: unknown) => Validation<T>;
}

/**
 * Reassembles frames from arbitrary chunks. Memory: the payload buffer grows with the bytes
 * actually received (doubling, so each byte is copied O(1) times and a frame costs O(n), however
 * it is split) and never beyond the announced length, which is at most `maxFrameBytes`: a header
 * alone cannot make the decoder allocate. Every frame gets a buffer of its own (decoded byte
 * fields are views into it, so keeping one message's data keeps no socket chunk or other frame
 * alive), and the decoder keeps no reference to the caller's chunks.
 */
export class FrameDecoder<T> {
  /**
   * May be changed between frames: a connection starts with a small limit until the peer has
   * introduced itself, then raises it (see PeerTransport).
   */
  maxFrameBytes: number;
  private readonly validate: (value: unknown) => Validation<T>;
  private readonly header = Buffer.alloc(frameHeaderBytes);
  private headerFilledBytes = 0;
  /** -1 while the header is incomplete. */
  private payloadLength = -1;
  private expectedChecksum = 0;
  /** The payload received so far; its length is the capacity, never above `payloadLength`. */
  private payload: Buffer | null = null;
  private payloadFilledBytes = 0;
  private failure: FrameError | null = null;

  constructor(options: FrameDecoderOptions<T>) {
    if (!Number.isSafeInteger(options.maxFrameBytes) || options.maxFrameBytes < 1 || options.maxFrameBytes > 0xffffffff) {
      throw new RangeError(`maxFrameBytes must be an integer in [1, 2^32 - 1], got ${options.maxFrameBytes}`);
    }
    this.maxFrameBytes = options.maxFrameBytes;
    this.validate = options.validate;
  }

  /** Bytes of memory held for the frame in progress (header and payload capacity). */
  get bufferedBytes(): number {
    return this.headerFilledBytes + (this.payload?.length ?? 0);
  }

  get error(): FrameError | null {
    return this.failure;
  }

  /**
   * Feeds one chunk and calls `onValue` synchronously for every frame it completes, in order,
   * so that the callee may change `maxFrameBytes` before the next frame's header is read.
   * Returns null, or the error that made the stream malformed: the same error for this and every
   * later call (frames completed before it were delivered and are valid). Never throws for bad
   * input; `onValue` must not throw (an exception leaves the rest of the chunk unread).
   */
  push(chunk: Uint8Array, onValue: (value: T) => void): FrameError | null {
    if (this.failure !== null) return this.failure;
    let offset = 0;
    while (offset < chunk.length || this.payloadComplete()) {
      if (this.payloadLength < 0) {
        const taken = Math.min(frameHeaderBytes - this.headerFilledBytes, chunk.length - offset);
        this.header.set(chunk.subarray(offset, offset + taken), this.headerFilledBytes);
        this.headerFilledBytes += taken;
        offset += taken;
        if (this.headerFilledBytes < frameHeaderBytes) break;
        const length = this.header.readUInt32BE(0);
        if (length > this.maxFrameBytes) {
          return this.fail(
            new FrameError('FrameTooLarge', `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`),
          );
        }
        this.payloadLength = length;
        this.expectedChecksum = this.header.readUInt32BE(4);
        this.headerFilledBytes = 0;
        continue;
      }
      if (!this.payloadComplete()) {
        const taken = Math.min(this.payloadLength - this.payloadFilledBytes, chunk.length - offset);
        const payload = this.reserve(this.payloadFilledBytes + taken);
        payload.set(chunk.subarray(offset, offset + taken), this.payloadFilledBytes);
        this.payloadFilledBytes += taken;
        offset += taken;
        if (!this.payloadComplete()) break;
      }
      const outcome = this.completeFrame();
      if (outcome instanceof FrameError) return this.fail(outcome);
      onValue(outcome.value);
    }
    return null;
  }

  private payloadComplete(): boolean {
    return this.payloadLength >= 0 && this.payloadFilledBytes === this.payloadLength;
  }

  /** The payload buffer with room for `neededBytes`, grown geometrically up to the frame's length. */
  private reserve(neededBytes: number): Buffer {
    const current = this.payload;
    if (current !== null && current.length >= neededBytes) return current;
    const capacity = Math.min(this.payloadLength, Math.max(neededBytes, 2 * (current?.length ?? 0), minimumPayloadCapacityBytes));
    // allocUnsafeSlow: memory of this frame's own, not a slice of Node's shared pool.
    const grown = Buffer.allocUnsafeSlow(capacity);
    if (current !== null) current.copy(grown, 0, 0, this.payloadFilledBytes);
    this.payload = grown;
    return grown;
  }

  private completeFrame(): FrameError | { value: T } {
    // reserve() never exceeds the frame's length and the frame is complete, so the buffer is exact.
    const payload = this.payload ?? Buffer.alloc(0);
    const expectedChecksum = this.expectedChecksum;
    this.payload = null;
    this.payloadFilledBytes = 0;
    this.payloadLength = -1;
    const actualChecksum = crc32(payload);
    if (actualChecksum !== expectedChecksum) {
      return new FrameError(
        'ChecksumMismatch',
        `frame checksum ${hex(actualChecksum)} does not match the header's ${hex(expectedChecksum)}`,
      );
    }
    let decoded: unknown;
    try {
      decoded = unpackr.unpack(payload);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return new FrameError('MalformedPayload', `frame payload is not valid msgpack: ${reason.slice(0, 200)}`);
    }
    const validation = this.validate(decoded);
    if (!validation.ok) return new FrameError('InvalidMessage', `frame payload is not a valid message: ${validation.reason}`);
    return { value: validation.value };
  }

  private fail(error: FrameError): FrameError {
    this.failure = error;
    // Drop whatever was buffered: nothing after a bad frame will ever be decoded.
    this.payload = null;
    this.payloadFilledBytes = 0;
    this.headerFilledBytes = 0;
    this.payloadLength = -1;
    return this.failure;
  }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
