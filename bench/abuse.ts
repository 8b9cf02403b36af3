// One client against everyone else: a probe chats in its own room (20 msg/s, one-way latency on
// this host's monotonic clock) while, in another room, one abuser
//  - flood: writes tiny chat frames as fast as TCP takes them (v3 and v4), or
//  - joins: sends 475 joins with a forged epoch into a room with a full history (v4),
// each with the version's per-connection limits on (its defaults) and off (--max-msgs-per-s 0).
// Servers and the abuser are their own processes, started here and stopped by process group.
//
//   npm run bench:abuse                         # every case, 10 s each
//   npm run bench:abuse -- --seconds 5 --only flood
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { startServerProcess, stopProcessGroup, type ServerProcess } from '../harness/server-process.ts';
import { startRedisServer } from '../common/redis-server.ts';

const SELF = fileURLToPath(import.meta.url);
const PROBE_RATE = 20;
const FORGED_JOINS = 475;

/** `fill`: the room 'history' gets a full history first (the joins case, and its quiet baseline). */
type Case = { name: string; version: string[]; abuse: 'none' | 'flood' | 'joins'; limits: boolean; fill?: boolean };

interface Reading {
  p50: number;
  p99: number;
  max: number;
  probes: number;
  abuser: string;
}

/** The abuser, in its own process: argv = ['abuser', kind, wsUrl, seconds]. */
async function abuser(kind: string, wsUrl: string, seconds: number): Promise<void> {
  const ws = new WebSocket(`${wsUrl}?room=${kind === 'flood' ? 'flooded' : 'lobby'}&name=abuser`, { perMessageDeflate: false });
  let bytesIn = 0;
  let sent = 0;
  let closed: number | null = null;
  ws.on('message', (d: Buffer) => (bytesIn += d.length));
  ws.on('close', (code) => (closed = code));
  ws.on('error', () => {});
  await new Promise((r) => ws.once('open', r));
  const end = Date.now() + seconds * 1000;
  if (kind === 'flood') {
    const frame = JSON.stringify({ type: 'chat', content: 'x' });
    while (Date.now() < end && closed === null) {
      for (let i = 0; i < 500 && ws.readyState === WebSocket.OPEN; i++, sent++) ws.send(frame);
      await new Promise((r) => (ws.bufferedAmount > 1 << 20 ? setTimeout(r, 5) : setImmediate(r)));
    }
  } else {
    const gap = (seconds * 1000) / FORGED_JOINS;
    for (let i = 0; i < FORGED_JOINS && closed === null; i++, sent++) {
      ws.send(JSON.stringify({ type: 'join', room: 'history', since: 0, epoch: `forged-${i}` }));
      await sleep(gap);
    }
  }
  await sleep(500);
  process.send?.({ sent, bytesIn, closed });
  ws.terminate();
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
}

