// Reads the three places a user writes settings — command-line flags, DFS_* environment variables
// and the YAML file — into layers of written values, without judging the values yet. What is
// rejected here is what cannot be attributed to a setting at all: unknown names (with the closest
// known one, so a typo never silently falls back to a default), a flag without its value, a stray
// argument, a YAML file that is not a mapping.

import YAML from 'yaml';

import { closestName, nameError, type ConfigError, type WrittenValue } from './errors.js';
import { configFileSetting, helpFlags, settingKeys, settings, type SettingKey } from './settings.js';

/** Written values of one source, by setting. */
export type Layer = Map<SettingKey, WrittenValue>;

export interface CommandLineReading {
  readonly helpRequested: boolean;
  readonly layer: Layer;
  /** `-config PATH`, when given. */
  readonly configFile: WrittenValue | undefined;
  readonly errors: readonly ConfigError[];
}

export interface EnvironmentReading {
  readonly layer: Layer;
  /** DFS_CONFIG, when set. */
  readonly configFile: WrittenValue | undefined;
  readonly errors: readonly ConfigError[];
}

export interface FileReading {
  readonly layer: Layer;
  readonly errors: readonly ConfigError[];
}

const negationPrefix = 'no-';

const settingByFlag = new Map<string, SettingKey>(settingKeys.map((key) => [settings[key].flag, key]));

const settingByEnvironmentVariable = new Map<string, SettingKey>(
  settingKeys.map((key) => [settings[key].environmentVariable, key]),
);

/** Every flag name dfs knows, for suggestions. */
const knownFlags: readonly string[] = [
  ...settingKeys.map((key) => settings[key].flag),
  ...settingKeys.filter((key) => settings[key].isSwitch).map((key) => `${negationPrefix}${settings[key].flag}`),
  configFileSetting.flag,
  ...helpFlags,
];

const knownEnvironmentVariables: readonly string[] = [
  ...settingKeys.map((key) => settings[key].environmentVariable),
  configFileSetting.environmentVariable,
];

/** The prefix that marks an environment variable as meant for dfs, and so checked for typos. */
export const environmentPrefix = 'DFS_';

/**
 * Reads flags in Go's style, which the seed's commands use (`-id node2`, `-id=node2`), and in the
 * GNU style (`--id node2`, `--id=node2`). Switches take no separate value (`-fuse`, `-fuse=false`,
 * `-no-fuse`) so that `-fuse -id x` cannot swallow `-id`. A repeated flag: the last one wins.
 */
export function readCommandLine(argv: readonly string[]): CommandLineReading {
  const layer: Layer = new Map();
  const errors: ConfigError[] = [];
  let configFile: WrittenValue | undefined;
  let helpRequested = false;

  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] ?? '';
    if (argument === '--') {
      // The conventional end of flags; dfs takes no other arguments, so whatever follows is stray.
      for (const stray of argv.slice(index + 1)) errors.push(strayArgument(stray));
      break;
    }
    if (!argument.startsWith('-') || argument === '-') {
      errors.push(strayArgument(argument));
      continue;
    }

    const dashes = argument.startsWith('--') ? '--' : '-';
    const body = argument.slice(dashes.length);
    const equals = body.indexOf('=');
    const name = equals < 0 ? body : body.slice(0, equals);
    const inlineValue = equals < 0 ? undefined : body.slice(equals + 1);
    const written = `${dashes}${name}`;

    if (helpFlags.includes(name)) {
      helpRequested = true;
      continue;
    }

    const negatedKey = name.startsWith(negationPrefix) ? settingByFlag.get(name.slice(negationPrefix.length)) : undefined;
    if (negatedKey !== undefined && settings[negatedKey].isSwitch) {
      if (inlineValue !== undefined) {
        errors.push(nameError('flag', written, `takes no value; write ${dashes}${settings[negatedKey].flag}=${inlineValue} instead`));
      } else {
        layer.set(negatedKey, { source: 'flag', setting: written, written: 'false' });
      }
      continue;
    }

    const key = settingByFlag.get(name);
    if (key === undefined && name !== configFileSetting.flag) {
      errors.push(nameError('flag', written, `unknown flag; did you mean ${dashes}${closestName(name, knownFlags)}?`));
      // Its value, if it has one, belongs to the unknown flag: reporting it again as a stray
      // argument would only bury the useful error.
      const next = argv[index + 1];
      if (inlineValue === undefined && next !== undefined && !next.startsWith('-')) index++;
      continue;
    }

    let value = inlineValue;
    if (value === undefined && key !== undefined && settings[key].isSwitch) value = 'true';
    if (value === undefined) {
      const next = argv[index + 1];
      // A following known flag is not taken as the value: `-id -raft :1` almost always means the
      // id was forgotten. Anything else is the value, even `-1`; `-data=-raft` sets an odd one.
      if (next === undefined || isKnownFlag(next)) {
        errors.push(nameError('flag', written, `needs a value: ${written} VALUE or ${written}=VALUE`));
        continue;
      }
      value = next;
      index++;
    }

    const writtenValue: WrittenValue = { source: 'flag', setting: written, written: value };
    if (key === undefined) configFile = writtenValue;
    else layer.set(key, writtenValue);
  }

  return { helpRequested, layer, configFile, errors };
}

