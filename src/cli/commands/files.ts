// The key commands: put, get, rm, ls, stat. Values go through PutStream/GetStream, so a file of
// any size works with bounded memory; ls pages through List.

import { createReadStream } from 'node:fs';
import type { FileInfo } from '../../client/client.js';
import { expectPositionals, stringOption, type OptionSpec } from '../args.js';
import { checkedKey, printJson, printLines, toKey, writeAll, type Command, type CommandContext } from '../command.js';
import { UsageError } from '../failure.js';
import { formatBytes, formatMode, formatRecord, formatTable, formatTime } from '../format.js';
import { chunkSizeBytes, downloadToFile } from '../transfer.js';

const localOption: OptionSpec = { name: 'local', kind: 'switch', description: "read the answering node's own copy (LOCAL) instead of a linearizable read: faster, may be slightly behind" };

function consistency(context: CommandContext): { consistency: 'LOCAL' | 'LINEARIZABLE' } {
  return { consistency: context.args.options.has('local') ? 'LOCAL' : 'LINEARIZABLE' };
}

function parseMode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^0?[0-7]{1,4}$/.test(text)) throw new UsageError(`--mode must be octal permission bits such as 644, got "${text}"`);
  return Number.parseInt(text, 8);
}

/** A key argument, checked locally for the mistakes the node would refuse anyway. */
function keyArgument(text: string): string {
  const key = toKey(text);
  if (key === '') throw new UsageError(`"${text}" names no key: keys are relative paths such as docs/a.txt`);
  return checkedKey(key, text);
}

export function infoJson(info: FileInfo): Record<string, unknown> {
  return { key: info.key, sizeBytes: info.sizeBytes, version: info.version, modifiedUnixMilliseconds: info.modifiedUnixMilliseconds, mode: info.mode };
}

export const put: Command = {
  name: 'put',
  usage: 'dfsctl put KEY [FILE|-]',
  summary: 'store a local file (or stdin) under KEY',
  description: 'Streams FILE, or standard input when FILE is - or missing, into KEY; the new value appears whole when the upload ends.\n\nExamples:\n  dfsctl put docs/a.txt ./a.txt\n  echo hello | dfsctl put greetings/hello.txt',
  options: [{ name: 'mode', kind: 'value', valueName: 'OCTAL', description: 'permission bits to store, e.g. 644' }],
  cleansUpOnInterrupt: true,
  async run(context) {
    const [keyText, file] = expectPositionals(context.args, 1, 2, this.usage);
    const key = keyArgument(keyText as string);
    const mode = parseMode(stringOption(context.args, 'mode'));
    if ((file === undefined || file === '-') && context.stdinIsTTY) throw new UsageError('put reads the value from stdin, which is a terminal', `name a FILE (${this.usage}) or pipe the value in: echo hello | dfsctl put KEY`);
    const source = file === undefined || file === '-' ? context.stdin : createReadStream(file, { highWaterMark: chunkSizeBytes, signal: context.signal });
    const client = await context.client();
    const result = await client.putStream(key, source, mode === undefined ? {} : { mode });
    if (context.json) printJson(context, { key, version: result.version, sizeBytes: result.sizeBytes });
    else printLines(context, [`put ${key}: ${formatBytes(result.sizeBytes)}, version ${result.version}`]);
  },
};

export const get: Command = {
  name: 'get',
  usage: 'dfsctl get KEY [FILE|-]',
  summary: 'write the value of KEY to stdout or a local file',
  description:
    'Streams the value of KEY to standard output, or to FILE (through a temporary file renamed into place, so a failed download leaves nothing behind). With --json and no FILE, prints the metadata and the value in base64.\n\nExamples:\n  dfsctl get docs/a.txt\n  dfsctl get isos/big.iso ./big.iso',
  options: [localOption],
  cleansUpOnInterrupt: true,
  async run(context) {
    const [keyText, file] = expectPositionals(context.args, 1, 2, this.usage);
    const key = keyArgument(keyText as string);
    const client = await context.client();
    if (file !== undefined && file !== '-') {
      const info = await downloadToFile(client, key, file, { ...consistency(context), signal: context.signal, onBytes: () => undefined });
      if (context.json) printJson(context, { key, file, ...(info === null ? {} : { sizeBytes: info.sizeBytes, version: info.version }) });
      else printLines(context, [`get ${key} → ${file}: ${formatBytes(info?.sizeBytes ?? 0)}, version ${info?.version ?? '?'}`]);
      return;
    }
    const stream = client.getStream(key, { ...consistency(context), chunkSizeBytes });
    const chunks: Uint8Array[] = [];
    for (;;) {
      const next = await stream.next();
      if (next.done === true) {
        if (context.json) printJson(context, { ...(next.value === null ? { key } : infoJson(next.value)), data: Buffer.concat(chunks).toString('base64') });
        return;
      }
      if (context.json) chunks.push(next.value);
      else await writeAll(context.stdout, next.value);
    }
  },
};

