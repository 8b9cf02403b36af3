// The shared host: the WebSocket upgrade at /chatroom, each connection's frames in order, the
// heartbeat, limits and graceful shutdown; the HTTP routes (http-api.ts) and room membership
// (roster.ts) beside it. Written once; a version only decides how a message reaches the sockets
// (strategy.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { admitUpgrades } from './admission.ts';
import { createHttpApi } from './http-api.ts';
import { ServerMetrics } from './metrics.ts';
import { backplaneRefusal, CLOSE_CODES, DEFAULT_ROOM, ERROR_CODES, encodeServerMessage, errorMessage, wsErrorCode, isValidName, isValidRoom, parseClientFrame, parseResumePoint, WS_PATH, type ErrorCode, type ServerInfo } from './protocol.ts';
import { rateLimitOf, resolveHostOptions, type HostOptions } from './host-options.ts';
import { ConnectionLimiter } from './rate-limit.ts';
import { Roster } from './roster.ts';
import { frameEnded, startSweeps, type Swept } from './sweeps.ts';
import type { Connection, ServerCounters, Strategy } from './strategy.ts';

export { WS_PATH };
export { DEFAULT_HOST_OPTIONS, resolveHostOptions, type HostOptions } from './host-options.ts';
/** v4: sends of one connection waiting for Redis past which its next send is refused: one sender cannot take the node's whole budget. */
export const MAX_SENDS_IN_FLIGHT_PER_CONNECTION = 256;
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

/** What the host keeps of one open connection, beside what its sweeps keep (sweeps.ts). */
interface ConnState extends Swept {
  /** The room the host announced it in (null until the version has added it). */
  joinedRoom: string | null;
  /** Steps queued behind the version's add or move, and the end of that queue. */
  pending: number;
  ready: Promise<void>;
  /** Its frame and join rates (null: no limit). */
  readonly limiter: ConnectionLimiter | null;
  /** v4: its sends waiting for the backplane, and how many sends it has made (for the ids the host gives). */
  inFlight: number;
  sends: number;
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
  const rate = rateLimitOf(options, strategy.limitsRate === true);
  const info: ServerInfo = { version: strategy.version, describe: strategy.describe, limits, ...(rate ? { rate } : {}), ...(strategy.node ? { node: strategy.node } : {}) };
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

  function reject(conn: Connection, code: ErrorCode, message?: string, id?: string): void {
    counters.countBadInput(code);
    strategy.sendTo(conn, errorMessage(code, message, id));
  }

  /** What went wrong with a step the version could not do (v4: Redis down or slow), in the client's words; anything else is logged too. */
  function refusal(err: unknown, what: string): { code: ErrorCode; message: string } {
    const e = err as Error & { code?: string };
    if (e.code !== 'SEND_UNKNOWN' && e.code !== 'BACKPLANE_DOWN') console.error(`[${strategy.version}] ${what}:`, err);
    return backplaneRefusal(e, what);
  }

