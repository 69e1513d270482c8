// Entry point of the FUSE child process: mounts the node's state read-only at the mount point and
// serves it until told to stop. A child process, not a worker thread: fuse-native 2.2.6 runs its
// callbacks on the process's default libuv loop and crashes inside worker_threads (upstream
// fuse-friends/fuse-native#23), and a crash or hang here must not take the Raft node down.
//
//   node dist/src/fs/fuse-process.js --state-folder DIR --mount-point DIR
//        [--allow-other auto|yes|no] [--no-auto-unmount] [--node-id ID] [--log-level info]
//        [--pretty-logs] [--debug]
//
// (DFS_FUSE_STATE_FOLDER and DFS_MOUNT stand in for the two folders.) It logs one line saying it
// is mounted, or one line saying why the mount is off, and then exits with the code
// src/fs/fuse-contract.ts names for that reason, so the node can keep serving gRPC and tell why.
// It unmounts on SIGTERM, SIGINT, or when the IPC channel to its parent closes (the parent died).

import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Logger } from 'pino';

import { DfsError } from '../errors.js';
import { StateReader } from '../store/state-reader.js';
import { createLogger } from '../supervisor/logger.js';
import { fuseExitCodes, parseFuseProcessArguments, type FuseProcessMessage, type FuseProcessOptions } from './fuse-contract.js';
import { FuseOperationMeter } from './fuse-metrics.js';
import { checkFuseAvailable, cleanStaleMount, findFusermount, isMounted, MountError, mountFileSystem, prepareMountPoint, userAllowOther, type Mount } from './mount.js';
import { ReadOnlyFileSystem } from './operations.js';

/** How long to wait for the store worker to create the state store. */
const stateWaitMilliseconds = 10_000;
/** How often to check that the mount is still there (someone may unmount it from outside). */
const mountCheckMilliseconds = 2_000;
/** How often the operation figures go to the supervisor (when they changed). */
const metricsReportMilliseconds = 1_000;

function send(message: FuseProcessMessage): void {
  if (process.send !== undefined && process.connected) process.send(message);
}

async function openState(folder: string): Promise<StateReader> {
  const deadline = Date.now() + stateWaitMilliseconds;
  for (;;) {
    try {
      return StateReader.open(folder);
    } catch (error) {
      if (!(error instanceof DfsError && error.code === 'Unavailable') || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

function storedBytes(folder: string): () => number {
  const file = path.join(folder, 'data.mdb');
  return () => {
    try {
      return fs.statSync(file).size;
    } catch {
      return 0;
    }
  };
}

/** Mounts, then serves until a signal; resolves with the exit code. */
async function serve(options: FuseProcessOptions, logger: Logger): Promise<number> {
  const mountPoint = path.resolve(options.mountPoint);
  const off = (code: number, level: 'warn' | 'error', reason: string): number => {
    logger[level]({ mountPoint, exitCode: code }, `the FUSE mount ${mountPoint} is off: ${reason}`);
    return code;
  };

  let fuseNative;
  let reader: StateReader;
  try {
    fuseNative = checkFuseAvailable();
    const removed = await cleanStaleMount(mountPoint);
    if (removed > 0) logger.info({ mountPoint }, `removed a stale dfs mount at ${mountPoint} (left by a process that died)`);
    prepareMountPoint(mountPoint);
  } catch (error) {
    if (error instanceof MountError) {
      const environmental = error.problem === 'deviceMissing' || error.problem === 'libraryMissing' || error.problem === 'permissionDenied';
      return off(fuseExitCodes[error.problem], environmental ? 'warn' : 'error', error.message);
    }
    return off(fuseExitCodes.mountPointUnusable, 'error', error instanceof Error ? error.message : String(error));
  }
  try {
    reader = await openState(options.stateFolder);
  } catch (error) {
    return off(fuseExitCodes.stateUnavailable, 'error', `cannot read the state store: ${error instanceof Error ? error.message : String(error)}`);
  }

  const allowOther = options.allowOther === 'yes' || (options.allowOther === 'auto' && (process.getuid?.() === 0 || userAllowOther()));
  const autoUnmount = options.autoUnmount && findFusermount() !== null;
  const fileSystem = new ReadOnlyFileSystem(reader, {
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    impliedFolderMilliseconds: Date.now(),
    storedBytes: storedBytes(options.stateFolder),
  });
  // The run names this process's figures: a restarted process counts from 0 under a new one.
  const meter = new FuseOperationMeter(`${process.pid}-${Date.now()}`);
  let mount: Mount;
  try {
    mount = await mountFileSystem(fuseNative, fileSystem, { mountPoint, allowOther, autoUnmount, debug: options.debug, meter }, logger);
  } catch (error) {
    await reader.close();
    return off(error instanceof MountError ? fuseExitCodes[error.problem] : fuseExitCodes.mountFailed, 'error', error instanceof Error ? error.message : String(error));
  }
  logger.info(
    { mountPoint, stateFolder: options.stateFolder, options: mount.options, appliedIndex: reader.appliedIndex() },
    `mounted the replicated state read-only at ${mountPoint} (${mount.options.join(',')})`,
  );
  send({ type: 'mounted', mountPoint, options: mount.options });
  const reportMetrics = (): void => {
    const report = meter.report();
    if (report !== null) send({ type: 'operationMetrics', report });
  };
  // unref: the mount check below is what keeps the process alive.
  const reporter = setInterval(reportMetrics, metricsReportMilliseconds).unref();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      clearInterval(watch);
      clearInterval(reporter);
      // The last figures, before the process goes (the next one counts from 0).
      reportMetrics();
      void (async () => {
        let exitCode = code;
        if (isMounted(mountPoint)) {
          try {
            await mount.unmount();
            logger.info({ mountPoint }, `unmounted ${mountPoint} (${why})`);
          } catch (error) {
            logger.error({ mountPoint }, `cannot unmount ${mountPoint} (${why}): ${error instanceof Error ? error.message : String(error)}`);
            exitCode = fuseExitCodes.crashed;
          }
        }
        send({ type: 'unmounted', mountPoint });
        await reader.close();
        resolve(exitCode);
      })();
    };
    // Also what keeps the process alive: fuse-native's own handles do not hold the event loop.
    const watch = setInterval(() => {
      if (!isMounted(mountPoint)) {
        logger.error({ mountPoint }, `the FUSE mount ${mountPoint} went away (unmounted from outside?): exiting so that it is mounted again`);
        stop('mount lost', fuseExitCodes.mountLost);
      }
    }, mountCheckMilliseconds);
    process.once('SIGTERM', () => stop('SIGTERM', fuseExitCodes.unmounted));
    process.once('SIGINT', () => stop('SIGINT', fuseExitCodes.unmounted));
    process.once('disconnect', () => stop('the parent closed the IPC channel', fuseExitCodes.unmounted));
  });
}

async function main(): Promise<void> {
  const options = parseFuseProcessArguments(process.argv.slice(2), process.env);
  if (typeof options === 'string') {
    process.stderr.write(`dfs fuse process: ${options}\n`);
    process.exit(fuseExitCodes.usage);
  }
  const logger = createLogger({ level: options.logLevel, pretty: options.prettyLogs, base: { node: options.nodeId, actor: 'fuse' } });
  process.on('uncaughtException', (error) => {
    // With auto_unmount, libfuse's fusermount helper unmounts once this process is gone; without
    // it, the next start removes the stale mount.
    logger.fatal({ err: error }, `the FUSE process crashed: ${error.message}`);
    process.exit(fuseExitCodes.crashed);
  });
  process.exit(await serve(options, logger));
}

await main();
