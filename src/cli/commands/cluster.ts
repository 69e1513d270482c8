// Cluster commands: status (every endpoint asked at once, one table), members list|add|remove,
// transfer-leader (any node sends it on to the leader) and snapshot.

import type { ClusterMember, ClusterStatus, DfsClient } from '../../client/client.js';
import { DfsClient as GrpcDfsClient } from '../../client/client.js';
import { expectPositionals } from '../args.js';
import { printJson, printLines, type Command, type CommandContext } from '../command.js';
import { probeAll, probeTimeoutMilliseconds } from '../endpoints.js';
import { exitCodes } from '../exit-codes.js';
import { CliError, UsageError } from '../failure.js';
import { formatBytes, formatTable, type Column } from '../format.js';

export interface StatusRow {
  readonly id: string;
  readonly address: string;
  /** The gRPC endpoint that answered as this node; '' when none of the endpoints is this node. */
  readonly endpoint: string;
  readonly role: string;
  readonly suffrage: string;
  readonly leader: boolean;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  /** Entries behind the leader's log, as the leader tracks it; null when no leader answered. */
  readonly lagEntries: number | null;
}

/**
 * One row per member, merged from every answer: the leader's view gives the membership and each
 * member's lag; a node's own answer gives its role, term and indexes.
 */
