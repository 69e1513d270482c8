// Configuration errors name the setting the way the user wrote it (`--raft`, `DFS_RAFT`, `raft` in
// a named file), show what was written, and state the rule, so a person can fix the start command
// without reading the source. `dfs` prints them one per line and exits 2.

/** Where a value came from, lowest precedence first. */
export type SettingSource = 'default' | 'file' | 'environment' | 'flag';

export const sourcePrecedence: Readonly<Record<SettingSource, number>> = { default: 0, file: 1, environment: 2, flag: 3 };

/** One value as the user wrote it, before it is read into its type. */
export interface WrittenValue {
  readonly source: SettingSource;
  /** The name as written: `-raft`, `--raft`, `DFS_RAFT`, `raft` (YAML key or, for defaults, the key). */
  readonly setting: string;
  /** Text from a flag or the environment, any YAML value from the file, the default's value. */
  readonly written: unknown;
  /** For source 'file': the file's path. */
  readonly file?: string;
}

export interface ConfigError {
  readonly source: SettingSource;
  /** The setting as written (`--raft`, `DFS_RAFT`, `raft`), or the file's path for whole-file errors. */
  readonly setting: string;
  /** The rule that was broken, e.g. `port 99999 must be from 1 to 65535`. */
  readonly rule: string;
  /** One line for the terminal: where, what was written, and the rule. */
  readonly message: string;
}

const longestShownValue = 80;

/** Shows a written value compactly: text in quotes, YAML values as JSON, long ones cut short. */
export function showWritten(written: unknown): string {
  const shown = JSON.stringify(written) ?? String(written);
  return shown.length > longestShownValue ? `${shown.slice(0, longestShownValue - 1)}…` : shown;
}

/** Where a value was written, with the value: `--raft ":1"`, `DFS_RAFT=":1"`, `raft ":1" in /x/dfs.yaml`. */
export function describeWritten(value: WrittenValue): string {
  const shown = showWritten(value.written);
  switch (value.source) {
    case 'flag': return `${value.setting} ${shown}`;
    case 'environment': return `${value.setting}=${shown}`;
    case 'file': return `${value.setting} ${shown} in ${value.file ?? 'the config file'}`;
    case 'default': return `${value.setting} (default ${shown})`;
  }
}

/** An error about a value: where it was written, what it was, and the rule it broke. */
export function valueError(value: WrittenValue, rule: string): ConfigError {
  return { source: value.source, setting: value.setting, rule, message: `${describeWritten(value)}: ${rule}` };
}

/** An error about a name or a file rather than a value: unknown flag, unreadable file. */
export function nameError(source: SettingSource, setting: string, rule: string, file?: string): ConfigError {
  const where = file === undefined ? setting : `${setting} in ${file}`;
  return { source, setting, rule, message: `${where}: ${rule}` };
}

/** The errors as `dfs` prints them before exiting 2. */
export function formatConfigErrors(errors: readonly ConfigError[]): string {
  const lines = errors.map((error) => `dfs: ${error.message}`);
  lines.push('dfs: run "dfs -h" to list every setting');
  return `${lines.join('\n')}\n`;
}

// Names are compared without case, dashes and underscores, so `max_message_bytes` finds
// `maxMessageBytes` and `DFS_LOGLEVEL` finds `DFS_LOG_LEVEL` at distance zero.
function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

function editDistance(from: string, to: string): number {
  let previous = Array.from({ length: to.length + 1 }, (_, index) => index);
  for (let row = 1; row <= from.length; row++) {
    const current = [row];
    for (let column = 1; column <= to.length; column++) {
      const substitution = (previous[column - 1] ?? 0) + (from[row - 1] === to[column - 1] ? 0 : 1);
      const deletion = (previous[column] ?? 0) + 1;
      const insertion = (current[column - 1] ?? 0) + 1;
      current.push(Math.min(substitution, deletion, insertion));
    }
    previous = current;
  }
  return previous[to.length] ?? 0;
}

/** The known name closest to `unknown`; the first in `known` wins ties. */
export function closestName(unknown: string, known: readonly string[]): string {
  const target = normalizeName(unknown);
  let best = known[0] ?? '';
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(target, normalizeName(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
