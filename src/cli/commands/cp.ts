// cp: a local file or folder to dfs and back, streamed with bounded memory. `dfs:` marks the dfs
// side; a folder copies recursively (keys = the dfs path + the relative path). A progress bar with
// bytes, percent, rate and ETA is drawn on stderr when it is a terminal; otherwise one summary
// line (or a JSON summary with --json).

import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { DfsClientError, type DfsClient } from '../../client/client.js';
import { expectPositionals } from '../args.js';
import { checkedKey, printJson, printLines, toKey, type Command, type CommandContext } from '../command.js';
import { exitCodes } from '../exit-codes.js';
import { CliError, UsageError } from '../failure.js';
import { formatBytes, formatDuration, formatRate } from '../format.js';
import { ProgressBar } from '../progress.js';
import { downloadToFile, uploadFile } from '../transfer.js';

interface Transfer {
  /** Local path. */
  readonly path: string;
  readonly key: string;
  readonly sizeBytes: number;
  readonly mode?: number;
}

const isDfs = (argument: string): boolean => argument.startsWith('dfs:');

/** Joins dfs key parts, dropping empty ones (the root). */
function joinKey(...parts: string[]): string {
  return parts.filter((part) => part !== '').join('/');
}

async function localFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) files.push(path);
    }
  };
  await walk(root);
  return files.sort();
}

/** What local → dfs copies: a file to a key (into the folder when the key ends with /), a folder to keys under a prefix. */
async function planUpload(source: string, target: string): Promise<Transfer[]> {
  const key = toKey(target);
  const info = await stat(source);
  if (info.isDirectory()) {
    const files = await localFiles(source);
    return Promise.all(
      files.map(async (path) => {
        const fileInfo = await stat(path);
        return { path, key: joinKey(key.replace(/\/+$/, ''), relative(source, path).split(sep).join('/')), sizeBytes: fileInfo.size, mode: fileInfo.mode & 0o777 };
      }),
    );
  }
  const intoFolder = key === '' || key.endsWith('/');
  return [{ path: source, key: intoFolder ? joinKey(key.replace(/\/+$/, ''), basename(source)) : key, sizeBytes: info.size, mode: info.mode & 0o777 }];
}

async function isLocalFolder(path: string): Promise<boolean> {
  return stat(path).then(
    (info) => info.isDirectory(),
    () => false,
  );
}

/** What dfs → local copies: a key to a file (into the folder when the target is one), a prefix to a folder tree. */
async function planDownload(client: DfsClient, source: string, target: string): Promise<Transfer[]> {
  const key = toKey(source).replace(/\/+$/, '');
  if (key !== '') {
    const info = await client.stat(key).catch((error: unknown) => {
      if (error instanceof DfsClientError && error.code === 'NOT_FOUND') return null;
      throw error;
    });
    if (info !== null) {
      const intoFolder = target.endsWith('/') || target.endsWith(sep) || (await isLocalFolder(target));
      return [{ path: intoFolder ? join(target, basename(key)) : target, key, sizeBytes: info.sizeBytes }];
    }
  }
  const transfers: Transfer[] = [];
  const prefix = key === '' ? '' : `${key}/`;
  for await (const info of client.listAll(prefix, { pageSize: 1000 })) {
    transfers.push({ path: join(target, ...info.key.slice(prefix.length).split('/')), key: info.key, sizeBytes: info.sizeBytes });
  }
  if (transfers.length === 0) throw new CliError(exitCodes.notFound, `cp: no key "${key}" and no keys under "${prefix}"`, 'check the path with `dfsctl ls PREFIX`');
  return transfers;
}

export const cp: Command = {
  name: 'cp',
  usage: 'dfsctl cp SOURCE TARGET',
  summary: 'copy a local file or folder to dfs, or back (dfs: marks the dfs side)',
  description: [
    'Copies between the local disk and dfs; exactly one side starts with dfs:, and keys have no leading slash (dfs:/isos/big.iso is the key isos/big.iso).',
    'A local folder is copied recursively to keys under the dfs path; a dfs path that is not a key but a prefix (a folder) is copied to a local folder tree. A target that ends with / (or is an existing local folder) receives the file under its own name.',
    'Everything streams in 1 MiB chunks; downloads go to a temporary file that is renamed into place when complete. On a terminal a progress bar shows bytes, percent, rate and ETA on stderr.',
    'Examples:\n  dfsctl cp ./big.iso dfs:/isos/big.iso\n  dfsctl cp dfs:/isos/big.iso ./big.iso\n  dfsctl cp ./photos dfs:/backup/photos\n  dfsctl cp dfs:/backup/photos ./restored',
  ].join('\n\n'),
  options: [],
  cleansUpOnInterrupt: true,
  async run(context: CommandContext) {
    const [source, target] = expectPositionals(context.args, 2, 2, this.usage) as [string, string];
    if (isDfs(source) === isDfs(target)) throw new UsageError('cp copies between the local disk and dfs: prefix exactly one side with dfs: (e.g. `dfsctl cp ./a.txt dfs:/docs/a.txt`)', 'run `dfsctl cp --help`');
    const upload = isDfs(target);
    const client = await context.client();
    const transfers = upload ? await planUpload(source, target) : await planDownload(client, source, target);
    if (upload) for (const transfer of transfers) checkedKey(transfer.key, transfer.path);
    const totalBytes = transfers.reduce((sum, transfer) => sum + transfer.sizeBytes, 0);
    const bar = !context.json && context.stderr.isTTY === true ? new ProgressBar(context.stderr, totalBytes, () => context.now()) : null;
    const start = context.now();
    let doneBytes = 0;
    const results: Array<{ source: string; target: string; sizeBytes: number; version?: number }> = [];
    for (const transfer of transfers) {
      const label = upload ? transfer.key : transfer.path;
      const onBytes = (bytes: number): void => {
        doneBytes += bytes;
        bar?.update(label, doneBytes);
      };
      bar?.update(label, doneBytes);
      if (upload) {
        const options = { signal: context.signal, onBytes, ...(transfer.mode === undefined ? {} : { mode: transfer.mode }) };
        const { version, sizeBytes } = await uploadFile(client, transfer.path, transfer.key, options);
        results.push({ source: transfer.path, target: `dfs:${transfer.key}`, sizeBytes, version });
      } else {
        const info = await downloadToFile(client, transfer.key, transfer.path, { signal: context.signal, onBytes });
        results.push({ source: `dfs:${transfer.key}`, target: transfer.path, sizeBytes: info?.sizeBytes ?? transfer.sizeBytes, ...(info === null ? {} : { version: info.version }) });
      }
    }
    bar?.finish();
    const elapsedMilliseconds = context.now() - start;
    const copiedBytes = results.reduce((sum, result) => sum + result.sizeBytes, 0);
    if (context.json) return printJson(context, { files: results, totalBytes: copiedBytes, elapsedMilliseconds: Math.round(elapsedMilliseconds) });
    const rate = elapsedMilliseconds > 0 ? `, ${formatRate((copiedBytes * 1000) / elapsedMilliseconds)}` : '';
    const what = results.length === 1 && results[0] !== undefined ? `${results[0].source} → ${results[0].target}` : `${results.length} files ${upload ? `${source} → ${target}` : `${source} → ${target}`}`;
    printLines(context, [`copied ${what}: ${formatBytes(copiedBytes)} in ${formatDuration(elapsedMilliseconds)}${rate}`]);
  },
};
