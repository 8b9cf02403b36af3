// Starts one version as its own process (its own process group), waits until it listens and
// answers /healthz, and stops it: SIGTERM to the group, then SIGKILL. The harness never imports
// a version's internals; it talks to the CLI and to HTTP like any user.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseListening, type Listening } from '../versions/protocol.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** How long a server may take to print LISTENING. */
const START_TIMEOUT_MS = 20_000;
/** How long SIGTERM gets before SIGKILL. */
const STOP_GRACE_MS = 5_000;

/** How a server process ended before anyone asked it to. */
export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** process.hrtime.bigint() when it ended: the harness places it on the run's clock. */
  atNs: bigint;
}

export interface ServerProcess {
  /** What it announced; for a v4 cluster, its first node. */
  readonly info: Listening;
  /** Every node that announced itself: one for v1-v3, `--nodes` for v4. */
  readonly nodes: Listening[];
  /** v4 with a private Redis: that redis-server's pid (for its CPU). */
  readonly redisPid: number | null;
  readonly child: ChildProcess;
  /** Everything the server printed, for a report or a failure message. */
  readonly output: string[];
  /** What it printed on stderr: a crash's last words are there. */
  readonly stderr: string[];
  /** Set if the process ended before stop() was called: it crashed, or something killed it. */
  readonly exited: ServerExit | null;
  /** SIGTERM to the process group, SIGKILL after a grace period. Resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Every process group this process started that has not exited yet. */
const started = new Set<ChildProcess>();

/** Registers a child started in its own process group, so stopAllStarted() can reach it. */
export function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/**
 * Stops every process group still running that this process started. For a signal: the finally
 * blocks that stop them in order do not run when the process is told to end.
 */
export async function stopAllStarted(): Promise<void> {
  await Promise.all([...started].map((child) => stopProcessGroup(child, 2_000)));
}

/**
 * Spawns a node script, TypeScript loaded by tsx's hooks (`node --import tsx`), in a new process
 * group. One process, not tsx's CLI wrapper: the wrapper relays a signal to its child and, when the
 * child has not acknowledged it within 30 ms (a busy machine), SIGKILLs it mid-shutdown and exits
 * 143. The caller must `stop()` it in a finally; a process left behind is a bug.
 */
export function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return track(
    spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      detached: true, // its own process group, so stopping it stops everything it started
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    }),
  );
}

export function stopProcessGroup(child: ChildProcess, graceMs = STOP_GRACE_MS): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(kill);
      resolve(code);
    });
    signalGroup(child, 'SIGTERM');
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // negative pid: the whole group we started
  } catch {
    // already gone
  }
}

/** The CLI that starts a version; the harness starts nothing else but the tests' own misbehaving servers. */
export const VERSIONS_CLI = 'versions/cli.ts';

/**
 * `versionArgs`: e.g. ['v3', '--on-full', 'drop']. `--port 0` is added unless given. `script`: any
 * server that prints the same LISTENING line and serves /healthz (the tests' misbehaving servers).
 */
/** `rateLimit`: keep the version's own per-connection rate limit (the flood scenario). */
export async function startServerProcess(versionArgs: string[], script = VERSIONS_CLI, env: NodeJS.ProcessEnv = {}, o: { rateLimit?: boolean } = {}): Promise<ServerProcess> {
  let args = versionArgs.includes('--port') ? versionArgs : [...versionArgs, '--port', '0'];
  // A scenario's sender stands for many people: a version's per-connection rate limit (fairness,
  // v3 and v4) would cap the load it offers, so the harness measures versions without it.
  if (script === VERSIONS_CLI && !o.rateLimit && !args.includes('--max-msgs-per-s')) args = [...args, '--max-msgs-per-s', '0'];
  // A node the scenario kills stays dead: the run measures its clients going elsewhere.
  if (script === VERSIONS_CLI && args[0] === 'v4' && !args.some((a) => a.startsWith('--restart') || a === '--no-restart')) args = [...args, '--no-restart'];
  const child = spawnTs(script, args, env);
  // v4 announces each of its nodes on a line of its own: wait for all of them.
  const nodesFlag = args.indexOf('--nodes');
  const expected = args[0] === 'v4' ? (nodesFlag >= 0 ? Number(args[nodesFlag + 1]) : 2) : 1;
  const nodes: Listening[] = [];
  let redisPid: number | null = null;
  const output: string[] = [];
  const stderr: string[] = [];
  let stopping = false;
  let exited: ServerExit | null = null;
  child.once('exit', (code, signal) => {
    if (!stopping) exited = { code, signal, atNs: process.hrtime.bigint() };
  });
  const stop = (): Promise<number | null> => {
    stopping = true;
    return stopProcessGroup(child);
  };
  try {
    const info = await new Promise<Listening>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server ${args.join(' ')} did not start in ${START_TIMEOUT_MS} ms:\n${output.join('\n')}`)), START_TIMEOUT_MS);
      const onLine = (line: string): void => {
        output.push(line);
        const listening = parseListening(line);
        const redis = /private redis-server on \S+ \(pid (\d+)/.exec(line);
        if (redis) redisPid = Number(redis[1]);
        if (listening) nodes.push(listening);
        if (listening && nodes.length === expected) {
          clearTimeout(timer);
          resolve(nodes[0] as Listening);
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', (l) => {
        output.push(l);
        stderr.push(l);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server ${args.join(' ')} exited with ${code}:\n${output.join('\n')}`));
      });
    });
    for (const node of nodes) {
      const health = await fetch(`${node.url}healthz`);
      if (!health.ok) throw new Error(`server ${args.join(' ')}: ${node.url}healthz answered ${health.status}`);
    }
    return {
      info,
      nodes,
      redisPid,
      child,
      output,
      stderr,
      get exited() {
        return exited;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
