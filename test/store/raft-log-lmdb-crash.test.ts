// Whatever persist() + flush() made durable survives a kill -9 of the process that wrote it. Method:
// a child process (fixtures/raft-log-child.ts, mode `write`) persists batches of 16 entries of
// 1 KiB with a hard state and prints "flushed <lastIndex> <term>" after each flush; the parent
// sends SIGKILL while the child keeps writing, reopens the folder, and checks that every entry up
// to the last index the child reported is there with its exact bytes and that the hard state is
// at least as new as the last one reported. A batch the child wrote but did not report may or may
// not be there, but never in part: the log ends on a batch boundary. The child's process lock is
// stale after the kill and is taken over. Repeated a few times, killing at different moments.

import * as path from 'node:path';

import t from 'tap';

import { openRaftLog } from '../../src/store/raft-log-lmdb.js';
import { entryData, silentLogger, startChild, temporaryFolder, waitForExit } from './raft-log-helpers.js';

const rounds = 3;
const batchEntries = 16;

t.test('kill -9 after persist + flush loses nothing that was flushed', async (t) => {
  const folder = path.join(temporaryFolder(t), 'raft');
  let lastReported = 0;
  for (let round = 0; round < rounds; round++) {
    const { child, lines, waitForLine } = startChild(t, ['write', folder, 'n1']);
    // Let it write a while past the last round's index, a different amount each round.
    const target = lastReported + batchEntries * (5 + round * 7);
    await waitForLine((line) => line.startsWith('flushed ') && Number(line.split(' ')[1]) >= target);
    child.kill('SIGKILL');
    await waitForExit(child);
    t.equal(child.signalCode, 'SIGKILL', `round ${round}: killed while writing`);
    const reported = lines.filter((line) => line.startsWith('flushed ')).map((line) => line.split(' ').map(Number));
    const [, reportedIndex = 0, reportedTerm = 0] = reported[reported.length - 1] ?? [];
    t.ok(reportedIndex >= target, `round ${round}: the child reported index ${reportedIndex}`);

    const log = await openRaftLog({ path: folder, nodeId: 'n1', logger: silentLogger() });
    const lastIndex = log.lastIndex();
    t.ok(lastIndex >= reportedIndex, `round ${round}: last index ${lastIndex} ≥ last flushed ${reportedIndex}`);
    t.ok(lastIndex - reportedIndex <= batchEntries, 'at most the batch in flight beyond it');
    t.equal(lastIndex % batchEntries, 0, 'the log ends on a batch boundary: no batch is half there');
    let wrong = 0;
    for (const entry of log.entries(1, lastIndex + 1, Number.MAX_SAFE_INTEGER)) {
      const expected = entryData(entry.index, 1024);
      if (entry.kind !== 'normal' || Buffer.compare(Buffer.from(entry.data), Buffer.from(expected)) !== 0) wrong++;
    }
    t.equal(wrong, 0, `round ${round}: entries 1..${lastIndex} have their exact bytes`);
    t.ok(log.hardState().term >= reportedTerm, 'the hard state is at least the last flushed one');
    t.equal(log.hardState().vote, 'n1', 'the vote');
    t.ok(log.hardState().commit >= reportedIndex - batchEntries, 'the hard state of the last flushed batch or later');
    lastReported = lastIndex;
    await log.close();
  }
});
