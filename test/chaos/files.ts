// The file-system part of a chaos run (--fs): file clients that write into the nodes' cache
// folders, a reader that samples files under the mounts, and the checks made after healing.
//
// - A file client belongs to one node and writes only under `fs-<node>/` in that node's cache
//   folder (disjoint path sets, so the expected end state is exact), plus — for the first two
//   nodes — one shared path `fs-shared/both.txt` written from both (there only "one of the two
//   final copies" is expected: the later commit wins). Operations: create, overwrite, append,
//   rename, delete, a folder of files (created, later removed with rm -r or renamed), and one
//   larger file of a few MiB written slowly in pieces (so that it is open for writing a while).
// - Every content is self-checking: a sequence of blocks, each a header line with the writer, a
//   counter, the body's length and the body's sha256, then the body. A partial or mixed read
//   fails the self-check by itself; besides, every complete version a client produced for a path
//   is recorded (its sha256) before it is written, and a rename records the moved content under
//   the new path, so a read is also checked against "one of the complete contents written there".
// - The reader opens a random file under a random node's mount, fstats, reads to EOF, fstats
//   again; a read during which the file changed (size, mtime or inode differ) is not judged (a
//   handle open across a change may read the new content's uncached parts: FUSE.md), every other
//   one must be a complete version.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { join } from 'node:path';

import { DfsClientError } from '../../src/client/client.js';
import { isMountPoint } from '../integration/harness.js';
import { Random, sleep, type ChaosNode } from './nemesis.js';

export const fileOperationKinds = ['create', 'overwrite', 'append', 'rename', 'delete', 'folder-create', 'folder-remove', 'folder-rename', 'large', 'shared'] as const;
export type FileOperationKind = (typeof fileOperationKinds)[number];

export const sharedPath = 'fs-shared/both.txt';

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One block: `dfsblock <writer> <counter> <length> <sha256 of body>\n` then the body. */
export function makeBlock(writer: string, counter: number, bodyBytes: number): Buffer {
  // base64 of random bytes: printable, and unique enough on its own; the header makes it unique.
  const body = Buffer.from(randomBytes(Math.ceil((bodyBytes * 3) / 4)).toString('base64').slice(0, bodyBytes), 'latin1');
  return Buffer.concat([Buffer.from(`dfsblock ${writer} ${counter} ${body.length} ${sha256(body)}\n`, 'latin1'), body]);
}

/** True when `data` is a whole number of intact blocks (at least one). */
export function selfCheck(data: Buffer): boolean {
  let offset = 0;
  let blocks = 0;
  while (offset < data.length) {
    const newline = data.indexOf(10, offset);
    if (newline < 0 || newline - offset > 200) return false;
    const match = /^dfsblock (\S+) (\d+) (\d+) ([0-9a-f]{64})$/.exec(data.subarray(offset, newline).toString('latin1'));
    if (match === null) return false;
    const length = Number(match[3]);
    const body = data.subarray(newline + 1, newline + 1 + length);
    if (body.length !== length || sha256(body) !== match[4]) return false;
    offset = newline + 1 + length;
    blocks++;
  }
  return blocks > 0;
}

/** What every file client wrote, shared by all of them and the reader. */
export class FileRecorder {
  /** path → sha256 of every complete content written (or moved) there. */
  readonly versions = new Map<string, Set<string>>();
  readonly counts: Record<FileOperationKind, number> = Object.fromEntries(fileOperationKinds.map((kind) => [kind, 0])) as Record<FileOperationKind, number>;
  /** path → when it last left a cache folder (deleted, renamed away, its folder removed or renamed), Date.now(). */
  readonly goneAt = new Map<string, number>();
  errors = 0;
  lastError = '';

  gone(path: string): void {
    this.goneAt.set(path, Date.now());
  }

  record(path: string, hash: string): void {
    let set = this.versions.get(path);
    if (set === undefined) this.versions.set(path, (set = new Set()));
    set.add(hash);
  }

