// Which node dfsctl talks to: the endpoints come from --endpoints, else DFS_ENDPOINTS, else
// 127.0.0.1:13000; every one is probed with a Status call under a short deadline at once, and the
// first to answer wins (any node serves every call: followers forward writes to the leader). The
// client is injected, so tests choose among fake clients.

import { exitCodes } from './exit-codes.js';
import { CliError, UsageError } from './failure.js';

export const defaultEndpoint = '127.0.0.1:13000';
export const probeTimeoutMilliseconds = 2000;

/** The endpoint list: the flag wins over the environment, which wins over the default. */
export function resolveEndpoints(flag: string | undefined, environment: string | undefined): string[] {
  const source = flag ?? (environment !== undefined && environment.trim() !== '' ? environment : defaultEndpoint);
  const endpoints = source
    .split(',')
    .map((endpoint) => endpoint.trim())
    .filter((endpoint) => endpoint !== '');
  if (endpoints.length === 0) throw new UsageError('--endpoints is empty', 'pass --endpoints HOST:PORT[,HOST:PORT...]');
  for (const endpoint of endpoints) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(endpoint)) throw new UsageError(`endpoint "${endpoint}" must be HOST:PORT (the node's gRPC address, e.g. 127.0.0.1:13001)`, 'pass --endpoints HOST:PORT[,HOST:PORT...]');
  }
  return [...new Set(endpoints)];
}

/** The part of a client the probe needs. */
export interface ProbeClient {
  status(options: { timeoutMilliseconds: number }): Promise<unknown>;
  close(): void;
}

export interface EndpointFailure {
  readonly endpoint: string;
  readonly reason: string;
}

function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    // grpc-js wraps a refused connection in a long sentence; the socket error is what matters.
    const message = /Last error: (?:Error: )?(.*?)\.? Resolution note/.exec(error.message)?.[1] ?? error.message;
    return typeof code === 'string' ? `${code}: ${message}` : message;
  }
  return String(error);
}

export class NoLiveEndpointError extends CliError {
  constructor(readonly failures: readonly EndpointFailure[]) {
    super(
      exitCodes.noLiveEndpoint,
      `no live endpoint: ${failures.map((failure) => `${failure.endpoint} (${failure.reason})`).join('; ')}`,
      'is a dfs node running? start one with `npm run cluster` or pass --endpoints HOST:PORT,... (or set DFS_ENDPOINTS) naming nodes\' gRPC addresses',
    );
  }
}

/**
 * Whether a Status answer comes from a member of a cluster with a known leader: such a node can
 * serve any command (followers forward). A node that was removed from the cluster but still runs,
 * or one cut off from the others, answers too, yet can do nothing.
 */
export function servesCluster(status: unknown): boolean {
  if (typeof status !== 'object' || status === null) return false;
  const { nodeId, leaderId, members } = status as { nodeId?: unknown; leaderId?: unknown; members?: unknown };
  if (typeof leaderId !== 'string' || leaderId === '') return false;
  // Without a member list (an older node, a fake), a known leader is enough.
  if (!Array.isArray(members)) return true;
  return members.some((member: unknown) => typeof member === 'object' && member !== null && (member as { id?: unknown }).id === nodeId);
}

/**
 * The first endpoint whose Status shows a member of a cluster with a known leader (servesCluster);
 * when no endpoint does, the first that answered at all. Closes every other client.
 */
export async function findLiveEndpoint<C extends ProbeClient>(endpoints: readonly string[], connect: (endpoint: string) => C, timeoutMilliseconds = probeTimeoutMilliseconds): Promise<{ endpoint: string; client: C }> {
  const failures: EndpointFailure[] = [];
  const clients = endpoints.map((endpoint) => ({ endpoint, client: connect(endpoint) }));
  let winner: { endpoint: string; client: C } | null = null;
  let firstAnswer: { endpoint: string; client: C } | null = null;
  await new Promise<void>((resolve) => {
    let pending = clients.length;
    const settled = (): void => {
      if (--pending === 0) resolve();
    };
    for (const candidate of clients) {
      candidate.client.status({ timeoutMilliseconds }).then(
        (status) => {
          firstAnswer ??= candidate;
          if (winner === null && servesCluster(status)) {
            winner = candidate;
            resolve();
          }
          settled();
        },
        (error: unknown) => {
          failures.push({ endpoint: candidate.endpoint, reason: reasonOf(error) });
          settled();
        },
      );
    }
  });
  const chosen = (winner ?? firstAnswer) as { endpoint: string; client: C } | null;
  for (const candidate of clients) if (candidate !== chosen) candidate.client.close();
  if (chosen === null) {
    const order = new Map(endpoints.map((endpoint, index) => [endpoint, index]));
    throw new NoLiveEndpointError(failures.sort((a, b) => (order.get(a.endpoint) ?? 0) - (order.get(b.endpoint) ?? 0)));
  }
  return chosen;
}

/** Every endpoint's Status (for `dfsctl status`), in the order given; failures as reasons. */
export async function probeAll<C extends ProbeClient, S>(endpoints: readonly string[], connect: (endpoint: string) => C, status: (client: C) => Promise<S>): Promise<Array<{ endpoint: string; status: S } | { endpoint: string; reason: string }>> {
  return Promise.all(
    endpoints.map(async (endpoint) => {
      const client = connect(endpoint);
      try {
        return { endpoint, status: await status(client) };
      } catch (error) {
        return { endpoint, reason: reasonOf(error) };
      } finally {
        client.close();
      }
    }),
  );
}
