// The backplane's two connections, to one Redis (v4) or to a Redis Cluster (v5), and what each
// library part does. ioredis's `Redis` talks to one server. Its `Cluster` reads the slot map
// (CLUSTER SLOTS), sends each command to the master of its key's slot, follows MOVED and ASK
// redirections, and reloads the map when a node fails or a redirection says it changed; with
// `shardedSubscribers` it keeps one subscriber connection per master and subscribes each shard
// channel (SSUBSCRIBE) on the master of its slot, again after a failover. This file only chooses
// the options: commands are never queued while a server cannot be reached, and never sent twice.
import { Cluster, Redis } from 'ioredis';
import { SCRIPTS, type Scripts } from './redis-scripts.ts';

/** What the backplane sends commands on: either kind, the scripts defined on it. */
export type RedisClient = (Redis | Cluster) & Scripts;

export interface RedisTarget {
  /** redis://host:port of one Redis. */
  url?: string;
  /** host:port of some members of a Redis Cluster; the rest are found from them. */
  cluster?: readonly string[];
}

export interface RedisConnections {
  /** "redis 127.0.0.1:6379" or "redis-cluster 127.0.0.1:7000 (+5)": for describe lines. */
  readonly describe: string;
  readonly cmd: RedisClient;
  /** Subscribes with SSUBSCRIBE; delivers `smessageBuffer` (channel, message). */
  readonly sub: Redis | Cluster;
  /** With `barriers`: a third connection, like cmd, for --ack replica's WAITs (replica-acks.ts). */
  readonly barriers: RedisClient | null;
}

/** Reconnect delay: 50 ms, growing to 500 ms; never give up. */
const retryStrategy = (times: number): number => Math.min(50 * times, 500);

export function connectRedis(target: RedisTarget, connectionName: string, barriers = false): RedisConnections {
  let cmd: () => Redis | Cluster;
  let sub: Redis | Cluster;
  let describe: string;
  if (target.cluster && target.cluster.length > 0) {
    const seeds = target.cluster.map((hostPort) => {
      const [host, port] = hostPort.split(':');
      return { host: host || '127.0.0.1', port: Number(port) };
    });
    describe = `redis-cluster ${target.cluster[0]}${target.cluster.length > 1 ? ` (+${target.cluster.length - 1})` : ''}`;
    const common = {
      lazyConnect: true,
      clusterRetryStrategy: retryStrategy,
      // A command to a shard in failover is retried this often, 100 ms apart, then refused: the
      // backplane's own bound (backplane.ts) caps the wait the sender sees.
      maxRedirections: 16,
      retryDelayOnClusterDown: 100,
      retryDelayOnFailover: 100,
      redisOptions: { connectionName, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
    } as const;
    cmd = () => new Cluster(seeds, { ...common, enableOfflineQueue: false });
    sub = new Cluster(seeds, { ...common, shardedSubscribers: true, redisOptions: { connectionName } });
  } else {
    if (!target.url) throw new TypeError('a Redis target needs a url or cluster members');
    describe = `redis ${new URL(target.url).host}`;
    const common = { retryStrategy, lazyConnect: true, connectionName } as const;
    const url = target.url;
    cmd = () => new Redis(url, { ...common, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 });
    sub = new Redis(target.url, { ...common, autoResubscribe: true, maxRetriesPerRequest: null });
  }
  const withScripts = (c: Redis | Cluster): RedisClient => {
    for (const [name, def] of Object.entries(SCRIPTS)) c.defineCommand(name, def);
    return c as RedisClient;
  };
  return { describe, cmd: withScripts(cmd()), sub, barriers: barriers ? withScripts(cmd()) : null };
}