  /**
   * A rename from `from` to `to`: every version ever written at `from` may arrive at `to` (the
   * node replicates a rename as a move of whatever the namespace holds at `from`, which may be an
   * older version whose overwrite it had not sent yet; the newer one follows).
   */
  moved(from: string, to: string): void {
    for (const hash of this.versions.get(from) ?? []) this.record(to, hash);
  }

  /** The paths where `hash` was written or moved to. */
  pathsOf(hash: string): string[] {
    return [...this.versions].filter(([, hashes]) => hashes.has(hash)).map(([path]) => path);
  }
}

interface OwnFile {
  content: Buffer;
}

/**
 * One node's file client: a loop of file operations in that node's cache folder until stopped.
 * Writes happen whatever the node's state (killed, paused, cut off): the cache folder is a local
 * folder, and the node sends what changed when it can.
 */
export class FileClient {
  private readonly files = new Map<string, OwnFile>();
  private readonly folders = new Map<string, Map<string, OwnFile>>();
  private counter = 0;
  private largeDone = false;

  constructor(
    readonly member: ChaosNode,
    private readonly recorder: FileRecorder,
    private readonly random: Random,
    private readonly writesShared: boolean,
    private readonly writesLarge: boolean,
    private readonly largeBytes: number,
  ) {}

  get prefix(): string {
    return `fs-${this.member.id}`;
  }

  get cacheFolder(): string {
    const folder = this.member.node.spec.cacheFolder;
    if (folder === undefined) throw new Error(`${this.member.id} has no cache folder`);
    return folder;
  }

  async run(isRunning: () => boolean, startAfterMilliseconds: number): Promise<void> {
    mkdirSync(join(this.cacheFolder, this.prefix), { recursive: true });
    const largeAt = Date.now() + startAfterMilliseconds;
    while (isRunning()) {
      try {
        await this.step(Date.now() >= largeAt);
      } catch (error) {
        this.recorder.errors++;
        this.recorder.lastError = `${this.member.id}: ${error instanceof Error ? error.message : String(error)}`;
      }
      await sleep(this.random.between(80, 300));
    }
  }

  private name(): string {
    this.counter++;
    return `${this.prefix}/${this.random.float() < 0.3 ? `sub${this.random.integer(3)}/` : ''}f${this.counter}.txt`;
  }

  private block(bodyBytes: number): Buffer {
    return makeBlock(this.member.id, ++this.counter, bodyBytes);
  }

  /** Writes `content` to `path` in the cache folder (truncating), recorded before the first byte lands. */
  private async write(path: string, content: Buffer, pieces = 1): Promise<void> {
    this.recorder.record(path, sha256(content));
    const full = join(this.cacheFolder, path);
    mkdirSync(join(full, '..'), { recursive: true });
    const fd = openSync(full, 'w');
    try {
      const size = Math.ceil(content.length / pieces);
      for (let offset = 0; offset < content.length; offset += size) {
        writeSync(fd, content, offset, Math.min(size, content.length - offset));
        if (pieces > 1) await sleep(25);
      }
    } finally {
      closeSync(fd);
    }
  }

