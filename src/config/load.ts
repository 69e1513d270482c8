// loadConfig: the node's configuration from defaults < YAML file < DFS_* environment < flags.
// It is pure — argv, environment, working folder and file reading come in as arguments — so every
// rule is tested without a process. convict holds the schema: it starts from the defaults, overlays
// the layers in precedence order and validates the result against each setting's rule. convict's
// own environment and argv readers are not used: it re-applies the environment after every load
// (so flags could not beat it), and its yargs parser reads the seed's `-id` as `-i -d`.
//
// Only the value in effect is judged: a value overridden by a higher layer is ignored, as an
// override should be. Names are judged everywhere: an unknown flag, DFS_* variable or YAML key is
// an error even when nothing else is wrong.

import { isAbsolute, relative, resolve, sep } from 'node:path';

import convict from 'convict';

import { formatAddress, isWildcardHost, parseAddress, type Address } from './address.js';
import {
  describeWritten, nameError, sourcePrecedence, valueError,
  type ConfigError, type SettingSource, type WrittenValue,
} from './errors.js';
import { helpText } from './help.js';
import { readCommandLine, readConfigFile, readEnvironment, type Layer } from './sources.js';
import {
  configFileSetting, defaultRaftPort, settingKeys, settings,
  type LogLevel, type SettingKey, type SettingValues,
} from './settings.js';

export interface LoadConfigInput {
  /** The arguments after the program name: `process.argv.slice(2)`. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The absolute working folder; relative paths (data, -config, ...) are resolved against it. */
  readonly cwd: string;
  /** Returns a file's text; throws an error with `code: 'ENOENT'` when it does not exist (as fs.readFileSync(path, 'utf8') does). */
  readonly readFile: (path: string) => string;
}

/** The node's configuration, frozen: every address parsed, every folder absolute. */
export interface NodeConfig {
  readonly nodeId: string;
  readonly raftBindAddress: Address;
  readonly grpcBindAddress: Address;
  readonly httpBindAddress: Address;
  /** The address peers dial to reach this node's raft transport (see deriveAdvertiseAddress). */
  readonly advertiseAddress: Address;
  /** Other nodes' raft addresses: ports filled in, duplicates and this node's own address removed. */
  readonly peerAddresses: readonly Address[];
  readonly dataFolder: string;
  readonly mountFolder: string;
  readonly cacheFolder: string;
  /** False runs the node without the FUSE mount and the cache-folder watcher. */
  readonly fuseEnabled: boolean;
  readonly maxMessageBytes: number;
  /** The Raft clock: heartbeats every tick, elections after 10 to 20 ticks without a leader. */
  readonly tickMilliseconds: number;
  /** The Raft log is compacted into a snapshot once this many applied entries sit in it. */
  readonly snapshotEveryEntries: number;
  /** Changes this node's Watch change log keeps: how far back a watcher can resume. */
  readonly watchRetainedChanges: number;
  readonly logLevel: LogLevel;
  /** The YAML file that was read, or null when none was. */
  readonly configFile: string | null;
  /** Where each setting's value came from, for the start-up log line. */
  readonly sources: Readonly<Record<SettingKey, SettingSource>>;
}

export type LoadConfigResult =
  | { readonly kind: 'config'; readonly config: NodeConfig }
  /** -h / --help: print `text` and exit 0. */
  | { readonly kind: 'help'; readonly text: string }
  /** Print formatConfigErrors(errors) and exit 2. */
  | { readonly kind: 'errors'; readonly errors: readonly ConfigError[] };

export function loadConfig(input: LoadConfigInput): LoadConfigResult {
  if (!isAbsolute(input.cwd)) throw new Error(`loadConfig needs an absolute cwd, got ${JSON.stringify(input.cwd)}`);

  const commandLine = readCommandLine(input.argv);
  // Asking for help is answered even when the rest of the command line is wrong: that is often why.
  if (commandLine.helpRequested) return { kind: 'help', text: helpText() };
  const environment = readEnvironment(input.env);
  const file = readChosenFile(input, commandLine.configFile ?? environment.configFile);

  const errors: ConfigError[] = [...commandLine.errors, ...environment.errors, ...file.errors];
  const layers: readonly Layer[] = [file.layer, environment.layer, commandLine.layer];

  const values = mergeAndValidate(layers, errors);
  if (values === undefined || errors.length > 0) return { kind: 'errors', errors };

  const effective = effectiveValues(layers);
  const config = deriveConfig(values, effective, input.cwd, file.path, errors);
  if (config === undefined || errors.length > 0) return { kind: 'errors', errors };
  return { kind: 'config', config };
}

interface ChosenFile {
  readonly path: string | null;
  readonly layer: Layer;
  readonly errors: readonly ConfigError[];
}