/** Whether `argument` is a flag dfs knows, in any of its written forms. */
function isKnownFlag(argument: string): boolean {
  const body = argument.replace(/^--?/, '');
  const equals = body.indexOf('=');
  return argument.startsWith('-') && knownFlags.includes(equals < 0 ? body : body.slice(0, equals));
}

function strayArgument(argument: string): ConfigError {
  return nameError('flag', argument, 'unexpected argument; dfs takes only flags (a switch takes its value with "=", e.g. -fuse=false)');
}

/**
 * DFS_* variables that belong to dfs's other commands, not to a node: dfsctl's endpoints and the
 * local cluster's settings. A shell that exports them for those commands must still start nodes.
 */
export const otherCommandsVariables: ReadonlySet<string> = new Set(['DFS_ENDPOINTS', 'DFS_CLUSTER_DATA', 'DFS_CLUSTER_FUSE']);

/**
 * Reads the DFS_* variables. Any other DFS_* variable is an error naming the closest known one:
 * a misspelt DFS_PEER would otherwise start a node that silently bootstraps a cluster of its own.
 */
export function readEnvironment(environment: Readonly<Record<string, string | undefined>>): EnvironmentReading {
  const layer: Layer = new Map();
  const errors: ConfigError[] = [];
  let configFile: WrittenValue | undefined;

  // Sorted, so that the error list is the same whatever order the environment came in.
  for (const name of Object.keys(environment).sort()) {
    const value = environment[name];
    if (value === undefined || !name.startsWith(environmentPrefix) || otherCommandsVariables.has(name)) continue;
    const writtenValue: WrittenValue = { source: 'environment', setting: name, written: value };
    const key = settingByEnvironmentVariable.get(name);
    if (key !== undefined) layer.set(key, writtenValue);
    else if (name === configFileSetting.environmentVariable) configFile = writtenValue;
    else {
      errors.push(nameError('environment', name,
        `unknown environment variable; did you mean ${closestName(name, knownEnvironmentVariables)}?`));
    }
  }
  return { layer, configFile, errors };
}

/** Reads the YAML text of the config file at `file` (the path is only used in messages). */
export function readConfigFile(text: string, file: string): FileReading {
  const layer: Layer = new Map();
  let document: unknown;
  try {
    document = YAML.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { layer, errors: [nameError('file', file, `is not valid YAML: ${reason}`)] };
  }

  // An empty file (or one with only comments) sets nothing, which is valid.
  if (document === null || document === undefined) return { layer, errors: [] };
  if (typeof document !== 'object' || Array.isArray(document)) {
    return { layer, errors: [nameError('file', file, 'must be a YAML mapping of settings (key: value), e.g. "id: node1"')] };
  }

  const errors: ConfigError[] = [];
  for (const [name, written] of Object.entries(document)) {
    const key = settingKeys.find((candidate) => candidate === name);
    if (key !== undefined) {
      layer.set(key, { source: 'file', setting: name, written, file });
    } else if (name === configFileSetting.flag) {
      errors.push(nameError('file', name,
        `cannot be set inside the config file; use -${configFileSetting.flag} or ${configFileSetting.environmentVariable}`, file));
    } else {
      errors.push(nameError('file', name, `unknown key; did you mean ${closestName(name, settingKeys)}?`, file));
    }
  }
  return { layer, errors };
}