  private async step(largeAllowed: boolean): Promise<void> {
    const roll = this.random.float();
    const owned = [...this.files.keys()];
    if (this.writesLarge && largeAllowed && !this.largeDone) {
      this.largeDone = true;
      const path = `${this.prefix}/large.bin`;
      const content = this.block(this.largeBytes - 200);
      await this.write(path, content, 16);
      this.files.set(path, { content });
      this.recorder.counts.large++;
      return;
    }
    if (this.writesShared && roll < 0.08) {
      const content = this.block(500 + this.random.integer(3000));
      await this.write(sharedPath, content);
      this.recorder.counts.shared++;
      return;
    }
    if (owned.length < 4 || roll < 0.3) {
      const path = this.name();
      const content = this.block(100 + this.random.integer(20_000));
      await this.write(path, content);
      this.files.set(path, { content });
      this.recorder.counts.create++;
      return;
    }
    const path = this.random.pick(owned.filter((candidate) => !candidate.endsWith('large.bin')));
    const file = this.files.get(path) as OwnFile;
    if (roll < 0.45) {
      const content = this.block(100 + this.random.integer(20_000));
      await this.write(path, content);
      file.content = content;
      this.recorder.counts.overwrite++;
    } else if (roll < 0.6) {
      const added = this.block(50 + this.random.integer(5000));
      const content = Buffer.concat([file.content, added]);
      this.recorder.record(path, sha256(content));
      const fd = openSync(join(this.cacheFolder, path), 'a');
      try {
        writeSync(fd, added);
      } finally {
        closeSync(fd);
      }
      file.content = content;
      this.recorder.counts.append++;
    } else if (roll < 0.72) {
      const target = this.name();
      this.recorder.moved(path, target);
      this.recorder.record(target, sha256(file.content));
      mkdirSync(join(this.cacheFolder, target, '..'), { recursive: true });
      renameSync(join(this.cacheFolder, path), join(this.cacheFolder, target));
      this.recorder.gone(path);
      this.files.delete(path);
      this.files.set(target, file);
      this.recorder.counts.rename++;
    } else if (roll < 0.82) {
      unlinkSync(join(this.cacheFolder, path));
      this.recorder.gone(path);
      this.files.delete(path);
      this.recorder.counts.delete++;
    } else {
      await this.folderStep();
    }
  }

  private async folderStep(): Promise<void> {
    const existing = [...this.folders.keys()];
    if (existing.length === 0 || this.random.float() < 0.5) {
      const folder = `${this.prefix}/dir${++this.counter}`;
      const files = new Map<string, OwnFile>();
      mkdirSync(join(this.cacheFolder, folder), { recursive: true });
      const count = 3 + this.random.integer(4);
      for (let index = 0; index < count; index++) {
        const content = this.block(100 + this.random.integer(4000));
        await this.write(`${folder}/g${index}.txt`, content);
        files.set(`g${index}.txt`, { content });
      }
      this.folders.set(folder, files);
      this.recorder.counts['folder-create']++;
      return;
    }
    const folder = this.random.pick(existing);
    const files = this.folders.get(folder) as Map<string, OwnFile>;
    if (this.random.float() < 0.5) {
      rmSync(join(this.cacheFolder, folder), { recursive: true, force: true });
      for (const name of files.keys()) this.recorder.gone(`${folder}/${name}`);
      this.folders.delete(folder);
      this.recorder.counts['folder-remove']++;
    } else {
      const target = `${this.prefix}/dir${++this.counter}`;
      for (const [name, file] of files) {
        this.recorder.moved(`${folder}/${name}`, `${target}/${name}`);
        this.recorder.record(`${target}/${name}`, sha256(file.content));
      }
      renameSync(join(this.cacheFolder, folder), join(this.cacheFolder, target));
      for (const name of files.keys()) this.recorder.gone(`${folder}/${name}`);
      this.folders.delete(folder);
      this.folders.set(target, files);
      this.recorder.counts['folder-rename']++;
    }
  }
}