async function open(url: string, room: string, name: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url}?room=${room}&name=${name}`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.on('message', function first(d: Buffer) {
      if (String(d).includes('"joined"')) {
        ws.off('message', first);
        resolve(undefined);
      }
    });
    ws.once('error', reject);
  });
  return ws;
}

async function runCase(c: Case, seconds: number): Promise<Reading> {
  const redis = c.version[0] === 'v4' ? await startRedisServer({ detached: true }) : null;
  let server: ServerProcess | null = null;
  let child: ChildProcess | null = null;
  try {
    const args = [...c.version, ...(redis ? ['--redis', redis.url] : []), ...(c.limits ? [] : ['--max-msgs-per-s', '0'])];
    // (startServerProcess turns the limit off unless told: here the default is asked for by name)
    server = await startServerProcess(c.limits ? [...args, '--max-msgs-per-s', '100'] : args);
    const url = server.info.wsUrl;
    if (c.fill) {
      // A room with a full history: 1,000 messages of 8 KB, sent at the rate a limit allows.
      const filler = await open(url, 'history', 'filler');
      for (let i = 0; i < 1000; i++) {
        filler.send(JSON.stringify({ type: 'chat', content: 'h'.repeat(8192) }));
        if (i % 90 === 89) await sleep(1000);
      }
      filler.close();
      await sleep(2000); // its last messages fanned out and stored before the probe starts
    }
    const tx = await open(url, 'probe', 'tx');
    const rx = await open(url, 'probe', 'rx');
    const lat: number[] = [];
    const t0 = process.hrtime.bigint();
    rx.on('message', (d: Buffer) => {
      const m = /"content":"p:(\d+)"/.exec(String(d));
      if (!m) return;
      const ms = Number(process.hrtime.bigint() - BigInt(m[1] as string)) / 1e6;
      lat.push(ms);
      if (process.env.ABUSE_TRACE && ms > 15) console.log(`  slow probe: ${ms.toFixed(1)} ms, sent ${(Number(BigInt(m[1] as string) - t0) / 1e6).toFixed(0)} ms after the abuser began`);
    });
    let abuserResult: { sent: number; bytesIn: number; closed: number | null } | null = null;
    if (c.abuse !== 'none') {
      child = fork(SELF, ['abuser', c.abuse, url, String(seconds)], { execArgv: ['--import', 'tsx'], detached: true });
      child.on('message', (m) => (abuserResult = m as typeof abuserResult));
      await sleep(300);
    }
    for (let i = 0; i < seconds * PROBE_RATE; i++) {
      tx.send(JSON.stringify({ type: 'chat', content: `p:${process.hrtime.bigint()}` }));
      await sleep(1000 / PROBE_RATE);
    }
    await sleep(1500);
    tx.close();
    rx.close();
    const sorted = lat.sort((a, b) => a - b);
    const r = abuserResult as { sent: number; bytesIn: number; closed: number | null } | null;
    const abuserLine = r === null ? '-' : `sent ${r.sent.toLocaleString('en-US')} frames, received ${(r.bytesIn / 1e6).toFixed(1)} MB, ${r.closed === null ? 'never closed' : `closed with ${r.closed}`}`;
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, probes: lat.length, abuser: abuserLine };
  } finally {
    if (child) await stopProcessGroup(child);
    if (server) await server.stop();
    await redis?.stop();
  }
}

if (process.argv[2] === 'abuser') {
  await abuser(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5]));
} else {
  const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 10;
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
  const all: Case[] = [
    { name: 'v3, nobody abusing', version: ['v3'], abuse: 'none', limits: true },
    { name: 'v3, one flooder, limits on (default)', version: ['v3'], abuse: 'flood', limits: true },
    { name: 'v3, one flooder, --max-msgs-per-s 0', version: ['v3'], abuse: 'flood', limits: false },
    { name: 'v4, nobody abusing', version: ['v4', '--nodes', '1'], abuse: 'none', limits: true },
    { name: 'v4, one flooder, limits on (default)', version: ['v4', '--nodes', '1'], abuse: 'flood', limits: true },
    { name: 'v4, a full history, nobody abusing', version: ['v4', '--nodes', '1'], abuse: 'none', limits: true, fill: true },
    { name: 'v4, 475 forged joins, limits on (default)', version: ['v4', '--nodes', '1'], abuse: 'joins', limits: true, fill: true },
    { name: 'v4, 475 forged joins, --max-msgs-per-s 0', version: ['v4', '--nodes', '1'], abuse: 'joins', limits: false, fill: true },
  ];
  // --only flood|joins: that abuse, and the quiet case of the versions it runs on.
  const cases = all.filter((c) => only === null || c.abuse === only || (c.abuse === 'none' && all.some((d) => d.abuse === only && d.version[0] === c.version[0] && d.fill === c.fill)));
  console.log(`abuse bench: a probe in its own room, ${PROBE_RATE} msg/s for ${seconds} s, one-way latency in ms`);
  for (const c of cases) {
    const r = await runCase(c, seconds);
    console.log(`${c.name.padEnd(44)} p50 ${r.p50.toFixed(1).padStart(7)}  p99 ${r.p99.toFixed(1).padStart(7)}  max ${r.max.toFixed(1).padStart(7)}  (${r.probes} probes)  abuser: ${r.abuser}`);
  }
}
