// Checks a value decoded from a peer frame before anything acts on it. msgpack gives back
// whatever the sender put there, and the Raft core trusts its inputs (a NaN term or a string
// where an index belongs would corrupt its state silently), so every frame is turned into a
// fresh, fully typed object here or rejected with a reason that names the offending field.
//
// Fields the receiver does not know are ignored rather than rejected: a newer node may add a
// field during a rolling upgrade, and only the known fields are copied, so nothing extra reaches
// the core either way.

import type { DiscoverReply, DiscoverRequest } from '../cluster/formation.js';
import type { ConfChange, ConfState, Entry, Message, MessageType, NodeId, Role, SnapshotMeta } from '../raft/types.js';

/** Upper bound for node ids, cluster ids and read request ids, in UTF-16 code units. */
export const maxIdentifierLength = 256;

/** Upper bound for a member's address ('host:port'; a DNS name is at most 253 characters). */
export const maxAddressLength = 512;

/** The first frame on every peer connection, in both directions. */
export interface Hello {
  readonly kind: 'hello';
  /** '' while the node has not joined a cluster yet (see `clusterIdsCompatible`). */
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /**
   * Where the sender can be dialled ('' when unknown). A node that a leader dials before it has
   * any configuration (a joining learner) learns from this where to send its answers.
   */
  readonly advertise: string;
}

/** Upper bound of a discover frame's `initialMembers` (founding members of a cluster). */
export const maxInitialMembers = 64;

/** Upper bound of the members a status reply lists (far above any real configuration). */
export const maxStatusMembers = 1024;

/** One member as the node that answers a status query sees it. */
export interface PeerMemberStatus {
  readonly id: NodeId;
  /** The member's peer address; '' when the answering node does not know it. */
  readonly address: string;
  readonly voter: boolean;
  /** Whether matchIndex and lagEntries are known (the leader tracks them; 0 otherwise). */
  readonly progressKnown: boolean;
  readonly matchIndex: number;
  readonly lagEntries: number;
}

/** The answering node's status: what a NodeStatus needs beyond the envelope (id, term). */
export interface PeerStatus {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly members: readonly PeerMemberStatus[];
}

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/**
 * Not Raft: a node asks another (the leader) for its view of the cluster, which only the leader
 * has (every member's match index). The drivers (Raft actors) ask and answer; the core never sees
 * these. They travel on the same connections as Raft messages and are routed the same way.
 */
export type StatusQuery = Envelope & { readonly type: 'statusQuery'; readonly requestId: string };
export type StatusReply = Envelope & { readonly type: 'statusReply'; readonly requestId: string; readonly status: PeerStatus };

/** A message between the drivers of two nodes, beside the Raft protocol. */
export type DriverMessage = StatusQuery | StatusReply;

/** Everything that is sent to a peer by node id: a Raft message or a driver message. */
export type PeerMessage = Message | DriverMessage;

/** Whether a peer message is for the driver rather than the Raft core. */
export function isDriverMessage(message: PeerMessage): message is DriverMessage {
  return message.type === 'statusQuery' || message.type === 'statusReply';
}

/**
 * Everything that may travel in a frame between peers: a connection starts with a hello (then
 * peer messages follow) or with a discover request (answered by one discover reply, then closed).
 */
export type PeerFrame = Hello | DiscoverRequest | DiscoverReply | PeerMessage;

export type Validation<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Thrown only inside this module, turned into `{ ok: false }` at the exported boundary. */
class Invalid extends Error {}

type Fields = Readonly<Record<string, unknown>>;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'number') return Number.isFinite(value) ? `the number ${value}` : `${value}`;
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function fail(path: string, expected: string, value: unknown): never {
  throw new Invalid(`${path} must be ${expected}, got ${describe(value)}`);
}

/** Own properties only: a key inherited from a prototype is not something the peer sent. */
function field(object: Fields, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function record(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    fail(path, 'an object', value);
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  // msgpack maps decode to plain objects; anything else (a Date, a Map, an Error from a msgpackr
  // extension) is not a message.
  if (prototype !== Object.prototype && prototype !== null) fail(path, 'a plain object', value);
  return value as Fields;
}

function index(object: Fields, key: string, path: string): number {
  const value = field(object, key);
  // Every number in a Raft message is a term, an index, an offset, a size or a counter.
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(`${path}.${key}`, 'a non-negative safe integer', value);
  }
  return value;
}

