// The shared host: the WebSocket upgrade at /chatroom, each connection's frames in order, the
// heartbeat, limits and graceful shutdown; the HTTP routes (http-api.ts) and room membership
// (roster.ts) beside it. Written once; a version only decides how a message reaches the sockets
// (strategy.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { createHttpApi, isAllowedOrigin } from './http-api.ts';
import { ServerMetrics } from './metrics.ts';
import { CLOSE_CODES, DEFAULT_LIMITS, DEFAULT_ROOM, ERROR_CODES, errorMessage, isValidName, isValidRoom, parseClientFrame, parseResumePoint, WS_PATH, type ErrorCode, type ProtocolLimits, type ServerInfo } from './protocol.ts';
import { Roster } from './roster.ts';
import type { Connection, ServerCounters, Strategy } from './strategy.ts';

export { WS_PATH };
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
/** Below the 20,000 files a process may open here, with room for the server's own. */
export const DEFAULT_MAX_CONNECTIONS = 19_950;
/** One address may hold this many connections; tools that open thousands spread over 127.0.0.0/8. */
export const DEFAULT_MAX_PER_IP = 1_000;
/** A socket with no traffic either way for this long is closed: all that clears a vanished peer in v1 and v2. */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000;
/** A client the server closed gets this long to answer the close before it is cut off. */
export const DEFAULT_CLOSE_GRACE_MS = 1_000;
/** Node's own defaults are 60 s for headers and 300 s for a whole request: far longer than a chat server needs. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** How often Node checks HTTP requests against those timeouts (its default is 30 s). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** How often the close reaper looks for clients that have not answered a close. */
const REAPER_INTERVAL_MS = 250;
/** The idle sweep looks four times per idle timeout, within these bounds. */
const MIN_IDLE_SWEEP_MS = 25;
const MAX_IDLE_SWEEP_MS = 10_000;

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
  /** Open connections past which an upgrade is answered 503. Default 19,950; 0: no cap. */
  maxConnections: number;
  /** Open connections one remote address may hold; past it, 503. Default 1,000; 0: no cap. */
  maxPerIp: number;
  /** A socket with no traffic either way for this many ms is closed (4001). Default 600 000; 0: never. */
  idleTimeoutMs: number;
  /** A client the server closed is cut off if it has not answered the close in this many ms. Default 1 000. */
  closeGraceMs: number;
  /** An HTTP request's headers must arrive within this many ms. Default 10 000. */
  headersTimeoutMs: number;
  /** A whole HTTP request (headers and body) must arrive within this many ms. Default 30 000. */
  requestTimeoutMs: number;
}

export const DEFAULT_HOST_OPTIONS: HostOptions = {
  host: '127.0.0.1',
  port: 0,
  limits: DEFAULT_LIMITS,
  pingIntervalMs: DEFAULT_PING_INTERVAL_MS,
  allowOrigins: [],
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxPerIp: DEFAULT_MAX_PER_IP,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  closeGraceMs: DEFAULT_CLOSE_GRACE_MS,
  headersTimeoutMs: DEFAULT_HEADERS_TIMEOUT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
};