/** Reads the file named by -config or DFS_CONFIG (which must exist), else dfs.yaml if present. */
function readChosenFile(input: LoadConfigInput, named: WrittenValue | undefined): ChosenFile {
  const nothing = { path: null, layer: new Map(), errors: [] };
  if (named !== undefined && (typeof named.written !== 'string' || named.written.trim() === '')) {
    return { ...nothing, errors: [valueError(named, 'must name a YAML file (it is empty)')] };
  }
  const path = resolve(input.cwd, typeof named?.written === 'string' ? named.written : configFileSetting.defaultFileName);

  let text: string;
  try {
    text = input.readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ENOENT' && named === undefined) return nothing;
    const rule = code === 'ENOENT'
      ? `file ${path} does not exist`
      : `file ${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`;
    return { ...nothing, errors: [named === undefined ? nameError('file', path, rule) : valueError(named, rule)] };
  }
  return { path, ...readConfigFile(text, path) };
}

/** For each setting, the value in effect: the highest layer that has it, else the default. */
function effectiveValues(layers: readonly Layer[]): Map<SettingKey, WrittenValue> {
  const effective = new Map<SettingKey, WrittenValue>();
  for (const key of settingKeys) {
    effective.set(key, { source: 'default', setting: `-${settings[key].flag}`, written: settings[key].defaultValue });
    for (const layer of layers) {
      const value = layer.get(key);
      if (value !== undefined) effective.set(key, value);
    }
  }
  return effective;
}

interface Violation {
  readonly key: SettingKey;
  readonly rule: string;
}

/**
 * Reads each layer's values into their types, overlays them on the defaults in convict and has
 * convict validate the result. Appends errors for the values in effect; returns the merged values.
 */
function mergeAndValidate(layers: readonly Layer[], errors: ConfigError[]): SettingValues | undefined {
  const effective = effectiveValues(layers);
  // One error at most per setting, reported in the table's order whatever the layer.
  const errorBySetting = new Map<SettingKey, ConfigError>();
  const violations: Violation[] = [];
  const config = convict<SettingValues>(convictSchema(violations), { env: {}, args: [] });

  for (const layer of layers) {
    const typed: Partial<Record<SettingKey, unknown>> = {};
    for (const [key, written] of layer) {
      const reading = settings[key].read(written.written);
      if (reading.ok) typed[key] = reading.value;
      else if (effective.get(key) === written) errorBySetting.set(key, valueError(written, reading.rule));
    }
    config.load(typed);
  }

  try {
    config.validate({ allowed: 'strict' });
  } catch (error) {
    // Every rule reports itself through `violations`; anything else is a bug in this module.
    if (violations.length === 0) throw error;
  }
  for (const violation of violations) {
    const written = effective.get(violation.key);
    // A setting whose text could not be read was validated with a lower layer's value; its
    // reading error already says what is wrong.
    if (written !== undefined && !errorBySetting.has(violation.key)) {
      errorBySetting.set(violation.key, valueError(written, violation.rule));
    }
  }
  for (const key of settingKeys) {
    const error = errorBySetting.get(key);
    if (error !== undefined) errors.push(error);
  }
  return errors.length > 0 ? undefined : config.getProperties();
}

/** The convict schema for one load: each setting's rule as its format, reporting into `violations`. */
function convictSchema(violations: Violation[]): convict.Schema<SettingValues> {
  const schema: Partial<Record<SettingKey, convict.SchemaObj>> = {};
  for (const key of settingKeys) schema[key] = convictProperty(key, violations);
  return schema as convict.Schema<SettingValues>;
}

function convictProperty<Key extends SettingKey>(key: Key, violations: Violation[]): convict.SchemaObj<SettingValues[Key]> {
  const setting = settings[key];
  return {
    doc: setting.doc,
    default: setting.defaultValue,
    // Values reach convict already read into their type (read() ran first), so check() sees
    // the setting's type; convict throws the combined message, the violations keep the detail.
    format: (value: unknown) => {
      const rule = setting.check(value as SettingValues[Key]);
      if (rule === undefined) return;
      violations.push({ key, rule });
      throw new Error(rule);
    },
  };
}

