// Membership: applying a single-server change to a configuration, and majority arithmetic.

import type { ConfChange, ConfState, NodeId } from './types.js';

export function isVoter(config: ConfState, id: NodeId): boolean {
  return config.voters.includes(id);
}

export function isMember(config: ConfState, id: NodeId): boolean {
  return config.voters.includes(id) || config.learners.includes(id);
}

export function members(config: ConfState): NodeId[] {
  return [...config.voters, ...config.learners];
}

/** The configuration that results from `change`, or the reason it is not allowed. */
export function applyConfChange(config: ConfState, change: ConfChange): ConfState | string {
  switch (change.type) {
    case 'bootstrap':
      return 'bootstrap is only written by bootstrap()';
    case 'addLearner':
      if (change.nodeId.length === 0) return 'a node id must not be empty';
      if (isMember(config, change.nodeId)) return `${change.nodeId} is already a member`;
      return withAddress(
        { voters: config.voters, learners: [...config.learners, change.nodeId].sort() },
        config.addresses,
        change.nodeId,
        change.address,
      );
    case 'promote':
      if (!config.learners.includes(change.nodeId)) return `${change.nodeId} is not a learner`;
      return withAddress(
        { voters: [...config.voters, change.nodeId].sort(), learners: config.learners.filter((id) => id !== change.nodeId) },
        config.addresses,
        null,
        undefined,
      );
    case 'remove':
      if (!isMember(config, change.nodeId)) return `${change.nodeId} is not a member`;
      if (config.voters.length === 1 && config.voters[0] === change.nodeId) return 'the last voter cannot be removed';
      return withAddress(
        {
          voters: config.voters.filter((id) => id !== change.nodeId),
          learners: config.learners.filter((id) => id !== change.nodeId),
        },
        config.addresses,
        null,
        undefined,
      );
  }
}

/** Carries the address book over to a new configuration, keeping only members' entries. */
function withAddress(
  config: ConfState,
  addresses: Readonly<Record<NodeId, string>> | undefined,
  addedId: NodeId | null,
  addedAddress: string | undefined,
): ConfState {
  const book: Record<NodeId, string> = {};
  for (const id of members(config)) {
    const address = id === addedId && addedAddress !== undefined ? addedAddress : addresses?.[id];
    if (address !== undefined) book[id] = address;
  }
  return Object.keys(book).length === 0 ? config : { ...config, addresses: book };
}

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The largest index that a majority of `voters` has reached (0 with no voters). */
export function quorumIndex(voters: readonly NodeId[], indexOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const sorted = voters.map(indexOf).sort((a, b) => b - a);
  return sorted[majority(voters.length) - 1] ?? 0;
}

/** Whether the voters that `agrees` approves of form a majority. */
export function hasQuorum(voters: readonly NodeId[], agrees: (id: NodeId) => boolean): boolean {
  return voters.filter(agrees).length >= majority(voters.length);
}