export function resolveHostOptions(partial: Partial<HostOptions> = {}): HostOptions {
  const o: HostOptions = { ...DEFAULT_HOST_OPTIONS, ...partial, limits: { ...DEFAULT_LIMITS, ...partial.limits } };
  if (typeof o.host !== 'string' || o.host.length === 0) throw new TypeError('options.host must be a non-empty string');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError('options.port must be an integer from 0 to 65535');
  if (!Number.isInteger(o.limits.maxFrameBytes) || o.limits.maxFrameBytes < 128) throw new RangeError('options.limits.maxFrameBytes must be an integer >= 128');
  if (!Number.isInteger(o.limits.maxContentChars) || o.limits.maxContentChars < 1) throw new RangeError('options.limits.maxContentChars must be an integer >= 1');
  if (!Number.isFinite(o.pingIntervalMs) || o.pingIntervalMs < 10) throw new RangeError('options.pingIntervalMs must be a number >= 10');
  if (!Array.isArray(o.allowOrigins)) throw new TypeError('options.allowOrigins must be an array of origins');
  const count = (k: 'maxConnections' | 'maxPerIp' | 'idleTimeoutMs' | 'closeGraceMs', min: number): void => {
    if (!Number.isInteger(o[k]) || (o[k] !== 0 && o[k] < min)) throw new RangeError(`options.${k} must be 0 or an integer >= ${min}`);
  };
  count('maxConnections', 1);
  count('maxPerIp', 1);
  count('idleTimeoutMs', 100);
  count('closeGraceMs', 10);
  if (!Number.isInteger(o.headersTimeoutMs) || o.headersTimeoutMs < 100) throw new RangeError('options.headersTimeoutMs must be an integer >= 100');
  if (!Number.isInteger(o.requestTimeoutMs) || o.requestTimeoutMs < o.headersTimeoutMs) throw new RangeError('options.requestTimeoutMs must be an integer >= options.headersTimeoutMs');
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
  /** The remote address, for the per-address cap. */
  readonly ip: string;
  /** When the reaper first saw this connection closing (performance.now() ms; 0: not closing). */
  closingSince: number;
  /** Bytes read and written when the idle sweep last looked, and since when that has not changed. */
  bytesSeen: number;
  quietSince: number;
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
  const perIp = new Map<string, number>();
  let nextId = 1;
  let closing: Promise<void> | null = null;
  const info: ServerInfo = { version: strategy.version, describe: strategy.describe, limits, ...(strategy.node ? { node: strategy.node } : {}) };
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
    { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
    createHttpApi({
      strategy,
      counters,
      metrics,
      info,
      limits,
      allowOrigins: options.allowOrigins,
      listenHost: options.host,
      connections: () => conns.size,
      membersOf: (room) => roster.membersOf(room),
    }),
  );
  http.headersTimeout = options.headersTimeoutMs;
  http.requestTimeout = options.requestTimeoutMs;
  // Sockets with a request under way: a timeout on one of them is the request's, else the headers'.
  const inRequest = new WeakSet<Socket>();
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    inRequest.add(req.socket);
    res.once('finish', () => inRequest.delete(req.socket));
  });
  http.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (timedOut) counters.countRefusal(inRequest.has(socket) ? 'request_timeout' : 'headers_timeout');
    if (socket.writable) socket.end(timedOut ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    socket.destroy();
  });

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
    // A name asked for in the URL that is taken gets a guest name, and the client is told why.
    const taken = isValidName(conn.name) && roster.isTaken(conn.room, conn.name);
    if (!isValidName(conn.name) || taken) conn.name = `guest-${conn.id}`;
    // v4: `since` and `epoch` in the URL resume the room's stream where a reconnecting client left it.
    const resume = parseResumePoint(query.get('since') ?? undefined, query.get('epoch') ?? undefined);
    socket.setNoDelay(true);
    const ip = socket.remoteAddress ?? '';
    const st: ConnState = { conn, joinedRoom: null, pending: 0, ready: SETTLED, alive: true, ip, closingSince: 0, bytesSeen: 0, quietSince: performance.now() };
    conns.set(ws, st);
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    enqueue(st, async () => {
      await strategy.add(conn, resume === 'bad' || resume === null ? undefined : resume);
      st.joinedRoom = conn.room;
      await roster.enter(conn);
      if (taken) reject(conn, 'NAME_TAKEN', `${ERROR_CODES.NAME_TAKEN}: you are ${conn.name}`);
      if (resume === 'bad') reject(conn, 'BAD_SINCE', `${ERROR_CODES.BAD_SINCE}: the URL's since and epoch were ignored`);
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
    // ws closes the connection itself (1009, 1007, 1002); we count what the peer did.
    if (err.code?.startsWith('WS_ERR_')) counters.countBadInput(wsErrorCode(err.code));
    else console.error(`[${strategy.version}] connection error:`, err);
  }


  function onClose(this: WebSocket): void {
    const st = conns.get(this);
    if (!st) return;
    conns.delete(this);
    const left = (perIp.get(st.ip) ?? 1) - 1;
    if (left > 0) perIp.set(st.ip, left);
    else perIp.delete(st.ip);
    void st.ready.then(() => {
      if (st.joinedRoom !== null) void roster.remove(st.conn).catch(() => {}); // (v4: Redis may be down; its reaper cleans up)
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
      const publish = (): void => {
        const sent = strategy.publish(conn.room, { type: 'chat', room: conn.room, from: conn.name, content: frame.content, ts: Date.now() });
        // v4: a send its backplane could not take is refused to its sender, never dropped unsaid.
        if (sent) sent.catch((err: unknown) => strategy.sendTo(conn, errorMessage('BACKPLANE_DOWN', `${ERROR_CODES.BACKPLANE_DOWN} (${(err as Error).message})`)));
      };
      if (st.pending === 0) publish(); // with nothing pending, chat goes straight on
      else enqueue(st, publish);
      return;
    }
    enqueue(st, async () => {
      const name = frame.name ?? conn.name;
      if (roster.isTaken(frame.room, name, conn)) return reject(conn, 'NAME_TAKEN');
      if (frame.room !== conn.room) {
        await roster.remove(conn);
        await strategy.move(conn, frame.room, frame.resume);
        conn.name = name;
        conn.room = frame.room;
        await roster.enter(conn);
        return;
      }
      if (name !== conn.name) await roster.rename(conn, name);
      // v4: a join to the room it is in, with since and epoch, replays what it missed.
      if (frame.resume) await strategy.move(conn, frame.room, frame.resume);
      await roster.sendJoined(conn);
    });
  }

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH || closing) return refuseUpgrade(socket, closing ? 503 : 404);
    if (!isAllowedOrigin(req.headers.origin, options.allowOrigins)) {
      counters.countRefusal('origin');
      return refuseUpgrade(socket, 403);
    }
    if (options.maxConnections > 0 && conns.size >= options.maxConnections) {
      counters.countRefusal('max_connections');
      return refuseUpgrade(socket, 503, `the server holds its maximum of ${options.maxConnections} connections (--max-connections)`);
    }
    const ip = socket.remoteAddress ?? '';
    if (options.maxPerIp > 0 && (perIp.get(ip) ?? 0) >= options.maxPerIp) {
      counters.countRefusal('max_per_ip');
      return refuseUpgrade(socket, 503, `${ip} holds its maximum of ${options.maxPerIp} connections (--max-per-ip)`);
    }
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

  // A client the server closed (kick, idle, a protocol error) that does not answer the close is
  // cut off after closeGraceMs, not after ws's own 30 s: a non-reader never answers.
  const reaper = setInterval(() => {
    const now = performance.now();
    for (const [ws, st] of conns) {
      if (ws.readyState !== WebSocket.CLOSING) continue;
      if (st.closingSince === 0) st.closingSince = now;
      else if (now - st.closingSince >= options.closeGraceMs) {
        counters.countRefusal('close_grace');
        ws.terminate();
      }
    }
  }, Math.min(REAPER_INTERVAL_MS, options.closeGraceMs));
  reaper.unref();

  // A socket with no traffic either way for idleTimeoutMs is closed: a vanished peer, or one that
  // holds a socket for nothing. One sweep over the connections, not a timer on each socket.
  const idleSweep =
    options.idleTimeoutMs > 0
      ? setInterval(() => {
          const now = performance.now();
          for (const [ws, st] of conns) {
            const bytes = st.conn.socket.bytesRead + st.conn.socket.bytesWritten;
            if (bytes !== st.bytesSeen) {
              st.bytesSeen = bytes;
              st.quietSince = now;
            } else if (now - st.quietSince >= options.idleTimeoutMs && ws.readyState === WebSocket.OPEN) {
              counters.countRefusal('idle_timeout');
              ws.close(CLOSE_CODES.IDLE_TIMEOUT, 'idle: no traffic');
            }
          }
        }, Math.max(MIN_IDLE_SWEEP_MS, Math.min(options.idleTimeoutMs / 4, MAX_IDLE_SWEEP_MS)))
      : null;
  idleSweep?.unref();

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
      clearInterval(reaper);
      if (idleSweep) clearInterval(idleSweep);
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
      await strategy.close();
      metrics.close();
      await closed;
    })();
    return closing;
  }

  return { strategy, counters, metrics, port, url: `http://${hostForUrl}:${port}/`, wsUrl: `ws://${hostForUrl}:${port}${WS_PATH}`, close };
}

function refuseUpgrade(socket: Socket, status: 403 | 404 | 503, reason?: string): void {
  const text = { 403: 'Forbidden origin', 404: 'Not Found', 503: 'Service Unavailable' }[status];
  const body = reason ?? (status === 503 ? 'shutting down' : '');
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/** The error code a ws protocol error counts as: every frame ws refuses is counted, whatever its WS_ERR_*. */
export function wsErrorCode(code: string | undefined): ErrorCode {
  switch (code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH': // a message over maxPayload
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH': // a 64-bit length past 2^53
      return 'FRAME_TOO_LARGE';
    case 'WS_ERR_INVALID_UTF8':
      return 'BAD_UTF8';
    default:
      return 'PROTOCOL_ERROR';
  }
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(20);
}

