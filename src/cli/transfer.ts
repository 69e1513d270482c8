// Streaming between local files and dfs with bounded memory: uploads read the file in 1 MiB
// chunks into PutStream; downloads write GetStream's chunks to a temporary file in the target's
// folder and rename it into place only when complete, so a failed or interrupted copy leaves no
// partial file behind.

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DfsClient, FileInfo } from '../client/client.js';

export const chunkSizeBytes = 1024 * 1024;

/** The chunks of `source`, counted into `onBytes` as they are read. */
export async function* countedChunks(source: AsyncIterable<Uint8Array>, onBytes: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
}

export async function uploadFile(client: DfsClient, path: string, key: string, options: { signal: AbortSignal; onBytes: (bytes: number) => void; mode?: number }): Promise<{ version: number; sizeBytes: number }> {
  const stream = addAbortSignal(options.signal, createReadStream(path, { highWaterMark: chunkSizeBytes }));
  try {
    return await client.putStream(key, countedChunks(stream, options.onBytes), options.mode === undefined ? {} : { mode: options.mode });
  } finally {
    stream.destroy();
  }
}

/** Writes `key` to `path` through a temporary sibling file; returns the metadata GetStream sent. */
export async function downloadToFile(client: DfsClient, key: string, path: string, options: { signal: AbortSignal; onBytes: (bytes: number) => void; consistency?: 'LOCAL' | 'LINEARIZABLE' }): Promise<FileInfo | null> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.${basename(path)}.dfsctl-${randomBytes(4).toString('hex')}.part`);
  let info: FileInfo | null = null;
  const stream = client.getStream(key, { chunkSizeBytes, ...(options.consistency === undefined ? {} : { consistency: options.consistency }) });
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = await stream.next();
      if (next.done === true) {
        info = next.value;
        return;
      }
      options.onBytes(next.value.length);
      yield next.value;
    }
  }
  try {
    await pipeline(Readable.from(chunks()), createWriteStream(temporary, { flags: 'wx' }), { signal: options.signal });
    const mode = (info as FileInfo | null)?.mode ?? 0;
    if (mode !== 0) await chmod(temporary, mode & 0o7777);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return info;
}
