// A typed mailbox over a MessagePort (or anything with postMessage/on('message')): messages are
// msgpack-encoded on the way out and decoded on the way in, so what crosses is exactly what the
// protocol declares (no class instances, no functions, no shared references).
//
// `Deadlines` keeps the replies an actor waits for, each with a deadline, so a lost message turns
// into a timeout error rather than a request that hangs forever.

import { Packr } from 'msgpackr';

const codec = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

export interface Port {
  postMessage(value: unknown, transferList?: readonly ArrayBuffer[]): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
  close?(): void;
}

export class Mailbox<Incoming, Outgoing> {
  constructor(private readonly port: Port) {}

  send(message: Outgoing): void {
    // msgpackr packs into a shared, growing buffer and returns a view of it; posting that view
    // would clone the whole shared buffer (megabytes once a chunk went through). One exact-size
    // copy, transferred rather than cloned, is all that crosses.
    const packed = codec.pack(message);
    const exact = new Uint8Array(packed.byteLength);
    exact.set(packed);
    this.port.postMessage(exact, [exact.buffer]);
  }

  receive(handler: (message: Incoming) => void): void {
    this.port.on('message', (value: unknown) => {
      if (!(value instanceof Uint8Array)) throw new Error('mailbox: a message that is not msgpack bytes arrived');
      handler(codec.unpack(value) as Incoming);
    });
  }

  close(): void {
    this.port.close?.();
  }
}

export function encodeMessage(value: unknown): Uint8Array {
  return codec.pack(value);
}

export function decodeMessage(bytes: Uint8Array): unknown {
  return codec.unpack(bytes);
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Replies awaited by request id, each with its own deadline, at most `limit` at once. */
export class Deadlines<T> {
  private readonly waiting = new Map<string, Waiter<T>>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.waiting.size;
  }

  /** Registers `requestId`; throws `onFull()` when too many are outstanding. */
  wait(requestId: string, timeoutMilliseconds: number, onTimeout: () => Error, onFull: () => Error): Promise<T> {
    if (this.waiting.size >= this.limit) return Promise.reject(onFull());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        reject(onTimeout());
      }, timeoutMilliseconds);
      this.waiting.set(requestId, { resolve, reject, timer });
    });
  }

  resolve(requestId: string, value: T): boolean {
    const waiter = this.waiting.get(requestId);
    if (waiter === undefined) return false;
    this.waiting.delete(requestId);
    clearTimeout(waiter.timer);
    waiter.resolve(value);
    return true;
  }

  reject(requestId: string, error: Error): boolean {
    const waiter = this.waiting.get(requestId);
    if (waiter === undefined) return false;
    this.waiting.delete(requestId);
    clearTimeout(waiter.timer);
    waiter.reject(error);
    return true;
  }

  rejectAll(error: () => Error): void {
    for (const requestId of [...this.waiting.keys()]) this.reject(requestId, error());
  }
}
