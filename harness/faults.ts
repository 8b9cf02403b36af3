// The faults a scenario injects mid-window into a v4 cluster and its Redis: a node killed, Redis
// killed and started again, its connections cut, paused, out of memory. Each is told as a
// FaultEvent on the run's clock, which the report draws and the verdict excuses.
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../common/redis-server.ts';
import type { Listening } from '../versions/protocol.ts';
import type { FaultEvent } from './cluster-figures.ts';
import type { ScenarioConfig } from './scenarios.ts';
import { spawnTs, stopProcessGroup, track, type ServerProcess } from './server-process.ts';

const FLOODER = 'harness/flooder.ts';

/** redis-kill: how many times Redis closes the nodes' connections, and how far apart. */
const REDIS_KILLS = 5;
const REDIS_KILL_GAP_MS = 300;

export interface FaultContext {
  config: ScenarioConfig;
  server: ServerProcess | null;
  /** The Redis the run started (broker-outage replaces it with a new one). */
  redis: RedisServer | null;
  /** ws URLs of the nodes the fault killed, and what was injected. */
  killed: string[];
  faults: FaultEvent[];
  /** Seconds since sending began, to a tenth. */
  atS(): number;
  /** flood: where the abusive client connects, and when the measured window ends (s after sending began). */
  wsUrl: string;
  windowEndS: number;
}

export async function injectFault(ctx: FaultContext): Promise<void> {
  if (ctx.config.fault === 'flood') return flood(ctx);
  if (ctx.config.fault === 'node-kill' && ctx.server) {
    const victim = ctx.server.nodes.at(-1) as Listening;
    const at = ctx.atS();
    process.kill(victim.pid, 'SIGKILL');
    ctx.killed.push(victim.wsUrl);
    ctx.faults.push({ kind: 'node-kill', atS: at, endS: null, detail: `node ${victim.node} (pid ${victim.pid}, ${victim.url}) killed with SIGKILL` });
  } else if (ctx.config.fault === 'broker-outage' && ctx.redis) {
    const at = ctx.atS();
    const port = ctx.redis.port;
    await ctx.redis.stop(0);
    await sleep(ctx.config.outageS * 1000);
    ctx.redis = await startRedisServer({ port, detached: true });
    track(ctx.redis.child);
    ctx.faults.push({ kind: 'broker-outage', atS: at, endS: ctx.atS(), detail: `redis-server on port ${port} killed, and started again (empty: no persistence)` });
  } else if ((ctx.config.fault === 'redis-kill' || ctx.config.fault === 'redis-pause' || ctx.config.fault === 'redis-oom') && ctx.redis) {
    const admin = new Redis(ctx.redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    try {
      const at = ctx.atS();
      if (ctx.config.fault === 'redis-kill') {
        let killed = 0;
        for (let i = 0; i < REDIS_KILLS; i++) {
          if (i > 0) await sleep(REDIS_KILL_GAP_MS);
          killed += Number(await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
        }
        ctx.faults.push({ kind: 'redis-kill', atS: at, endS: ctx.atS(), detail: `redis-server closed ${killed} node connections (CLIENT KILL TYPE normal, ${REDIS_KILLS} times ${REDIS_KILL_GAP_MS} ms apart)` });
      } else if (ctx.config.fault === 'redis-oom') {
        // Just under what it holds, with noeviction (a Redis this run started): every write is refused with OOM.
        const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? 0);
        await admin.config('SET', 'maxmemory', String(Math.max(1, used - 1024)));
        await sleep(ctx.config.outageS * 1000);
        await admin.config('SET', 'maxmemory', '0');
        ctx.faults.push({ kind: 'redis-oom', atS: at, endS: ctx.atS(), detail: `redis-server out of memory for ${ctx.config.outageS} s (maxmemory ${used - 1024} B, under the ${used} B it held; noeviction)` });
      } else {
        await admin.client('PAUSE', Math.round(ctx.config.outageS * 1000), 'ALL');
        await sleep(ctx.config.outageS * 1000);
        ctx.faults.push({ kind: 'redis-pause', atS: at, endS: ctx.atS(), detail: `redis-server paused every client for ${ctx.config.outageS} s (CLIENT PAUSE ALL)` });
      }
    } finally {
      admin.disconnect();
    }
  }
}

/** One client writes tiny chats into a room of its own at floodRate frames/s until the window ends (flooder.ts). */
async function flood(ctx: FaultContext): Promise<void> {
  const at = ctx.atS();
  const seconds = Math.max(0.5, ctx.windowEndS - at);
  const child = spawnTs(FLOODER, [ctx.wsUrl, 'flood', String(ctx.config.floodRate), String(seconds)]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  } finally {
    await stopProcessGroup(child, 1_000);
  }
  const r = JSON.parse(out.trim().split('\n').at(-1) || '{"sent":0,"closed":null}') as { sent: number; closed: { code: number; atS: number } | null };
  const closedAtS = r.closed ? Math.round((at + r.closed.atS) * 10) / 10 : null;
  const closed = r.closed ? `; the server closed it with ${r.closed.code} at ${closedAtS} s` : '; the server never closed it';
  ctx.faults.push({ kind: 'flood', atS: at, endS: ctx.atS(), detail: `one client wrote ${r.sent.toLocaleString('en-US')} tiny chats into a room of its own (asked to write ${ctx.config.floodRate.toLocaleString('en-US')}/s)${closed}`, flood: { sent: r.sent, closedCode: r.closed?.code ?? null, closedAtS } });
}
