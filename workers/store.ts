// Composition root of the store actor: opens the state LMDB environment as its only writer and
// wires the StoreActor to the Raft and gRPC actors' channels and to the supervisor.

import { join } from 'node:path';
import { Mailbox } from '../src/actors/mailbox.js';
import type { StoreEvent, StoreReport, StoreRequest } from '../src/actors/protocol.js';
import { StoreActor } from '../src/actors/store-actor.js';
import { reportFatal, workerContext } from '../src/actors/worker-runtime.js';
import { StateMachine } from '../src/store/state-machine.js';
import { stateMachineOptions } from '../src/supervisor/settings.js';

const context = workerContext();
const { settings, logger } = context;

function main(): void {
  let machine: StateMachine;
  const folder = join(settings.dataFolder, 'state');
  try {
    machine = StateMachine.open(folder, stateMachineOptions(settings));
  } catch (error) {
    reportFatal(context, `cannot open the state store in ${folder}: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  const raft = new Mailbox<StoreRequest, StoreReport>(context.port('raft'));
  const api = new Mailbox<never, StoreEvent>(context.port('grpc'));
  const actor = new StoreActor({
    nodeId: settings.nodeId,
    machine,
    toRaft: (report) => raft.send(report),
    toApi: (event) => api.send(event),
    logger,
  });
  raft.receive((request) => actor.handle(request));
  context.control.receive((request) => {
    switch (request.type) {
      case 'handOver':
        context.control.send({ type: 'handedOver', to: null });
        return;
      case 'fuseMetrics':
        // For the gRPC actor only (it serves /metrics); the supervisor never sends it here.
        return;
      case 'stop':
        void actor
          .idle()
          .then(() => machine.close())
          .then(() => context.control.send({ type: 'stopped' }));
        return;
    }
  });
  actor.announce();
  context.control.send({ type: 'started', detail: `state store in ${folder} at applied index ${machine.appliedIndex()}` });
}

main();
