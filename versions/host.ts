// The shared host: the WebSocket upgrade at /chatroom (sign-in checked before it: auth.ts), each
// connection's lifecycle, the heartbeat, limits and graceful shutdown; what its frames do
// (frames.ts), the HTTP routes (http-api.ts), room membership (roster.ts) and users (users.ts)
// beside it. Written once; a version only decides how a message reaches the sockets
// (strategy.ts).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { admitUpgrades } from './admission.ts';
import { chooseProtocol, createAuthenticator, type Account } from './auth.ts';
import { createHttpApi } from './http-api.ts';
import { ServerMetrics } from './metrics.ts';
import { MessageLog } from './message-log.ts';
import { CLOSE_CODES, DEFAULT_ROOM, ERROR_CODES, errorMessage, wsErrorCode, isValidName, isValidRoom, parseClientFrame, parseResumePoint, WS_PATH, type ServerInfo } from './protocol.ts';
import { rateLimitOf, resolveHostOptions, type HostOptions } from './host-options.ts';
import { ConnectionLimiter } from './rate-limit.ts';
import { Roster } from './roster.ts';
import { frameEnded, startSweeps } from './sweeps.ts';
import type { Connection, ServerCounters, Strategy } from './strategy.ts';
import { Users } from './users.ts';
import { Frames, SETTLED, type ConnState } from './frames.ts';

