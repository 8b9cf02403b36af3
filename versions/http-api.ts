// The host's HTTP side: the page's static files, /healthz, /metrics, /api/stats and
// POST /api/send (the HTTP push of the article's /send), and which browser origins may use them.
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerOf, type Authenticator } from './auth.ts';
import type { MessageLog } from './message-log.ts';
import type { ServerMetrics } from './metrics.ts';
import { backplaneRefusal, CLOSE_CODE_WORDS, ERROR_CODES, checkContent, contentDetail, isValidId, isValidName, isValidRoom, isValidUser, parseJsonObject, type ErrorCode, type LimitName, type ProtocolLimits, type ServerInfo } from './protocol.ts';
import type { ServerCounters, Strategy } from './strategy.ts';
import type { Users } from './users.ts';

/** How long a token --auth dev hands out stays valid. */
const DEV_TOKEN_TTL = '12h';

const STATIC_FILES: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/state.js': ['state.js', 'text/javascript; charset=utf-8'],
  '/log.js': ['log.js', 'text/javascript; charset=utf-8'],
  '/outbox.js': ['outbox.js', 'text/javascript; charset=utf-8'],
  '/people.js': ['people.js', 'text/javascript; charset=utf-8'],
  '/servers.js': ['servers.js', 'text/javascript; charset=utf-8'],
  '/counters.js': ['counters.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
  '/favicon.svg': ['favicon.svg', 'image/svg+xml'],
};
const WEB_ROOT = new URL('./web/', import.meta.url);

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

export interface HttpApiContext {
  strategy: Strategy;
  counters: ServerCounters;
  metrics: ServerMetrics;
  info: ServerInfo;
  limits: ProtocolLimits;
  allowOrigins: readonly string[];
  /** The interface the server listens on: besides loopback names, the one Host a request may name. */
  listenHost: string;
  /** Open WebSocket connections, for /healthz. */
  connections(): number;
  /** Members of a room, for the answer to /api/send. */
  membersOf(room: string): number;
  /** Direct messages: POST /api/send with `to` pushes to a user. */
  users: Users;
  auth: Authenticator;
  /** The key that authorises a push to a user (null: only a token with the push scope). */
  apiKey: string | null;
  log: MessageLog | null;
}