function flag(object: Fields, key: string, path: string): boolean {
  const value = field(object, key);
  if (typeof value !== 'boolean') fail(`${path}.${key}`, 'a boolean', value);
  return value;
}

function identifierValue(value: unknown, path: string, allowEmpty: boolean): string {
  if (typeof value !== 'string' || value.length > maxIdentifierLength || (!allowEmpty && value.length === 0)) {
    fail(path, `a ${allowEmpty ? '' : 'non-empty '}string of at most ${maxIdentifierLength} characters`, value);
  }
  return value;
}

function identifier(object: Fields, key: string, path: string, allowEmpty = false): string {
  return identifierValue(field(object, key), `${path}.${key}`, allowEmpty);
}

function bytesValue(value: unknown, path: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(path, 'bytes', value);
  // msgpackr hands back Buffers; the core is written against plain Uint8Array. A view over the
  // same memory costs nothing and keeps Buffer-only behaviour (e.g. its equals/toString) out.
  return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function bytes(object: Fields, key: string, path: string): Uint8Array {
  return bytesValue(field(object, key), `${path}.${key}`);
}

function list(object: Fields, key: string, path: string): readonly unknown[] {
  const value = field(object, key);
  if (!Array.isArray(value)) fail(`${path}.${key}`, 'an array', value);
  return value;
}

function addressValue(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxAddressLength) {
    fail(path, `a non-empty string of at most ${maxAddressLength} characters`, value);
  }
  return value;
}

function confState(value: unknown, path: string): ConfState {
  const object = record(value, path);
  const ids = (key: string): NodeId[] =>
    list(object, key, path).map((id, position) => identifierValue(id, `${path}.${key}[${position}]`, false));
  const state = { voters: ids('voters'), learners: ids('learners') };
  const addresses = field(object, 'addresses');
  if (addresses === undefined) return state;
  const map = record(addresses, `${path}.addresses`);
  // fromEntries defines own properties, so even a key named '__proto__' stays plain data.
  const entries = Object.keys(map).map((id) => [
    identifierValue(id, `${path}.addresses key`, false),
    addressValue(map[id], `${path}.addresses[${JSON.stringify(id.slice(0, 64))}]`),
  ]);
  return { ...state, addresses: Object.fromEntries(entries) as Record<NodeId, string> };
}

function confChange(value: unknown, path: string): ConfChange {
  const object = record(value, path);
  const type = field(object, 'type');
  switch (type) {
    case 'bootstrap':
      return { type };
    case 'addLearner': {
      const nodeId = identifier(object, 'nodeId', path);
      const address = field(object, 'address');
      // exactOptionalPropertyTypes: an absent address is absent, never `address: undefined`.
      return address === undefined ? { type, nodeId } : { type, nodeId, address: addressValue(address, `${path}.address`) };
    }
    case 'promote':
    case 'remove':
      return { type, nodeId: identifier(object, 'nodeId', path) };
    default:
      return fail(`${path}.type`, "one of 'bootstrap', 'addLearner', 'promote', 'remove'", type);
  }
}

function entry(value: unknown, path: string): Entry {
  const object = record(value, path);
  const common = { index: index(object, 'index', path), term: index(object, 'term', path) };
  const kind = field(object, 'kind');
  switch (kind) {
    case 'normal':
      return { ...common, kind, data: bytes(object, 'data', path) };
    case 'config':
      return {
        ...common,
        kind,
        change: confChange(field(object, 'change'), `${path}.change`),
        config: confState(field(object, 'config'), `${path}.config`),
      };
    default:
      return fail(`${path}.kind`, "'normal' or 'config'", kind);
  }
}

function snapshotMeta(value: unknown, path: string): SnapshotMeta {
  const object = record(value, path);
  return {
    index: index(object, 'index', path),
    term: index(object, 'term', path),
    config: confState(field(object, 'config'), `${path}.config`),
    sizeBytes: index(object, 'sizeBytes', path),
  };
}

/** Every message type, so a frame's type tag is checked against the union itself. */
const messageTypes: ReadonlySet<string> = new Set<MessageType>([
  'preVote',
  'preVoteResponse',
  'requestVote',
  'requestVoteResponse',
  'appendEntries',
  'appendEntriesResponse',
  'heartbeat',
  'heartbeatResponse',
  'installSnapshot',
  'installSnapshotResponse',
  'timeoutNow',
  'readIndex',
  'readIndexResponse',
  'propose',
  'proposeConfChange',
  'transferLeader',
]);

function isMessageType(value: unknown): value is MessageType {
  return typeof value === 'string' && messageTypes.has(value);
}