export function statusRows(answers: ReadonlyArray<{ endpoint: string; status: ClusterStatus }>): StatusRow[] {
  const leaderView = answers.find((answer) => answer.status.role === 'LEADER')?.status;
  const view = leaderView ?? answers[0]?.status;
  if (view === undefined) return [];
  const leaderId = leaderView?.nodeId ?? view.leaderId;
  const members = new Map<string, ClusterMember>(view.members.map((member) => [member.id, member]));
  // A node that answered but is not in the chosen view (removed, or not yet known) still gets a row.
  for (const answer of answers) if (!members.has(answer.status.nodeId)) members.set(answer.status.nodeId, { id: answer.status.nodeId, address: '', role: answer.status.role, suffrage: '', progressKnown: false, matchIndex: 0, lagEntries: 0 });
  return [...members.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((member) => {
      const own = answers.find((answer) => answer.status.nodeId === member.id);
      const tracked = leaderView?.members.find((candidate) => candidate.id === member.id);
      return {
        id: member.id,
        address: member.address,
        endpoint: own?.endpoint ?? '',
        role: own?.status.role ?? (member.role === 'ROLE_UNKNOWN' ? '' : member.role),
        suffrage: member.suffrage,
        leader: member.id === leaderId,
        term: own?.status.term ?? null,
        commitIndex: own?.status.commitIndex ?? null,
        appliedIndex: own?.status.appliedIndex ?? null,
        lagEntries: tracked === undefined ? null : tracked.id === leaderId ? 0 : tracked.progressKnown ? tracked.lagEntries : null,
      };
    });
}

const dash = (value: number | null): string => (value === null ? '-' : String(value));

export function formatStatusTable(rows: readonly StatusRow[]): string[] {
  const columns: Column[] = [
    { header: 'NODE' },
    { header: 'ADDRESS' },
    { header: 'ENDPOINT' },
    { header: 'ROLE' },
    { header: 'SUFFRAGE' },
    { header: 'TERM', align: 'right' },
    { header: 'COMMIT', align: 'right' },
    { header: 'APPLIED', align: 'right' },
    { header: 'LAG', align: 'right' },
  ];
  return formatTable(
    columns,
    rows.map((row) => [`${row.leader ? '*' : ' '} ${row.id}`, row.address, row.endpoint || '-', row.role || '-', row.suffrage || '-', dash(row.term), dash(row.commitIndex), dash(row.appliedIndex), dash(row.lagEntries)]),
  );
}

export const status: Command = {
  name: 'status',
  usage: 'dfsctl status',
  summary: 'the cluster as a table: roles, terms, indexes, lag; the leader marked *',
  description:
    'Asks every endpoint for Status at once and prints one row per member: node id, Raft address, the gRPC endpoint that answered as that node, role, suffrage, term, commit and applied index, and lag (entries behind the leader, as the leader tracks it). * marks the leader. Term and indexes are shown for the members whose gRPC endpoint is among --endpoints; pass every node (--endpoints a:13001,b:13002,c:13003) to see them all. Endpoints that did not answer are listed below the table.\n\nExample:\n  dfsctl --endpoints 127.0.0.1:13001,127.0.0.1:13002,127.0.0.1:13003 status',
  options: [],
  async run(context) {
    expectPositionals(context.args, 0, 0, this.usage);
    const probes = await probeAll(context.endpoints, (endpoint) => new GrpcDfsClient(endpoint), (client) => client.status({ timeoutMilliseconds: probeTimeoutMilliseconds }));
    const answers = probes.flatMap((probe) => ('status' in probe ? [probe] : []));
    const failures = probes.flatMap((probe) => ('reason' in probe ? [probe] : []));
    if (answers.length === 0) throw new CliError(exitCodes.noLiveEndpoint, `no live endpoint: ${failures.map((failure) => `${failure.endpoint} (${failure.reason})`).join('; ')}`, 'is a dfs node running? start one with `npm run cluster` or pass --endpoints');
    const rows = statusRows(answers);
    if (context.json) return printJson(context, { leaderId: rows.find((row) => row.leader)?.id ?? '', members: rows, unreachable: failures });
    const leader = rows.find((row) => row.leader);
    printLines(context, [...formatStatusTable(rows), leader === undefined ? 'no leader known: an election is going on, or a majority is down' : `* leader: ${leader.id}`, ...failures.map((failure) => `unreachable: ${failure.endpoint} (${failure.reason})`)]);
  },
};

async function membersList(context: CommandContext, client: DfsClient): Promise<void> {
  const view = await client.status();
  if (context.json) return printJson(context, { leaderId: view.leaderId, members: view.members });
  printLines(
    context,
    formatTable(
      [{ header: 'NODE' }, { header: 'ADDRESS' }, { header: 'SUFFRAGE' }, { header: 'ROLE' }],
      view.members.map((member) => [`${member.id === view.leaderId ? '*' : ' '} ${member.id}`, member.address, member.suffrage, member.role === 'ROLE_UNKNOWN' ? '-' : member.role]),
    ),
  );
}

export const members: Command = {
  name: 'members',
  usage: 'dfsctl members list | add ID RAFT_ADDRESS | remove ID',
  summary: 'list, add or remove cluster members',
  description:
    'list: every member with its Raft address and suffrage (* marks the leader).\nadd ID RAFT_ADDRESS: adds a node as a learner (AddPeer); start it with -id ID -raft RAFT_ADDRESS -peers <a member> and it becomes a voter once caught up.\nremove ID: takes a member out (RemovePeer); then stop that node.\n\nExamples:\n  dfsctl members list\n  dfsctl members add node4 127.0.0.1:12004\n  dfsctl members remove node4',
  options: [],
  async run(context) {
    const [action, ...rest] = context.args.positionals;
    const client = async (): Promise<DfsClient> => context.client();
    switch (action ?? 'list') {
      case 'list':
        if (rest.length > 0) throw new UsageError(`members list takes no arguments: usage: ${this.usage}`);
        return membersList(context, await client());
      case 'add': {
        const [id, address] = rest;
        if (id === undefined || address === undefined || rest.length > 2) throw new UsageError(`usage: dfsctl members add ID RAFT_ADDRESS (e.g. node4 127.0.0.1:12004)`);
        await (await client()).addPeer(id, address);
        if (context.json) printJson(context, { added: id, address });
        else printLines(context, [`added ${id} (${address}) as a learner; start it with -id ${id} -raft ${address} -peers <a member's raft address>`]);
        return;
      }
      case 'remove': {
        const [id] = rest;
        if (id === undefined || rest.length > 1) throw new UsageError('usage: dfsctl members remove ID');
        await (await client()).removePeer(id);
        if (context.json) printJson(context, { removed: id });
        else printLines(context, [`removed ${id}; stop that node now`]);
        return;
      }
      default:
        throw new UsageError(`unknown members action "${action}": usage: ${this.usage}`);
    }
  },
};

/** What transfer-leader needs of a node: who it is, who leads, and the call itself. */
export type LeaderClient = Pick<DfsClient, 'status' | 'transferLeadership'>;

export const transferLeader: Command = {
  name: 'transfer-leader',
  usage: 'dfsctl transfer-leader [ID]',
  summary: 'hand leadership to member ID (or the most caught-up one)',
  description:
    'Asks the leader to hand over leadership to ID, or to the voter that is most caught up when no ID is given; returns once the new leader leads. Any member can be asked: a follower sends the request on to the leader.\n\nExample:\n  dfsctl transfer-leader node2',
  options: [],
  async run(context) {
    const [to] = expectPositionals(context.args, 0, 1, this.usage);
    const first = (await context.client()) as LeaderClient;
    const view = await first.status();
    if (view.leaderId === '') throw new CliError(exitCodes.failed, 'no leader is known right now', 'an election is going on or a majority is down: retry in a few seconds; `dfsctl status` shows who answers');
    if (to === view.leaderId) {
      if (context.json) printJson(context, { leaderId: view.leaderId, moved: false });
      else printLines(context, [`${to} already leads`]);
      return;
    }
    // Any node will do: a follower sends the request on to the leader and answers once it leads.
    const result = await first.transferLeadership(to);
    if (context.json) printJson(context, { leaderId: result.leaderId, moved: true });
    else printLines(context, [`leadership moved from ${view.leaderId} to ${result.leaderId}`]);
  },
};

export const snapshot: Command = {
  name: 'snapshot',
  usage: 'dfsctl snapshot',
  summary: 'make the answering node compact its Raft log into a snapshot now',
  description: 'Asks the node to take a snapshot of its state now (instead of waiting for -snapshot-entries) and prints the log index it covers and its size.\n\nExample:\n  dfsctl --endpoints 127.0.0.1:13002 snapshot',
  options: [],
  async run(context) {
    expectPositionals(context.args, 0, 0, this.usage);
    const result = await (await context.client()).snapshot();
    if (context.json) printJson(context, result);
    else printLines(context, [`snapshot at index ${result.index}, ${formatBytes(result.sizeBytes)}`]);
  },
};
