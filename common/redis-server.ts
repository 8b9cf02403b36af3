// Starts a private redis-server (Debian's package) on a free loopback port: no persistence, no
// other clients. v4 uses it when no --redis is given; the tests start one per suite.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:port */
  readonly url: string;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export const REDIS_MISSING = "redis-server is not installed: install Debian's package redis-server (apt-get install redis-server, or bash scripts/setup.sh), or give --redis redis://host:port";
const START_TIMEOUT_MS = 10_000;

export interface RedisServerOptions {
  /** A port to take; default a free one. */
  port?: number;
  /** In its own process group (tests, which stop it by group); default false: in the caller's. */
  detached?: boolean;
  /** More configuration, as redis-server takes it on its command line: ['--maxmemory', '2mb']. */
  config?: string[];
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await startOn(port, options.detached ?? false, options.config ?? []);
    } catch (err) {
      // Another process took the free port between our look and redis's bind: take another.
      if (options.port !== undefined || attempt >= 3 || !/Address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

function startOn(port: number, detached: boolean, config: string[]): Promise<RedisServer> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--loglevel', 'warning', '--logfile', '', ...config];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 2_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(kill);
  };
  return new Promise<RedisServer>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`redis-server did not start on port ${port} within ${START_TIMEOUT_MS / 1000} s: ${output.slice(-3).join(' | ')}`));
    }, START_TIMEOUT_MS);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' ? new Error(REDIS_MISSING) : err);
    });
    const early = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${signal ?? code}) before it was ready: ${output.slice(-3).join(' | ')}`));
    };
    child.once('exit', early);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (output.length < 50) output.push(line);
      });
    }
    // Ready when it answers PING: the log line's wording changes between versions, the protocol does not.
    const poll = async (): Promise<void> => {
      while (child.exitCode === null && child.signalCode === null) {
        if (await answersPing(port)) {
          clearTimeout(timer);
          child.off('exit', early);
          return resolve({ port, url: `redis://127.0.0.1:${port}`, child, stop });
        }
        await new Promise((r) => setTimeout(r, 30));
      }
    };
    void poll();
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.setTimeout(500);
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** A port nothing listens on now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
