// The supervisor's side of the FUSE process (src/supervisor/fuse-child.ts), with a stand-in child
// (fixtures/fake-fuse.ts) that exits with the codes the real one uses: a machine that cannot mount
// leaves the mount off without retrying (the child said why); a crash is followed by a new child
// after a backoff, until the restart budget is spent (then one error line and off); stop() ends a
// mounted child with SIGTERM, or SIGKILL when it does not go; the child's operation reports reach
// onOperationMetrics as sent, in order. Real processes, bounded waits.

import { fileURLToPath } from 'node:url';

import { pino } from 'pino';
import t from 'tap';

import { fuseExitCodes, type FuseOperationsReport } from '../../src/fs/fuse-contract.js';
import { FuseChild, type FuseState } from '../../src/supervisor/fuse-child.js';

interface LogLine {
  level: number;
  msg: string;
}

const fakeModule = fileURLToPath(new URL('./fixtures/fake-fuse.js', import.meta.url));

function makeChild(behaviour: string, options: { maxRestarts?: number; stopTimeoutMilliseconds?: number } = {}) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (text: string) => lines.push(JSON.parse(text) as LogLine) });
  process.env['FAKE_FUSE'] = behaviour;
  const states: FuseState[] = [];
  const child = new FuseChild({
    stateFolder: '/nonexistent/state',
    mountPoint: '/nonexistent/mount',
    nodeId: 'node1',
    logLevel: 'silent',
    prettyLogs: false,
    logger,
    module: fakeModule,
    initialBackoffMilliseconds: 50,
    maxRestarts: options.maxRestarts ?? 3,
    restartWindowMilliseconds: 60_000,
    stopTimeoutMilliseconds: options.stopTimeoutMilliseconds ?? 5_000,
  });
  child.onState((state) => states.push(state));
  return { child, lines, states };
}

function until(what: string, condition: () => boolean, timeoutMilliseconds = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMilliseconds;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 20);
    };
    check();
  });
}

t.test('a machine that cannot mount: off at once, no restart, no second line', async (t) => {
  for (const code of [fuseExitCodes.deviceMissing, fuseExitCodes.libraryMissing, fuseExitCodes.permissionDenied, fuseExitCodes.mountPointUnusable]) {
    const { child, lines, states } = makeChild(`exit:${code}`);
    child.start();
    await until('the mount to be off', () => child.state === 'off');
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.same(states, ['starting', 'off'], `code ${code}: started once, then off`);
    t.equal(lines.filter((line) => line.level >= 40).length, 0, `code ${code}: nothing above debug (the child logs the reason itself)`);
  }
});

t.test('a crashing child is started again with backoff until the budget is spent', async (t) => {
  const { child, lines, states } = makeChild(`exit:${fuseExitCodes.crashed}`, { maxRestarts: 3 });
  child.start();
  await until('the mount to be given up', () => child.state === 'off');
  t.equal(states.filter((state) => state === 'starting').length, 4, 'the first start and three restarts');
  t.equal(lines.filter((line) => line.level === 40 && /mounting .* again in/.test(line.msg)).length, 3, 'each restart is logged');
  t.match(lines.at(-1)?.msg ?? '', /the FUSE mount \/nonexistent\/mount is off: .* after 3 restarts/, 'then one error line says it is off');
  t.equal(lines.at(-1)?.level, 50);
});

t.test('a child that is lost (mount gone, killed) comes back', async (t) => {
  const { child, states } = makeChild('mount');
  child.start();
  await until('mounted', () => child.state === 'mounted');
  const first = child.pid;
  if (first === null) throw new Error('no pid');
  process.kill(first, 'SIGKILL');
  await until('a second child mounted', () => child.state === 'mounted' && child.pid !== null && child.pid !== first);
  t.same(states, ['starting', 'mounted', 'restarting', 'starting', 'mounted']);
  await child.stop();
  t.equal(child.state, 'stopped');
});

t.test('stop(): SIGTERM unmounts; a child that ignores it is killed after the timeout', async (t) => {
  const polite = makeChild('mount');
  polite.child.start();
  await until('mounted', () => polite.child.state === 'mounted');
  await polite.child.stop();
  t.equal(polite.child.state, 'stopped');
  t.equal(polite.lines.filter((line) => line.level >= 40).length, 0, 'no warning for a clean stop');

  const stubborn = makeChild('stubborn', { stopTimeoutMilliseconds: 300 });
  stubborn.child.start();
  await until('mounted', () => stubborn.child.state === 'mounted');
  await stubborn.child.stop();
  t.equal(stubborn.child.state, 'stopped');
  t.match(stubborn.lines.at(-1)?.msg ?? '', /did not unmount within 300 ms; killing it/);
  t.notOk(stubborn.states.includes('restarting'), 'a stop is not followed by a restart');
});

t.test('the child\'s operation reports reach onOperationMetrics, in order', async (t) => {
  const { child } = makeChild('report');
  process.env['FAKE_FUSE_RUN'] = 'run-7';
  t.teardown(() => {
    delete process.env['FAKE_FUSE_RUN'];
  });
  const reports: FuseOperationsReport[] = [];
  child.onOperationMetrics((report) => reports.push(report));
  child.start();
  await until('two reports', () => reports.length >= 2);
  t.same(reports.map((report) => [report.run, report.operations[0]?.results]), [
    ['run-7', { ok: 2, ENOENT: 1 }],
    ['run-7', { ok: 4, ENOENT: 1 }],
  ]);
  t.equal(child.state, 'mounted', 'reports do not change the state');
  await child.stop();
});
