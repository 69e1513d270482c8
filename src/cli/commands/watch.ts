// watch: prints every change under a prefix as it is committed, until Ctrl-C (exit 0).

import { integerOption, expectPositionals } from '../args.js';
import { printLines, toKey, type Command } from '../command.js';
import { formatBytes } from '../format.js';

/** The parts of a change (DfsClient's WatchEvent) that are printed. */
export interface WatchEvent {
  readonly version: number;
  readonly type: string;
  readonly key: string;
  readonly info?: { readonly sizeBytes: number } | null;
}

/** One event as a line: version, type, key and (for writes) size. */
export function formatWatchEvent(event: WatchEvent): string {
  const size = event.info === undefined || event.info === null ? '' : `  ${formatBytes(event.info.sizeBytes)}`;
  return `${String(event.version).padStart(8)}  ${event.type.padEnd(6)}  ${event.key}${size}`;
}

export const watch: Command = {
  name: 'watch',
  usage: 'dfsctl watch [PREFIX]',
  summary: 'print changes under a prefix as they happen (until Ctrl-C)',
  description: 'Streams every committed change to keys under PREFIX: version, type, key and size. --from-version N starts at version N, inclusive (history the node still holds; FAILED_PRECONDITION, exit 5, when it was compacted away). With --json, one JSON object per line. Ctrl-C stops it (exit 0).\n\nExamples:\n  dfsctl watch docs/\n  dfsctl watch --json --from-version 100 | jq .key',
  options: [{ name: 'from-version', kind: 'value', valueName: 'VERSION', description: 'the first version to print (default: from now)' }],
  cleansUpOnInterrupt: true,
  async run(context) {
    const [prefixText] = expectPositionals(context.args, 0, 1, this.usage);
    const fromVersion = integerOption(context.args, 'from-version', 0);
    const client = await context.client();
    try {
      for await (const event of client.watch(toKey(prefixText ?? ''), { ...(fromVersion > 0 ? { fromVersion } : {}), signal: context.signal })) {
        if (context.json) context.stdout.write(`${JSON.stringify(event)}\n`);
        else printLines(context, [formatWatchEvent(event)]);
      }
    } catch (error) {
      // Ctrl-C ends a watch normally.
      if (!context.signal.aborted) throw error;
    }
  },
};
