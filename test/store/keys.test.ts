// The key rules of DESIGN.md ("Bad input"): every way into dfs checks keys with validateKey, so
// this table is the contract. Method: tables of valid and invalid keys and prefixes; each invalid
// case also checks that the message names the rule it broke (that message is what a gRPC client
// or the cache-folder watcher reports), and the byte limits are probed exactly at and one past the
// limit, with ASCII and multi-byte characters (limits count UTF-8 bytes, not characters).

import t from 'tap';

import { maxKeyBytes, maxSegmentBytes, parentOf, utf8Length, validateKey, validatePrefix } from '../../src/store/keys.js';

/** A key of exactly `totalBytes` UTF-8 bytes made of segments of at most 255 bytes. */
function keyOfBytes(totalBytes: number): string {
  const segments: string[] = [];
  let remaining = totalBytes;
  while (remaining > 0) {
    // Leave room for the '/' before the next segment, and never leave an empty last segment.
    let length = Math.min(maxSegmentBytes, remaining);
    if (remaining - length === 1) length -= 1;
    segments.push('k'.repeat(length));
    remaining -= length;
    if (remaining > 0) remaining -= 1;
  }
  return segments.join('/');
}

t.test('the helper builds keys of the asked size', async (t) => {
  for (const size of [1, 255, 256, 257, 4095, 4096, 4097]) t.equal(utf8Length(keyOfBytes(size)), size, `${size} bytes`);
});

t.test('valid keys', async (t) => {
  const valid: [string, string][] = [
    ['a', 'one segment'],
    ['a/b', 'two segments'],
    ['docs/2024/report.final.pdf', 'dots inside names'],
    ['.hidden', 'a leading dot'],
    ['...', 'three dots is a name'],
    ['..foo/bar..', 'dots that are not a whole segment'],
    ['with space/and\ttab/and\nnewline', 'white space and control characters other than NUL'],
    ['back\\slash', 'a backslash is an ordinary character on Linux'],
    ['ünïcödé/文件/😀', 'non-ASCII, including a surrogate pair'],
    ['k'.repeat(maxSegmentBytes), 'a segment of exactly 255 bytes'],
    ['€'.repeat(85), 'a segment of 85 three-byte characters (255 bytes)'],
    [keyOfBytes(maxKeyBytes), 'a key of exactly 4096 bytes'],
  ];
  for (const [key, why] of valid) t.equal(validateKey(key), null, why);
});

t.test('invalid keys name the rule they break', async (t) => {
  const invalid: [unknown, RegExp, string][] = [
    ['', /must not be empty/, 'empty'],
    ['/a', /relative path.*starts with '\/'/, 'absolute'],
    ['/', /relative path/, 'the root itself'],
    ['a/', /must not end with '\/'/, 'trailing slash'],
    ['a//b', /empty segment/, 'double slash'],
    ['.', /'\.' segment/, 'a lone dot'],
    ['..', /'\.\.' segment/, 'a lone dot-dot'],
    ['a/./b', /'\.' segment/, 'a dot segment inside'],
    ['a/../b', /'\.\.' segment/, 'a dot-dot segment inside'],
    ['../etc/passwd', /'\.\.' segment/, 'escaping upwards'],
    ['a/..', /'\.\.' segment/, 'a dot-dot segment at the end'],
    ['a\0b', /NUL/, 'NUL'],
    ['\0', /NUL/, 'only NUL'],
    ['a\ud800b', /unpaired UTF-16 surrogate/, 'a lone high surrogate'],
    ['\udc00', /unpaired UTF-16 surrogate/, 'a lone low surrogate'],
    [keyOfBytes(maxKeyBytes + 1), /4097 bytes.*4096-byte limit/, 'one byte over the key limit'],
    ['k'.repeat(maxSegmentBytes + 1), /segment is 256 bytes.*255-byte limit/, 'one byte over the segment limit'],
    ['€'.repeat(86), /segment is 258 bytes/, 'multi-byte characters over the segment limit'],
    [`a/${'€'.repeat(1400)}`, /4202 bytes.*4096-byte limit/, 'multi-byte characters over the key limit'],
    [42, /must be a string/, 'a number'],
    [null, /must be a string/, 'null'],
    [undefined, /must be a string/, 'undefined'],
  ];
  for (const [key, rule, why] of invalid) t.match(validateKey(key), rule, why);
});

t.test('prefixes: empty allowed, last segment may be partial', async (t) => {
  const valid: [string, string][] = [
    ['', 'everything'],
    ['docs', 'a partial name'],
    ['docs/', 'a folder'],
    ['docs/a', 'a partial name in a folder'],
    ['docs/.', 'a partial name starting with a dot (docs/.hidden)'],
    ['docs/..', 'a partial name starting with two dots (docs/..foo)'],
    ['.', 'top-level dot names'],
    [keyOfBytes(maxKeyBytes), 'a whole key of 4096 bytes'],
  ];
  for (const [prefix, why] of valid) t.equal(validatePrefix(prefix), null, why);
  const invalid: [unknown, RegExp, string][] = [
    ['/docs', /prefix must be a relative path/, 'absolute'],
    ['a//', /prefix must not contain an empty segment/, 'double slash'],
    ['../a', /prefix must not contain a '\.\.' segment/, 'dot-dot before the last segment'],
    ['./a', /prefix must not contain a '\.' segment/, 'dot before the last segment'],
    ['a\0', /prefix must not contain NUL/, 'NUL'],
    [keyOfBytes(maxKeyBytes + 1), /prefix is 4097 bytes/, 'too long'],
    [`a/${'k'.repeat(256)}`, /prefix segment is 256 bytes/, 'a partial segment that no key could have'],
    [7, /prefix must be a string/, 'a number'],
  ];
  for (const [prefix, rule, why] of invalid) t.match(validatePrefix(prefix), rule, why);
});

t.test('parentOf', async (t) => {
  t.equal(parentOf('a'), '');
  t.equal(parentOf('a/b'), 'a');
  t.equal(parentOf('a/b/c.txt'), 'a/b');
});
