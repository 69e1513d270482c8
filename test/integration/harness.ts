// Real `dfs` processes on 127.0.0.1 for the integration tests: each node gets its own free raft
// and gRPC ports, its own data folder and a log file; the harness starts, kills (-9), stops
// (SIGTERM) and restarts them, and waits for conditions with bounded polling instead of sleeps.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DfsClient, type ClusterStatus } from '../../src/client/client.js';

const distFolder = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const dfsMain = join(distFolder, 'src', 'supervisor', 'main.js');

/**
 * The environment a `dfs` process starts with: the test's own, without what the test runner adds
 * (tap preloads its process-info hooks through NODE_OPTIONS into every child, which would run
 * inside the node and change its memory and start-up), plus a fast Raft clock.
 */
export function nodeEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'NODE_OPTIONS' || name.startsWith('TAP') || name.startsWith('_TAPJS_')) continue;
    environment[name] = value;
  }
  return { ...environment, DFS_TICK_MILLISECONDS: '50', ...extra };
}

/**
 * Ports for test nodes come from 20000–32767, below the kernel's ephemeral range (32768–60999 on
 * Linux): a port the kernel hands to some other test's listen(0) or outgoing connection between
 * our check and the node's bind cannot collide with these. Each test process starts at its own
 * random place and never hands out a port twice; a port is checked free by binding it.
 */
const testPortFirst = 20_000;
const testPortCount = 12_768;
let nextTestPort = testPortFirst + ((process.pid * 997 + Math.floor(Math.random() * testPortCount)) % testPortCount);

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < testPortCount; attempt++) {
    const port = nextTestPort;
    nextTestPort = port + 1 >= testPortFirst + testPortCount ? testPortFirst : port + 1;
    if (await canBind(port)) return port;
  }
  throw new Error('no free port for a test node in 20000–32767');
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMilliseconds = 30_000, intervalMilliseconds = 100): Promise<T> {
  const deadline = Date.now() + timeoutMilliseconds;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== null && value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMilliseconds));
  }
  throw new Error(`timed out after ${timeoutMilliseconds} ms waiting for ${what}${lastError === null ? '' : `: ${String(lastError)}`}`);
}

export interface NodeSpec {
  readonly id: string;
  readonly raftPort: number;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly dataFolder: string;
  /** Extra flags (e.g. -peers) and environment. */
  args: string[];
  env: Record<string, string>;
  /** With both, the node mounts and watches these; without, it runs with -no-fuse. */
  mountFolder?: string;
  cacheFolder?: string;
}

