// The shared host: HTTP (page, /healthz, /metrics, /api/stats, POST /api/send), the WebSocket
// upgrade at /chatroom, the protocol, presence, heartbeat, limits and graceful shutdown.
// Written once; a version only decides how a message reaches the sockets (strategy.ts).
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ServerMetrics } from './metrics.ts';
import {
  CLOSE_CODES,
  DEFAULT_LIMITS,
  DEFAULT_ROOM,
  ERROR_CODES,
  checkContent,
  errorMessage,
  isValidName,
  isValidRoom,
  parseClientFrame,
  type ErrorCode,
  type ProtocolLimits,
  type ServerInfo,
} from './protocol.ts';
import type { Connection, ServerCounters, Strategy } from './strategy.ts';

export const WS_PATH = '/chatroom';
/** How often the heartbeat pings; a client that has not answered the previous ping by then is dropped. */
export const DEFAULT_PING_INTERVAL_MS = 30_000;
/** Presence notices are broadcast only in rooms up to this size; a 10k-member room would send N² frames. */
export const PRESENCE_MAX_MEMBERS = 64;
/** Names listed in a `joined` reply. */
const MEMBERS_LISTED = 100;
/**
 * Connections the kernel may hold before the server accepts them. Node's default, 511, overflows
 * in a connection storm (thousands of clients joining at once), and an overflowed SYN waits a
 * second for TCP to retry; the kernel caps this at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 4096;
/** How long shutdown waits for clients to answer the 1001 close before cutting them off. */
const SHUTDOWN_GRACE_MS = 2_000;

export interface HostOptions {
  /** Interface to listen on. Default '127.0.0.1'. */
  host: string;
  /** TCP port; 0 takes a free one. Default 0. */
  port: number;
  /** Frame and content limits. Default 64 KiB frames, 16 KiB content. */
  limits: ProtocolLimits;
  /** Heartbeat period in ms, for versions that have one. Default 30 000. */
  pingIntervalMs: number;
  /** Origins allowed besides the workbench's own (http(s) on localhost/127.0.0.0/8). '*' allows all. Default []. */
  allowOrigins: string[];
}

export const DEFAULT_HOST_OPTIONS: HostOptions = {
  host: '127.0.0.1',
  port: 0,
  limits: DEFAULT_LIMITS,
  pingIntervalMs: DEFAULT_PING_INTERVAL_MS,
  allowOrigins: [],
};

export function resolveHostOptions(partial: Partial<HostOptions> = {}): HostOptions {
  const o: HostOptions = { ...DEFAULT_HOST_OPTIONS, ...partial, limits: { ...DEFAULT_LIMITS, ...partial.limits } };
  if (typeof o.host !== 'string' || o.host.length === 0) throw new TypeError('options.host must be a non-empty string');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError('options.port must be an integer from 0 to 65535');
  if (!Number.isInteger(o.limits.maxFrameBytes) || o.limits.maxFrameBytes < 128) throw new RangeError('options.limits.maxFrameBytes must be an integer >= 128');
  if (!Number.isInteger(o.limits.maxContentChars) || o.limits.maxContentChars < 1) throw new RangeError('options.limits.maxContentChars must be an integer >= 1');
  if (!Number.isFinite(o.pingIntervalMs) || o.pingIntervalMs < 10) throw new RangeError('options.pingIntervalMs must be a number >= 10');
  if (!Array.isArray(o.allowOrigins)) throw new TypeError('options.allowOrigins must be an array of origins');
  return o;
}

/** The workbench's own pages live on loopback; anything else needs --allow-origin. */
export function isAllowedOrigin(origin: string | undefined, allow: readonly string[]): boolean {
  if (origin === undefined) return true; // not a browser: the auto-client, curl, the article's Go client
  if (allow.includes('*') || allow.includes(origin)) return true;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const h = url.hostname;
    return h === 'localhost' || h === '[::1]' || /^127(\.\d{1,3}){3}$/.test(h);
  } catch {
    return false;
  }
}

export interface ChatServer {
  readonly strategy: Strategy;
  readonly counters: ServerCounters;
  readonly metrics: ServerMetrics;
  readonly port: number;
  /** http://host:port/ */
  readonly url: string;
  /** ws://host:port/chatroom */
  readonly wsUrl: string;
  /** Closes every socket with 1001 and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** What the host keeps of one open connection. */
interface ConnState {
  readonly conn: Connection;
  /** The room the host announced it in (null until the version has added it). */
  joinedRoom: string | null;
  /** Steps queued behind the version's add or move, and the end of that queue. */
  pending: number;
  ready: Promise<void>;
  /** Answered the last heartbeat ping (versions with a heartbeat). */
  alive: boolean;
}

/** The end of an empty queue: one settled promise for every connection, not one each. */
const SETTLED: Promise<void> = Promise.resolve();

const STATIC_FILES: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};
const WEB_ROOT = new URL('./web/', import.meta.url);