function message(value: unknown): Message {
  const object = record(value, 'message');
  const type = field(object, 'type');
  if (!isMessageType(type)) return fail('message.type', 'a known message type', type);
  const path = type;
  const envelope = {
    from: identifier(object, 'from', path),
    to: identifier(object, 'to', path),
    term: index(object, 'term', path),
  };
  switch (type) {
    case 'preVote':
      return {
        ...envelope,
        type,
        lastLogIndex: index(object, 'lastLogIndex', path),
        lastLogTerm: index(object, 'lastLogTerm', path),
      };
    case 'preVoteResponse':
    case 'requestVoteResponse':
      return { ...envelope, type, granted: flag(object, 'granted', path) };
    case 'requestVote':
      return {
        ...envelope,
        type,
        lastLogIndex: index(object, 'lastLogIndex', path),
        lastLogTerm: index(object, 'lastLogTerm', path),
        transfer: flag(object, 'transfer', path),
      };
    case 'appendEntries':
      return {
        ...envelope,
        type,
        prevLogIndex: index(object, 'prevLogIndex', path),
        prevLogTerm: index(object, 'prevLogTerm', path),
        entries: list(object, 'entries', path).map((item, position) => entry(item, `${path}.entries[${position}]`)),
        leaderCommit: index(object, 'leaderCommit', path),
      };
    case 'appendEntriesResponse':
      return {
        ...envelope,
        type,
        success: flag(object, 'success', path),
        matchIndex: index(object, 'matchIndex', path),
        rejectedIndex: index(object, 'rejectedIndex', path),
        conflictIndex: index(object, 'conflictIndex', path),
        conflictTerm: index(object, 'conflictTerm', path),
      };
    case 'heartbeat':
      return { ...envelope, type, commit: index(object, 'commit', path), readRound: index(object, 'readRound', path) };
    case 'heartbeatResponse':
      return { ...envelope, type, readRound: index(object, 'readRound', path) };
    case 'installSnapshot':
      return {
        ...envelope,
        type,
        meta: snapshotMeta(field(object, 'meta'), `${path}.meta`),
        offset: index(object, 'offset', path),
        data: bytes(object, 'data', path),
        done: flag(object, 'done', path),
      };
    case 'installSnapshotResponse':
      return {
        ...envelope,
        type,
        snapshotIndex: index(object, 'snapshotIndex', path),
        nextOffset: index(object, 'nextOffset', path),
        done: flag(object, 'done', path),
        matchIndex: index(object, 'matchIndex', path),
      };
    case 'timeoutNow':
      return { ...envelope, type };
    case 'readIndex':
      return { ...envelope, type, requestId: identifier(object, 'requestId', path) };
    case 'readIndexResponse':
      return {
        ...envelope,
        type,
        requestId: identifier(object, 'requestId', path),
        index: index(object, 'index', path),
      };
    case 'propose':
      return {
        ...envelope,
        type,
        data: list(object, 'data', path).map((item, position) => bytesValue(item, `${path}.data[${position}]`)),
      };
    case 'proposeConfChange':
      return { ...envelope, type, change: confChange(field(object, 'change'), `${path}.change`) };
    case 'transferLeader': {
      // null (or absent) target: the leader chooses.
      const target = field(object, 'target');
      return { ...envelope, type, target: target === undefined || target === null ? null : identifierValue(target, `${path}.target`, false) };
    }
  }
}

const roles: ReadonlySet<string> = new Set<Role>(['follower', 'preCandidate', 'candidate', 'leader']);

function peerMemberStatus(value: unknown, path: string): PeerMemberStatus {
  const object = record(value, path);
  const address = field(object, 'address');
  return {
    id: identifier(object, 'id', path),
    address: address === '' ? '' : addressValue(address, `${path}.address`),
    voter: flag(object, 'voter', path),
    progressKnown: flag(object, 'progressKnown', path),
    matchIndex: index(object, 'matchIndex', path),
    lagEntries: index(object, 'lagEntries', path),
  };
}