  /** A new connection the version could not take into its room: told why, and closed (1013: connect again later). */
  function refuseEntry(st: ConnState, err: unknown): void {
    const { code, message } = refusal(err, `could not enter ${st.conn.room}`);
    if (st.joinedRoom !== null) reject(st.conn, code, message);
    else {
      // Not in the version yet (its add failed): straight to the socket.
      counters.countBadInput(code);
      st.conn.ws.send(encodeServerMessage(errorMessage(code, message)));
    }
    st.conn.ws.close(CLOSE_CODES.TRY_AGAIN_LATER, 'try again later');
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
    if (!isValidName(conn.name) || taken) conn.name = roster.guestName(conn.room, conn.id);
    // v4: `since` and `epoch` in the URL resume the room's stream where a reconnecting client left it.
    const resume = parseResumePoint(query.get('since') ?? undefined, query.get('epoch') ?? undefined);
    socket.setNoDelay(true);
    const now = performance.now();
    const limiter = rate ? new ConnectionLimiter(rate, now) : null;
    const st: ConnState = { conn, joinedRoom: null, pending: 0, ready: SETTLED, alive: true, closingSince: 0, bytesSeen: 0, quietSince: now, limiter, inFlight: 0, sends: 0, pinged: null, bytesAtFrame: socket.bytesRead, partialSince: 0 };
    conns.set(ws, st);
    enqueue(st, async () => {
      try {
        await strategy.add(conn, resume === 'bad' || resume === null ? undefined : resume);
        st.joinedRoom = conn.room;
        await roster.enter(conn);
      } catch (err) {
        return refuseEntry(st, err); // (v4: never a socket left waiting in silence)
      }
      if (taken) reject(conn, 'NAME_TAKEN', `${ERROR_CODES.NAME_TAKEN}: you are ${conn.name}`);
      if (resume === 'bad') reject(conn, 'BAD_SINCE', `${ERROR_CODES.BAD_SINCE}: the URL's since and epoch were ignored`);
    });
    ws.on('pong', onPong);
    ws.on('ping', onPing);
    ws.on('error', onError);
    ws.on('close', onClose);
    ws.on('message', onMessage);
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
    void st.ready.then(() => {
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
    if (isBinary) return reject(conn, 'BINARY_FRAME');
    const parsed = parseClientFrame(data.toString('utf8'), limits);
    if (!parsed.ok) return reject(conn, parsed.code, parsed.message);
    const frame = parsed.frame;
    if (frame.type === 'chat') {
      counters.received++;
      // v4: every send has an id, so a resend after SEND_UNKNOWN is the same send.
      const id = frame.id ?? (strategy.resendSafe ? `~${strategy.node ?? ''}.${conn.id}.${++st.sends}` : undefined);
      const publish = (): void => {
        if (st.joinedRoom === null) return reject(conn, 'NOT_IN_ROOM', undefined, id);
        if (st.inFlight >= MAX_SENDS_IN_FLIGHT_PER_CONNECTION) return reject(conn, 'BACKPLANE_DOWN', backplaneRefusal({ message: `${st.inFlight} of your sends are waiting for Redis` }).message, id);
        const sent = strategy.publish(conn.room, { type: 'chat', room: conn.room, from: conn.name, content: frame.content, ts: Date.now(), ...(id !== undefined ? { id } : {}) });
        if (!sent) return;
        // v4: a send its backplane could not take is refused to its sender, never dropped unsaid.
        st.inFlight++;
        sent.then(
          () => st.inFlight--,
          (err: unknown) => {
            st.inFlight--;
            const { code, message } = refusal(err, '');
            strategy.sendTo(conn, errorMessage(code, message, id));
          },
        );
      };
      if (st.pending === 0) publish(); // with nothing pending, chat goes straight on
      else enqueue(st, publish);
      return;
    }
    if (st.limiter && !allowed(st, st.limiter.join(performance.now()))) return;
    enqueue(st, async () => {
      const name = frame.name ?? conn.name;
      if (roster.isTaken(frame.room, name, conn)) return reject(conn, 'NAME_TAKEN');
      try {
        if (frame.room !== conn.room) {
          // The version moves it first: refused (v4, Redis down), it stays where it was.
          await strategy.move(conn, frame.room, frame.resume);
          await roster.remove(conn).catch(() => {}); // (v4: Redis may have gone since; its reaper cleans up)
          conn.name = name;
          conn.room = frame.room;
          try {
            await roster.enter(conn);
          } catch (err) {
            return refuseEntry(st, err);
          }
          return;
        }
        if (name !== conn.name) await roster.rename(conn, name);
        // v4: a join to the room it is in, with since and epoch, replays what it missed.
        if (frame.resume) await strategy.move(conn, frame.room, frame.resume);
        await roster.sendJoined(conn);
      } catch (err) {
        const { code, message } = refusal(err, frame.room !== conn.room ? `could not move to ${frame.room}` : name !== conn.name ? `could not rename to ${name}` : `could not rejoin ${frame.room}`);
        reject(conn, code, message);
      }
    });
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
    accept: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, req)),
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
      metrics.close();
      await closed;
    })();
    return closing;
  }

  return { strategy, counters, metrics, port, url: `http://${hostForUrl}:${port}/`, wsUrl: `ws://${hostForUrl}:${port}${WS_PATH}`, close };
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(20);
}