export const rm: Command = {
  name: 'rm',
  usage: 'dfsctl rm KEY...',
  summary: 'delete keys (with -r, everything under a prefix)',
  description: 'Deletes each KEY. With -r, also every key under KEY/ (a folder).\n\nExamples:\n  dfsctl rm docs/a.txt docs/b.txt\n  dfsctl rm -r backups/2024',
  options: [{ name: 'recursive', short: 'r', kind: 'switch', description: 'also delete every key under KEY/' }],
  async run(context) {
    const keys = expectPositionals(context.args, 1, Infinity, this.usage).map(toKey);
    const recursive = context.args.options.has('recursive');
    const client = await context.client();
    const removed: Array<{ key: string; version: number }> = [];
    for (const key of keys) {
      if (key === '' && !recursive) throw new UsageError('rm needs a key; to delete everything use `dfsctl rm -r /`');
      const targets: string[] = [];
      if (recursive) for await (const info of client.listAll(key === '' ? '' : `${key}/`)) targets.push(info.key);
      // The key itself is deleted when it exists; under -r a folder with no file of its name is fine.
      if (key !== '' && (!recursive || targets.length === 0 || (await client.stat(key).then(() => true, () => false)))) targets.unshift(key);
      for (const target of targets) {
        const { version } = await client.delete(target);
        removed.push({ key: target, version });
        if (!context.json) printLines(context, [`removed ${target} (version ${version})`]);
      }
    }
    if (context.json) printJson(context, removed);
  },
};

export const ls: Command = {
  name: 'ls',
  usage: 'dfsctl ls [PREFIX]',
  summary: 'list keys under a prefix (all keys without one)',
  description: 'Lists every key that starts with PREFIX, page by page, as a table of key, size, mode, version and modification time (UTC).\n\nExamples:\n  dfsctl ls\n  dfsctl ls docs/\n  dfsctl ls --json docs/ | jq -r \'.[].key\'',
  options: [localOption],
  async run(context) {
    const [prefixText] = expectPositionals(context.args, 0, 1, this.usage);
    const prefix = toKey(prefixText ?? '');
    const client = await context.client();
    const entries: FileInfo[] = [];
    for await (const info of client.listAll(prefix, { pageSize: 1000 })) entries.push(info);
    if (context.json) return printJson(context, entries.map(infoJson));
    if (entries.length === 0) {
      context.stderr.write(`no keys under "${prefix}"\n`);
      return;
    }
    const total = entries.reduce((sum, info) => sum + info.sizeBytes, 0);
    printLines(context, [
      ...formatTable(
        [{ header: 'KEY' }, { header: 'SIZE', align: 'right' }, { header: 'MODE' }, { header: 'VERSION', align: 'right' }, { header: 'MODIFIED' }],
        entries.map((info) => [info.key, formatBytes(info.sizeBytes), formatMode(info.mode), String(info.version), formatTime(info.modifiedUnixMilliseconds)]),
      ),
      `${entries.length} key${entries.length === 1 ? '' : 's'}, ${formatBytes(total)}`,
    ]);
  },
};

export const stat: Command = {
  name: 'stat',
  usage: 'dfsctl stat KEY',
  summary: "show a key's size, version, mode and modification time",
  description: 'Prints the metadata of KEY without its value.\n\nExample:\n  dfsctl stat docs/a.txt',
  options: [localOption],
  async run(context) {
    const [keyText] = expectPositionals(context.args, 1, 1, this.usage);
    const client = await context.client();
    const info = await client.stat(keyArgument(keyText as string), consistency(context));
    if (context.json) return printJson(context, infoJson(info));
    printLines(
      context,
      formatRecord([
        ['key', info.key],
        ['size', `${formatBytes(info.sizeBytes)} (${info.sizeBytes} bytes)`],
        ['version', String(info.version)],
        ['mode', formatMode(info.mode)],
        ['modified', formatTime(info.modifiedUnixMilliseconds)],
      ]),
    );
  },
};
