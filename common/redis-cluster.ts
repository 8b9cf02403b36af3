// Starts a private Redis Cluster (Debian's redis-server and redis-cli) on free loopback ports:
// N masters and a replica behind each, no persistence. v5 uses it when no --redis-cluster is
// given; the tests start one per suite. The cluster itself is Redis's: `redis-cli --cluster
// create` assigns the 16,384 hash slots to the masters and a replica to each, and the nodes elect
// a replica in place of a master that stops answering for `cluster-node-timeout`.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedisServer, type RedisServer } from './redis-server.ts';

const run = promisify(execFile);
/** Redis's cluster bus listens on the client port + 10,000. */
const BUS_OFFSET = 10_000;
const READY_TIMEOUT_MS = 30_000;
export const DEFAULT_NODE_TIMEOUT_MS = 1_000;
/**
 * A replica's first sync starts at once (a master otherwise waits 5 s for more replicas to share
 * one diskless transfer), and a replica whose link to its master is down may still be elected:
 * the private cluster holds no data before its replicas sync (waitOk waits for them).
 */
const REPLICATION = ['--repl-diskless-sync-delay', '0'];
/** A shard without a master stops only its own slots: the other shards go on serving theirs. */
const COVERAGE = ['--cluster-require-full-coverage', 'no'];
/**
 * A member that dies is started again on its port, with its nodes.conf, once the others have marked
 * it failed and no longer give it slots: it comes back as a replica of whoever took its place.
 * Started sooner, a master with no persistence would come back empty, keep its slots, and its
 * replica would copy the emptiness (Redis's docs warn of it).
 */
const RESTART_POLL_MS = 200;
const RESTART_GIVE_UP_MS = 60_000;

export interface RedisClusterOptions {
  /** Masters; each gets one replica. Default 3. */
  shards?: number;
  /** How long a master may not answer before its replica is elected in its place (cluster-node-timeout). Default 1,000 ms. */
  nodeTimeoutMs?: number;
  /** Each redis-server in its own process group (tests stop them by group). Default false. */
  detached?: boolean;
  /** Reports a line per process started and per process that dies. Default: nothing. */
  log?: (line: string) => void;
  /** Start a member that dies again, on its port, after 1 s: it rejoins as a replica of whoever took its place. Default true. */
  restart?: boolean;
}

export interface ClusterMember {
  readonly port: number;
  /** The process now (a new one after a restart). */
  server: RedisServer;
  /** As created: a master (serves slots) or a replica (of `replicaOf`'s port). Failovers change it; ask `roles()`. */
  readonly createdAs: 'master' | 'replica';
}

