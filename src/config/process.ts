// The one impure edge of the configuration: loadConfig fed from the running process. The `dfs`
// entry point calls this; tests call loadConfig with their own argv, environment and files.

import { readFileSync } from 'node:fs';

import { loadConfig, type LoadConfigResult } from './load.js';

export function loadConfigFromProcess(): LoadConfigResult {
  return loadConfig({
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    readFile: (path) => readFileSync(path, 'utf8'),
  });
}
