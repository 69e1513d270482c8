// The -h text. Goal: it lists every setting with its flag, environment variable, YAML key, default
// and meaning, plus -config and -h, and it is generated from the settings table (so a setting
// added to the table appears without touching the help). Method: compare the text with the table
// that loadConfig itself uses, whitespace-normalised because long lines wrap.

import t from 'tap';

import { helpText, settingKeys, settings } from '../../src/config/index.js';
import { load } from './helpers.js';

const text = helpText();
const flattened = text.replace(/\s+/g, ' ');

t.test('every setting appears with flag, environment variable, YAML key, default and meaning', async (t) => {
  t.equal(settingKeys.length, 15, 'fifteen settings');
  for (const key of settingKeys) {
    const setting = settings[key];
    t.match(text, new RegExp(`^  -${setting.flag}[ \\[]`, 'm'), `${key}: the flag starts its entry`);
    t.ok(flattened.includes(`env ${setting.environmentVariable} · yaml ${setting.key} · default ${setting.defaultText}`),
      `${key}: environment variable, YAML key and default`);
    t.ok(flattened.includes(setting.doc.replace(/\s+/g, ' ')), `${key}: meaning`);
  }
});

t.test('the defaults shown are the documented ones', async (t) => {
  for (const fragment of [
    'default node1', 'default :12000', 'default :13000', 'default :14000', 'default data', 'default none',
    'default /mnt/dfs', 'default /mnt/hostfs', 'default true', 'default 64MiB', 'default info',
    // A space after the number, so that "default 100" is not found inside "default 10000".
    'default 100 ', 'default 10000 ', 'default 100000 ',
    'default the raft address, with the node id as host',
  ]) {
    t.ok(flattened.includes(fragment), fragment);
  }
});

t.test('switches, -config and -h are explained', async (t) => {
  t.match(text, /-fuse\[=true\|false\], -no-fuse/);
  t.match(text, /-config PATH/);
  t.match(text, /env DFS_CONFIG/);
  t.match(text, /-h, -help, --help/);
  t.match(flattened, /--id=node2/, 'the double-dash form is shown');
});

t.test('no line is wider than 100 characters except the example command', async (t) => {
  const wide = text.split('\n').filter((line) => line.length > 100 && !line.startsWith('  dfs '));
  t.same(wide, []);
});

t.test('-h returns this text', async (t) => {
  const result = load({ argv: ['--help'] });
  t.same(result, { kind: 'help', text });
});
