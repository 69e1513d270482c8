// When a node is ready for traffic (/readyz): it is a member of a cluster, it knows a leader, and
// it has applied what it knows to be committed, give or take a few entries (a follower that is
// still catching up would answer linearizable reads slowly and show a stale mount).

import type { NodeStatus } from '../api/backend.js';
import type { Readiness } from './http-server.js';

/** Applied entries may trail the commit index by this much under steady writes and still count as caught up. */
export const defaultMaxApplyLagEntries = 100;

export function readinessOf(status: NodeStatus, maxApplyLagEntries = defaultMaxApplyLagEntries): Readiness {
  if (!status.members.some((member) => member.id === status.nodeId)) {
    return { ready: false, reason: `${status.nodeId} is not a member of a cluster yet` };
  }
  if (status.leaderId === '') {
    return { ready: false, reason: `no leader is known (role ${status.role}, term ${status.term})` };
  }
  const lag = status.commitIndex - status.appliedIndex;
  if (status.role !== 'leader' && lag > maxApplyLagEntries) {
    return { ready: false, reason: `catching up: applied ${status.appliedIndex} of ${status.commitIndex} committed entries (more than ${maxApplyLagEntries} behind)` };
  }
  const leader = status.role === 'leader' ? 'this node leads' : `leader ${status.leaderId}`;
  return { ready: true, detail: `${leader}, term ${status.term}, applied ${status.appliedIndex} of ${status.commitIndex}` };
}
