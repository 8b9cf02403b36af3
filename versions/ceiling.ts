// The machine's ceiling: a reference broadcaster, not a chat version. It does only what any
// broadcaster on this machine must: read a frame, and write it to every client, in batched
// writes (one per client per event-loop turn). No protocol (it relays the frame's text as it
// came, parses nothing), no rooms, no names, no limits but the frame size, no queues' bounds,
// no heartbeat. A chat version's throughput as a fraction of this one, measured in the same run,
// means the same on a 2-core laptop and on a 64-core server.
//
//   node --import tsx versions/ceiling.ts [--port 0]
//
// It answers /healthz and /api/stats (the harness's view of any server) and prints LISTENING.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
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
  pending: Buffer[];
}
const clients = new Map<WebSocket, Client>();
const dirty = new Set<Client>();
const counters = { received: 0, deliveries: 0, writes: 0 };
let flushScheduled = false;
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const started = process.hrtime.bigint();

function flush(): void {
  flushScheduled = false;
  for (const c of dirty) {
    const frames = c.pending;
    c.pending = [];
    counters.deliveries += frames.length;
    counters.writes++;
    if (c.socket.writable) c.socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
  }
  dirty.clear();
}

function broadcast(text: Buffer): void {
  counters.received++;
  const frame = frameText(text); // framed once, the same bytes to everyone
  for (const c of clients.values()) {
    c.pending.push(frame);
    dirty.add(c);
  }
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush); // everything read in this turn goes out in one write per client
  }
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
    clients.set(ws, { socket, pending: [] });
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