/** The request handler for every HTTP request that is not a WebSocket upgrade. */
export function createHttpApi(ctx: HttpApiContext): (req: IncomingMessage, res: ServerResponse) => void {
  const { strategy, counters, metrics, info, limits } = ctx;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const origin = req.headers.origin;
    if (origin !== undefined && isAllowedOrigin(origin, ctx.allowOrigins)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
    const file = STATIC_FILES[url.pathname];
    const head = req.method === 'HEAD'; // every GET route answers HEAD: the same headers, no body
    if (file && (req.method === 'GET' || head)) {
      const body = await readFile(new URL(file[0], WEB_ROOT));
      res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-cache', 'Content-Length': body.length });
      res.end(head ? undefined : body);
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        return sendJson(res, 200, { ok: true, ...info, connections: ctx.connections() });
      case '/metrics': {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Content-Length': Buffer.byteLength(text) });
        res.end(head ? undefined : text);
        return;
      }
      case '/api/stats':
        return sendJson(res, 200, metrics.snapshot());
      case '/api/nodes': {
        // v4: where this cluster's other nodes serve, for a page whose node goes away; [] elsewhere.
        if (!strategy.peers) return sendJson(res, 200, { nodes: [] });
        try {
          return sendJson(res, 200, { nodes: await strategy.peers() });
        } catch (err) {
          return sendJson(res, 503, { error: backplaneRefusal(err as Error) });
        }
      }
      case '/close-codes.json':
        return sendJson(res, 200, CLOSE_CODE_WORDS);
      case '/api/send':
        return handleSend(req, res);
      case '/api/dev-token':
        return handleDevToken(req, res);
      default:
        return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } });
    }
  }

  async function handleSend(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'content-type, authorization' });
      res.end();
      return;
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST a JSON body {room, content, from?}' } });
    const notHere = postRefusal(req, 'post here');
    if (notHere) return refuse(res, ...notHere);
    const declared = Number(req.headers['content-length']);
    const body = declared > limits.maxFrameBytes ? null : await readBody(req, limits.maxFrameBytes);
    if (body === null) {
      // Refused as soon as it passes the limit, not after reading it all; the connection goes with it.
      counters.countBadInput('FRAME_TOO_LARGE');
      res.setHeader('Connection', 'close');
      res.once('finish', () => req.socket.destroy());
      return sendJson(res, 413, { error: { code: 'FRAME_TOO_LARGE', message: `${ERROR_CODES.FRAME_TOO_LARGE}: more than ${limits.maxFrameBytes.toLocaleString('en-US')} bytes` } });
    }
    const fail = (code: ErrorCode, message: string = ERROR_CODES[code]): void => {
      counters.countBadInput(code);
      sendJson(res, 400, { error: { code, message } });
    };
    const parsed = parseJsonObject(body);
    if (!parsed.ok) return fail(parsed.code);
    const { room, content, from, id, to } = parsed.value;
    if (to !== undefined) return pushToUser(req, res, to, content, id, fail);
    if (!isValidRoom(room)) return fail('BAD_ROOM');
    const bad = checkContent(content, limits);
    if (bad) {
      const detail = contentDetail(bad, content, limits);
      return fail(bad, detail ? `${ERROR_CODES[bad]}: ${detail}` : undefined);
    }
    if (from !== undefined && !isValidName(from)) return fail('BAD_NAME');
    if (id !== undefined && !isValidId(id)) return fail('BAD_ID');
    counters.received++;
    // An HTTP sender proves no name: whatever it claims is marked as coming over HTTP.
    try {
      await strategy.publish(room, { type: 'chat', room, from: from === undefined ? HTTP_SENDER : `${HTTP_SENDER}:${from as string}`, content: content as string, ts: Date.now(), ...(id !== undefined ? { id: id as string } : {}) });
    } catch (err) {
      // v4 only: its backplane could not take the message (BACKPLANE_DOWN: not sent), or lost its
      // answer (SEND_UNKNOWN: maybe sent). Either way the caller may send again, with the same id.
      return sendJson(res, 503, { error: backplaneRefusal(err as Error) });
    }
    ctx.log?.record({ kind: 'room', id: id as string | undefined, from: from === undefined ? HTTP_SENDER : `${HTTP_SENDER}:${from as string}`, to: room, content: content as string });
    sendJson(res, 202, { ok: true, room, members: ctx.membersOf(room) });
  }

  /**
   * POST /api/send {to, content}: go-pusher's /send?uid=, to every connection of one user on any
   * node. A browser origin proves nothing about who may reach a person: this takes a server
   * credential, --api-key, or a token with the push scope.
   */
  async function pushToUser(req: IncomingMessage, res: ServerResponse, to: unknown, content: unknown, id: unknown, fail: (code: ErrorCode, message?: string) => void): Promise<void> {
    const sender = await pusher(req.headers.authorization);
    if (sender === null) return refuse(res, 'auth', 401, ctx.apiKey === null && ctx.auth.mode === 'none' ? 'pushing to a user needs a credential, and this server has none: start it with --api-key' : 'pushing to a user needs Authorization: Bearer <--api-key>, or a token with the push scope');
    if (!isValidUser(to)) return fail('BAD_RECIPIENT');
    const bad = checkContent(content, limits);
    if (bad) return fail(bad, contentDetail(bad, content, limits));
    if (id !== undefined && !isValidId(id)) return fail('BAD_ID');
    let reached: boolean;
    try {
      reached = await ctx.users.push(sender, to, { content: content as string, ...(id !== undefined ? { id: id as string } : {}) });
    } catch (err) {
      return sendJson(res, 503, { error: backplaneRefusal(err as Error) });
    }
    if (!reached) return sendJson(res, 404, { error: { code: 'USER_OFFLINE', message: `${ERROR_CODES.USER_OFFLINE}: ${to}` } });
    sendJson(res, 202, { ok: true, to });
  }

  /** Who an Authorization header pushes as: the API key's holder (http), a token's sub with the push scope, or nobody (null). */
  async function pusher(header: string | undefined): Promise<string | null> {
    const bearer = bearerOf(header);
    if (bearer === null) return null;
    if (ctx.apiKey !== null && sameSecret(bearer, ctx.apiKey)) return HTTP_SENDER;
    const r = await ctx.auth.verify(bearer);
    return r.ok && r.account?.scopes.includes('push') ? r.account.id : null;
  }

  /** --auth dev: POST {name} signs a token for that name (the page's sign-in field). */
  async function handleDevToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!ctx.auth.issue) return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: 'no dev sign-in here: the server runs without --auth dev' } });
    if (req.method !== 'POST') return sendJson(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST a JSON body {name}' } });
    const notHere = postRefusal(req, 'sign in here');
    if (notHere) return refuse(res, ...notHere);
    const body = await readBody(req, 4096);
    const parsed = body === null ? null : parseJsonObject(body);
    const name = parsed?.ok ? parsed.value.name : undefined;
    if (!isValidName(name)) return sendJson(res, 400, { error: { code: 'BAD_NAME', message: ERROR_CODES.BAD_NAME } });
    sendJson(res, 200, { token: await ctx.auth.issue(name, name, DEV_TOKEN_TTL), user: name, expiresIn: DEV_TOKEN_TTL });
  }

  /**
   * Why a POST must be refused, or null. Any web page can make a browser send a simple POST, so
   * only the workbench's own pages may, to this server by its own name, with a body a browser would
   * have asked about before sending it across origins.
   */
  function postRefusal(req: IncomingMessage, what: string): [LimitName, number, string] | null {
    const origin = req.headers.origin;
    if (origin !== undefined && !isAllowedOrigin(origin, ctx.allowOrigins)) return ['origin', 403, `origin ${origin} may not ${what} (--allow-origin)`];
    // A name that resolves to loopback is not loopback's to use (DNS rebinding): the Host must be.
    if (!isOwnHost(req.headers.host, ctx.listenHost)) return ['host', 421, `Host ${req.headers.host ?? '(none)'} is not this server's`];
    // A browser asks before sending JSON across origins; a text/plain or form post it would send unasked.
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) return ['content_type', 415, 'send Content-Type: application/json'];
    return null;
  }

  function refuse(res: ServerResponse, limit: LimitName, status: number, message: string): void {
    counters.countRefusal(limit);
    sendJson(res, status, { error: { code: limit.toUpperCase(), message } });
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: String(err) } });
      else res.destroy();
    });
  };
}

/** Compares a presented secret with the configured one in constant time. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The `from` of a chat posted over HTTP, alone or before the name the sender claimed. */
export const HTTP_SENDER = 'http';

/** A Host header naming loopback, or the interface the server listens on, with any port. */
export function isOwnHost(host: string | undefined, listenHost: string): boolean {
  if (host === undefined) return false;
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return name === 'localhost' || name === '[::1]' || /^127(\.\d{1,3}){3}$/.test(name) || name === listenHost || name === `[${listenHost}]`;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** Reads a request body up to `max` bytes; null as soon as it passes `max`, without reading the rest. */
function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= max) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
