// Runs the storage contract suite against the in-memory adapter. The simulator builds its crash
// model on MemoryStorage ("what was written here survived"), so it must honour the same contract
// the LMDB adapter will; any adapter-specific test belongs in its own file, not in the contract.

import t from 'tap';

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { storageContract } from './storage-contract.js';

await storageContract(t, 'MemoryStorage', () => new MemoryStorage());
