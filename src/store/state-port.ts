// Adapts the state store's reader and command codec to the port the gRPC actor uses
// (src/actors/grpc-actor.ts), translating the store's vocabulary to the API's.

import type { FileInfo as ApiFileInfo, FileStream as ApiFileStream, ListPage } from '../api/backend.js';
import type { ChangePage, CommandInput, StatePort } from '../actors/grpc-actor.js';
import { DfsError } from '../errors.js';
import { chunkHash, encodeCommand, type Command } from './commands.js';
import { validateKey, validatePrefix } from './keys.js';
import type { FileInfo, StateReader } from './state-reader.js';

function toApiInfo(info: FileInfo): ApiFileInfo {
  return { key: info.key, sizeBytes: info.sizeBytes, version: info.version, modifiedUnixMilliseconds: info.modifiedMilliseconds, mode: info.modeBits };
}

export function readerStatePort(reader: StateReader): StatePort {
  const fileInfo = (key: string): FileInfo | null => {
    const info = reader.stat(key);
    if (info === null) return null;
    if (info.kind === 'folder') throw new DfsError('KeyNotFound', `${JSON.stringify(key)} is a folder, not a file; list it with List {"prefix": "${key}/"}`);
    return info;
  };
  return {
    encode: (command: CommandInput, requestId: string) => encodeCommand({ ...command, requestId } as Command),
    chunkHash,
    validateKey,
    validatePrefix,
    stat(key) {
      const info = fileInfo(key);
      return info === null ? null : toApiInfo(info);
    },
    get(key) {
      if (fileInfo(key) === null) return null;
      const found = reader.get(key);
      return found === null ? null : { data: found.data, info: toApiInfo(found.info) };
    },
    openRead(key, chunkSizeBytes): ApiFileStream | null {
      if (fileInfo(key) === null) return null;
      const stream = reader.readFile(key, chunkSizeBytes > 0 ? { chunkSizeBytes } : {});
      return stream === null ? null : { info: toApiInfo(stream.info), chunks: stream.chunks };
    },
    appliedIndex: () => reader.appliedIndex(),
    changes(from, prefix, limit): ChangePage {
      const page = reader.changes(from, prefix, limit);
      return {
        ...page,
        changes: page.changes.map((change) => ({
          version: change.version,
          type: change.type,
          key: change.key,
          info:
            change.file !== null
              ? { key: change.key, sizeBytes: change.file.sizeBytes, version: change.file.version, modifiedUnixMilliseconds: change.file.modifiedMilliseconds, mode: change.file.modeBits }
              : change.folder !== null
                ? { key: change.key, sizeBytes: 0, version: change.folder.version, modifiedUnixMilliseconds: change.folder.modifiedMilliseconds, mode: change.folder.modeBits }
                : null,
        })),
      };
    },
    list(prefix, pageSize, pageToken): ListPage {
      const page = reader.list(prefix, { pageSize, pageToken });
      return { entries: page.entries.map(toApiInfo), nextPageToken: page.nextPageToken };
    },
  };
}
