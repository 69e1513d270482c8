// The key rules of DESIGN.md ("Bad input"), in one place for every way in: gRPC, the cache-folder
// watcher and the state machine itself (which re-checks every decoded command, because a command
// in the log may come from a node running other code). A key is a relative path that can be
// mapped onto a file system without escaping it: the FUSE mount and the cache folder join keys to
// their root, so `.`/`..`, empty segments and NUL must never get through. Lengths are counted in
// UTF-8 bytes because that is what file systems (NAME_MAX 255, PATH_MAX 4096) and LMDB count.

/** Longest key, in UTF-8 bytes (Linux PATH_MAX). */
export const maxKeyBytes = 4096;
/** Longest path segment, in UTF-8 bytes (Linux NAME_MAX). */
export const maxSegmentBytes = 255;

const encoder = new TextEncoder();

/** Matches a UTF-16 surrogate that is not part of a pair (the `u` flag pairs the valid ones). */
const loneSurrogate = /\p{Cs}/u;

/**
 * Checks a file or folder key. Returns null when the key is valid, else a message that names the
 * rule it breaks (the caller reports it as InvalidKey / INVALID_ARGUMENT).
 */
export function validateKey(key: unknown): string | null {
  if (typeof key !== 'string') return 'key must be a string';
  if (key.length === 0) return 'key must not be empty';
  const common = checkCharacters(key);
  if (common !== null) return common;
  if (key.startsWith('/')) return `key must be a relative path: it starts with '/' (${quote(key)})`;
  if (key.endsWith('/')) return `key must not end with '/' (${quote(key)})`;
  const segments = key.split('/');
  for (const segment of segments) {
    const problem = checkSegment(segment, key);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * Checks a List prefix. The empty prefix (everything) is allowed, and the last segment may be
 * partial: `docs/`, `docs/a` and `docs/.` (a prefix of `docs/.hidden`) are all fine. Every segment
 * before the last must be a valid key segment, because no key could start with anything else.
 */
export function validatePrefix(prefix: unknown): string | null {
  if (typeof prefix !== 'string') return 'prefix must be a string';
  if (prefix.length === 0) return null;
  const common = checkCharacters(prefix);
  if (common !== null) return common.replace(/^key/, 'prefix');
  if (prefix.startsWith('/')) return `prefix must be a relative path: it starts with '/' (${quote(prefix)})`;
  const segments = prefix.split('/');
  const last = segments.pop() ?? '';
  for (const segment of segments) {
    const problem = checkSegment(segment, prefix);
    if (problem !== null) return problem.replace(/^key/, 'prefix');
  }
  if (utf8Length(last) > maxSegmentBytes) {
    return `prefix segment is ${utf8Length(last)} bytes, more than the ${maxSegmentBytes}-byte limit (${quote(last)})`;
  }
  return null;
}

/** The parent folder of a valid key ('' for a top-level key). */
export function parentOf(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? '' : key.slice(0, slash);
}

export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

function checkCharacters(text: string): string | null {
  if (text.includes('\0')) return 'key must not contain NUL (\\0)';
  if (loneSurrogate.test(text)) return 'key must be valid Unicode: it contains an unpaired UTF-16 surrogate';
  // A UTF-16 code unit encodes to at most 3 UTF-8 bytes: skip the encode for short strings.
  if (text.length * 3 > maxKeyBytes) {
    const bytes = utf8Length(text);
    if (bytes > maxKeyBytes) return `key is ${bytes} bytes in UTF-8, more than the ${maxKeyBytes}-byte limit`;
  }
  return null;
}

function checkSegment(segment: string, whole: string): string | null {
  if (segment.length === 0) return `key must not contain an empty segment ('//') (${quote(whole)})`;
  if (segment === '.' || segment === '..') return `key must not contain a '${segment}' segment (${quote(whole)})`;
  if (segment.length * 3 > maxSegmentBytes) {
    const bytes = utf8Length(segment);
    if (bytes > maxSegmentBytes) {
      return `key segment is ${bytes} bytes in UTF-8, more than the ${maxSegmentBytes}-byte limit (${quote(segment)})`;
    }
  }
  return null;
}

/** A short, printable rendering of (part of) a key for error messages. */
function quote(text: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return JSON.stringify(shown);
}