export { WS_PATH };
export { DEFAULT_HOST_OPTIONS, resolveHostOptions, type HostOptions } from './host-options.ts';
export { MAX_SENDS_IN_FLIGHT_PER_CONNECTION } from './frames.ts';
/**
 * Connections the kernel may hold before the server accepts them. Node's default, 511, overflows
 * in a connection storm (thousands of clients joining at once), and an overflowed SYN waits a
 * second for TCP to retry; the kernel caps this at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 4096;
/** How long shutdown waits for clients to answer the 1001 close before cutting them off. */
const SHUTDOWN_GRACE_MS = 2_000;
/** How often Node checks HTTP requests against those timeouts (its default is 30 s). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** The longest a timer may wait (2^31-1 ms, about 24.8 days); a token's expiry further off is checked again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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

export async function startChatServer(strategy: Strategy, counters: ServerCounters, partial: Partial<HostOptions> = {}): Promise<ChatServer> {
  const options = resolveHostOptions(partial);
  const { limits } = options;
  // One entry per open connection. Its handlers are shared by every connection (created once per
  // server, not per client), and what they need of one connection lives in its ConnState: at
  // 20k idle clients each closure, context and listener wrapper counts in server memory.
  const conns = new Map<WebSocket, ConnState>();
  let nextId = 1;
  let closing: Promise<void> | null = null;
  const rate = rateLimitOf(options, strategy.limitsRate === true);
  const auth = createAuthenticator(options.auth);
  const log = options.messageLog ? new MessageLog(options.messageLog) : null;
  const info: ServerInfo = { version: strategy.version, describe: strategy.describe, limits, ...(rate ? { rate } : {}), ...(strategy.node ? { node: strategy.node } : {}), auth: auth.mode };
  const roster = new Roster(strategy, info);
  const users = new Users(strategy, counters, log);
  const frames = new Frames(strategy, counters, roster, users, log);

  const metrics = new ServerMetrics(strategy, counters, {
    connections: () => conns.size,
    rooms: () => roster.size,
    bufferedBytes: () => {
      let sum = 0;
      for (const st of conns.values()) sum += st.conn.socket.writableLength;
      return sum;
    },
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false, handleProtocols: chooseProtocol });
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
      users,
      auth,
      apiKey: options.apiKey,
      log,
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

  // --- WebSocket ---

  function onConnection(ws: WebSocket, socket: Socket, req: IncomingMessage, account: Account | null): void {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const room = query.get('room') ?? DEFAULT_ROOM;
    const conn: Connection = { id: nextId++, ws, socket, name: account?.name ?? query.get('name') ?? '', room: isValidRoom(room) ? room : DEFAULT_ROOM, ...(account ? { account } : {}) };
    // A name asked for in the URL that is taken gets a guest name, and the client is told why.
    // (Signed in, the name is the token's: a user's tabs share it.)
    const asked = !account && isValidName(conn.name) ? conn.name : null;
    const taken = asked !== null && roster.isTaken(conn.room, asked);
    if (!account && (!isValidName(conn.name) || taken)) conn.name = roster.guestName(conn.room, conn.id);
    // v4: the claim to its name it was given on another node, shown again (else a new one).
    if (strategy.claimsNames && !account) conn.claim = parseClaim(query.get('claim')) ?? randomBytes(16).toString('base64url');
    // v4: `since` and `epoch` in the URL resume the room's stream where a reconnecting client left it.
    const resume = parseResumePoint(query.get('since') ?? undefined, query.get('epoch') ?? undefined);
    socket.setNoDelay(true);
    const now = performance.now();
    const limiter = rate ? new ConnectionLimiter(rate, now) : null;
    const st: ConnState = { conn, joinedRoom: null, pending: 0, ready: SETTLED, alive: true, closingSince: 0, bytesSeen: 0, quietSince: now, limiter, inFlight: 0, sends: 0, pinged: null, bytesAtFrame: socket.bytesRead, partialSince: 0, expiry: null };
    conns.set(ws, st);
    if (account) expireAt(st, account.expiresAtMs);
    frames.enqueue(st, async () => {
      try {
        await strategy.add(conn, resume === 'bad' || resume === null ? undefined : resume);
        st.joinedRoom = conn.room;
        await users.bind(conn); // (before joined: from then on, direct messages to it arrive)
        await roster.enter(conn);
      } catch (err) {
        return frames.refuseEntry(st, err); // (v4: never a socket left waiting in silence)
      }
      // (v4: taken on another node, it is a guest now too)
      if (taken || (asked !== null && conn.name !== asked)) frames.reject(conn, 'NAME_TAKEN', `${ERROR_CODES.NAME_TAKEN}: you are ${conn.name}`);
      if (resume === 'bad') frames.reject(conn, 'BAD_SINCE', `${ERROR_CODES.BAD_SINCE}: the URL's since and epoch were ignored`);
    });
    ws.on('pong', onPong);
    ws.on('ping', onPing);
    ws.on('error', onError);
    ws.on('close', onClose);
    ws.on('message', onMessage);
  }

  /** The socket is closed (4401) when its token expires: an open socket outlives no sign-in. */
  function expireAt(st: ConnState, atMs: number): void {
    const left = atMs - Date.now();
    st.expiry = setTimeout(() => {
      if (Date.now() < atMs) return expireAt(st, atMs);
      counters.countRefusal('auth');
      st.conn.ws.close(CLOSE_CODES.TOKEN_EXPIRED, 'token expired: sign in again');
    }, Math.min(Math.max(0, left), MAX_TIMER_MS));
  }

  function onPing(this: WebSocket): void {
    const st = conns.get(this);
    if (st) frameEnded(st);
  }

  function onPong(this: WebSocket, data: Buffer): void {
    const st = conns.get(this);
    if (st) frameEnded(st);
    // Only an answer to our ping (RFC 6455 §5.5.3: it echoes the ping's payload) is a sign of life:
    // a peer cannot keep a socket it no longer reads alive with pongs it was not asked for.
    if (st?.pinged?.equals(data)) {
      st.alive = true;
      st.pinged = null;
    }
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
    if (st.expiry) clearTimeout(st.expiry);
    void st.ready.then(() => {
      users.unbind(st.conn);
      if (st.joinedRoom !== null) void roster.remove(st.conn).catch(() => {}); // (v4: Redis may be down; its reaper cleans up)
      return strategy.remove(st.conn);
    });
  }

  function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    const st = conns.get(this);
    if (!st || this.readyState !== WebSocket.OPEN) return; // (closing: what it still sends is not read)
    frameEnded(st);
    const conn = st.conn;
    if (st.limiter && !allowed(st, st.limiter.frame(performance.now()))) return;
    if (isBinary) return frames.reject(conn, 'BINARY_FRAME');
    const parsed = parseClientFrame(data.toString('utf8'), limits);
    if (!parsed.ok) return frames.reject(conn, parsed.code, parsed.message);
    const frame = parsed.frame;
    if (frame.type === 'chat') return frames.chat(st, frame);
    if (frame.type === 'direct') return frames.direct(st, frame);
    if (st.limiter && !allowed(st, st.limiter.join(performance.now()))) return;
    frames.join(st, frame);
  }

  /** Whether a frame the limiter judged goes on; a flood is closed (1008). */
  function allowed(st: ConnState, verdict: ReturnType<ConnectionLimiter['frame']>): boolean {
    if (verdict === 'ok') return true;
    if (verdict === 'close') {
      counters.countRefusal('flood');
      st.conn.ws.close(CLOSE_CODES.POLICY_VIOLATION, 'flooding: far past its rate');
      // Not another byte of it is read: the close goes out, and the reaper cuts it off after the grace.
      st.conn.socket.pause();
      return false;
    }
    counters.countRefusal('rate');
    if (verdict === 'drop-and-tell') strategy.sendTo(st.conn, errorMessage('RATE_LIMITED', `${ERROR_CODES.RATE_LIMITED}: ${rate?.msgsPerS}/s, ${rate?.burst} at once`));
    return false;
  }

  admitUpgrades(http, options, counters, {
    closing: () => closing !== null,
    open: () => conns.size,
    authenticate: (req) => auth.authenticate(req),
    accept: (req, socket, head, account) => wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, req, account)),
  });

  const stopSweeps = startSweeps(conns, { ...options, heartbeat: strategy.heartbeat }, counters);

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
      stopSweeps();
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
      await log?.close();
      metrics.close();
      await closed;
    })();
    return closing;
  }

  return { strategy, counters, metrics, port, url: `http://${hostForUrl}:${port}/`, wsUrl: `ws://${hostForUrl}:${port}${WS_PATH}`, close };
}

/** A claim a client shows: what the server gave it (base64url, 16-64 characters), or null. */
function parseClaim(text: string | null): string | null {
  return text !== null && /^[A-Za-z0-9_-]{16,64}$/.test(text) ? text : null;
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(20);
}

