// The one table of settings. Everything else is generated from it: the convict schema (defaults
// and validation), the flag, environment and YAML names the loader accepts, the "did you mean"
// suggestions, and the -h text. Adding a setting here is the whole job of adding a setting.
//
// Each setting has two steps, kept apart so that errors say what went wrong:
//   read  — turns what the user wrote (text from a flag or the environment, or a YAML value) into
//           the setting's type, or names the type it should have had ("must be true or false");
//   check — the rule on the typed value ("port must be from 1 to 65535"); convict runs it as the
//           setting's format when it validates the merged configuration.

import pino from 'pino';

import { isWildcardHost, readAddress } from './address.js';

export type LogLevel = pino.LevelWithSilent;

/** The settings after reading, before derivation (paths unresolved, addresses as text). */
export interface SettingValues {
  id: string;
  raft: string;
  grpc: string;
  http: string;
  advertise: string | null;
  peers: string[];
  data: string;
  mount: string;
  cache: string;
  fuse: boolean;
  maxMessageBytes: number;
  tickMilliseconds: number;
  snapshotEntries: number;
  watchRetention: number;
  logLevel: LogLevel;
}

export type SettingKey = keyof SettingValues;

export type Reading<Value> = { readonly ok: true; readonly value: Value } | { readonly ok: false; readonly rule: string };

export interface SettingDefinition<Key extends SettingKey> {
  /** The YAML key and the convict property name. */
  readonly key: Key;
  /** The flag without dashes; `-fuse` style switches also accept `-no-<flag>`. */
  readonly flag: string;
  readonly environmentVariable: string;
  /** The placeholder the help text shows after the flag, e.g. `HOST:PORT`. */
  readonly valueName: string;
  readonly defaultValue: SettingValues[Key];
  /** The default as the help text shows it. */
  readonly defaultText: string;
  /** The meaning, one or more sentences for the help text and the convict `doc`. */
  readonly doc: string;
  /** A switch is set by the bare flag (`-fuse`) and never takes the next argument as its value. */
  readonly isSwitch: boolean;
  readonly read: (written: unknown) => Reading<SettingValues[Key]>;
  /** Returns the rule the value breaks, or undefined when it is valid. */
  readonly check: (value: SettingValues[Key]) => string | undefined;
}

export type SettingTable = { readonly [Key in SettingKey]: SettingDefinition<Key> };

/** The port a peer given as a bare host (`node1`) is dialled on: the default raft port. */
export const defaultRaftPort = 12000;

export const kibibyte = 1024;
export const mebibyte = 1024 * kibibyte;
export const gibibyte = 1024 * mebibyte;

const minimumMessageBytes = kibibyte;
const maximumMessageBytes = gibibyte;

const minimumTickMilliseconds = 10;
const maximumTickMilliseconds = 10_000;

const minimumSnapshotEntries = 1;
const maximumSnapshotEntries = 100_000_000;

/** The store's default (defaultRetainedChanges in src/store/state-machine.ts; a test keeps them equal). */
export const defaultWatchRetention = 100_000;
const minimumWatchRetention = 1;
/** A change takes ~100 bytes and more on disk: 10^8 of them is already ~10 GB of history. */
const maximumWatchRetention = 100_000_000;

/** pino's own level names, so the list cannot drift from the logger that uses it. */
export const logLevels: readonly LogLevel[] = [...(Object.keys(pino.levels.values) as pino.Level[]), 'silent'];

function accept<Value>(value: Value): Reading<Value> {
  return { ok: true, value };
}

function reject<Value>(rule: string): Reading<Value> {
  return { ok: false, rule };
}

// YAML types its scalars, so `id: 7` arrives as a number and `raft: :12000` as a string; a setting
// that is text must be written as text (quoted in YAML when it would read as a number).
function readText(written: unknown): Reading<string> {
  return typeof written === 'string' ? accept(written) : reject('must be a string (quote it in YAML)');
}

const nodeIdPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

function checkNodeId(value: string): string | undefined {
  return nodeIdPattern.test(value)
    ? undefined
    : 'must be 1 to 64 characters of letters, digits, ".", "_" and "-", not starting with "." or "-"';
}

function checkBindAddress(value: string): string | undefined {
  const address = readAddress(value, { allowEmptyHost: true });
  return typeof address === 'string' ? address : undefined;
}

