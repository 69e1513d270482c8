// How a node with an empty data folder finds its cluster: the pure decision, given what its
// configured peers answered to `discover`. No sockets or timers here; the Raft actor asks again
// every second until the answer is not `wait`.
//
// - No peers configured: found a one-node cluster at once.
// - A peer already belongs to a cluster: join it through that peer (as a learner, promoted by the
//   leader once caught up).
// - Every configured peer answered, none has a cluster, and all name the same initial members
//   (the compose layout: each node lists the other two): every one of them founds the same
//   cluster — same voters, same addresses, same cluster id (a hash of the members' ids and their
//   random nonces) — so their first log entries agree without any coordinator.
// - Otherwise wait, saying for whom or why.

import { createHash } from 'node:crypto';
import type { NodeId } from '../raft/types.js';

export interface DiscoverRequest {
  readonly kind: 'discover';
  readonly nodeId: NodeId;
  readonly advertise: string;
  readonly nonce: string;
  /** The advertise addresses this node expects the founding members to have: itself and its peers. */
  readonly initialMembers: readonly string[];
}

export interface DiscoverReply {
  readonly kind: 'discoverReply';
  readonly nodeId: NodeId;
  readonly advertise: string;
  readonly nonce: string;
  /** '' while the replying node has not founded or joined a cluster. */
  readonly clusterId: string;
  readonly initialMembers: readonly string[];
}

export interface FormationSelf {
  readonly nodeId: NodeId;
  readonly advertise: string;
  readonly nonce: string;
  /** Configured peer addresses (host:port), as given by -peers. */
  readonly peers: readonly string[];
}

export type FormationDecision =
  | { readonly type: 'wait'; readonly reason: string }
  | {
      readonly type: 'bootstrap';
      readonly clusterId: string;
      readonly voters: readonly NodeId[];
      readonly addresses: Readonly<Record<NodeId, string>>;
    }
  | { readonly type: 'join'; readonly clusterId: string; readonly viaNodeId: NodeId; readonly viaAddress: string };

export function initialMembers(self: FormationSelf): string[] {
  return [...new Set([self.advertise, ...self.peers])].sort();
}

export function discoverRequest(self: FormationSelf): DiscoverRequest {
  return { kind: 'discover', nodeId: self.nodeId, advertise: self.advertise, nonce: self.nonce, initialMembers: initialMembers(self) };
}

/** `replies` maps each configured peer address to the answer heard from it, if any. */
export function decideFormation(self: FormationSelf, replies: ReadonlyMap<string, DiscoverReply>, randomClusterId: string): FormationDecision {
  if (self.peers.length === 0) {
    return { type: 'bootstrap', clusterId: randomClusterId, voters: [self.nodeId], addresses: { [self.nodeId]: self.advertise } };
  }
  for (const [address, reply] of replies) {
    if (reply.clusterId !== '') return { type: 'join', clusterId: reply.clusterId, viaNodeId: reply.nodeId, viaAddress: address };
  }
  const silent = self.peers.filter((peer) => !replies.has(peer));
  if (silent.length > 0) return { type: 'wait', reason: `waiting for ${silent.join(', ')} to answer` };

  const expected = initialMembers(self).join(',');
  const members = new Map<NodeId, { advertise: string; nonce: string }>([[self.nodeId, { advertise: self.advertise, nonce: self.nonce }]]);
  for (const [address, reply] of replies) {
    if (reply.initialMembers.join(',') !== expected) {
      return {
        type: 'wait',
        reason: `${reply.nodeId} at ${address} expects the founding members ${reply.initialMembers.join(', ')}, this node expects ${expected.split(',').join(', ')}: give every founding node the same peers`,
      };
    }
    const known = members.get(reply.nodeId);
    if (known !== undefined && known.advertise !== reply.advertise) {
      return { type: 'wait', reason: `two nodes call themselves ${reply.nodeId} (${known.advertise} and ${reply.advertise}): node ids must be unique` };
    }
    members.set(reply.nodeId, { advertise: reply.advertise, nonce: reply.nonce });
  }
  const voters = [...members.keys()].sort();
  const hash = createHash('sha256');
  for (const id of voters) hash.update(`${id}\u0000${members.get(id)?.nonce ?? ''}\u0000`);
  return {
    type: 'bootstrap',
    clusterId: hash.digest('hex').slice(0, 32),
    voters,
    addresses: Object.fromEntries(voters.map((id) => [id, members.get(id)?.advertise ?? ''])),
  };
}
