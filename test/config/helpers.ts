// Shared by the configuration tests: loadConfig over an in-memory file system, and assertions that
// unwrap its result. Every test is pure: argv, environment and files are plain values.

import type { Test } from 'tap';

import {
  loadConfig, type ConfigError, type LoadConfigResult, type NodeConfig,
} from '../../src/config/index.js';

export const workingFolder = '/work/node';

export interface Scenario {
  readonly argv?: readonly string[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Files by absolute path; a missing path reads as ENOENT. A value of `null` reads as EACCES. */
  readonly files?: Readonly<Record<string, string | null>>;
  readonly cwd?: string;
}

/** The YAML text of `dfs.yaml` in the working folder, the file read when nothing names another. */
export function defaultFile(text: string): Record<string, string> {
  return { [`${workingFolder}/dfs.yaml`]: text };
}

export function load(scenario: Scenario = {}): LoadConfigResult {
  const files = scenario.files ?? {};
  return loadConfig({
    argv: scenario.argv ?? [],
    env: scenario.env ?? {},
    cwd: scenario.cwd ?? workingFolder,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      if (text === null) throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' });
      return text;
    },
  });
}

/** Loads and expects a configuration; fails the test with the errors otherwise. */
export function loadValid(t: Test, scenario: Scenario = {}): NodeConfig {
  const result = load(scenario);
  if (result.kind !== 'config') {
    t.fail(`expected a configuration, got ${result.kind}`, { result });
    throw new Error('no configuration');
  }
  return result.config;
}

/** Loads and expects errors; fails the test when the configuration loaded. */
export function loadErrors(t: Test, scenario: Scenario): readonly ConfigError[] {
  const result = load(scenario);
  if (result.kind !== 'errors') {
    t.fail(`expected errors, got ${result.kind}`, { result });
    return [];
  }
  return result.errors;
}

/** Expects exactly one error, naming `setting` and breaking a rule that matches `rule`. */
export function expectOneError(t: Test, scenario: Scenario, setting: string, rule: RegExp): ConfigError | undefined {
  const errors = loadErrors(t, scenario);
  t.equal(errors.length, 1, `one error for ${setting}`, { errors: errors.map((error) => error.message) });
  const error = errors[0];
  if (error === undefined) return undefined;
  t.equal(error.setting, setting, 'the error names the setting as written');
  t.match(error.rule, rule, 'the error states the rule');
  t.ok(error.message.includes(setting), 'the message names the setting');
  return error;
}
