// Who may become a WebSocket, and how many sockets an address and the server may hold. Every TCP
// socket counts toward its address's cap from its first byte, not from its upgrade: one still
// sending its request (slowly, on purpose) holds a file as surely as an open WebSocket.
import type { IncomingMessage, Server } from 'node:http';
import type { Account, AuthResult } from './auth.ts';
import type { Socket } from 'node:net';
import type { HostOptions } from './host-options.ts';
import { isAllowedOrigin } from './http-api.ts';
import { WS_PATH } from './protocol.ts';
import type { ServerCounters } from './strategy.ts';

/** Sockets kept beside the WebSockets, per address and in all, for plain HTTP: the page, /healthz, /api/stats. */
const HTTP_ROOM = 30;

export interface Admission {
  /** The server is shutting down: every upgrade gets 503. */
  closing(): boolean;
  /** WebSockets open now. */
  open(): number;
  /** Who the upgrade signs in as (--auth), checked before it becomes a socket. */
  authenticate(req: IncomingMessage): Promise<AuthResult>;
  /** Makes the upgrade a WebSocket, of `account` when it signed in. */
  accept(req: IncomingMessage, socket: Socket, head: Buffer, account: Account | null): void;
}

/** Counts sockets per address on `http`, caps them, and answers each upgrade: a WebSocket, or a status with the reason. */
export function admitUpgrades(http: Server, options: HostOptions, counters: ServerCounters, a: Admission): void {
  const perIp = new Map<string, number>();
  http.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const open = (perIp.get(ip) ?? 0) + 1;
    perIp.set(ip, open);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left > 0) perIp.set(ip, left);
      else perIp.delete(ip);
    });
    // Past its cap and the room left for its plain HTTP requests, an address gets no more sockets at all.
    if (options.maxPerIp > 0 && open > options.maxPerIp + HTTP_ROOM) {
      counters.countRefusal('max_per_ip');
      socket.destroy();
    }
  });
  // The server's sockets stay under the files a process may open: WebSockets up to
  // maxConnections, and HTTP_ROOM more for the page, /healthz and requests under way.
  if (options.maxConnections > 0) http.maxConnections = options.maxConnections + HTTP_ROOM;

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH || a.closing()) return refuseUpgrade(socket, a.closing() ? 503 : 404);
    if (!isAllowedOrigin(req.headers.origin, options.allowOrigins)) {
      counters.countRefusal('origin');
      return refuseUpgrade(socket, 403);
    }
    if (options.maxConnections > 0 && a.open() >= options.maxConnections) {
      counters.countRefusal('max_connections');
      return refuseUpgrade(socket, 503, `the server holds its maximum of ${options.maxConnections} connections (--max-connections)`);
    }
    const ip = socket.remoteAddress ?? '';
    if (options.maxPerIp > 0 && (perIp.get(ip) ?? 0) > options.maxPerIp) {
      counters.countRefusal('max_per_ip');
      return refuseUpgrade(socket, 503, `${ip} holds its maximum of ${options.maxPerIp} connections (--max-per-ip)`);
    }
    // The token is checked before the upgrade: a client refused never holds a socket, and reads
    // why in the answer (a browser's onclose after an upgrade would only say 1006).
    socket.on('error', () => {}); // (a peer that hangs up while its token is checked)
    a.authenticate(req).then(
      (r) => {
        if (r.ok) return a.accept(req, socket, head, r.account);
        counters.countRefusal('auth');
        refuseUpgrade(socket, 401, r.reason);
      },
      () => refuseUpgrade(socket, 401, 'the token could not be checked'),
    );
  });
}

function refuseUpgrade(socket: Socket, status: 401 | 403 | 404 | 503, reason?: string): void {
  const text = { 401: 'Unauthorized', 403: 'Forbidden origin', 404: 'Not Found', 503: 'Service Unavailable' }[status];
  const body = reason ?? (status === 503 ? 'shutting down' : '');
  // RFC 6750 §3: a refused bearer token says so, and why, in WWW-Authenticate.
  const challenge = status === 401 ? `WWW-Authenticate: Bearer realm="chatroom", error="invalid_token", error_description="${body.replace(/["\\]/g, "'")}"\r\n` : '';
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${challenge}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
