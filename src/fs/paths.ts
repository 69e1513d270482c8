// From the paths libfuse hands us to the store's keys. A FUSE path is absolute inside the mount
// ('/', '/docs/a.txt'); the key is the same path without the leading slash, and the mount's root
// is the key ''. The mapping refuses anything that is not exactly a key (DESIGN.md, "Bad input"):
// '.' and '..' segments, empty segments, NUL, a trailing slash, names over 255 bytes and paths over
// 4096 — so no path can name anything but a key of the state, let alone escape the mount. (The
// kernel resolves '.' and '..' itself and never sends them; the checks are for every other caller
// and for a kernel or library that would.)

import { maxKeyBytes, maxSegmentBytes, utf8Length, validateKey } from '../store/keys.js';
import { FileSystemError } from './errno.js';

/** The key a FUSE path names: '' for the root. Throws FileSystemError (InvalidPath, NameTooLong). */
export function keyOfPath(path: string): string {
  if (path === '/') return '';
  if (!path.startsWith('/')) throw new FileSystemError('InvalidPath', `a mount path is absolute: ${JSON.stringify(path)}`);
  if (path.includes('\0')) throw new FileSystemError('InvalidPath', 'a mount path must not contain NUL');
  const key = path.slice(1);
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new FileSystemError('InvalidPath', `a mount path must not contain ${segment === '' ? 'an empty name or a trailing /' : `a '${segment}' name`}: ${JSON.stringify(path)}`);
    }
    if (segment.length * 3 > maxSegmentBytes && utf8Length(segment) > maxSegmentBytes) {
      throw new FileSystemError('NameTooLong', `a name may be at most ${maxSegmentBytes} bytes (${utf8Length(segment)})`);
    }
  }
  if (key.length * 3 > maxKeyBytes && utf8Length(key) > maxKeyBytes) {
    throw new FileSystemError('NameTooLong', `a path may be at most ${maxKeyBytes} bytes (${utf8Length(key)})`);
  }
  const problem = validateKey(key);
  if (problem !== null) throw new FileSystemError('InvalidPath', problem);
  return key;
}
