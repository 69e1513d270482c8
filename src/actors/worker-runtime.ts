// What every worker does the same way: read its input, make its logger, speak to the supervisor
// through a control mailbox, and turn an uncaught failure into a `fatal` report or a crash that
// the supervisor sees.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { NodeSettings } from '../supervisor/settings.js';
import type { ActorName, WorkerInput } from '../supervisor/supervisor.js';
import { createLogger } from '../supervisor/logger.js';
import { Mailbox } from './mailbox.js';
import type { ControlReport, ControlRequest } from './protocol.js';

export interface WorkerContext {
  readonly settings: NodeSettings;
  readonly logger: Logger;
  readonly ports: Partial<Record<ActorName, MessagePort>>;
  readonly control: Mailbox<ControlRequest, ControlReport>;
  /** The port to another actor; a programmer error if the supervisor did not provide it. */
  port(actor: ActorName): MessagePort;
}

export function workerContext(): WorkerContext {
  if (parentPort === null) throw new Error('this module runs only inside a worker thread');
  const input = workerData as WorkerInput<NodeSettings>;
  const logger = createLogger({
    level: input.settings.logLevel,
    pretty: input.prettyLogs,
    base: { node: input.settings.nodeId, actor: input.actor },
  });
  const control = new Mailbox<ControlRequest, ControlReport>(parentPort);
  return {
    settings: input.settings,
    logger,
    ports: input.ports,
    control,
    port(actor) {
      const port = input.ports[actor];
      if (port === undefined) throw new Error(`the ${input.actor} actor has no channel to the ${actor} actor`);
      return port;
    },
  };
}

/** Reports a failure that a restart cannot cure, then lets the supervisor end the node. */
export function reportFatal(context: WorkerContext, message: string): void {
  context.logger.fatal(message);
  context.control.send({ type: 'fatal', message });
}