function peerStatus(value: unknown, path: string): PeerStatus {
  const object = record(value, path);
  const role = field(object, 'role');
  if (typeof role !== 'string' || !roles.has(role)) fail(`${path}.role`, "one of 'follower', 'preCandidate', 'candidate', 'leader'", role);
  const leader = field(object, 'leader');
  const memberList = list(object, 'members', path);
  if (memberList.length > maxStatusMembers) fail(`${path}.members`, `at most ${maxStatusMembers} members`, memberList);
  return {
    role: role as Role,
    leader: leader === null ? null : identifierValue(leader, `${path}.leader`, false),
    commitIndex: index(object, 'commitIndex', path),
    appliedIndex: index(object, 'appliedIndex', path),
    firstIndex: index(object, 'firstIndex', path),
    lastIndex: index(object, 'lastIndex', path),
    members: memberList.map((item, position) => peerMemberStatus(item, `${path}.members[${position}]`)),
  };
}

function driverMessage(object: Fields, type: DriverMessage['type']): DriverMessage {
  const path = type;
  const envelope = {
    from: identifier(object, 'from', path),
    to: identifier(object, 'to', path),
    term: index(object, 'term', path),
    requestId: identifier(object, 'requestId', path),
  };
  switch (type) {
    case 'statusQuery':
      return { ...envelope, type };
    case 'statusReply':
      return { ...envelope, type, status: peerStatus(field(object, 'status'), `${path}.status`) };
  }
}

function peerMessage(value: unknown): PeerMessage {
  const object = record(value, 'message');
  const type = field(object, 'type');
  if (type === 'statusQuery' || type === 'statusReply') return driverMessage(object, type);
  return message(object);
}

function hello(value: unknown): Hello {
  const object = record(value, 'hello');
  if (field(object, 'kind') !== 'hello') fail('hello.kind', "'hello'", field(object, 'kind'));
  return {
    kind: 'hello',
    clusterId: identifier(object, 'clusterId', 'hello', true),
    nodeId: identifier(object, 'nodeId', 'hello'),
    advertise: field(object, 'advertise') === undefined || field(object, 'advertise') === '' ? '' : addressValue(field(object, 'advertise'), 'hello.advertise'),
  };
}

function initialMembers(object: Fields, path: string): string[] {
  const members = list(object, 'initialMembers', path);
  if (members.length > maxInitialMembers) fail(`${path}.initialMembers`, `at most ${maxInitialMembers} addresses`, members);
  return members.map((address, position) => addressValue(address, `${path}.initialMembers[${position}]`));
}

function discoverRequest(value: unknown): DiscoverRequest {
  const object = record(value, 'discover');
  return {
    kind: 'discover',
    nodeId: identifier(object, 'nodeId', 'discover'),
    advertise: addressValue(field(object, 'advertise'), 'discover.advertise'),
    nonce: identifier(object, 'nonce', 'discover', true),
    initialMembers: initialMembers(object, 'discover'),
  };
}

function discoverReply(value: unknown): DiscoverReply {
  const object = record(value, 'discoverReply');
  return {
    kind: 'discoverReply',
    nodeId: identifier(object, 'nodeId', 'discoverReply'),
    advertise: addressValue(field(object, 'advertise'), 'discoverReply.advertise'),
    nonce: identifier(object, 'nonce', 'discoverReply', true),
    clusterId: identifier(object, 'clusterId', 'discoverReply', true),
    initialMembers: initialMembers(object, 'discoverReply'),
  };
}

function validated<T>(check: (value: unknown) => T, value: unknown): Validation<T> {
  try {
    return { ok: true, value: check(value) };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: error.message };
    throw error;
  }
}

/** A decoded value as a Raft `Message`: a fresh object with exactly the declared fields. */
export function validateMessage(value: unknown): Validation<Message> {
  return validated(message, value);
}

export function validateHello(value: unknown): Validation<Hello> {
  return validated(hello, value);
}

export function validateDiscoverRequest(value: unknown): Validation<DiscoverRequest> {
  return validated(discoverRequest, value);
}

export function validateDiscoverReply(value: unknown): Validation<DiscoverReply> {
  return validated(discoverReply, value);
}

/** A Raft message or a driver message (status query and reply), tagged by `type`. */
export function validatePeerMessage(value: unknown): Validation<PeerMessage> {
  return validated(peerMessage, value);
}

/** A handshake frame (tagged by `kind`) or a peer message (tagged by `type`). */
export function validatePeerFrame(value: unknown): Validation<PeerFrame> {
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, 'kind')) return validatePeerMessage(value);
  const kind = (value as Fields)['kind'];
  switch (kind) {
    case 'hello':
      return validateHello(value);
    case 'discover':
      return validateDiscoverRequest(value);
    case 'discoverReply':
      return validateDiscoverReply(value);
    default:
      return { ok: false, reason: `frame kind must be 'hello', 'discover' or 'discoverReply', got ${describe(kind)}` };
  }
}
