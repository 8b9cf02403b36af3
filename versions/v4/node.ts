// Starts one v4 node (one Redis) or v5 node (a Redis Cluster) in this process: a backplane client,
// the cluster hub over it, and the shared host in front. The cluster launcher (cluster.ts) starts several, each its own process.
import { startChatServer, type ChatServer, type HostOptions } from '../host.ts';
import { ServerCounters } from '../strategy.ts';
import { resolveVersionOptions, type VersionOptions } from '../version-options.ts';
import { ClusterHub } from './cluster-hub.ts';
import { DEFAULT_ACK_TIMEOUT_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_HISTORY, DEFAULT_HISTORY_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_REPLAY_BYTES, DEFAULT_ROOM_TTL_MS, RedisBackplane } from './redis-backplane.ts';

export interface V4Options {
  /** redis://host:port of the backplane: v4. This or `redisCluster` is required. */
  redis: string;
  /** host:port of members of a Redis Cluster: v5, rooms sharded over its masters. */
  redisCluster: string[];
  /** When a send is acknowledged: once its master has it (default), or a replica too (WAIT 1). */
  ack: 'master' | 'replica';
  /** With ack replica: how long a replica may take to confirm. Default 1,000 ms. */
  ackTimeoutMs: number;
  /** This node's name in the cluster: [A-Za-z0-9_-]{1,32}. Default `n<pid>`. */
  node: string;
  /** Messages of history kept per room. Default 1,000. */
  history: number;
  /** Appends waiting for Redis past which a send is refused. Default 10,000. */
  maxInFlight: number;
  /** Node heartbeat period; 3 missed and others take it out of every room. Default 1,000 ms. */
  heartbeatMs: number;
  /** A room's keys expire in Redis after this long without a send. Default 24 h. */
  roomTtlMs: number;
  /** Bytes of history kept per room, beside `history` entries. Default 8 MiB. */
  historyBytes: number;
  /** Bytes one replay sends at most; what it leaves out is announced as a gap. Default 256 KiB. */
  replayBytes: number;
  /** Run on a Redis that evicts keys. Default false: refused at start, and sends refused if it starts evicting. */
  allowEviction: boolean;
}

export const NODE_NAME = /^[A-Za-z0-9_-]{1,32}$/;

export async function startV4Node(options: Partial<VersionOptions & HostOptions & V4Options> & ({ redis: string } | { redisCluster: string[] })): Promise<ChatServer> {
  const node = options.node ?? `n${process.pid}`;
  if (!NODE_NAME.test(node)) throw new RangeError('options.node must match [A-Za-z0-9_-]{1,32}');
  const history = options.history ?? DEFAULT_HISTORY;
  if (!Number.isInteger(history) || history < 1) throw new RangeError('options.history must be an integer >= 1');
  const cluster = options.redisCluster;
  if (cluster) {
    if (cluster.length === 0 || cluster.some((m) => !/^[^:\s]*:\d{1,5}$/.test(m))) throw new TypeError(`options.redisCluster must be host:port members, not ${JSON.stringify(cluster)}`);
  } else {
    let url: URL;
    try {
      url = new URL(options.redis ?? '');
    } catch {
      throw new TypeError(`options.redis must be a URL like redis://127.0.0.1:6379, not ${JSON.stringify(options.redis)}`);
    }
    if (url.protocol !== 'redis:') throw new TypeError(`options.redis must be a redis:// URL, not ${options.redis}`);
  }
  const ack = options.ack ?? 'master';
  if (ack !== 'master' && ack !== 'replica') throw new RangeError("options.ack must be 'master' or 'replica'");
  const counters = new ServerCounters();
  const backplane = new RedisBackplane({
    ...(cluster ? { cluster } : { url: options.redis! }),
    ack,
    ackTimeoutMs: positive(options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS, 'ackTimeoutMs'),
    node,
    history,
    maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    prefix: 'ce:',
    roomTtlMs: positive(options.roomTtlMs ?? DEFAULT_ROOM_TTL_MS, 'roomTtlMs'),
    historyBytes: positive(options.historyBytes ?? DEFAULT_HISTORY_BYTES, 'historyBytes'),
    replayBytes: positive(options.replayBytes ?? DEFAULT_REPLAY_BYTES, 'replayBytes'),
    allowEviction: options.allowEviction ?? false,
  });
  const hub = new ClusterHub(counters, { ...resolveVersionOptions(options), node, history, version: cluster ? 'v5' : 'v4' }, backplane);
  try {
    await backplane.start(hub);
  } catch (err) {
    await backplane.close();
    throw new Error(`cannot reach ${cluster ? `the Redis Cluster at ${cluster.join(',')}` : `Redis at ${options.redis}`}: ${(err as Error).message}`);
  }
  try {
    const server = await startChatServer(hub, counters, options);
    await backplane.announce(server.url).catch(() => {}); // (Redis gone since: announced again when it is back)
    return server;
  } catch (err) {
    await hub.close();
    throw err;
  }
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`options.${name} must be an integer >= 1`);
  return n;
}
