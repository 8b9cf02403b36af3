// The host's HTTP side: the page's static files, /healthz, /metrics, /api/stats and
// POST /api/send (the HTTP push of the article's /send), and which browser origins may use them.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerMetrics } from './metrics.ts';
import { ERROR_CODES, checkContent, isValidName, isValidRoom, parseJsonObject, type ErrorCode, type ProtocolLimits, type ServerInfo } from './protocol.ts';
import type { ServerCounters, Strategy } from './strategy.ts';

const STATIC_FILES: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
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
  /** Open WebSocket connections, for /healthz. */
  connections(): number;
  /** Members of a room, for the answer to /api/send. */
  membersOf(room: string): number;
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
    if (file && req.method === 'GET') {
      const body = await readFile(new URL(file[0], WEB_ROOT));
      res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-cache' });
      res.end(body);
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        return sendJson(res, 200, { ok: true, ...info, connections: ctx.connections() });
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
    const parsed = parseJsonObject(body);
    if (!parsed.ok) return fail(parsed.code);
    const { room, content, from } = parsed.value;
    if (!isValidRoom(room)) return fail('BAD_ROOM');
    const bad = checkContent(content, limits);
    if (bad) return fail(bad);
    if (from !== undefined && !isValidName(from)) return fail('BAD_NAME');
    counters.received++;
    strategy.publish(room, { type: 'chat', room, from: (from as string | undefined) ?? 'http', content: content as string, ts: Date.now() });
    sendJson(res, 202, { ok: true, room, members: ctx.membersOf(room) });
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: String(err) } });
      else res.destroy();
    });
  };
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
