// pino for every actor: JSON lines for machines, or readable lines when a person watches a
// terminal (the supervisor decides once, from its own stdout, and tells the workers).

import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export function createLogger(options: { level: LevelWithSilent; pretty: boolean; base: Record<string, string> }): Logger {
  const settings = { level: options.level, base: options.base };
  if (!options.pretty) return pino(settings);
  return pino(settings, pretty({ colorize: true, sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
}
