// Small chat relays that break in the ways real ones do, for testing what the harness says about
// a broken server. Not part of the product. Each relays every text frame it receives, verbatim,
// to every client (as gorilla's examples/chat does), until its fault strikes:
//   crash          exits with code 2 after --after messages, with a Go-like panic on stderr
//   deadlock       stops relaying for good once its first client disconnects; still accepts
//   random-close   after --after messages, closes a random tenth of its clients (1011)
//   newline-join   joins each client's queued messages into one frame, one per line
//   block-on-slow  writes to each client in turn and waits for each write to leave: one
//                  client that stops reading blocks everyone behind it
//   chatter        relays faithfully, but greets every client with a line of plain text and a binary frame
//   rate-cap       relays at once while it has relayed fewer than --after messages in the last
//                  second, else holds each 300 ms first: a server past its capacity, at a known rate
//   ingress-drop   relays at most --after messages a second and silently drops the rest on arrival
//   max-payload    takes frames of at most --after bytes and closes a client that sends more (1009)
//   stall-once     3 s after its first message, holds every message for --after ms, then relays on
// It prints the LISTENING line the harness expects and answers /healthz, so it can be started
// like a version or pointed at with --target.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatListening, type ServerStats } from '../../versions/protocol.ts';

const KINDS = ['crash', 'deadlock', 'random-close', 'newline-join', 'block-on-slow', 'chatter', 'rate-cap', 'ingress-drop', 'max-payload', 'stall-once'] as const;
type Kind = (typeof KINDS)[number];

const args = process.argv.slice(2);
const kind = args[0] as Kind;
if (!KINDS.includes(kind)) {
  process.stderr.write(`usage: server.ts <${KINDS.join('|')}> [--port P] [--after N]\n`);
  process.exit(1);
}
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const port = flag('port', 0);
const after = flag('after', 100);

const http = createServer((req, res) => {
  if (req.url === '/api/stats') {
    // Enough of the /api/stats contract for the harness to sample it as it samples a version.
    const cpu = process.cpuUsage();
    const stats: ServerStats = {
      version: `misbehaving-${kind}`,
      describe: kind,
      connections: clients.length,
      poolSize: clients.length,
      rooms: 1,
      received: messages,
      deliveries: 0,
      drops: 0,
      kicks: 0,
      controlFrames: 0,
      writes: 0,
      queueDepth: 0,
      queueDepthMax: 0,
      bufferedBytes: 0,
      badInput: {},
      refusals: {},
      loopDelayMs: { p50: 0, p99: 0, max: 0 },
      rssBytes: process.memoryUsage.rss(),
      heapUsedBytes: process.memoryUsage().heapUsed,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      uptimeS: process.uptime(),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  res.writeHead(req.url === '/healthz' ? 200 : 404).end();
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, ...(kind === 'max-payload' ? { maxPayload: after } : {}) });
const clients: WebSocket[] = [];
let messages = 0;
let deadlocked = false;
/** A seeded PRNG (mulberry32), so random-close picks the same clients every run. */
let seed = 42;
const random = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// newline-join: what each client has waiting, flushed as one frame per turn of the event loop.
const pending = new Map<WebSocket, string[]>();
let flushScheduled = false;
function flushJoined(): void {
  flushScheduled = false;
  for (const [ws, queued] of pending) if (queued.length > 0) ws.send(queued.splice(0).join('\n'));
}

// rate-cap: when each of the messages of the last second arrived (performance.now() ms).
const recent: number[] = [];
/** stall-once: when its first message came (ms, performance.now()). */
let firstAt: number | undefined;

// block-on-slow: one broadcast at a time, one client at a time, each write awaited.
const backlog: string[] = [];
let broadcasting = false;
async function broadcastInTurn(): Promise<void> {
  if (broadcasting) return;
  broadcasting = true;
  while (backlog.length > 0) {
    const text = backlog.shift() as string;
    for (const ws of [...clients]) await new Promise<void>((resolve) => ws.send(text, () => resolve()));
  }
  broadcasting = false;
}

wss.on('connection', (ws) => {
  clients.push(ws);
  pending.set(ws, []);
  ws.on('error', () => {});
  if (kind === 'chatter') {
    ws.send('welcome! be nice');
    ws.send(Buffer.from([0xca, 0xfe]));
  }
  ws.on('close', () => {
    clients.splice(clients.indexOf(ws), 1);
    pending.delete(ws);
    if (kind === 'deadlock') deadlocked = true;
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const text = data.toString();
    messages++;
    if (kind === 'crash' && messages >= after) {
      process.stderr.write('panic: concurrent write to websocket connection\n\ngoroutine 7 [running]:\nmain.(*Client).writePump(0xc000126000)\n');
      process.exit(2);
    }
    if (kind === 'random-close' && messages === after) {
      for (const c of [...clients]) if (random() < 0.1) c.close(1011, 'closed at random');
    }
    if (deadlocked) return;
    if (kind === 'newline-join') {
      for (const c of clients) pending.get(c)?.push(text);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushJoined);
      }
      return;
    }
    if (kind === 'block-on-slow') {
      backlog.push(text);
      void broadcastInTurn();
      return;
    }
    if (kind === 'ingress-drop') {
      const now = performance.now();
      while (recent.length > 0 && (recent[0] as number) <= now - 1000) recent.shift();
      if (recent.length >= after) return;
      recent.push(now);
    }
    if (kind === 'stall-once') {
      firstAt ??= performance.now();
      const since = performance.now() - firstAt;
      if (since >= 3000 && since < 3000 + after) {
        setTimeout(() => {
          for (const c of clients) c.send(text);
        }, 3000 + after - since);
        return;
      }
    }
    if (kind === 'rate-cap') {
      const now = performance.now();
      while (recent.length > 0 && (recent[0] as number) <= now - 1000) recent.shift();
      recent.push(now);
      if (recent.length > after) {
        setTimeout(() => {
          for (const c of clients) c.send(text);
        }, 300);
        return;
      }
    }
    for (const c of clients) c.send(text);
  });
});

http.listen(port, '127.0.0.1', () => {
  const p = (http.address() as AddressInfo).port;
  process.stdout.write(`${formatListening({ version: `misbehaving-${kind}`, describe: `a relay that misbehaves: ${kind}`, port: p, url: `http://127.0.0.1:${p}/`, wsUrl: `ws://127.0.0.1:${p}/`, pid: process.pid })}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(0));
