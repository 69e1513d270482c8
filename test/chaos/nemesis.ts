// The chaos suite's cluster and its nemesis. ChaosCluster starts real `dfs` processes on 127.0.0.1
// (through the integration harness), each behind a fault-injecting proxy on its raft port
// (proxy.ts): the node advertises the proxy's port and its peers list holds the other proxies, so
// every Raft connection can be cut. The Nemesis injects one fault at a time, drawn from a seeded
// schedule, heals it, and measures how long the cluster takes to serve again (a leader every live
// member follows, then a write through the leader and a linearizable read through every live
// node):
//
// - kill -9 of the leader, a follower or any node, restarted from its data folder after a while;
// - SIGSTOP / SIGCONT pauses of the leader or any node, longer than the election timeout;
// - partitions: a minority from the majority, the leader from everyone, and a bridge (two sides
//   that only one node can talk to), by closing the links' connections or black-holing them;
// - membership under load: remove a node, wipe it, start it empty so that it joins again;
// - with --fs (kill-fuse): kill -9 of a node's FUSE process (its child running fuse-process.js),
//   which the node replaces after its backoff; the fault lasts until the mount is served again.
//
// The schedule (which fault, which cut mode, how long, the pause between faults) comes from the
// seed alone; which node is "the leader" is whatever the cluster says at that moment.

import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { DfsClient, type ClusterStatus } from '../../src/client/client.js';
import { freePort, isMountPoint, seededRandom, TestCluster, waitFor, type TestNode } from '../integration/harness.js';
import { LinkFaults, LinkProxy, type CutMode } from './proxy.js';

export const faultKinds = [
  'kill-leader',
  'kill-follower',
  'kill-random',
  'pause-leader',
  'pause-random',
  'partition-minority',
  'partition-leader',
  'partition-bridge',
  'membership',
] as const;
/** Faults that need the file system (--fs): kill -9 of a node's FUSE process. */
export const fsFaultKinds = ['kill-fuse'] as const;
export type FaultKind = (typeof faultKinds)[number] | (typeof fsFaultKinds)[number];
/** Every kind, in report order. */
export const everyFaultKind: readonly FaultKind[] = [...faultKinds, ...fsFaultKinds];

/** Fault groups accepted by --faults besides the kinds themselves. */
export const faultGroups: Readonly<Record<string, readonly FaultKind[]>> = {
  all: faultKinds,
  kill: ['kill-leader', 'kill-follower', 'kill-random'],
  pause: ['pause-leader', 'pause-random'],
  partition: ['partition-minority', 'partition-leader', 'partition-bridge'],
  membership: ['membership'],
  none: [],
};

/** The kinds a --faults list names; with `fs`, `all` includes kill-fuse, and kill-fuse needs it. */
export function parseFaults(text: string, options: { fs?: boolean } = {}): FaultKind[] {
  const fs = options.fs === true;
  const kinds = new Set<FaultKind>();
  for (const word of text.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    const group = faultGroups[word];
    if (group !== undefined) {
      for (const kind of group) kinds.add(kind);
      if (word === 'all' && fs) for (const kind of fsFaultKinds) kinds.add(kind);
    } else if ((faultKinds as readonly string[]).includes(word)) kinds.add(word as FaultKind);
    else if ((fsFaultKinds as readonly string[]).includes(word)) {
      if (!fs) throw new Error(`fault ${word} needs --fs`);
      kinds.add(word as FaultKind);
    } else throw new Error(`unknown fault ${word}; known: ${[...Object.keys(faultGroups), ...everyFaultKind].join(', ')}`);
  }
  return [...kinds];
}