export class TestNode {
  process: ChildProcess | null = null;
  client: DfsClient;
  private log: WriteStream | null = null;
  readonly logPath: string;
  exit: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly spec: NodeSpec,
    private readonly folder: string,
  ) {
    this.logPath = join(folder, `${spec.id}.log`);
    this.client = new DfsClient(this.grpcAddress);
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.spec.grpcPort}`;
  }

  get raftAddress(): string {
    return `127.0.0.1:${this.spec.raftPort}`;
  }

  start(): void {
    if (this.process !== null) throw new Error(`${this.spec.id} is already running`);
    this.log = createWriteStream(this.logPath, { flags: 'a' });
    const child = spawn(
      process.execPath,
      [
        dfsMain,
        ...['-id', this.spec.id, '-raft', this.raftAddress, '-grpc', this.grpcAddress, '-http', `127.0.0.1:${this.spec.httpPort}`, '-data', this.spec.dataFolder],
        ...(this.spec.mountFolder !== undefined && this.spec.cacheFolder !== undefined ? ['-mount', this.spec.mountFolder, '-cache', this.spec.cacheFolder] : ['-no-fuse']),
        ...this.spec.args,
      ],
      { cwd: this.folder, env: nodeEnvironment(this.spec.env), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    this.process = child;
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : 128))));
    void this.exit.then(() => {
      if (this.process === child) this.process = null;
    });
  }

  async kill(): Promise<void> {
    const child = this.process;
    if (child === null) return;
    child.kill('SIGKILL');
    await this.exit;
    this.process = null;
  }

  /** SIGTERM and wait for the exit code. */
  async stop(): Promise<number | null> {
    const child = this.process;
    if (child === null) return null;
    child.kill('SIGTERM');
    const code = await this.exit;
    this.process = null;
    return code;
  }

  /** The dfs process's pid (its worker threads share it), or null when it is not running. */
  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  /** The pid of the node's FUSE process (its child running fuse-process.js), or null. */
  get fusePid(): number | null {
    const parent = this.pid;
    if (parent === null) return null;
    const found = spawnSync('pgrep', ['-P', String(parent), '-f', 'fuse-process.js'], { encoding: 'utf8' });
    const pid = Number(found.stdout.trim().split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  }

  logText(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async status(): Promise<ClusterStatus> {
    return this.client.status({ timeoutMilliseconds: 2000 });
  }
}

export class TestCluster {
  readonly nodes: TestNode[] = [];
  readonly folder: string;

  private constructor(folder: string) {
    this.folder = folder;
  }

  /**
   * `count` founding nodes that list each other as peers (the compose layout); with `fuse`, each
   * mounts <folder>/nodeN-mount and watches <folder>/nodeN-cache.
   */
  static async create(count: number, options: { env?: Record<string, string>; args?: string[]; fuse?: boolean } = {}): Promise<TestCluster> {
    const cluster = new TestCluster(mkdtempSync(join(tmpdir(), 'dfs-test-')));
    const specs: NodeSpec[] = [];
    for (let index = 1; index <= count; index++) {
      specs.push({
        id: `node${index}`,
        raftPort: await freePort(),
        grpcPort: await freePort(),
        httpPort: await freePort(),
        dataFolder: join(cluster.folder, `node${index}`),
        args: [...(options.args ?? [])],
        env: { ...(options.env ?? {}) },
        ...(options.fuse === true ? { mountFolder: join(cluster.folder, `node${index}-mount`), cacheFolder: join(cluster.folder, `node${index}-cache`) } : {}),
      });
    }
    for (const spec of specs) {
      const peers = specs.filter((other) => other !== spec).map((other) => `127.0.0.1:${other.raftPort}`);
      if (peers.length > 0) spec.args.push('-peers', peers.join(','));
      cluster.nodes.push(new TestNode(spec, cluster.folder));
    }
    return cluster;
  }

  /**
   * create() and startAll(), with the test's teardown stopping every node and removing the
   * folder (kept when the test failed, for its logs).
   */
  static async started(t: { teardown(fn: () => Promise<void>): void; passing(): boolean }, count: number, options: Parameters<typeof TestCluster.create>[1] = {}): Promise<TestCluster> {
    const cluster = await TestCluster.create(count, options);
    t.teardown(async () => {
      await cluster.shutdown();
      cluster.cleanup(t.passing() === false);
    });
    cluster.startAll();
    return cluster;
  }

  /**
   * A node with its own ports (and by default its own data folder) that takes only the flags
   * given: for nodes outside the founders' layout (a lone node, a second node on a taken port).
   */
  async addNode(id: string, options: { args?: string[]; env?: Record<string, string>; dataFolder?: string; raftPort?: number; grpcPort?: number } = {}): Promise<TestNode> {
    const spec: NodeSpec = {
      id,
      raftPort: options.raftPort ?? (await freePort()),
      grpcPort: options.grpcPort ?? (await freePort()),
      httpPort: await freePort(),
      dataFolder: options.dataFolder ?? join(this.folder, id),
      args: [...(options.args ?? [])],
      env: { ...(options.env ?? {}) },
    };
    const node = new TestNode(spec, this.folder);
    this.nodes.push(node);
    return node;
  }

  /** A node that is not a founder: it joins through `via` with -peers. */
  async addJoiner(id: string, via: TestNode, env: Record<string, string> = {}): Promise<TestNode> {
    const spec: NodeSpec = { id, raftPort: await freePort(), grpcPort: await freePort(), httpPort: await freePort(), dataFolder: join(this.folder, id), args: ['-peers', via.raftAddress], env };
    const node = new TestNode(spec, this.folder);
    this.nodes.push(node);
    return node;
  }

  node(id: string): TestNode {
    const found = this.nodes.find((node) => node.spec.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  startAll(): void {
    for (const node of this.nodes) node.start();
  }

  /**
   * Waits until every node of `among` (by default the running ones) names the same leader, and
   * that leader is one of them and says so itself (a killed leader that the others still name
   * does not count); returns it.
   */
  async waitForLeader(timeoutMilliseconds = 30_000, among: TestNode[] = this.nodes.filter((node) => node.process !== null)): Promise<TestNode> {
    return waitFor(
      'one leader that every running node follows',
      async () => {
        const statuses = await Promise.all(among.map((node) => node.status()));
        const leaderId = statuses[0]?.leaderId ?? '';
        if (leaderId === '' || !statuses.every((status) => status.leaderId === leaderId)) return null;
        const leaderStatus = statuses.find((status) => status.nodeId === leaderId);
        if (leaderStatus?.role !== 'LEADER') return null;
        return among.find((node) => node.spec.id === leaderId) ?? null;
      },
      timeoutMilliseconds,
      200,
    );
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()));
    for (const node of this.nodes) node.client.close();
    // A killed node's FUSE process unmounts when its IPC channel closes; wait for that (and
    // lazily unmount what is left) so that removing the folder never walks into a mount.
    const mounts = this.nodes.map((node) => node.spec.mountFolder).filter((folder): folder is string => folder !== undefined);
    const deadline = Date.now() + 10_000;
    while (mounts.some(isMountPoint) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    for (const folder of mounts.filter(isMountPoint)) spawnSync('umount', ['-l', folder]);
  }

  /** Removes the folder unless the test failed (then the logs stay for reading). */
  cleanup(keep: boolean): void {
    if (!keep) rmSync(this.folder, { recursive: true, force: true });
  }

  logs(): string {
    return this.nodes.map((node) => `==== ${node.spec.id}\n${node.logText()}`).join('\n');
  }
}

/** Writes `sizeBytes` random bytes to `path` a MiB at a time; answers their sha256. */
export async function writeRandomFile(path: string, sizeBytes: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const block = Buffer.alloc(1024 * 1024);
  for (let written = 0; written < sizeBytes; written += block.length) {
    const piece = Buffer.from(randomFillSync(block).subarray(0, Math.min(block.length, sizeBytes - written)));
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return hash.digest('hex');
}

/** True when `folder` is a mount point now (per /proc/self/mountinfo). */
export function isMountPoint(folder: string): boolean {
  const escaped = folder.replace(/[ \t\n\\]/g, (character) => `\\${character.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === escaped);
}

