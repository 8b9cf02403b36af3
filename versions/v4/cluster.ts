// `npm run v4`: starts N v4 nodes, each its own process on its own port (P, P+1, …), over one
// Redis: the one given with --redis, or a private redis-server on a free loopback port that this
// launcher starts and stops. `npm run v5`: the same nodes over a Redis Cluster, the one given with
// --redis-cluster, or a private one of --shards masters and a replica each (common/redis-cluster.ts). Each node prints its own LISTENING line; this launcher passes them
// on in node order once every node listens. A node that dies (a fault, SIGKILL) is reported, the
// others go on, and it is started again on its port after a backoff (1 s, doubling to 30 s; back
// to 1 s once a node has lived a minute), unless --no-restart. A private Redis that dies is
// reported and started again on its port, empty: the nodes reconnect, and their members are told
// their streams were reset. It returns a handle; the CLI owns the signals and the exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatListening, parseListening, type Listening } from '../protocol.ts';
import { startRedisServer, type RedisServer } from '../../common/redis-server.ts';
import { startRedisCluster, type RedisCluster } from '../../common/redis-cluster.ts';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long a node may take to listen. */
const START_TIMEOUT_MS = 30_000;
/** How long a node gets to close its sockets on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Flags the launcher sets per node itself, or takes for itself; everything else goes to every node as given. */
const OWN_FLAGS = ['--nodes', '--port', '--redis', '--redis-cluster', '--shards', '--cluster-node-timeout', '--node', '--restart', '--no-restart'];
/** A dead node waits this long before it is started again, doubling up to the max; a node that lived RESTART_RESET_MS starts the count over. */
const RESTART_FIRST_MS = 1_000;
const RESTART_MAX_MS = 30_000;
const RESTART_RESET_MS = 60_000;

export interface ClusterOptions {
  /** v4: over one Redis; v5: over a Redis Cluster. Default v4. */
  version?: 'v4' | 'v5';
  nodes: number;
  /** First node's port; 0: every node takes a free one. */
  port: number;
  /** v4: redis://host:port, or undefined for a private redis-server. */
  redis: string | undefined;
  /** v5: host:port,… of a Redis Cluster, or undefined for a private one. */
  redisCluster?: string | undefined;
  /** v5's private cluster: masters (each with a replica), and its cluster-node-timeout. */
  shards?: number;
  clusterNodeTimeoutMs?: number;
  /** The command line after `v4`, passed on to every node without the launcher's own flags. */
  argv: string[];
  /** Start a dead node again (with backoff). Default true; the harness turns it off to measure a node's death. */
  restart: boolean;
}

/** The command line without the launcher's own flags (`--port 1`, `--port=1` alike). */
export function nodeArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === 'v4' || a === 'v5') continue;
    const flag = a.split('=')[0] as string;
    if (OWN_FLAGS.includes(flag)) {
      if (!a.includes('=') && flag !== '--no-restart' && !(flag === '--restart' && !/^(true|false)$/.test(argv[i + 1] ?? ''))) i++; // its value
      continue;
    }
    out.push(a);
  }
  return out;
}

/** A running cluster: where its nodes listen, how to stop it, and when it ended by itself. */
export interface ClusterHandle {
  readonly nodes: Listening[];
  /** What the launcher started besides the nodes: "the private redis-server", "the private Redis Cluster (6 processes)", or null. */
  readonly privateRedis: string | null;
  /** Stops every node, then the private Redis. */
  stop(): Promise<void>;
  /** Resolves with the exit code to give when the cluster ends by itself: every node dead, or its Redis not startable again. */
  readonly ended: Promise<number>;
}