/** A deterministic generator of floats in [0, 1) from the harness's xorshift. */
export class Random {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  float(): number {
    return this.next() / 0x100000000;
  }
  between(low: number, high: number): number {
    return low + this.float() * (high - low);
  }
  integer(below: number): number {
    return Math.floor(this.float() * below);
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.integer(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let index = copy.length - 1; index > 0; index--) {
      const other = this.integer(index + 1);
      [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
    }
    return copy;
  }
}

export const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

export interface ChaosNode {
  readonly id: string;
  readonly node: TestNode;
  readonly proxy: LinkProxy;
  /** The client for this node; replaced when the node restarts (a fresh channel, no backoff). */
  client: DfsClient;
  paused: boolean;
}

export class ChaosCluster {
  readonly faults = new LinkFaults();
  readonly nodes: ChaosNode[] = [];
  private readonly retiredClients: DfsClient[] = [];

  private constructor(readonly cluster: TestCluster) {}

  /** With `fuse`, each node mounts <folder>/nodeN-mount and watches <folder>/nodeN-cache. */
  static async create(count: number, tickMilliseconds = 50, options: { fuse?: boolean } = {}): Promise<ChaosCluster> {
    const cluster = await TestCluster.create(0);
    const chaos = new ChaosCluster(cluster);
    const specs: { id: string; raftPort: number; proxy: LinkProxy }[] = [];
    for (let index = 1; index <= count; index++) {
      const id = `node${index}`;
      const raftPort = await freePort();
      const proxy = new LinkProxy(id, raftPort, chaos.faults);
      await proxy.listen();
      specs.push({ id, raftPort, proxy });
    }
    for (const spec of specs) {
      const peers = specs.filter((other) => other !== spec).map((other) => `127.0.0.1:${other.proxy.port}`);
      const node = await cluster.addNode(spec.id, {
        raftPort: spec.raftPort,
        args: ['-advertise', `127.0.0.1:${spec.proxy.port}`, '-peers', peers.join(',')],
        env: { DFS_TICK_MILLISECONDS: String(tickMilliseconds) },
      });
      if (options.fuse === true) {
        node.spec.mountFolder = join(cluster.folder, `${spec.id}-mount`);
        node.spec.cacheFolder = join(cluster.folder, `${spec.id}-cache`);
        mkdirSync(node.spec.mountFolder, { recursive: true });
        mkdirSync(node.spec.cacheFolder, { recursive: true });
      }
      chaos.nodes.push({ id: spec.id, node, proxy: spec.proxy, client: newClient(node), paused: false });
    }
    return chaos;
  }

  get folder(): string {
    return this.cluster.folder;
  }

  startAll(): void {
    for (const member of this.nodes) member.node.start();
  }

  running(): ChaosNode[] {
    return this.nodes.filter((member) => member.node.process !== null);
  }

