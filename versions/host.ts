// The shared host: the WebSocket upgrade at /chatroom, each connection's frames in order, the
// heartbeat, limits and graceful shutdown; the HTTP routes (http-api.ts) and room membership
// (roster.ts) beside it. Written once; a version only decides how a message reaches the sockets
// (strategy.ts).
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import { createHttpApi, isAllowedOrigin } from './http-api.ts';
import { ServerMetrics } from './metrics.ts';
import { CLOSE_CODES, DEFAULT_LIMITS, DEFAULT_ROOM, errorMessage, isValidName, isValidRoom, parseClientFrame, type ErrorCode, type ProtocolLimits, type ServerInfo } from './protocol.ts';
import { Roster } from './roster.ts';
import type { Connection, ServerCounters, Strategy } from './strategy.ts';

export const WS_PATH = '/chatroom';
/** How often the heartbeat pings; a client that has not answered the previous ping by then is dropped. */
export const DEFAULT_PING_INTERVAL_MS = 30_000;
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

export async function startChatServer(strategy: Strategy, counters: ServerCounters, partial: Partial<HostOptions> = {}): Promise<ChatServer> {
  const options = resolveHostOptions(partial);
  const { limits } = options;
  // One entry per open connection. Its handlers are shared by every connection (created once per
  // server, not per client), and what they need of one connection lives in its ConnState: at
  // 20k idle clients each closure, context and listener wrapper counts in server memory.
  const conns = new Map<WebSocket, ConnState>();
  let nextId = 1;
  let closing: Promise<void> | null = null;
  const info: ServerInfo = { version: strategy.version, describe: strategy.describe, limits };
  const roster = new Roster(strategy, info);

  const metrics = new ServerMetrics(strategy, counters, {
    connections: () => conns.size,
    rooms: () => roster.size,
    bufferedBytes: () => {
      let sum = 0;
      for (const st of conns.values()) sum += st.conn.socket.writableLength;
      return sum;
    },
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  const http = createServer(
    createHttpApi({
      strategy,
      counters,
      metrics,
      info,
      limits,
      allowOrigins: options.allowOrigins,
      connections: () => conns.size,
      membersOf: (room) => roster.membersOf(room),
    }),
  );

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
      roster.add(conn);
      roster.sendJoined(conn);
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
      if (st.joinedRoom !== null) roster.remove(st.conn);
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
        roster.remove(conn);
        await strategy.move(conn, frame.room);
        conn.room = frame.room;
        roster.add(conn);
      }
      roster.sendJoined(conn);
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

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(20);
}

