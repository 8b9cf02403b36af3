// The machine's ceiling: a reference broadcaster, not a chat version. It does only what any
// broadcaster on this machine must: read a frame, and write it to every client, in batched
// writes: a sweep writes each client all it is owed in one write, clients owed the same frames
// sharing one concatenation; a sweep lets the server read every 5 ms, so what arrives mid-sweep
// joins the writes still to come, and sweeps rest as long as they spent writing (at most 25 ms), as v3's do.
// That much any broadcaster must do to keep up; the rest of v3 (queues, policy, protocol) it skips.
// It delivers what a chat version delivers, byte for byte in shape: a chat frame's content in the
// envelope every version sends (type, room, from, content, ts), so the generator reads as many
// bytes per delivery from it as from v3 (relaying the sender's shorter frame made the ceiling's
// receivers cheaper, and on a machine the generator shares that alone moved the ceiling). That
// is one parse and one encoding per message, nothing per delivery. No rooms (everyone gets
// everything), no names checked, no limits but the frame size, no queues' bounds, no heartbeat.
// A chat version's throughput as a fraction of this one, measured in the same run,
// means the same on a 2-core laptop and on a 64-core server.
//
//   node --import tsx versions/ceiling.ts [--port 0]
//
// It answers /healthz and /api/stats (the harness's view of any server) and prints LISTENING.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import { DEFAULT_ROOM, encodeServerMessage, formatListening, frameText, type ServerStats } from './protocol.ts';

const MAX_FRAME = 64 * 1024;
const portFlag = process.argv.indexOf('--port');
const port = portFlag >= 0 ? Number(process.argv[portFlag + 1]) : 8080;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('ceiling: --port must be an integer from 0 to 65535');
  process.exit(1);
}

interface Client {
  socket: Socket;
  /** The number of the next frame of the log this client is owed. */
  next: number;
  /** Who it says it is and where (the URL's name and room), for the envelope of what it sends. */
  name: string;
  room: string;
}
const clients = new Map<WebSocket, Client>();
/** Every frame not yet written to every client, framed once; log[i] is frame number base + i. */
let log: Buffer[] = [];
let base = 0;
const counters = { received: 0, deliveries: 0, writes: 0 };
/** A sweep writes for this long, then lets the server read: what arrives meanwhile joins the writes still to come. */
const SLICE_MS = 5;
/** After a sweep of d ms the next waits d ms, at most this: batches grow with the load. */
const REST_MAX_MS = 25;
let sweeping: Client[] | null = null;
let position = 0;
let sweepMs = 0;
let scheduled = false;
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const started = process.hrtime.bigint();

function schedule(delayMs: number): void {
  if (scheduled || sweeping) return;
  scheduled = true;
  const go = (): void => {
    scheduled = false;
    sweeping = [...clients.values()];
    position = 0;
    sweepMs = 0;
    sweep();
  };
  if (delayMs < 1) setImmediate(go);
  else setTimeout(go, delayMs);
}

/**
 * Writes each client everything it is owed in one write. Clients owed the same frames (all of them,
 * in one room, but those that joined late) share one concatenation.
 */
function sweep(): void {
  const order = sweeping as Client[];
  const t0 = performance.now();
  const shared = new Map<number, Buffer>();
  const end = base + log.length;
  while (position < order.length) {
    const c = order[position++] as Client;
    if (c.next >= end || !c.socket.writable) continue;
    let batch = shared.get(c.next);
    if (!batch) shared.set(c.next, (batch = end - c.next === 1 ? (log[c.next - base] as Buffer) : Buffer.concat(log.slice(c.next - base))));
    c.socket.write(batch);
    counters.deliveries += end - c.next;
    counters.writes++;
    c.next = end;
    if (performance.now() - t0 >= SLICE_MS && position < order.length) {
      sweepMs += performance.now() - t0;
      setImmediate(sweep); // let the server read; the rest of this sweep takes what came meanwhile
      return;
    }
  }
  sweepMs += performance.now() - t0;
  sweeping = null;
  // What every client has been written leaves the log.
  let low = base + log.length;
  for (const c of clients.values()) if (c.next < low) low = c.next;
  log = log.slice(low - base);
  base = low;
  if (log.length > 0) schedule(Math.min(sweepMs, REST_MAX_MS));
}

function broadcast(text: Buffer, from: Client): void {
  counters.received++;
  log.push(frameText(envelope(text, from))); // encoded and framed once, the same bytes to everyone
  schedule(0);
}

/** A chat frame's content in the chat version's envelope; anything else is relayed as it came. */
function envelope(text: Buffer, from: Pick<Client, 'name' | 'room'>): Buffer | string {
  let frame: unknown;
  try {
    frame = JSON.parse(text.toString('utf8'));
  } catch {
    return text;
  }
  const { type, content } = (frame ?? {}) as { type?: unknown; content?: unknown };
  if (type !== 'chat' || typeof content !== 'string') return text;
  return encodeServerMessage({ type: 'chat', room: from.room, from: from.name, content, ts: Date.now() });
}

function stats(): ServerStats {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  let buffered = 0;
  for (const c of clients.values()) buffered += c.socket.writableLength;
  const ms = (ns: number): number => Math.max(0, ns / 1e6 - 10);
  return {
    version: 'ceiling',
    describe: 'ceiling · a reference broadcaster: read a frame, write it to every client, batched; no protocol',
    connections: clients.size,
    poolSize: clients.size,
    rooms: clients.size > 0 ? 1 : 0,
    received: counters.received,
    deliveries: counters.deliveries,
    drops: 0,
    kicks: 0,
    controlFrames: 0,
    writes: counters.writes,
    queueDepth: 0,
    queueDepthMax: 0,
    bufferedBytes: buffered,
    badInput: {},
    refusals: {},
    loopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    uptimeS: Number(process.hrtime.bigint() - started) / 1e9,
  };
}
setInterval(() => loop.reset(), 1000).unref();

function json(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false, clientTracking: false });
const http = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.url === '/healthz') return json(res, { ok: true, version: 'ceiling', connections: clients.size });
  if (req.url === '/api/stats') return json(res, stats());
  res.writeHead(404).end();
});
http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    socket.setNoDelay(true);
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const client: Client = { socket, next: base + log.length, name: query.get('name') ?? 'guest', room: query.get('room') ?? DEFAULT_ROOM }; // owed what is sent from now on
    clients.set(ws, client);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) broadcast(data, client);
    });
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => {});
  });
});
http.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  const p = (http.address() as AddressInfo).port;
  console.log(formatListening({ version: 'ceiling', describe: stats().describe, port: p, url: `http://127.0.0.1:${p}/`, wsUrl: `ws://127.0.0.1:${p}/`, pid: process.pid }));
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const ws of clients.keys()) ws.terminate();
    http.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
