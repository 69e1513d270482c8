// parseAddress and formatAddress, shared by the bind settings, the peer list, -advertise, the
// transport and the gRPC server. Goal: every form the configuration documents parses to the right
// host and port, every malformed form fails with the rule it broke, and formatting round-trips.
// Method: tables of text → expected address or expected rule.

import t from 'tap';

import { AddressError, formatAddress, isWildcardHost, parseAddress } from '../../src/config/index.js';

t.test('forms that parse', async (t) => {
  const cases: Array<[text: string, host: string, port: number, options?: Parameters<typeof parseAddress>[1]]> = [
    [':12000', '', 12000, { allowEmptyHost: true }],
    ['0.0.0.0:1', '0.0.0.0', 1, {}],
    ['127.0.0.1:65535', '127.0.0.1', 65535, {}],
    ['node1:12000', 'node1', 12000, {}],
    ['db-2.example.com:443', 'db-2.example.com', 443, {}],
    ['node_1:7', 'node_1', 7, {}],
    ['[::1]:12000', '::1', 12000, {}],
    ['[::]:12000', '::', 12000, {}],
    ['[fe80::1%eth0]:5', 'fe80::1%eth0', 5, {}],
    ['node1', 'node1', 12000, { defaultPort: 12000 }],
    ['[::1]', '::1', 9, { defaultPort: 9 }],
    ['node1:00080', 'node1', 80, {}],
  ];
  for (const [text, host, port, options] of cases) {
    t.same(parseAddress(text, options), { host, port }, text);
  }
});

t.test('forms that fail, with the rule', async (t) => {
  const cases: Array<[text: string, rule: RegExp, options?: Parameters<typeof parseAddress>[1]]> = [
    ['', /must not be empty/],
    ['  ', /must not be empty/],
    [' node1:1', /must not contain spaces/],
    ['node1', /needs a port/],
    [':12000', /needs a host/],
    ['node1:0', /port 0 must be from 1 to 65535/],
    ['node1:65536', /port 65536 must be from 1 to 65535/],
    ['node1:123456', /must be a number from 1 to 65535/],
    ['node1:http', /port "http" must be a number/],
    ['node1:', /port "" must be a number/],
    ['node1:-1', /must be a number/],
    ['::1:12000', /IPv6 host must be written in brackets/],
    ['[::1:12000', /must be closed/],
    ['[::1]12000', /only ":port" may follow/],
    ['[node1]:1', /is not an IPv6 address/],
    ['[]:1', /is not an IPv6 address/],
    ['-node:1', /must start with a letter, digit or "_"/],
    ['.node:1', /must start with/],
    ['no de:1', /may contain only letters/],
    ['nöde:1', /may contain only letters/],
    [`${'a'.repeat(254)}:1`, /at most 253 characters/],
  ];
  for (const [text, rule, options] of cases) {
    t.throws(() => parseAddress(text, options), AddressError, text);
    try {
      parseAddress(text, options);
    } catch (error) {
      t.ok(error instanceof AddressError && rule.test(error.rule), `${JSON.stringify(text)}: ${String(error)}`);
    }
  }
});

t.test('formatAddress brackets IPv6 and round-trips', async (t) => {
  t.equal(formatAddress({ host: '', port: 12000 }), ':12000');
  t.equal(formatAddress({ host: 'node1', port: 1 }), 'node1:1');
  t.equal(formatAddress({ host: '::1', port: 2 }), '[::1]:2');
  for (const text of [':12000', 'node1:12000', '10.0.0.1:9', '[::1]:12000', '[2001:db8::7]:443']) {
    t.equal(formatAddress(parseAddress(text, { allowEmptyHost: true })), text, text);
  }
});

t.test('wildcard hosts', async (t) => {
  t.ok(isWildcardHost(''));
  t.ok(isWildcardHost('0.0.0.0'));
  t.ok(isWildcardHost('::'));
  t.notOk(isWildcardHost('127.0.0.1'));
  t.notOk(isWildcardHost('node1'));
});