/** Starts the cluster; rejects (having stopped what it started) when a node does not listen. */
export async function runCluster(options: ClusterOptions): Promise<ClusterHandle> {
  const version = options.version ?? 'v4';
  const say = (line: string): void => console.log(`chatroom ${version}: ${line}`);
  const warn = (line: string): void => console.error(`chatroom ${version}: ${line}`);
  let redis: RedisServer | null = null;
  let redisCluster: RedisCluster | null = null;
  let url = options.redis;
  let seeds = options.redisCluster;
  if (version === 'v5') {
    if (!seeds) {
      redisCluster = await startRedisCluster({ shards: options.shards ?? 3, ...(options.clusterNodeTimeoutMs ? { nodeTimeoutMs: options.clusterNodeTimeoutMs } : {}), log: (line) => say(`private ${line}`) });
      seeds = redisCluster.seeds;
    }
  } else if (!url) {
    redis = await startRedisServer();
    url = redis.url;
    say(`private redis-server on ${url} (pid ${redis.child.pid}; no persistence; stopped with the cluster)`);
  }
  const backplaneArgs = version === 'v5' ? ['--redis-cluster', seeds!] : ['--redis', url!];
  type Node = { name: string; port: number; child: ChildProcess; listening: Listening | null; startedAt: number; backoffMs: number };
  const nodes: Node[] = [];
  let stopping = false;
  const alive = (n: Node): boolean => n.child.exitCode === null && n.child.signalCode === null;

  let endWith: (code: number) => void = () => {};
  const ended = new Promise<number>((resolve) => (endWith = resolve));
  let stopped: Promise<void> | null = null;
  /** A private Redis being started again: a stop waits for it, and stops it too. */
  let restarting: Promise<unknown> | null = null;
  const stopAll = (): Promise<void> =>
    (stopped ??= (async () => {
      stopping = true;
      await Promise.all(nodes.map(({ child }) => stopChild(child)));
      await restarting;
      await redis?.stop();
      await redisCluster?.stop();
    })());
  /** The cluster cannot go on: everything stops, and the CLI exits with `code`. */
  const fail = (code: number): void => void stopAll().then(() => endWith(code));

  if (redis) superviseRedis(redis);
  function superviseRedis(r: RedisServer): void {
    r.child.once('exit', (code, signal) => {
      if (stopping) return;
      warn(`private redis-server (pid ${r.child.pid}) exited (${signal ?? `code ${code}`}); starting it again on port ${r.port}, empty: members will be told their streams were reset`);
      // (a stop's signal can reach Redis before the launcher: the restart it starts is stopped with the rest)
      restarting = startRedisServer({ port: r.port }).then(
        (again) => {
          redis = again;
          if (stopping) return;
          warn(`private redis-server back on ${again.url} (pid ${again.child.pid})`);
          superviseRedis(again);
        },
        (err: unknown) => {
          warn(`cannot start redis-server again: ${(err as Error).message}; stopping`);
          fail(1);
        },
      );
    });
  }

  // One secret for every node: a token one node signed (--auth dev) is good on all of them.
  const nodeEnv = { ...process.env, CHAT_JWT_SECRET: process.env.CHAT_JWT_SECRET ?? randomBytes(32).toString('base64url') };

  function spawnNode(node: Node | { name: string; port: number }): Node {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, version, '--node', node.name, '--port', String(node.port), ...backplaneArgs, ...nodeArgs(options.argv)], {
      cwd: ROOT,
      env: nodeEnv,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const entry: Node = 'child' in node ? Object.assign(node, { child, startedAt: Date.now() }) : { ...node, child, listening: null, startedAt: Date.now(), backoffMs: RESTART_FIRST_MS };
    const restarted = 'child' in node;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const listening = parseListening(line);
      // LISTENING lines are printed once every node listens, in node order (below); the rest as they come.
      if (listening && !restarted) entry.listening = listening;
      else if (listening) say(`node ${entry.name} listens again on ${listening.url} (pid ${listening.pid})`);
      else console.log(`[${entry.name}] ${line}`);
    });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      const others = nodes.some((n) => n !== entry && alive(n));
      if (!options.restart || entry.listening === null) {
        warn(`node ${entry.name} (pid ${child.pid}) exited (${signal ?? `code ${code}`})${others ? '; the other nodes go on' : ''}`);
        if (nodes.every((n) => !alive(n))) fail(1);
        return;
      }
      if (Date.now() - entry.startedAt >= RESTART_RESET_MS) entry.backoffMs = RESTART_FIRST_MS;
      entry.port = entry.listening.port; // (started on a free port: it comes back on the same one)
      const wait = entry.backoffMs;
      entry.backoffMs = Math.min(RESTART_MAX_MS, entry.backoffMs * 2);
      warn(`node ${entry.name} (pid ${child.pid}) exited (${signal ?? `code ${code}`})${others ? '; the other nodes go on' : ''}; starting it again in ${wait / 1000} s`);
      setTimeout(() => {
        if (!stopping) spawnNode(entry);
      }, wait).unref();
    });
    return entry;
  }

  for (let i = 0; i < options.nodes; i++) nodes.push(spawnNode({ name: `n${i + 1}`, port: options.port === 0 ? 0 : options.port + i }));

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (nodes.some((n) => n.listening === null)) {
    if (nodes.some((n) => n.listening === null && (n.child.exitCode !== null || n.child.signalCode !== null)) || Date.now() > deadline) {
      const failed = nodes.filter((n) => n.listening === null).map((n) => n.name);
      await stopAll();
      throw new Error(`node(s) ${failed.join(', ')} did not listen`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const n of nodes) console.log(formatListening(n.listening!));
  say(`${nodes.length} nodes up: ${nodes.map((n) => `${n.name} ${n.listening!.url}`).join(', ')}`);
  return { nodes: nodes.map((n) => n.listening!), privateRedis: redis ? 'the private redis-server' : redisCluster ? `the private Redis Cluster (${redisCluster.members.length} processes)` : null, stop: stopAll, ended };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