export interface RedisCluster {
  readonly members: readonly ClusterMember[];
  /** host:port of every member, as --redis-cluster takes them. */
  readonly seeds: string;
  readonly nodeTimeoutMs: number;
  /** Each member's role now, by port, as it says itself (ROLE). */
  roles(): Promise<Map<number, { role: 'master' | 'replica' | 'down'; masterPort?: number }>>;
  /** Waits until every live member reports cluster_state:ok, every slot has a master, and every replica's link to its master is up. */
  waitOk(timeoutMs?: number): Promise<void>;
  /** Stops every member; resolves once all have exited. */
  stop(): Promise<void>;
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const shards = options.shards ?? 3;
  if (!Number.isInteger(shards) || shards < 3) throw new RangeError('a Redis Cluster needs at least 3 masters (--shards >= 3)');
  const nodeTimeoutMs = options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  const log = options.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'ce-cluster-'));
  const members: ClusterMember[] = [];
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(members.map((m) => m.server.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const config = (port: number): string[] => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', String(nodeTimeoutMs), '--dir', dir, ...REPLICATION, ...COVERAGE];
    const watch = (member: ClusterMember): void => {
      const { child } = member.server;
      child.once('exit', (code, signal) => {
        if (stopping) return;
        const again = options.restart ?? true;
        log(`redis-server on 127.0.0.1:${member.port} (pid ${child.pid}) exited (${signal ?? `code ${code}`})${again ? '; it is started again as a replica once the cluster has failed it over' : ''}`);
        if (!again) return;
        void (async () => {
          const deadline = Date.now() + RESTART_GIVE_UP_MS;
          while (!stopping && !(await failedOver(members, member.port))) {
            if (Date.now() > deadline) return log(`redis-server on 127.0.0.1:${member.port} is not started again: the cluster did not fail it over within ${RESTART_GIVE_UP_MS / 1000} s`);
            await new Promise((r) => setTimeout(r, RESTART_POLL_MS));
          }
          if (stopping) return;
          const server = await startRedisServer({ port: member.port, detached: options.detached ?? false, config: config(member.port) }).catch((err: Error) => {
            log(`redis-server on 127.0.0.1:${member.port} could not be started again: ${err.message}`);
            return null;
          });
          if (!server) return;
          if (stopping) return void server.stop();
          member.server = server;
          log(`redis-server on 127.0.0.1:${member.port} started again (pid ${server.child.pid})`);
          watch(member);
        })();
      });
    };
    for (let i = 0; i < shards * 2; i++) {
      const port = await clusterPort();
      const server = await startRedisServer({ port, detached: options.detached ?? false, config: config(port) });
      const member: ClusterMember = { port, server, createdAs: i < shards ? 'master' : 'replica' };
      members.push(member);
      log(`redis-server ${member.createdAs === 'master' ? 'master' : 'replica'} on 127.0.0.1:${port} (pid ${server.child.pid})`);
      watch(member);
    }
    // redis-cli takes the first `shards` addresses as masters and gives each a replica from the rest.
    const addresses = members.map((m) => `127.0.0.1:${m.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'], { timeout: READY_TIMEOUT_MS }).catch((err: NodeJS.ErrnoException & { stdout?: string }) => {
      if (err.code === 'ENOENT') throw new Error("redis-cli is not installed: install Debian's package redis-server (apt-get install redis-server, or bash scripts/setup.sh)");
      throw new Error(`redis-cli --cluster create failed: ${(err.stdout ?? err.message).trim().split('\n').slice(-3).join(' | ')}`);
    });
    const cluster: RedisCluster = {
      members,
      seeds: addresses.join(','),
      nodeTimeoutMs,
      roles: () => rolesOf(members),
      waitOk: (timeoutMs = READY_TIMEOUT_MS) => waitOk(members, timeoutMs),
      stop,
    };
    await cluster.waitOk();
    log(`cluster ok: ${shards} masters, ${shards} replicas, cluster-node-timeout ${nodeTimeoutMs} ms`);
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

const live = (m: ClusterMember): boolean => m.server.child.exitCode === null && m.server.child.signalCode === null;

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 5_000 });
  return stdout;
}

async function rolesOf(members: readonly ClusterMember[]): Promise<Map<number, { role: 'master' | 'replica' | 'down'; masterPort?: number }>> {
  const out = new Map<number, { role: 'master' | 'replica' | 'down'; masterPort?: number }>();
  await Promise.all(
    members.map(async (m) => {
      if (!live(m)) return out.set(m.port, { role: 'down' });
      const lines = (await cli(m.port, 'ROLE').catch(() => '')).trim().split('\n');
      if (lines[0] === 'master') out.set(m.port, { role: 'master' });
      else if (lines[0] === 'slave') out.set(m.port, { role: 'replica', masterPort: Number(lines[2]) });
      else out.set(m.port, { role: 'down' });
    }),
  );
  return out;
}

async function waitOk(members: readonly ClusterMember[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const states = await Promise.all(
      members.filter(live).map(async (m) => {
        const info = await cli(m.port, 'CLUSTER', 'INFO').catch((err: Error) => err.message);
        const replication = await cli(m.port, 'INFO', 'replication').catch((err: Error) => err.message);
        const synced = /role:master/.test(replication) || /master_link_status:up/.test(replication);
        return { port: m.port, ok: /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info) && synced };
      }),
    );
    if (states.length > 0 && states.every((s) => s.ok)) return;
    last = states.filter((s) => !s.ok).map((s) => s.port).join(', ');
    if (Date.now() > deadline) throw new Error(`the Redis Cluster was not ok within ${timeoutMs / 1000} s (not ok: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether the live members mark `port` failed and serve its slots elsewhere (CLUSTER NODES, asked of one). */
async function failedOver(members: readonly ClusterMember[], port: number): Promise<boolean> {
  const asked = members.find((m) => m.port !== port && live(m));
  if (!asked) return false;
  const line = (await cli(asked.port, 'CLUSTER', 'NODES').catch(() => '')).split('\n').find((l) => l.includes(` 127.0.0.1:${port}@`));
  if (!line) return false;
  const [, , flags = ''] = line.split(' ');
  // (fields: id, address, flags, master, ping, pong, epoch, link, slots…)
  return flags.includes('fail') && !flags.includes('fail?') && line.split(' ').length <= 8;
}

/** A free loopback port whose cluster-bus port (+10,000) is free too. */
async function clusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 35_000);
    if ((await bindable(port)) && (await bindable(port + BUS_OFFSET))) return port;
  }
  throw new Error('found no free pair of loopback ports (port and port + 10,000) for a Redis Cluster member');
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