/** Runs `dfs` with exactly `args` (no defaults added) until it exits; kills it after the timeout. */
export async function runDfs(args: readonly string[], options: { cwd: string; env?: Record<string, string>; timeoutMilliseconds?: number }): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const child = spawn(process.execPath, [dfsMain, ...args], { cwd: options.cwd, env: nodeEnvironment(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMilliseconds ?? 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, output, timedOut };
}

export interface ProcessMemory {
  /** VmRSS: everything resident, including file pages mapped in (LMDB maps its data files). */
  readonly residentBytes: number;
  /** VmHWM: the peak of VmRSS since the process started. */
  readonly peakResidentBytes: number;
  /** RssAnon: the process's own memory (heaps, buffers), without mapped file pages. */
  readonly anonymousBytes: number;
  /** RssFile: file pages mapped in (page cache the kernel can reclaim). */
  readonly fileBytes: number;
}

/** A process's memory, in bytes, from /proc/<pid>/status. */
export function processMemory(pid: number): ProcessMemory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (match === null) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { residentBytes: field('VmRSS'), peakResidentBytes: field('VmHWM'), anonymousBytes: field('RssAnon'), fileBytes: field('RssFile') };
}

/** A small seeded generator (xorshift32): the same seed gives the same bytes on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** Runs `work` over `items` with at most `limit` at once; resolves with the results in order. */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  });
  await Promise.all(runners);
  return results;
}
