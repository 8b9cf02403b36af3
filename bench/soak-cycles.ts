// The soak: many short lives of a chat client (connect, join, move to another room, chat, leave)
// against one version in this process, weighing what the server keeps: its pool, its rooms, its
// heap after full GCs, and RSS. A version that lets go returns to where it started; v1 keeps every
// dead socket in its pool, which is its story. Needs `node --expose-gc`.
import { WebSocket } from 'ws';
import { encodeClientFrame, type ServerMessage } from '../versions/protocol.ts';
import type { ChatServer } from '../versions/host.ts';
import { startVersion, type OneProcessVersion } from '../versions/versions.ts';

export interface SoakReading {
  connections: number;
  poolSize: number;
  rooms: number;
  /** After full GCs, in bytes. */
  heapUsedBytes: number;
  rssBytes: number;
}

export interface SoakResult {
  version: OneProcessVersion;
  cycles: number;
  seconds: number;
  before: SoakReading;
  after: SoakReading;
}

/** Cycles run before the first reading, so the JIT and every one-off allocation are in the baseline. */
const WARMUP_CYCLES = 500;
/** Clients alive at once. */
const CONCURRENCY = 50;
/** Rooms the clients spread over, and the rooms they move to. */
const ROOMS = 10;

export async function soak(version: OneProcessVersion, cycles: number): Promise<SoakResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') throw new Error('the soak weighs the heap after full GCs: run it under node --expose-gc');
  // Limits off that a soak would trip by design: thousands of connects from one address.
  const server = await startVersion(version, { port: 0, maxPerIp: 0 });
  try {
    await runCycles(server, WARMUP_CYCLES, 0);
    const before = await reading(server, gc);
    const started = performance.now();
    await runCycles(server, cycles, WARMUP_CYCLES);
    const seconds = (performance.now() - started) / 1000;
    const after = await reading(server, gc);
    return { version, cycles, seconds, before, after };
  } finally {
    await server.close();
  }
}

async function runCycles(server: ChatServer, cycles: number, firstId: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cycles) await cycle(server, firstId + next++);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, cycles) }, worker));
}

/** One client's life: connect into a room, move to another, chat and see it come back, leave. */
async function cycle(server: ChatServer, id: number): Promise<void> {
  const ws = new WebSocket(`${server.wsUrl}?room=soak-${id % ROOMS}&name=s${id}`, { perMessageDeflate: false });
  const inbox: ServerMessage[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data: Buffer) => {
    inbox.push(JSON.parse(data.toString()) as ServerMessage);
    wake?.();
  });
  const next = async (type: ServerMessage['type']): Promise<void> => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return void inbox.splice(0, i + 1);
      await new Promise<void>((r) => (wake = r));
    }
  };
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await next('joined');
  ws.send(encodeClientFrame({ type: 'join', room: `soak-moved-${id % ROOMS}` }));
  await next('joined');
  ws.send(encodeClientFrame({ type: 'chat', content: `cycle ${id}` }));
  await next('chat');
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  ws.close();
  await closed;
}

/** The server once every client has gone (as far as it will let go), after full GCs. */
async function reading(server: ChatServer, gc: () => void): Promise<SoakReading> {
  for (let i = 0; i < 200 && server.metrics.snapshot().connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100)); // versions that prune through a lock or a hub finish doing so
  for (let i = 0; i < 3; i++) gc();
  const s = server.metrics.snapshot();
  return { connections: s.connections, poolSize: s.poolSize, rooms: s.rooms, heapUsedBytes: process.memoryUsage().heapUsed, rssBytes: process.memoryUsage.rss() };
}