function checkFolder(value: string): string | undefined {
  if (value.trim() === '') return 'must name a folder (it is empty)';
  if (value.includes('\0')) return 'must not contain a NUL character';
  return undefined;
}

/** The address a peer dials must name one machine; a wildcard names none. */
function checkDialableAddress(text: string, defaultPort: number): string | undefined {
  const address = readAddress(text, { defaultPort });
  if (typeof address === 'string') return address;
  if (isWildcardHost(address.host)) return `host "${address.host}" listens everywhere but cannot be dialled; name the machine`;
  return undefined;
}

function readPeers(written: unknown): Reading<string[]> {
  // Flags and the environment write a list as "a,b"; YAML may use either that or a real list.
  if (typeof written === 'string') {
    // A wholly empty value is the empty list (DFS_PEERS= in a compose file means "no peers");
    // an empty entry inside a list is a mistake that check() reports.
    if (written.trim() === '') return accept([]);
    return accept(written.split(',').map((entry) => entry.trim()));
  }
  if (Array.isArray(written)) {
    const entries: string[] = [];
    for (const entry of written) {
      if (typeof entry !== 'string') return reject(`each peer must be a string host[:port]; found ${JSON.stringify(entry)}`);
      entries.push(entry.trim());
    }
    return accept(entries);
  }
  return reject('must be a list of host[:port] (a YAML list, or text separated by commas)');
}

function checkPeers(value: string[]): string | undefined {
  for (const entry of value) {
    if (entry === '') return 'must not contain an empty entry (look for a stray comma)';
    const rule = checkDialableAddress(entry, defaultRaftPort);
    if (rule !== undefined) return `peer "${entry}": ${rule}`;
  }
  return undefined;
}

const switchWords = new Map<string, boolean>([
  ['true', true], ['false', false], ['1', true], ['0', false],
  ['yes', true], ['no', false], ['on', true], ['off', false],
]);

function readSwitch(written: unknown): Reading<boolean> {
  if (typeof written === 'boolean') return accept(written);
  if (typeof written === 'string') {
    const value = switchWords.get(written.trim().toLowerCase());
    if (value !== undefined) return accept(value);
  }
  return reject('must be true or false');
}

const byteUnits = new Map<string, number>([['', 1], ['b', 1], ['kib', kibibyte], ['mib', mebibyte], ['gib', gibibyte]]);

/** Reads `67108864`, `64MiB`, `64 MiB`. Only binary units: "MB" could mean 10^6 or 2^20. */
export function readByteSize(written: unknown): Reading<number> {
  const rule = 'must be a whole number of bytes, optionally with a unit B, KiB, MiB or GiB, e.g. "67108864" or "64MiB"';
  if (typeof written === 'number') return Number.isSafeInteger(written) ? accept(written) : reject(rule);
  if (typeof written !== 'string') return reject(rule);
  const match = /^\s*([0-9]+)\s*([A-Za-z]*)\s*$/.exec(written);
  const multiplier = byteUnits.get(match?.[2]?.toLowerCase() ?? 'not a unit');
  if (match === null || multiplier === undefined) return reject(rule);
  const bytes = Number(match[1]) * multiplier;
  return Number.isSafeInteger(bytes) ? accept(bytes) : reject(rule);
}

