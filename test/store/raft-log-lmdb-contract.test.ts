// Runs the storage port's contract suite (test/raft/storage-contract.ts) against the LMDB adapter,
// the same suite MemoryStorage passes, so the core can rely on the port's doc comments whichever
// adapter the driver gives it. Method: every case opens a new log in its own temporary folder
// (removed afterwards) and closes it at the end of the case; everything else is the shared suite.

import t from 'tap';

import { storageContract } from '../raft/storage-contract.js';
import { openTestLog } from './raft-log-helpers.js';

await storageContract(t, 'LmdbRaftLog', (t) => openTestLog(t));