/** Relative paths of the regular files under `root` (depth-first), or [] where unreadable. */
export function listFiles(root: string, relative = ''): string[] {
  const found: string[] = [];
  let entries;
  try {
    entries = readdirSync(join(root, relative), { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) found.push(...listFiles(root, path));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

/** Like listFiles, but throws on any error (for the final comparisons). */
function listFilesStrict(root: string, relative = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(root, relative), { withFileTypes: true })) {
    const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) found.push(...listFilesStrict(root, path));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

export interface MountObservation {
  readonly node: string;
  readonly path: string;
  readonly sha: string;
  readonly size: number;
  readonly selfCheck: boolean;
  /** The first block's header line (who wrote it, which counter), for reports. */
  readonly header: string;
  /** Seconds since the run started. */
  readonly atSeconds: number;
}

export interface ReaderStats {
  sampled: number;
  judged: number;
  changedDuringRead: number;
  errors: number;
  readonly observations: MountObservation[];
}

function sameFile(before: Stats, after: Stats): boolean {
  return before.size === after.size && before.mtimeMs === after.mtimeMs && before.ino === after.ino;
}

/** Reads a file whole from one open handle; null when it changed while read. */
function readStable(path: string): Buffer | null {
  const fd = openSync(path, 'r');
  try {
    const before = fstatSync(fd);
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.allocUnsafe(1024 * 1024);
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
    }
    const after = fstatSync(fd);
    return sameFile(before, after) ? Buffer.concat(chunks) : null;
  } finally {
    closeSync(fd);
  }
}

/** The mount reader: samples fs-* files under random mounts until stopped. */
export async function runMountReader(nodes: readonly ChaosNode[], random: Random, stats: ReaderStats, isRunning: () => boolean, originMilliseconds: number): Promise<void> {
  while (isRunning()) {
    const member = random.pick(nodes);
    const mount = member.node.spec.mountFolder as string;
    const candidates = listFiles(mount).filter((path) => path.startsWith('fs-'));
    for (let index = 0; index < Math.min(3, candidates.length); index++) {
      const path = random.pick(candidates);
      stats.sampled++;
      try {
        const data = readStable(join(mount, path));
        if (data === null) {
          stats.changedDuringRead++;
          continue;
        }
        stats.judged++;
        const newline = data.indexOf(10);
        const header = data.subarray(0, newline < 0 || newline > 200 ? Math.min(80, data.length) : newline).toString('latin1');
        stats.observations.push({ node: member.id, path, sha: sha256(data), size: data.length, selfCheck: selfCheck(data), header, atSeconds: Math.round((Date.now() - originMilliseconds) / 100) / 10 });
      } catch {
        stats.errors++; // gone (ENOENT, EIO after a removal), FUSE restarting (ENOTCONN): no content read
      }
      await sleep(5);
    }
    await sleep(random.between(20, 80));
  }
}

/**
 * The reads that were not a complete version of their path: `partial` ones fail their self-check
 * or are intact blocks that no client ever wrote as a whole (a partial or mixed file); `foreign`
 * ones are a complete content some client wrote, but at another path (never at or moved to this one).
 */
export function judgeReads(stats: ReaderStats, recorder: FileRecorder): { partial: MountObservation[]; foreign: MountObservation[] } {
  const partial: MountObservation[] = [];
  const foreign: MountObservation[] = [];
  const everywhere = new Set<string>();
  for (const hashes of recorder.versions.values()) for (const hash of hashes) everywhere.add(hash);
  for (const observation of stats.observations) {
    if (recorder.versions.get(observation.path)?.has(observation.sha) === true && observation.selfCheck) continue;
    if (!observation.selfCheck || !everywhere.has(observation.sha)) partial.push(observation);
    else foreign.push(observation);
  }
  return { partial, foreign };
}

export interface FileTree {
  /** path → `size sha256` */
  readonly files: Map<string, string>;
}

function describe(data: Uint8Array): string {
  return `${data.length} ${sha256(data)}`;
}

/** What the namespace holds, every key, through one node's gRPC (linearizable List and Get). */
export async function namespaceTree(member: ChaosNode): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const info of member.client.listAll('', { pageSize: 1000, timeoutMilliseconds: 10_000 })) {
    try {
      files.set(info.key, describe(await member.client.get(info.key, { timeoutMilliseconds: 20_000 })));
    } catch (error) {
      if (error instanceof DfsClientError && error.code === 'NOT_FOUND') continue;
      throw error;
    }
  }
  return files;
}

/** Every file under a mount (throws if the mount cannot be read). */
export function mountTree(mount: string): Map<string, string> {
  if (!isMountPoint(mount)) throw new Error(`${mount} is not mounted`);
  const files = new Map<string, string>();
  for (const path of listFilesStrict(mount).sort()) files.set(path, describe(readFileSync(join(mount, path))));
  return files;
}

