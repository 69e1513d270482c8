// The applied index is written in the same transaction as the data it covers, so a node killed at
// any moment restarts in the exact state of its applied index: nothing half-applied, nothing
// applied twice, nothing it reported as applied lost. Method: a child process applies a
// deterministic log (state-crash-writer) and reports each committed index; this process reads the same
// folder concurrently (a reader in another process, like the gRPC worker or FUSE) checking that
// every file it sees is whole, then kills the child with SIGKILL at a random moment, reopens the
// folder and compares its digest with a reference machine that applied exactly the entries up to
// the recovered applied index. Three rounds, each child resuming where the last one was killed.

import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { StateReader } from '../../src/store/state-reader.js';
import { openMachine, removeFolder, temporaryFolder, testMapSizeBytes } from './state-helpers.js';
import { contentFor, crashWorkloadEntry, seededRandom } from './state-workload.js';

const writerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'state-crash-writer.js');
const digestScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'state-digest.js');

/** Checks that each listed file holds exactly what its entry wrote (never a part of it). */
function checkWholeFiles(reader: StateReader, random: () => number): { checked: number; problems: string[] } {
  const problems: string[] = [];
  let checked = 0;
  const start = 1 + Math.floor(random() * 200);
  const page = reader.list('k/', { pageToken: `k/${start}`, pageSize: 40 });
  for (const info of page.entries) {
    const index = Number(info.key.slice(2));
    const expected = contentFor(index, index % 25 === 0 ? 1024 * 1024 + 100 : 64 + (index % 100));
    const file = reader.get(info.key);
    if (file === null) continue; // deleted between the list and the get: fine
    checked++;
    if (Buffer.compare(Buffer.from(file.data), Buffer.from(expected)) !== 0) problems.push(`${info.key}: ${file.data.length} bytes, not the ${expected.length} written`);
  }
  return { checked, problems };
}

t.test('kill -9 during applies: the state is exactly that of the recovered applied index', async (t) => {
  const folder = temporaryFolder('crash');
  const referenceFolder = temporaryFolder('crash-reference');
  t.teardown(() => {
    // A failed run keeps both folders, so that the difference can be looked at table by table.
    if (t.passing()) [folder, referenceFolder].forEach(removeFolder);
    else process.stderr.write(`crash test: kept the crashed state in ${folder} and the reference in ${referenceFolder}\n`);
  });
  const reference = openMachine(referenceFolder);
  t.teardown(() => reference.close());
  const random = seededRandom(99);
  let recovered = 0;

  for (let round = 1; round <= 3; round++) {
    const child = spawn(process.execPath, [writerScript, folder, '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    let reported = 0;
    let started = -1;
    const target = recovered + 150 + Math.floor(random() * 150);
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          const [word, value] = line.split(' ');
          if (word === 'start') started = Number(value);
          if (word === 'applied') reported = Number(value);
        }
        if (reported >= target) resolve();
      });
      child.on('exit', (code) => reject(new Error(`the writer exited early (${String(code)})`)));
    });
    t.equal(started, recovered, `round ${round}: the writer started from the recovered index`);

    // Read the folder from this process while the child keeps writing.
    const reader = StateReader.open(folder, { mapSizeBytes: testMapSizeBytes });
    const seen = reader.appliedIndex();
    const { checked, problems } = checkWholeFiles(reader, random);
    t.ok(seen >= reported - 10, `round ${round}: a reader in another process sees the writer's commits (${seen})`);
    t.same(problems, [], `round ${round}: ${checked} files read while written, each whole`);
    await reader.close();

    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
    const lastReported = reported;
    child.kill('SIGKILL');
    await exited;

    // Reopened in a fresh process, as a restarted node would: lmdb-js shares one environment per
    // file within a process, so an environment this process opened earlier must not be reused.
    const [appliedText = '', digest = ''] = execFileSync(process.execPath, [digestScript, folder], { encoding: 'utf8' }).trim().split(' ');
    recovered = Number(appliedText);
    t.ok(recovered >= lastReported, `round ${round}: nothing reported as applied is lost (${recovered} ≥ ${lastReported})`);
    const entries = [];
    for (let index = reference.appliedIndex() + 1; index <= recovered; index++) entries.push(crashWorkloadEntry(index));
    reference.apply(entries);
    t.equal(digest, reference.digest(), `round ${round}: the state is exactly that of index ${recovered}`);
  }
});