/** Shows a byte count in the largest binary unit that divides it, e.g. `64MiB`. */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [['GiB', gibibyte], ['MiB', mebibyte], ['KiB', kibibyte]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}`;
}

function checkMessageBytes(value: number): string | undefined {
  if (value < minimumMessageBytes || value > maximumMessageBytes) {
    return `must be from 1KiB (${minimumMessageBytes}) to 1GiB (${maximumMessageBytes}) bytes`;
  }
  return undefined;
}

/**
 * Reads a whole number written without a unit: `100`, or a YAML integer. A sign is read (so `-5`
 * is told the range it misses rather than that it is no number); fractions, units, exponents and
 * digit separators are not. Numbers too large to hold exactly still read, and fail the range check.
 */
function readWholeNumber(unit: string, example: number): (written: unknown) => Reading<number> {
  const rule = `must be a whole number of ${unit}, without a unit, e.g. "${example}"`;
  return (written) => {
    if (typeof written === 'number') return Number.isInteger(written) ? accept(written) : reject(rule);
    if (typeof written !== 'string' || !/^\s*[+-]?[0-9]+\s*$/.test(written)) return reject(rule);
    return accept(Number(written));
  };
}

function checkWholeNumberRange(minimum: number, maximum: number, unit: string): (value: number) => string | undefined {
  return (value) => (value < minimum || value > maximum ? `must be from ${minimum} to ${maximum} ${unit}` : undefined);
}

function readLogLevel(written: unknown): Reading<LogLevel> {
  if (typeof written !== 'string') return reject(`must be one of ${logLevels.join(', ')}`);
  const lower = written.trim().toLowerCase();
  const level = logLevels.find((candidate) => candidate === lower);
  return level === undefined ? reject(`must be one of ${logLevels.join(', ')}`) : accept(level);
}

export const settings: SettingTable = {
  id: {
    key: 'id', flag: 'id', environmentVariable: 'DFS_ID', valueName: 'NAME',
    defaultValue: 'node1', defaultText: 'node1',
    doc: 'This node\'s id, unique in the cluster: 1 to 64 characters of letters, digits, ".", "_" and "-", not starting with "." or "-".',
    isSwitch: false, read: readText, check: checkNodeId,
  },
  raft: {
    key: 'raft', flag: 'raft', environmentVariable: 'DFS_RAFT', valueName: '[HOST]:PORT',
    defaultValue: ':12000', defaultText: ':12000',
    doc: 'Address the Raft peer transport listens on. An empty host listens on all interfaces; an IPv6 host goes in brackets ([::1]:12000).',
    isSwitch: false, read: readText, check: checkBindAddress,
  },
  grpc: {
    key: 'grpc', flag: 'grpc', environmentVariable: 'DFS_GRPC', valueName: '[HOST]:PORT',
    defaultValue: ':13000', defaultText: ':13000',
    doc: 'Address the gRPC FileService listens on.',
    isSwitch: false, read: readText, check: checkBindAddress,
  },
  http: {
    key: 'http', flag: 'http', environmentVariable: 'DFS_HTTP', valueName: '[HOST]:PORT',
    defaultValue: ':14000', defaultText: ':14000',
    doc: 'Address the HTTP metrics and status endpoint listens on.',
    isSwitch: false, read: readText, check: checkBindAddress,
  },
  advertise: {
    key: 'advertise', flag: 'advertise', environmentVariable: 'DFS_ADVERTISE', valueName: 'HOST[:PORT]',
    defaultValue: null,
    defaultText: 'the raft address, with the node id as host when the raft host is empty, 0.0.0.0 or ::',
    doc: 'Address other nodes use to reach this node\'s Raft transport, when it differs from the bind address (NAT, containers, a proxy). A bare host means the raft port.',
    isSwitch: false,
    read: readText,
    // The port only matters for the syntax here; loadConfig fills a bare host with the raft port.
    check: (value) => (value === null ? undefined : checkDialableAddress(value, defaultRaftPort)),
  },
  peers: {
    key: 'peers', flag: 'peers', environmentVariable: 'DFS_PEERS', valueName: 'HOST[:PORT],...',
    defaultValue: [], defaultText: 'none',
    doc: `Raft addresses of other nodes to form or join a cluster with, separated by commas (a list in YAML). A bare host means port ${defaultRaftPort}; a node id works as host where ids resolve (the compose layout). Duplicates and this node's own advertised address are dropped.`,
    isSwitch: false, read: readPeers, check: checkPeers,
  },
  data: {
    key: 'data', flag: 'data', environmentVariable: 'DFS_DATA', valueName: 'FOLDER',
    defaultValue: 'data', defaultText: 'data',
    doc: 'Folder holding the Raft log and the state store, relative to the working folder.',
    isSwitch: false, read: readText, check: checkFolder,
  },
  mount: {
    key: 'mount', flag: 'mount', environmentVariable: 'DFS_MOUNT', valueName: 'FOLDER',
    defaultValue: '/mnt/dfs', defaultText: '/mnt/dfs',
    doc: 'Where the read-only FUSE mount shows the replicated namespace.',
    isSwitch: false, read: readText, check: checkFolder,
  },
  cache: {
    key: 'cache', flag: 'cache', environmentVariable: 'DFS_CACHE', valueName: 'FOLDER',
    defaultValue: '/mnt/hostfs', defaultText: '/mnt/hostfs',
    doc: 'The watched cache folder: files created, changed or removed here are replicated to every node.',
    isSwitch: false, read: readText, check: checkFolder,
  },
  fuse: {
    key: 'fuse', flag: 'fuse', environmentVariable: 'DFS_FUSE', valueName: 'true|false',
    defaultValue: true, defaultText: 'true',
    doc: 'Run the FUSE mount and the cache-folder watcher. -no-fuse or -fuse=false serves gRPC only.',
    isSwitch: true, read: readSwitch, check: () => undefined,
  },
  maxMessageBytes: {
    key: 'maxMessageBytes', flag: 'max-message-bytes', environmentVariable: 'DFS_MAX_MESSAGE_BYTES', valueName: 'BYTES',
    defaultValue: 64 * mebibyte, defaultText: formatByteSize(64 * mebibyte),
    doc: 'Largest unary gRPC message, from 1KiB to 1GiB; a number of bytes or with a unit (KiB, MiB, GiB). Larger values go through PutStream/GetStream.',
    isSwitch: false, read: readByteSize, check: checkMessageBytes,
  },
  tickMilliseconds: {
    key: 'tickMilliseconds', flag: 'tick-milliseconds', environmentVariable: 'DFS_TICK_MILLISECONDS', valueName: 'MILLISECONDS',
    defaultValue: 100, defaultText: '100',
    doc: 'The Raft clock: one tick in milliseconds. Heartbeats go out every tick; elections start after 10 to 20 ticks without a leader. Lower it only on a fast, quiet network.',
    isSwitch: false,
    read: readWholeNumber('milliseconds', 100),
    check: checkWholeNumberRange(minimumTickMilliseconds, maximumTickMilliseconds, 'milliseconds'),
  },
  snapshotEntries: {
    key: 'snapshotEntries', flag: 'snapshot-entries', environmentVariable: 'DFS_SNAPSHOT_ENTRIES', valueName: 'ENTRIES',
    defaultValue: 10_000, defaultText: '10000',
    doc: 'Compact the Raft log into a snapshot once this many applied entries sit in it. Nodes that fall further behind catch up from the snapshot.',
    isSwitch: false,
    read: readWholeNumber('entries', 10_000),
    check: checkWholeNumberRange(minimumSnapshotEntries, maximumSnapshotEntries, 'entries'),
  },
  watchRetention: {
    key: 'watchRetention', flag: 'watch-retention', environmentVariable: 'DFS_WATCH_RETENTION', valueName: 'CHANGES',
    defaultValue: defaultWatchRetention, defaultText: String(defaultWatchRetention),
    doc: 'How far back a Watch can start or resume on this node: the number of changes its change log keeps (the newest, whole versions). A watch from an older version gets a Compacted error naming the oldest one still kept. Each node keeps its own log, so nodes may differ.',
    isSwitch: false,
    read: readWholeNumber('changes', defaultWatchRetention),
    check: checkWholeNumberRange(minimumWatchRetention, maximumWatchRetention, 'changes'),
  },
  logLevel: {
    key: 'logLevel', flag: 'log-level', environmentVariable: 'DFS_LOG_LEVEL', valueName: 'LEVEL',
    defaultValue: 'info', defaultText: 'info',
    doc: `Least severe log level written: ${logLevels.join(', ')}.`,
    isSwitch: false, read: readLogLevel, check: () => undefined,
  },
};

/** The settings in the order the help text and error lists use. */
export const settingKeys: readonly SettingKey[] = Object.keys(settings) as SettingKey[];

/** The setting that names the YAML file; it cannot live inside the file it names. */
export const configFileSetting = {
  flag: 'config',
  environmentVariable: 'DFS_CONFIG',
  valueName: 'PATH',
  defaultFileName: 'dfs.yaml',
  doc: 'YAML file of settings (keys as listed here). Without it, dfs.yaml in the working folder is read if it exists; a file named here must exist.',
} as const;

/** Flags that print the help text instead of starting. */
export const helpFlags: readonly string[] = ['h', 'help'];