  byId(id: string): ChaosNode {
    const found = this.nodes.find((member) => member.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  start(member: ChaosNode): void {
    member.node.start();
    this.retiredClients.push(member.client);
    member.client = newClient(member.node);
  }

  async kill(member: ChaosNode): Promise<void> {
    await member.node.kill();
    member.paused = false;
  }

  pause(member: ChaosNode): void {
    const pid = member.node.pid;
    if (pid === null) return;
    process.kill(pid, 'SIGSTOP');
    member.paused = true;
  }

  resume(member: ChaosNode): void {
    const pid = member.node.pid;
    if (pid !== null && member.paused) process.kill(pid, 'SIGCONT');
    member.paused = false;
  }

  /** The pid of the node's FUSE process (its child running fuse-process.js), or null. */
  fusePid(member: ChaosNode): number | null {
    return member.node.fusePid;
  }


  /** The node's mount is served by a FUSE process other than `not`, mounted, and can be listed. */
  mountServed(member: ChaosNode, not: number | null = null): boolean {
    const mount = member.node.spec.mountFolder;
    if (mount === undefined) return false;
    const pid = this.fusePid(member);
    if (pid === null || pid === not || !isMountPoint(mount)) return false;
    try {
      readdirSync(mount);
      return true;
    } catch {
      return false;
    }
  }

  async status(member: ChaosNode): Promise<ClusterStatus | null> {
    if (member.node.process === null || member.paused) return null;
    return member.client.status({ timeoutMilliseconds: 2000 }).catch(() => null);
  }

  /** The leader that says so itself and that most running nodes follow, or null. */
  async leader(): Promise<ChaosNode | null> {
    const statuses = await Promise.all(this.running().map(async (member) => ({ member, status: await this.status(member) })));
    for (const { member, status } of statuses) if (status?.role === 'LEADER') return member;
    return null;
  }

  /**
   * Serving again: every running, unpaused member names the same leader, which says so itself,
   * and lists them all as members; a write through the leader and a linearizable read through
   * every running node succeed.
   */
  async waitServing(timeoutMilliseconds: number, probeKey: string): Promise<void> {
    await waitFor(
      'a leader every running member follows, and reads through every node',
      async () => {
        const live = this.running().filter((member) => !member.paused);
        const statuses = await Promise.all(live.map((member) => this.status(member)));
        if (statuses.some((status) => status === null)) return null;
        const leaderId = statuses[0]?.leaderId ?? '';
        if (leaderId === '' || !statuses.every((status) => status?.leaderId === leaderId)) return null;
        const leaderStatus = statuses.find((status) => status?.nodeId === leaderId);
        if (leaderStatus?.role !== 'LEADER') return null;
        const members = new Set(leaderStatus.members.map((member) => member.id));
        const leader = this.byId(leaderId);
        const value = new TextEncoder().encode(`probe ${Date.now()}`);
        await leader.client.put(probeKey, value, { timeoutMilliseconds: 3000 });
        for (const member of live) if (members.has(member.id)) await member.client.get(probeKey, { timeoutMilliseconds: 3000 });
        return true;
      },
      timeoutMilliseconds,
      250,
    );
  }

  async shutdown(): Promise<void> {
    this.faults.healAll();
    for (const member of this.nodes) this.resume(member);
    await this.cluster.shutdown();
    for (const member of this.nodes) {
      member.client.close();
      await member.proxy.close();
    }
    for (const client of this.retiredClients) client.close();
  }
}

function newClient(node: TestNode): DfsClient {
  return new DfsClient(node.grpcAddress, 5000);
}

export interface FaultRecord {
  readonly kind: FaultKind;
  /** What was done, to whom: "kill -9 node2 (leader) for 2.1 s". */
  readonly detail: string;
  /** Seconds since the run started. */
  readonly startedSeconds: number;
  readonly healedSeconds: number;
  /** From heal until serving again (waitServing); null if it never did within the bound. */
  readonly recoveryMilliseconds: number | null;
  readonly error?: string;
}

export interface NemesisOptions {
  readonly kinds: readonly FaultKind[];
  readonly seed: number;
  /** How long a node stays down, paused, or a partition lasts (uniform in the range), ms. */
  readonly faultMilliseconds: readonly [number, number];
  /** Quiet time between one fault's recovery and the next fault, ms. */
  readonly gapMilliseconds: readonly [number, number];
  readonly recoveryTimeoutMilliseconds: number;
  readonly log: (line: string) => void;
  readonly originMilliseconds: number;
}

export class Nemesis {
  readonly records: FaultRecord[] = [];
  private readonly random: Random;
  private queue: FaultKind[] = [];

  constructor(
    private readonly chaos: ChaosCluster,
    private readonly options: NemesisOptions,
  ) {
    this.random = new Random(options.seed ^ 0x9e3779b9);
  }

  /** Injects faults one after another until `until` (ms, Date.now()); returns when the last is healed. */
  async run(until: number): Promise<void> {
    if (this.options.kinds.length === 0) return;
    await sleep(this.random.between(...this.options.gapMilliseconds));
    while (Date.now() < until) {
      // Every kind once per round, in a seeded order: a short run still sees a mix.
      if (this.queue.length === 0) this.queue = this.random.shuffle(this.options.kinds);
      const kind = this.queue.shift() as FaultKind;
      await this.inject(kind);
      if (Date.now() >= until) break;
      await sleep(this.random.between(...this.options.gapMilliseconds));
    }
  }

  private seconds(): number {
    return Math.round((Date.now() - this.options.originMilliseconds) / 100) / 10;
  }

  private async inject(kind: FaultKind): Promise<void> {
    const duration = Math.round(this.random.between(...this.options.faultMilliseconds));
    const mode: CutMode = this.random.float() < 0.5 ? 'close' : 'blackhole';
    const choice = this.random.float();
    const startedSeconds = this.seconds();
    let detail = '';
    let error: string | undefined;
    try {
      detail = await this.act(kind, duration, mode, choice);
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
      detail ||= kind;
    }
    // Whatever happened, nothing stays broken before recovery is measured.
    await this.healAll();
    const healedSeconds = this.seconds();
    const healed = Date.now();
    let recoveryMilliseconds: number | null = null;
    try {
      await this.chaos.waitServing(this.options.recoveryTimeoutMilliseconds, 'chaos-probe/nemesis');
      recoveryMilliseconds = Date.now() - healed;
    } catch (caught) {
      error ??= `did not recover: ${caught instanceof Error ? caught.message : String(caught)}`;
    }
    const record: FaultRecord = { kind, detail, startedSeconds, healedSeconds, recoveryMilliseconds, ...(error === undefined ? {} : { error }) };
    this.records.push(record);
    this.options.log(`[${startedSeconds.toFixed(1)}s] ${kind}: ${detail}; healed at ${healedSeconds.toFixed(1)}s, serving again after ${recoveryMilliseconds ?? '∞'} ms${error === undefined ? '' : ` (${error})`}`);
  }

  /** Ends every fault: links healed, paused nodes resumed, stopped nodes started. */
  async healAll(): Promise<void> {
    this.chaos.faults.healAll();
    for (const member of this.chaos.nodes) {
      this.chaos.resume(member);
      if (member.node.process === null) this.chaos.start(member);
    }
  }

  private async target(which: 'leader' | 'follower' | 'random', choice: number): Promise<{ member: ChaosNode; role: string }> {
    const running = this.chaos.running();
    if (which === 'random') {
      const member = running[Math.floor(choice * running.length)] ?? this.chaos.nodes[0];
      if (member === undefined) throw new Error('no nodes');
      return { member, role: 'any' };
    }
    const leader = await waitFor('a leader to aim at', () => this.chaos.leader(), 20_000, 200);
    if (which === 'leader') return { member: leader, role: 'leader' };
    const followers = running.filter((member) => member !== leader);
    const member = followers[Math.floor(choice * followers.length)];
    if (member === undefined) throw new Error('no follower');
    return { member, role: 'follower' };
  }

  private async act(kind: FaultKind, duration: number, mode: CutMode, choice: number): Promise<string> {
    const ids = this.chaos.nodes.map((member) => member.id);
    switch (kind) {
      case 'kill-leader':
      case 'kill-follower':
      case 'kill-random': {
        const { member, role } = await this.target(kind === 'kill-leader' ? 'leader' : kind === 'kill-follower' ? 'follower' : 'random', choice);
        await this.chaos.kill(member);
        await sleep(duration);
        this.chaos.start(member);
        return `kill -9 ${member.id} (${role}), restarted after ${duration} ms`;
      }
      case 'pause-leader':
      case 'pause-random': {
        const { member, role } = await this.target(kind === 'pause-leader' ? 'leader' : 'random', choice);
        this.chaos.pause(member);
        await sleep(duration);
        this.chaos.resume(member);
        return `SIGSTOP ${member.id} (${role}) for ${duration} ms`;
      }
      case 'partition-minority': {
        const shuffled = this.shuffleWith(ids, choice);
        const minority = shuffled.slice(0, Math.floor(ids.length / 2));
        const majority = shuffled.slice(minority.length);
        this.chaos.faults.cutBetween(minority, majority, mode);
        await sleep(duration);
        return `partition ${minority.join(',')} | ${majority.join(',')} (${mode}) for ${duration} ms`;
      }
      case 'partition-leader': {
        const { member } = await this.target('leader', choice);
        const rest = ids.filter((id) => id !== member.id);
        this.chaos.faults.cutBetween([member.id], rest, mode);
        await sleep(duration);
        return `partition leader ${member.id} | ${rest.join(',')} (${mode}) for ${duration} ms`;
      }
      case 'partition-bridge': {
        const shuffled = this.shuffleWith(ids, choice);
        const bridge = shuffled[0] as string;
        const sides = shuffled.slice(1);
        const left = sides.slice(0, Math.floor(sides.length / 2));
        const right = sides.slice(left.length);
        this.chaos.faults.cutBetween(left, right, mode);
        await sleep(duration);
        return `bridge ${left.join(',')} | ${bridge} | ${right.join(',')} (${mode}) for ${duration} ms`;
      }
      case 'membership':
        return this.removeAndRejoin(choice);
      case 'kill-fuse':
        return this.killFuse(choice);
    }
  }

  /**
   * kill -9 of one node's FUSE process; the node starts a new one after its backoff (1 s,
   * doubling), which unmounts the dead mount and mounts again. Waits until it is served again.
   */
  private async killFuse(choice: number): Promise<string> {
    const candidates = this.chaos.running().filter((member) => !member.paused);
    const member = candidates[Math.floor(choice * candidates.length)];
    if (member === undefined) throw new Error('no running node');
    // A node just restarted may not have mounted yet: wait for its FUSE process first.
    const pid = await waitFor(`${member.id}'s FUSE process`, async () => (this.chaos.mountServed(member) ? this.chaos.fusePid(member) : null), 30_000, 100);
    process.kill(pid, 'SIGKILL');
    const killed = Date.now();
    await waitFor(`${member.id} mounted again after its FUSE process was killed`, async () => this.chaos.mountServed(member, pid), 60_000, 100);
    this.fuseKills.set(member.id, (this.fuseKills.get(member.id) ?? 0) + 1);
    return `kill -9 the FUSE process of ${member.id} (pid ${pid}), mounted again after ${Date.now() - killed} ms`;
  }

  /** Nodes whose data folder was wiped (membership): id → when it was last a voter again after starting empty (Date.now()). */
  readonly wiped = new Map<string, number>();
  readonly fuseKills = new Map<string, number>();

  private shuffleWith(ids: readonly string[], choice: number): string[] {
    return new Random(Math.floor(choice * 0xffffffff) || 1).shuffle(ids);
  }

  /**
   * Takes a node out of the configuration (RemovePeer through another node), wipes it and starts
   * it empty: it finds the cluster through its peers, joins as a learner and is promoted.
   */
  private async removeAndRejoin(choice: number): Promise<string> {
    const running = this.chaos.running();
    const victim = running[Math.floor(choice * running.length)];
    if (victim === undefined) throw new Error('no node to remove');
    const others = running.filter((member) => member !== victim);
    const removedAt = Date.now();
    await waitFor(
      `${victim.id} removed from the configuration`,
      async () => {
        const leader = await this.chaos.leader();
        const status = leader === null ? null : await this.chaos.status(leader);
        if (status !== null && leader !== victim && !status.members.some((member) => member.id === victim.id)) return true;
        const asked = others[Math.floor(Math.random() * others.length)];
        await asked?.client.removePeer(victim.id, { timeoutMilliseconds: 5000 }).catch(() => undefined);
        return null;
      },
      30_000,
      500,
    );
    const removalMilliseconds = Date.now() - removedAt;
    await this.chaos.kill(victim);
    rmSync(victim.node.spec.dataFolder, { recursive: true, force: true });
    this.chaos.start(victim);
    const joinedAt = Date.now();
    await waitFor(
      `${victim.id} a voter again`,
      async () => {
        const leader = await this.chaos.leader();
        const status = leader === null ? null : await this.chaos.status(leader);
        return status?.members.some((member) => member.id === victim.id && member.suffrage === 'VOTER') === true;
      },
      60_000,
      250,
    );
    // From here on its cache watcher runs with a fresh index: later changes must replicate.
    this.wiped.set(victim.id, Date.now());
    return `removed ${victim.id} (in ${removalMilliseconds} ms), wiped it, it joined again empty and became a voter in ${Date.now() - joinedAt} ms`;
  }
}
