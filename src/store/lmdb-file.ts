// Checks an LMDB data file before lmdb-js opens it. lmdb-js 3.5.6 does not throw on a data.mdb
// that is not LMDB's: it crashes the whole process (SIGSEGV), and on one cut short after its meta
// pages it dies of SIGBUS at the first read of a missing page. Both LMDB folders of a node (the
// Raft log, raft-log-lmdb.ts, and the state store, state-machine.ts and state-reader.ts) call
// checkDataFileHeader first, so that such a file is refused with a DfsError that says what is
// wrong and what to do, and nothing in the folder is changed (the file is only read).

import * as fs from 'node:fs';
import { endianness } from 'node:os';
import * as path from 'node:path';

import { DfsError } from '../errors.js';

export const dataFileName = 'data.mdb';
export const lmdbLockFileName = 'lock.mdb';

/** What the messages say about the folder being checked; the rest of each message is shared. */
export interface DataFileWording {
  /** What the folder should hold, after "It may be corrupt or not": e.g. 'a dfs raft log'. */
  readonly expected: string;
  /** What the user can do, one or more whole sentences ending the message. */
  readonly remedy: string;
  /**
   * Decides about a data.mdb of 0 bytes (what an interrupted first open leaves, and what LMDB
   * would initialise as a new environment if opened for writing): the whole message to refuse it
   * with, or null to let LMDB have it.
   */
  readonly emptyFileProblem: (dataPath: string) => string | null;
}

/**
 * Checks the two LMDB meta pages of `folder`/data.mdb, and that the pages they point to are in
 * the file, before it is handed to LMDB. Throws DfsError 'FailedPrecondition' when the file is
 * not a valid LMDB file (or is empty and `wording.emptyFileProblem` refuses that). Returns
 * quietly when there is no data.mdb (LMDB creates one) and on builds whose meta page layout this
 * does not know (other than 64-bit little-endian); an error reading the file (EACCES, EIO) is
 * thrown as it is. Reads the file, never writes it.
 */
export function checkDataFileHeader(folder: string, wording: DataFileWording): void {
  const dataPath = path.join(folder, dataFileName);
  const refuse = (what: string): DfsError =>
    new DfsError(
      'FailedPrecondition',
      `${dataPath} is not a valid LMDB file: ${what}. It may be corrupt or not ${wording.expected}; dfs changed nothing. ${wording.remedy}`,
    );
  let descriptor: number;
  try {
    descriptor = fs.openSync(dataPath, 'r');
  } catch (error) {
    // No file (or no folder) yet: LMDB creates it, or reports the path's problem itself.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw error;
  }
  try {
    const sizeBytes = fs.fstatSync(descriptor).size;
    if (sizeBytes === 0) {
      const problem = wording.emptyFileProblem(dataPath);
      if (problem !== null) throw new DfsError('FailedPrecondition', problem);
      return;
    }
    // The offsets below are those of 64-bit little-endian builds (x64, arm64: where dfs runs).
    if (endianness() !== 'LE' || !['x64', 'arm64', 'ppc64', 'riscv64', 'loong64'].includes(process.arch)) return;
    const first = readMetaPage(descriptor, 0);
    if (first === null) throw refuse(`it has ${sizeBytes} bytes, fewer than one LMDB meta page`);
    const firstProblem = metaPageProblem(first);
    if (firstProblem !== null) throw refuse(`its first page ${firstProblem}`);
    const pageSizeBytes = first.readUInt32LE(metaPageSizeOffset);
    if (pageSizeBytes < 256 || pageSizeBytes > 65536 || (pageSizeBytes & (pageSizeBytes - 1)) !== 0) {
      throw refuse(`its page size ${pageSizeBytes} is not a power of two between 256 and 65536`);
    }
    if (sizeBytes < 2 * pageSizeBytes) throw refuse(`it has ${sizeBytes} bytes, fewer than its two meta pages of ${pageSizeBytes}`);
    const second = readMetaPage(descriptor, pageSizeBytes);
    const secondProblem = second === null ? 'is missing' : metaPageProblem(second);
    if (secondProblem !== null) throw refuse(`its second meta page ${secondProblem}`);
    const cut = rootsPastEnd(descriptor, pageSizeBytes, Math.floor(sizeBytes / pageSizeBytes));
    if (cut !== null) throw refuse(`it has ${Math.floor(sizeBytes / pageSizeBytes)} pages of ${pageSizeBytes} bytes, but ${cut}: it was cut short`);
  } finally {
    fs.closeSync(descriptor);
  }
}

// The layout of an LMDB meta page on a 64-bit machine (lmdb-js's mdb.c: MDB_page_header, then
// MDB_meta with its two MDB_db records, free pages' first, then the main database's).
const metaPageHeaderBytes = 64;
const pageFlagsOffset = 18;
const pageFlagMeta = 0x08;
const metaMagicOffset = 24;
const metaVersionOffset = 28;
const metaPageSizeOffset = 48;
const freeRootOffset = 48 + 40;
const mainRootOffset = 96 + 40;
const metaRootsBytes = mainRootOffset + 8;
/** P_INVALID: the root of an empty tree. */
const noPage = 0xffffffffffffffffn;
const lmdbMagic = 0xbeefc0de;
const lmdbDataVersion = 2;

function readMetaPage(descriptor: number, offset: number): Buffer | null {
  const buffer = Buffer.alloc(metaPageHeaderBytes);
  const read = fs.readSync(descriptor, buffer, 0, metaPageHeaderBytes, offset);
  return read === metaPageHeaderBytes ? buffer : null;
}

function metaPageProblem(page: Buffer): string | null {
  if ((page.readUInt16LE(pageFlagsOffset) & pageFlagMeta) === 0) return 'is not an LMDB meta page';
  const magic = page.readUInt32LE(metaMagicOffset);
  if (magic !== lmdbMagic) return `has the magic number 0x${magic.toString(16)} where LMDB writes 0x${lmdbMagic.toString(16)}`;
  const version = page.readUInt32LE(metaVersionOffset) & 0xffff;
  if (version !== lmdbDataVersion) return `is LMDB data format ${version}; this build of lmdb reads format ${lmdbDataVersion}`;
  return null;
}

/**
 * Whether both meta pages point to a root page past the end of the file (which LMDB would map
 * and read, dying of SIGBUS): a description of it, else null. Only when both do: LMDB may
 * legitimately fall back to the older meta page after a crash (its newer one then may point to
 * pages that never reached the disk), and LMDB never shrinks its file, so a page a meta page
 * points to lies inside an intact file.
 */
function rootsPastEnd(descriptor: number, pageSizeBytes: number, pageCount: number): string | null {
  const problems: string[] = [];
  for (const [which, offset] of [['first', 0], ['second', pageSizeBytes]] as const) {
    const meta = Buffer.alloc(metaRootsBytes);
    if (fs.readSync(descriptor, meta, 0, metaRootsBytes, offset) !== metaRootsBytes) return null;
    const past = [meta.readBigUInt64LE(freeRootOffset), meta.readBigUInt64LE(mainRootOffset)].filter((root) => root !== noPage && root >= BigInt(pageCount));
    if (past.length === 0) return null;
    problems.push(which === 'first' ? `its first meta page points to page ${past[0]}` : `its second to page ${past[0]}`);
  }
  return problems.join(' and ');
}
