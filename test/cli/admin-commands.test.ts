// transfer-leader, snapshot and watch against fake clients. Goal: the commands call the client
// with the right arguments and print a line or JSON; transfer-leader goes to the node asked (a
// follower sends it on to the leader), does nothing when the target already leads, and says so
// when no leader is known. Method: each command's run() with a hand-made context whose client()
// returns a fake; output recorded.

import t from 'tap';
import { parseArgs } from '../../src/cli/args.js';
import type { Command, CommandContext } from '../../src/cli/command.js';
import { snapshot, transferLeader } from '../../src/cli/commands/cluster.js';
import { watch, type WatchEvent } from '../../src/cli/commands/watch.js';
import { exitCodes } from '../../src/cli/exit-codes.js';
import { globalOptions } from '../../src/cli/help.js';

async function runCommand(command: Command, argv: string[], client: object, signal = new AbortController().signal): Promise<string> {
  let stdout = '';
  const output = { write: (text: string | Uint8Array) => ((stdout += String(text)), true), once: () => undefined };
  const args = parseArgs(argv, [...globalOptions, ...command.options]);
  const context: CommandContext = {
    args,
    json: args.options.has('json'),
    endpoints: ['fake:1'],
    client: async () => client as never,
    stdout: output,
    stderr: output,
    stdin: (async function* () {})(),
    stdinIsTTY: false,
    signal,
    now: () => 0,
  };
  await command.run(context);
  return stdout;
}

t.test('transfer-leader asks the leader, and does nothing when the target already leads', async (t) => {
  const calls: Array<string | undefined> = [];
  const leader = {
    status: async () => ({ nodeId: 'node1', leaderId: 'node1', leaderAddress: '127.0.0.1:12001' }),
    transferLeadership: async (to?: string) => {
      calls.push(to);
      return { leaderId: to ?? 'node3' };
    },
  };
  t.equal(await runCommand(transferLeader, ['node2'], leader), 'leadership moved from node1 to node2\n');
  t.equal(await runCommand(transferLeader, [], leader), 'leadership moved from node1 to node3\n');
  t.same(calls, ['node2', undefined]);
  t.equal(await runCommand(transferLeader, ['node1'], leader), 'node1 already leads\n');
  t.same(JSON.parse(await runCommand(transferLeader, ['node1', '--json'], leader)), { leaderId: 'node1', moved: false });
  t.same(calls, ['node2', undefined], 'no call when the target leads already');
  const leaderless = { status: async () => ({ nodeId: 'node1', leaderId: '', leaderAddress: '' }), transferLeadership: async () => ({ leaderId: '' }) };
  await t.rejects(runCommand(transferLeader, ['node2'], leaderless), { exitCode: exitCodes.failed, message: /no leader is known/ });
});

t.test('transfer-leader given only a follower asks that follower, which sends it on to the leader', async (t) => {
  const calls: Array<string | undefined> = [];
  const follower = {
    status: async () => ({ nodeId: 'node2', leaderId: 'node1', leaderAddress: '127.0.0.1:12001' }),
    transferLeadership: async (to?: string) => {
      calls.push(to);
      return { leaderId: to ?? 'node3' };
    },
  };
  t.equal(await runCommand(transferLeader, ['node2'], follower), 'leadership moved from node1 to node2\n');
  t.same(JSON.parse(await runCommand(transferLeader, ['--json'], follower)), { leaderId: 'node3', moved: true });
  t.same(calls, ['node2', undefined], 'the follower was asked, with and without a target');
});

t.test('snapshot prints its index and size', async (t) => {
  const client = { snapshot: async () => ({ index: 1234, sizeBytes: 3 * 1024 * 1024 }) };
  t.equal(await runCommand(snapshot, [], client), 'snapshot at index 1234, 3.00 MiB\n');
  t.same(JSON.parse(await runCommand(snapshot, ['--json'], client)), { index: 1234, sizeBytes: 3 * 1024 * 1024 });
});

t.test('watch prints each event and passes fromVersion and the signal', async (t) => {
  const events: WatchEvent[] = [
    { version: 7, type: 'PUT', key: 'docs/a.txt', info: { sizeBytes: 5 } },
    { version: 8, type: 'DELETE', key: 'docs/a.txt' },
  ];
  const seen: unknown[] = [];
  const client = {
    async *watch(prefix: string, options: { fromVersion?: number; signal?: AbortSignal }) {
      seen.push(prefix, options.fromVersion, options.signal !== undefined);
      yield* events;
    },
  };
  t.equal(await runCommand(watch, ['/docs/', '--from-version', '7'], client), '       7  PUT     docs/a.txt  5 B\n       8  DELETE  docs/a.txt\n');
  t.same(seen, ['docs/', 7, true]);
  const lines = (await runCommand(watch, ['--json'], client)).trimEnd().split('\n');
  t.same(lines.map((line) => JSON.parse(line)), events, 'one JSON object per line');
});
