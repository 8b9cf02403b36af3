// The catalogue of versions: their names, default ports, and one way to start any of them in this
// process (v4: one node of a cluster; v4/cluster.ts launches several, each its own process).
import { startChatServer, type ChatServer, type HostOptions } from './host.ts';
import { ServerCounters, type Strategy } from './strategy.ts';
import { NaivePool } from './v1/naive-pool.ts';
import { MutexPool } from './v2/mutex-pool.ts';
import { Hub } from './v3/hub.ts';
import { startV4Node, type V4Options } from './v4/node.ts';
import { resolveVersionOptions, type VersionOptions } from './version-options.ts';

export const VERSION_NAMES = ['v1', 'v1.1', 'v2', 'v3', 'v4', 'v5'] as const;
export type VersionName = (typeof VERSION_NAMES)[number];
/** The versions that are one process with no backplane: a strategy of their own, nothing else. */
export type OneProcessVersion = Exclude<VersionName, 'v4' | 'v5'>;

/** Default port per version, so all of them can run at once (v4, v5: their first node). */
export const DEFAULT_PORTS: Record<VersionName, number> = { v1: 8081, 'v1.1': 8081, v2: 8082, v3: 8083, v4: 8084, v5: 8094 };

export function isVersionName(name: string): name is VersionName {
  return (VERSION_NAMES as readonly string[]).includes(name);
}

export function isOneProcessVersion(name: string): name is OneProcessVersion {
  return isVersionName(name) && name !== 'v4' && name !== 'v5';
}

export function createStrategy(version: OneProcessVersion, counters: ServerCounters, partial: Partial<VersionOptions> = {}): Strategy {
  const o = resolveVersionOptions(partial);
  switch (version) {
    case 'v1':
      return new NaivePool(counters, { prune: false });
    case 'v1.1':
      return new NaivePool(counters, { prune: true });
    case 'v2':
      return new MutexPool(counters, { holdMs: o.holdMs });
    case 'v3':
      return new Hub(counters, o); // (HubOptions is the v3 part of VersionOptions)
  }
}

/** Starts `version` in this process; v4 (one node) needs `redis`, v5 (one node) `redisCluster`. */
export function startVersion(version: VersionName, options: Partial<VersionOptions & HostOptions & V4Options> = {}): Promise<ChatServer> {
  if (version === 'v5') {
    const { redisCluster } = options;
    if (redisCluster === undefined) return Promise.reject(new Error('a v5 node needs --redis-cluster host:port,… (npm run v5 without --node starts its nodes and a private Redis Cluster)'));
    return startV4Node({ ...options, redisCluster });
  }
  if (version === 'v4') {
    const { redis } = options;
    if (redis === undefined) return Promise.reject(new Error('a v4 node needs --redis redis://host:port (npm run v4 without --node starts a cluster and its Redis)'));
    return startV4Node({ ...options, redis });
  }
  const counters = new ServerCounters();
  return startChatServer(createStrategy(version, counters, options), counters, options);
}