export async function startChatServer(strategy: Strategy, counters: ServerCounters, partial: Partial<HostOptions> = {}): Promise<ChatServer> {
  const options = resolveHostOptions(partial);
  const { limits } = options;
  // One entry per open connection. Its handlers are shared by every connection (created once per
  // server, not per client), and what they need of one connection lives in its ConnState: at
  // 20k idle clients each closure, context and listener wrapper counts in server memory.
  const conns = new Map<WebSocket, ConnState>();
  const roster = new Map<string, Set<Connection>>();
  let nextId = 1;
  let closing: Promise<void> | null = null;

  const metrics = new ServerMetrics(strategy, counters, {
    connections: () => conns.size,
    rooms: () => roster.size,
    bufferedBytes: () => {
      let sum = 0;
      for (const st of conns.values()) sum += st.conn.socket.writableLength;
      return sum;
    },
  });
  const info: ServerInfo = { version: strategy.version, describe: strategy.describe, limits };

  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  const http = createServer((req, res) => {
    handleHttp(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: String(err) } });
      else res.destroy();
    });
  });

  // --- rooms and presence (the host's view; versions keep their own delivery structures) ---

  function rosterAdd(conn: Connection): void {
    let set = roster.get(conn.room);
    if (!set) roster.set(conn.room, (set = new Set()));
    set.add(conn);
    if (set.size > 1 && set.size <= PRESENCE_MAX_MEMBERS) {
      strategy.publish(conn.room, { type: 'presence', room: conn.room, event: 'join', name: conn.name, members: set.size });
    }
  }

  function rosterRemove(conn: Connection): void {
    const set = roster.get(conn.room);
    if (!set?.delete(conn)) return;
    if (set.size === 0) roster.delete(conn.room);
    else if (set.size < PRESENCE_MAX_MEMBERS) {
      strategy.publish(conn.room, { type: 'presence', room: conn.room, event: 'leave', name: conn.name, members: set.size });
    }
  }

  function sendJoined(conn: Connection): void {
    const members: string[] = [];
    for (const c of roster.get(conn.room) ?? []) {
      if (members.length === MEMBERS_LISTED) break; // a 20k-member room must not cost O(N) per join
      members.push(c.name);
    }
    strategy.sendTo(conn, { type: 'joined', room: conn.room, name: conn.name, id: conn.id, members, server: info });
  }

  function reject(conn: Connection, code: ErrorCode, message?: string): void {
    counters.countBadInput(code);
    strategy.sendTo(conn, errorMessage(code, message));
  }

  // --- WebSocket ---

  /**
   * Runs `step` after what is pending for this connection: frames may arrive while the version is
   * still adding or moving it (v2 waits for its lock, v3 for its hub), and queue behind that, in order.
   */
  function enqueue(st: ConnState, step: () => void | Promise<void>): void {
    st.pending++;
    st.ready = st.ready
      .then(step)
      .catch((err: unknown) => console.error(`[${strategy.version}] connection ${st.conn.id}:`, err))
      .finally(() => {
        if (--st.pending === 0) st.ready = SETTLED; // nothing chained behind it: let the chain go
      });
  }

  function onConnection(ws: WebSocket, socket: Socket, req: IncomingMessage): void {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const room = query.get('room') ?? DEFAULT_ROOM;
    const conn: Connection = { id: nextId++, ws, socket, name: query.get('name') ?? '', room: isValidRoom(room) ? room : DEFAULT_ROOM };
    if (!isValidName(conn.name)) conn.name = `guest-${conn.id}`;
    socket.setNoDelay(true);
    const st: ConnState = { conn, joinedRoom: null, pending: 0, ready: SETTLED, alive: true };
    conns.set(ws, st);
    enqueue(st, async () => {
      await strategy.add(conn);
      st.joinedRoom = conn.room;
      rosterAdd(conn);
      sendJoined(conn);
    });
    ws.on('pong', onPong);
    ws.on('error', onError);
    ws.on('close', onClose);
    ws.on('message', onMessage);
  }

  function onPong(this: WebSocket): void {
    const st = conns.get(this);
    if (st) st.alive = true;
  }

  function onError(err: Error & { code?: string }): void {
    // ws closes the socket itself (1009 for an oversized frame); we count what the peer did.
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') counters.countBadInput('FRAME_TOO_LARGE');
  }

  function onClose(this: WebSocket): void {
    const st = conns.get(this);
    if (!st) return;
    conns.delete(this);
    void st.ready.then(() => {
      if (st.joinedRoom !== null) rosterRemove(st.conn);
      return strategy.remove(st.conn);
    });
  }

  function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    const st = conns.get(this);
    if (!st) return;
    const conn = st.conn;
    if (isBinary) return reject(conn, 'BINARY_FRAME');
    const parsed = parseClientFrame(data.toString('utf8'), limits);
    if (!parsed.ok) return reject(conn, parsed.code, parsed.message);
    const frame = parsed.frame;
    if (frame.type === 'chat') {
      counters.received++;
      const publish = (): void => strategy.publish(conn.room, { type: 'chat', room: conn.room, from: conn.name, content: frame.content, ts: Date.now() });
      if (st.pending === 0) publish(); // with nothing pending, chat goes straight on
      else enqueue(st, publish);
      return;
    }
    enqueue(st, async () => {
      if (frame.name !== undefined) conn.name = frame.name;
      if (frame.room !== conn.room) {
        rosterRemove(conn);
        await strategy.move(conn, frame.room);
        conn.room = frame.room;
        rosterAdd(conn);
      }
      sendJoined(conn);
    });
  }

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH || closing) return refuseUpgrade(socket, closing ? 503 : 404);
    if (!isAllowedOrigin(req.headers.origin, options.allowOrigins)) return refuseUpgrade(socket, 403);
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, req));
  });

  const heartbeat = strategy.heartbeat
    ? setInterval(() => {
        for (const st of conns.values()) {
          if (!st.alive) {
            st.conn.ws.terminate(); // no pong since the last ping: a dead peer
            continue;
          }
          st.alive = false;
          st.conn.ws.ping();
        }
      }, options.pingIntervalMs)
    : null;
  heartbeat?.unref();

  // --- HTTP ---

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const origin = req.headers.origin;
    if (origin !== undefined && isAllowedOrigin(origin, options.allowOrigins)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
    const file = STATIC_FILES[url.pathname];
    if (file && req.method === 'GET') {
      const body = await readFile(new URL(file[0], WEB_ROOT));
      res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-cache' });
      res.end(body);
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        return sendJson(res, 200, { ok: true, ...info, connections: conns.size });
      case '/metrics':
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
        return;
      case '/api/stats':
        return sendJson(res, 200, metrics.snapshot());
      case '/api/send':
        return handleSend(req, res);
      default:
        return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } });
    }
  }

  async function handleSend(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'content-type' });
      res.end();
      return;
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST a JSON body {room, content, from?}' } });
    const body = await readBody(req, limits.maxFrameBytes);
    if (body === null) {
      counters.countBadInput('FRAME_TOO_LARGE');
      return sendJson(res, 413, { error: { code: 'FRAME_TOO_LARGE', message: ERROR_CODES.FRAME_TOO_LARGE } });
    }
    const fail = (code: ErrorCode, message: string = ERROR_CODES[code]): void => {
      counters.countBadInput(code);
      sendJson(res, 400, { error: { code, message } });
    };
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return fail('BAD_JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('BAD_FRAME');
    const { room, content, from } = value as Record<string, unknown>;
    if (!isValidRoom(room)) return fail('BAD_ROOM');
    const bad = checkContent(content, limits);
    if (bad) return fail(bad);
    if (from !== undefined && !isValidName(from)) return fail('BAD_NAME');
    counters.received++;
    strategy.publish(room, { type: 'chat', room, from: (from as string | undefined) ?? 'http', content: content as string, ts: Date.now() });
    sendJson(res, 202, { ok: true, room, members: roster.get(room)?.size ?? 0 });
  }

  // --- lifecycle ---

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ port: options.port, host: options.host, backlog: LISTEN_BACKLOG }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;

  function close(): Promise<void> {
    closing ??= (async () => {
      if (heartbeat) clearInterval(heartbeat);
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      for (const ws of conns.keys()) ws.close(CLOSE_CODES.GOING_AWAY, 'server shutting down');
      const grace = setTimeout(() => {
        for (const ws of conns.keys()) ws.terminate();
        http.closeAllConnections();
      }, SHUTDOWN_GRACE_MS);
      http.closeIdleConnections();
      await waitUntil(() => conns.size === 0, SHUTDOWN_GRACE_MS + 500);
      clearTimeout(grace);
      http.closeAllConnections();
      strategy.close();
      metrics.close();
      await closed;
    })();
    return closing;
  }

  return { strategy, counters, metrics, port, url: `http://${hostForUrl}:${port}/`, wsUrl: `ws://${hostForUrl}:${port}${WS_PATH}`, close };
}

function refuseUpgrade(socket: Socket, status: 403 | 404 | 503): void {
  const text = { 403: 'Forbidden origin', 404: 'Not Found', 503: 'Shutting down' }[status];
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads a request body up to `max` bytes; null if it is larger. */
function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > max ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

