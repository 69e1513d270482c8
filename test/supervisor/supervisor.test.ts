// The supervisor's restart policy, with stand-in actors (fixtures/actor.ts) that crash or fail on
// purpose: a crash restarts every actor in order after a backoff; repeated crashes beyond the
// budget end the node with exit code 1 and the reason; a fatal report (a port in use) ends it
// at once without retrying; a graceful stop ends it with 0; send() hands a control message (the FUSE
// process's figures) to the one actor named, and only while it runs. Real worker threads, no
// sleeps: each test awaits the supervisor's own `done`, or polls with a bound.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import type { FixtureSettings } from './fixtures/actor.js';

interface LogLine {
  level: number;
  msg: string;
}

function run(t: Test, settings: Omit<FixtureSettings, 'markerFile'>, maxRestarts = 2) {
  const folder = mkdtempSync(join(tmpdir(), 'dfs-supervisor-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (text: string) => lines.push(JSON.parse(text) as LogLine) });
  const supervisor = new Supervisor<FixtureSettings>({
    settings: { ...settings, markerFile: join(folder, 'crashed') },
    logger,
    prettyLogs: false,
    workerUrl: () => new URL('./fixtures/actor.js', import.meta.url),
    startTimeoutMilliseconds: 10_000,
    handOverTimeoutMilliseconds: 500,
    maxRestarts,
    restartWindowMilliseconds: 60_000,
  });
  return { supervisor, lines, markerFile: join(folder, 'crashed') };
}

t.test('a crashed actor is restarted together with the others, then the node stops cleanly', async (t) => {
  const { supervisor, lines } = run(t, { misbehaving: 'raft', behaviour: 'crashOnce' });
  await supervisor.start();
  // Wait until the restart has happened, then stop gracefully.
  for (let attempt = 0; attempt < 200 && !lines.some((line) => line.msg.startsWith('actors restarted')); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.ok(lines.some((line) => /raft actor exited with code 1; restarting all actors in 500 ms/.test(line.msg)), 'the crash is logged with the backoff');
  t.ok(lines.some((line) => line.msg === 'actors restarted after the raft actor crashed'), 'the actors came back');
  await supervisor.stop('test over');
  t.equal(await supervisor.done, 0, 'graceful stop: exit code 0');
});

t.test('an actor that keeps crashing ends the node with code 1 and the reason', async (t) => {
  const { supervisor, lines } = run(t, { misbehaving: 'store', behaviour: 'crashAlways' }, 2);
  await supervisor.start();
  t.equal(await supervisor.done, 1, 'exit code 1');
  const fatal = lines.find((line) => line.level === 60);
  t.match(fatal?.msg ?? '', /store actor exited with code 1, and the actors were already restarted 2 times/, 'the reason names the actor and the budget');
});

t.test('a fatal report ends the node at once, without restarts', async (t) => {
  const { supervisor, lines } = run(t, { misbehaving: 'grpc', behaviour: 'fatal' });
  await supervisor.start();
  t.equal(await supervisor.done, 1, 'exit code 1');
  t.ok(lines.some((line) => line.level === 60 && line.msg === 'grpc: the port is in use'), 'the fatal message is the reason');
  t.notOk(lines.some((line) => /restarting/.test(line.msg)), 'no restart was tried');
});

t.test('send() reaches the named actor while it runs, and is refused once it stopped', async (t) => {
  const { supervisor, markerFile } = run(t, { misbehaving: 'none', behaviour: 'none' });
  await supervisor.start();
  const report = { run: '123-456', operations: [{ op: 'read' as const, results: { ok: 3, EIO: 1 }, bucketCounts: [0, 4], sumSeconds: 0.25 }] };
  t.equal(supervisor.send('grpc', { type: 'fuseMetrics', report }), true, 'the gRPC actor runs: sent');
  const written = `${markerFile}.grpc.fuse-metrics.json`;
  for (let attempt = 0; attempt < 400 && !existsSync(written); attempt++) await new Promise((resolve) => setTimeout(resolve, 25));
  t.same(JSON.parse(readFileSync(written, 'utf8')), report, 'the report arrives as it was sent');
  t.notOk(existsSync(`${markerFile}.raft.fuse-metrics.json`), 'the other actors get nothing');
  await supervisor.stop('test over');
  t.equal(await supervisor.done, 0);
  t.equal(supervisor.send('grpc', { type: 'fuseMetrics', report }), false, 'stopped: dropped');
});