/** Turns validated settings into the NodeConfig and checks the rules that span settings. */
function deriveConfig(
  values: SettingValues,
  effective: ReadonlyMap<SettingKey, WrittenValue>,
  cwd: string,
  configFile: string | null,
  errors: ConfigError[],
): NodeConfig | undefined {
  const written = (key: SettingKey): WrittenValue =>
    effective.get(key) ?? { source: 'default', setting: `-${settings[key].flag}`, written: settings[key].defaultValue };
  // A rule spanning two settings is blamed on the one the user set last in precedence: that is
  // the one they most likely meant to change.
  const blame = (first: SettingKey, second: SettingKey): [blamed: SettingKey, other: SettingKey] =>
    sourcePrecedence[written(first).source] > sourcePrecedence[written(second).source] ? [first, second] : [second, first];

  // Validated above, so these parse.
  const raftBindAddress = parseAddress(values.raft, { allowEmptyHost: true });
  const grpcBindAddress = parseAddress(values.grpc, { allowEmptyHost: true });
  const httpBindAddress = parseAddress(values.http, { allowEmptyHost: true });

  const binds: ReadonlyArray<[SettingKey, Address]> = [['raft', raftBindAddress], ['grpc', grpcBindAddress], ['http', httpBindAddress]];
  for (const [index, [firstKey, first]] of binds.entries()) {
    for (const [secondKey, second] of binds.slice(index + 1)) {
      const overlapping = isWildcardHost(first.host) || isWildcardHost(second.host) || first.host === second.host;
      if (first.port !== second.port || !overlapping) continue;
      const [blamed, other] = blame(firstKey, secondKey);
      errors.push(valueError(written(blamed), `port ${first.port} is also the ${other} port (${describeWritten(written(other))})`));
    }
  }

  const advertiseAddress = deriveAdvertiseAddress(values.advertise, raftBindAddress, values.id);

  // Peers are deduplicated by their formatted address, so `node2` and `node2:12000` are one peer,
  // and this node's own address is dropped, so one peer list can serve every node of a cluster
  // (DFS_PEERS=node1,node2,node3 on all three).
  const peers = new Map<string, Address>();
  for (const entry of values.peers) {
    const address = parseAddress(entry, { defaultPort: defaultRaftPort });
    const text = formatAddress(address);
    if (text !== formatAddress(advertiseAddress)) peers.set(text, Object.freeze(address));
  }

  const dataFolder = resolve(cwd, values.data);
  const mountFolder = resolve(cwd, values.mount);
  const cacheFolder = resolve(cwd, values.cache);
  // The folders only interact when FUSE runs; without it, mount and cache are not used.
  if (values.fuse) {
    if (isWithin(mountFolder, cacheFolder) || isWithin(cacheFolder, mountFolder)) {
      const [blamed, other] = blame('mount', 'cache');
      errors.push(valueError(written(blamed),
        `the mount and the cache folder must be separate, neither inside the other (${describeWritten(written(other))})`));
    }
    if (isWithin(mountFolder, dataFolder)) {
      const [blamed] = blame('data', 'mount');
      errors.push(valueError(written(blamed), `the data folder ${dataFolder} must not be inside the mount ${mountFolder}, which hides it`));
    }
    if (isWithin(cacheFolder, dataFolder)) {
      const [blamed] = blame('data', 'cache');
      errors.push(valueError(written(blamed),
        `the data folder ${dataFolder} must not be inside the cache folder ${cacheFolder}, which would replicate it`));
    }
  }
  if (errors.length > 0) return undefined;

  const sources = Object.fromEntries(settingKeys.map((key) => [key, written(key).source])) as Record<SettingKey, SettingSource>;
  return Object.freeze({
    nodeId: values.id,
    raftBindAddress: Object.freeze(raftBindAddress),
    grpcBindAddress: Object.freeze(grpcBindAddress),
    httpBindAddress: Object.freeze(httpBindAddress),
    advertiseAddress: Object.freeze(advertiseAddress),
    peerAddresses: Object.freeze([...peers.values()]),
    dataFolder,
    mountFolder,
    cacheFolder,
    fuseEnabled: values.fuse,
    maxMessageBytes: values.maxMessageBytes,
    tickMilliseconds: values.tickMilliseconds,
    snapshotEveryEntries: values.snapshotEntries,
    watchRetainedChanges: values.watchRetention,
    logLevel: values.logLevel,
    configFile,
    sources: Object.freeze(sources),
  });
}

/**
 * The address peers dial to reach this node. An explicit -advertise wins; a bare host there means
 * the raft bind port. Without it, the raft bind address is advertised as it is — except that a
 * bind host meaning "all interfaces" ('', 0.0.0.0, ::) names no machine a peer could dial, so the
 * node id stands in as the host. In the compose layout every container is reachable under its node
 * id, so `-id node1 -raft :12000` advertises `node1:12000` and works with no further setting;
 * where node ids do not resolve (plain hosts, NAT), set -advertise.
 */
export function deriveAdvertiseAddress(advertise: string | null, raftBindAddress: Address, nodeId: string): Address {
  if (advertise !== null) return parseAddress(advertise, { defaultPort: raftBindAddress.port });
  if (isWildcardHost(raftBindAddress.host)) return { host: nodeId, port: raftBindAddress.port };
  return raftBindAddress;
}

/** Whether `folder` is `parent` or inside it (both absolute). */
function isWithin(parent: string, folder: string): boolean {
  const path = relative(parent, folder);
  return path === '' || (path.split(sep)[0] !== '..' && !isAbsolute(path));
}
