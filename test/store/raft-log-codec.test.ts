// The raft log stores entries as plain msgpack tuples and reads term and size from their first
// bytes without decoding the data (src/store/raft-log-codec.ts). Method: encode entries across
// every msgpack width of term and data length and check that the header agrees with the decoded
// entry and with entrySizeBytes; then feed truncated and foreign bytes and expect EntryFormatError.

import { pack } from 'msgpackr';
import t from 'tap';

import { entrySizeBytes } from '../../src/raft/storage.js';
import type { Entry } from '../../src/raft/types.js';
import { decodeEntry, encodeEntry, readEntryHeader } from '../../src/store/raft-log-codec.js';

t.test('the header of every width agrees with the decoded entry and entrySizeBytes', async (t) => {
  const terms = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
  const sizes = [0, 1, 255, 256, 65535, 65536];
  let checked = 0;
  for (const term of terms) {
    for (const sizeBytes of sizes) {
      const entry: Entry = { index: 7, term, kind: 'normal', data: new Uint8Array(sizeBytes).fill(3) };
      const bytes = encodeEntry(entry);
      const header = readEntryHeader(bytes);
      const decoded = decodeEntry(7, bytes);
      if (header.term !== term || header.kind !== 'normal' || header.sizeBytes !== entrySizeBytes(entry) || decoded.term !== term) {
        t.fail(`term ${term}, ${sizeBytes} bytes`);
      }
      checked++;
    }
    const config: Entry = { index: 7, term, kind: 'config', change: { type: 'promote', nodeId: 'n2' }, config: { voters: ['n1', 'n2'], learners: [] } };
    const header = readEntryHeader(encodeEntry(config));
    t.equal(header.sizeBytes, entrySizeBytes(config), `config entry size at term ${term}`);
    t.strictSame(decodeEntry(7, encodeEntry(config)), config);
  }
  t.equal(checked, terms.length * sizes.length);
});

t.test('decoded data is a copy, not a view of the stored bytes', async (t) => {
  const bytes = encodeEntry({ index: 1, term: 1, kind: 'normal', data: new Uint8Array([1, 2, 3]) });
  const decoded = decodeEntry(1, bytes);
  bytes.fill(0);
  t.ok(decoded.kind === 'normal' && decoded.data[0] === 1 && decoded.data.byteLength === 3);
});

t.test('bytes that are not an entry of this version are refused with EntryFormatError', async (t) => {
  const encoded = encodeEntry({ index: 1, term: 300, kind: 'normal', data: new Uint8Array(300) });
  const cases: Record<string, Uint8Array> = {
    'no bytes': new Uint8Array(0),
    'cut inside the header': encoded.subarray(0, 4),
    'not an array': pack({ term: 1 }),
    'a negative term': pack([-1, 0, new Uint8Array(1)]),
    'an unknown kind': pack([1, 9, new Uint8Array(1)]),
    'data that is a string': pack([1, 0, 'text']),
    'a config entry without a configuration': pack([1, 1, { type: 'bootstrap' }]),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    t.throws(() => {
      readEntryHeader(bytes);
      decodeEntry(1, bytes);
    }, { name: 'EntryFormatError', code: 'EntryFormat' }, name);
  }
});
