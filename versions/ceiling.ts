// The machine's ceiling: a reference broadcaster, not a chat version. It does only what any
// broadcaster on this machine must: read a frame, and write it to every client, in batched
// writes: what arrived since the last flush, concatenated once, the same buffer to every client,
// flushes paced as v3 paces its sweeps (after a flush of d ms, rest d ms, at most 25). No protocol (it relays the frame's text as it
// came, parses nothing), no rooms, no names, no limits but the frame size, no queues' bounds,
// no heartbeat. A chat version's throughput as a fraction of this one, measured in the same run,
// means the same on a 2-core laptop and on a 64-core server.
//
//   node --import tsx versions/ceiling.ts [--port 0]
//
// It answers /healthz and /api/stats (the harness's view of any server) and prints LISTENING.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatListening, frameText, type ServerStats } from './protocol.ts';

const MAX_FRAME = 64 * 1024;
const portFlag = process.argv.indexOf('--port');
const port = portFlag >= 0 ? Number(process.argv[portFlag + 1]) : 8080;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('ceiling: --port must be an integer from 0 to 65535');
  process.exit(1);
}

interface Client {
  socket: Socket;
}
const clients = new Map<WebSocket, Client>();
/** Frames read since the last flush, framed once each: every client gets exactly these bytes. */
let pending: Buffer[] = [];
const counters = { received: 0, deliveries: 0, writes: 0 };
let flushScheduled = false;
/** How long the last flush took: the next waits as long (at most FLUSH_REST_MAX_MS), so batches grow with the load. */
let lastFlushMs = 0;
const FLUSH_REST_MAX_MS = 25;
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const started = process.hrtime.bigint();

/** One concatenation of what arrived, the same buffer written to every client: the least a broadcast costs. */
function flush(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  const t0 = performance.now();
  const batch = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
  const n = pending.length;
  pending = [];
  for (const c of clients.values()) {
    if (!c.socket.writable) continue;
    c.socket.write(batch);
    counters.deliveries += n;
    counters.writes++;
  }
  lastFlushMs = performance.now() - t0;
}

function broadcast(text: Buffer): void {
  counters.received++;
  pending.push(frameText(text)); // framed once, the same bytes to everyone
  if (flushScheduled) return;
  flushScheduled = true;
  const rest = Math.min(lastFlushMs, FLUSH_REST_MAX_MS);
  if (rest < 1) setImmediate(flush);
  else setTimeout(flush, rest);
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
    clients.set(ws, { socket });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) broadcast(data);
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
