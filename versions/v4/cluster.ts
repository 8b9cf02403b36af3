// `npm run v4`: starts N v4 nodes, each its own process on its own port (P, P+1, …), over one
// Redis: the one given with --redis, or a private redis-server on a free loopback port that this
// launcher starts and stops. Each node prints its own LISTENING line; this launcher passes them
// on in node order once every node listens. A node that dies (a fault, SIGKILL) is reported and the others go on; SIGINT or
// SIGTERM stops every node, then the private Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatListening, parseListening, type Listening } from '../protocol.ts';
import { startRedisServer, type RedisServer } from '../../common/redis-server.ts';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long a node may take to listen. */
const START_TIMEOUT_MS = 30_000;
/** How long a node gets to close its sockets on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Flags the launcher sets per node itself; everything else goes to every node as given. */
const OWN_FLAGS = ['--nodes', '--port', '--redis', '--node'];

export interface ClusterOptions {
  nodes: number;
  /** First node's port; 0: every node takes a free one. */
  port: number;
  /** redis://host:port, or undefined for a private redis-server. */
  redis: string | undefined;
  /** The command line after `v4`, passed on to every node without the launcher's own flags. */
  argv: string[];
}

/** The command line without the launcher's own flags (`--port 1`, `--port=1` alike). */
export function nodeArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === 'v4') continue;
    const flag = a.split('=')[0] as string;
    if (OWN_FLAGS.includes(flag)) {
      if (!a.includes('=')) i++; // its value
      continue;
    }
    out.push(a);
  }
  return out;
}

export async function runCluster(options: ClusterOptions): Promise<void> {
  let redis: RedisServer | null = null;
  let url = options.redis;
  if (!url) {
    redis = await startRedisServer();
    url = redis.url;
    console.log(`chatroom v4: private redis-server on ${url} (pid ${redis.child.pid}; no persistence; stopped with the cluster)`);
  }
  const nodes: Array<{ name: string; child: ChildProcess; listening: Listening | null }> = [];
  let stopping = false;

  const stopAll = async (code: number): Promise<never> => {
    stopping = true;
    await Promise.all(nodes.map(({ child }) => stopChild(child)));
    await redis?.stop();
    process.exit(code);
  };

  for (let i = 0; i < options.nodes; i++) {
    const name = `n${i + 1}`;
    const port = options.port === 0 ? 0 : options.port + i;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'v4', '--node', name, '--port', String(port), '--redis', url, ...nodeArgs(options.argv)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const entry = { name, child, listening: null as Listening | null };
    nodes.push(entry);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const listening = parseListening(line);
      // LISTENING lines are printed once every node listens, in node order (below); the rest as they come.
      if (listening) entry.listening = listening;
      else console.log(`[${name}] ${line}`);
    });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`chatroom v4: node ${name} (pid ${child.pid}) exited (${signal ?? `code ${code}`})${nodes.some((n) => n.child.exitCode === null && n.child.signalCode === null) ? '; the other nodes go on' : ''}`);
      if (nodes.every((n) => n.child.exitCode !== null || n.child.signalCode !== null)) void stopAll(1);
    });
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      console.log(`chatroom v4: ${signal}, stopping ${nodes.length} nodes${redis ? ' and the private redis-server' : ''}`);
      void stopAll(0);
    });
  }

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (nodes.some((n) => n.listening === null)) {
    if (nodes.some((n) => n.listening === null && (n.child.exitCode !== null || n.child.signalCode !== null)) || Date.now() > deadline) {
      const failed = nodes.filter((n) => n.listening === null).map((n) => n.name);
      console.error(`chatroom v4: cannot start: node(s) ${failed.join(', ')} did not listen`);
      await stopAll(1);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const n of nodes) console.log(formatListening(n.listening!));
  console.log(`chatroom v4: ${nodes.length} nodes up: ${nodes.map((n) => `${n.name} ${n.listening!.url}`).join(', ')}`);
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