/** Differences between two trees, at most `limit` lines; [] when equal. */
export function treeDifferences(left: Map<string, string>, right: Map<string, string>, leftName: string, rightName: string, limit = 10): string[] {
  const lines: string[] = [];
  for (const [path, value] of left) {
    const other = right.get(path);
    if (other === undefined) lines.push(`${path}: in ${leftName} (${value.slice(0, 20)}), not in ${rightName}`);
    else if (other !== value) lines.push(`${path}: ${leftName} ${value.slice(0, 20)} ≠ ${rightName} ${other.slice(0, 20)}`);
  }
  for (const path of right.keys()) if (!left.has(path)) lines.push(`${path}: in ${rightName}, not in ${leftName}`);
  return lines.slice(0, limit).concat(lines.length > limit ? [`… ${lines.length - limit} more`] : []);
}

/**
 * The end state the cache folders call for: each file a client left in its node's cache folder,
 * path → the acceptable sha256s (one; for the shared path, each node's copy).
 */
export function expectedFromCacheFolders(clients: readonly FileClient[]): Map<string, Set<string>> {
  const expected = new Map<string, Set<string>>();
  for (const client of clients) {
    for (const path of listFiles(client.cacheFolder)) {
      const hash = sha256(readFileSync(join(client.cacheFolder, path)));
      let set = expected.get(path);
      if (set === undefined) expected.set(path, (set = new Set()));
      set.add(hash);
    }
  }
  return expected;
}

export interface EndStateResult {
  /** Expected files missing or with other content, and namespace files under fs- nobody left. */
  readonly problems: string[];
  /** Files in the namespace that no cache folder holds, tolerated because their node was wiped. */
  readonly tolerated: string[];
}

/**
 * Compares the namespace's fs- files with what the cache folders call for. A file in the
 * namespace that no cache folder holds is tolerated only when it left its node's cache folder
 * before that node was last wiped (membership fault) and had joined again: the node's cache index
 * went with its data folder, so a removal or rename it had not sent by then cannot be known at its
 * next start. `wipedAt`: node id → when it was a voter again after starting empty; `goneAt`: path
 * → when it left its cache folder (both Date.now()).
 */
export function compareEndState(namespace: Map<string, string>, expected: Map<string, Set<string>>, wipedAt: ReadonlyMap<string, number>, goneAt: ReadonlyMap<string, number>): EndStateResult {
  const problems: string[] = [];
  const tolerated: string[] = [];
  for (const [path, hashes] of expected) {
    const held = namespace.get(path);
    const heldHash = held?.split(' ')[1];
    if (heldHash === undefined) problems.push(`${path}: left in a cache folder, missing from the namespace`);
    else if (!hashes.has(heldHash)) problems.push(`${path}: the namespace holds ${heldHash.slice(0, 12)}, the cache folder(s) ${[...hashes].map((hash) => hash.slice(0, 12)).join(' or ')}`);
  }
  for (const path of namespace.keys()) {
    if (!path.startsWith('fs-') || expected.has(path)) continue;
    const owner = /^fs-([^/]+)\//.exec(path)?.[1] ?? '';
    const wiped = wipedAt.get(owner);
    const gone = goneAt.get(path);
    if (wiped !== undefined && gone !== undefined && gone <= wiped) tolerated.push(path);
    else problems.push(`${path}: in the namespace, but no cache folder holds it${gone === undefined ? '' : wiped === undefined ? '' : ` (it left ${owner}'s cache folder ${((gone - wiped) / 1000).toFixed(1)} s after ${owner} had joined again empty)`}`);
  }
  return { problems, tolerated };
}

/** A mount that is mounted and can be listed. */
export function mountReadable(mount: string): boolean {
  if (!existsSync(mount) || !isMountPoint(mount)) return false;
  try {
    readdirSync(mount);
    return true;
  } catch {
    return false;
  }
}
