// Which of some files a process on this machine still has open for writing, read from /proc: a
// file is replicated only once its writer has finished, and "it has not changed for a moment" alone
// would replicate half of a file whose writer pauses (a slow download, a program that writes a line
// a second). Each /proc/<pid>/fd/<n> link names an open file; /proc/<pid>/fdinfo/<n> gives its
// open flags. Processes of other users are visible only to root, and those in other PID namespaces
// (another container sharing the folder) not at all: for them only the stability window applies.

// Synchronous on purpose: one scan is ~500 readlinks, 1–2 ms with sync calls but ~16 ms through
// the thread pool, and it runs for every round of uploads.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** O_ACCMODE: the low two bits of the flags are O_RDONLY (0), O_WRONLY (1) or O_RDWR (2). */
const accessModeMask = 0o3;

/** The paths among `paths` (absolute) that some other process has open for writing. */
export function openForWriting(paths: ReadonlySet<string>, procFolder = '/proc'): Set<string> {
  const writing = new Set<string>();
  if (paths.size === 0) return writing;
  let processes: string[];
  try {
    processes = readdirSync(procFolder);
  } catch {
    return writing;
  }
  const own = String(process.pid);
  for (const pid of processes) {
    if (pid === own || !/^\d+$/.test(pid)) continue;
    let descriptors: string[];
    try {
      descriptors = readdirSync(`${procFolder}/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const descriptor of descriptors) {
      let target: string;
      try {
        target = readlinkSync(`${procFolder}/${pid}/fd/${descriptor}`);
      } catch {
        continue;
      }
      if (!paths.has(target) || writing.has(target)) continue;
      try {
        const info = readFileSync(`${procFolder}/${pid}/fdinfo/${descriptor}`, 'utf8');
        const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
        if (flags !== undefined && (Number.parseInt(flags, 8) & accessModeMask) !== 0) writing.add(target);
      } catch {
        // Closed meanwhile: not a writer any more.
      }
    }
  }
  return writing;
}
