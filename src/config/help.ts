// The -h text, generated from the settings table so that it can never disagree with what the
// loader accepts: every setting with its flag, environment variable, YAML key, default and meaning.

import { configFileSetting, defaultRaftPort, settingKeys, settings } from './settings.js';

const textWidth = 100;
const indent = '      ';

/** Wraps a paragraph to the text width, each line starting with `prefix`. */
function wrap(text: string, prefix: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && prefix.length + line.length + 1 + word.length > textWidth) {
      lines.push(prefix + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(prefix + line);
  return lines;
}

export function helpText(): string {
  const lines: string[] = [
    'dfs — a node of the replicated file store',
    '',
    'Usage: dfs [flags]',
    '',
    ...wrap(
      'Each setting is taken from, lowest precedence first: its default, the YAML file, the DFS_* environment ' +
      'variable, the command-line flag. Flags take one or two dashes and the value after a space or "=" ' +
      '(-id node2, --id=node2); a switch takes its value only after "=" (-fuse, -fuse=false, -no-fuse). ' +
      'Unknown flags, DFS_* variables and YAML keys are errors.',
      '',
    ),
    '',
    'Settings:',
  ];

  for (const key of settingKeys) {
    const setting = settings[key];
    const usage = setting.isSwitch
      ? `-${setting.flag}[=${setting.valueName}], -no-${setting.flag}`
      : `-${setting.flag} ${setting.valueName}`;
    lines.push('', `  ${usage}`);
    lines.push(...wrap(`env ${setting.environmentVariable} · yaml ${setting.key} · default ${setting.defaultText}`, indent));
    lines.push(...wrap(setting.doc, indent));
  }

  lines.push(
    '',
    `  -${configFileSetting.flag} ${configFileSetting.valueName}`,
    `${indent}env ${configFileSetting.environmentVariable} · default ${configFileSetting.defaultFileName} in the working folder, if present`,
    ...wrap(configFileSetting.doc, indent),
    '',
    '  -h, -help, --help',
    `${indent}Print this text and exit.`,
    '',
    `Example: a second node on the same machine joining the first, whose raft port is the default ${defaultRaftPort}:`,
    '  dfs -id node2 -data data2 -raft :12001 -grpc :13001 -http :14001 -peers 127.0.0.1 -advertise 127.0.0.1 -no-fuse',
    '',
  );
  return lines.join('\n');
}
