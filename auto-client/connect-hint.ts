// One line for a connect that failed, saying what a newcomer most likely did and what to do, in
// place of a stack trace: nothing listening, the page's URL given for the WebSocket's, no answer.
import { WS_PATH } from '../versions/protocol.ts';

/** The WebSocket URL a page URL (http://host:port/…) or a ws:// URL without the path most likely meant. */
export function webSocketUrlFor(url: URL): string {
  return `ws://${url.host}${WS_PATH}`;
}

/** Refuses, before any connect, a URL that cannot be a WebSocket's: the line to print, or null if it may be one. */
export function urlHint(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `"${raw}" is not a URL: a chat server's WebSocket looks like ws://127.0.0.1:8083${WS_PATH}`;
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return `${raw} is the page; its WebSocket is ${webSocketUrlFor(url)}`;
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return `${raw}: a WebSocket URL starts with ws:// (e.g. ws://127.0.0.1:8083${WS_PATH})`;
  return null;
}

/** One line for an error from connecting to `raw`: what failed, and the likely fix. */
export function connectFailureLine(raw: string, err: Error & { code?: string }): string {
  const url = new URL(raw);
  const where = `${url.hostname}:${url.port || (url.protocol === 'wss:' ? 443 : 80)}`;
  if (err.code === 'ECONNREFUSED') return `nothing listens at ${where}: is the server running? (npm run v3 starts one; it prints its URL)`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `${url.hostname} does not resolve: use 127.0.0.1`;
  if (/upgrade refused: HTTP\/1\.1 (200|404)/.test(err.message) && url.pathname !== WS_PATH) {
    return `${raw} is not the WebSocket (${err.message.replace('upgrade refused: ', '')}); try ${webSocketUrlFor(url)}`;
  }
  if (/upgrade refused: HTTP\/1\.1 401/.test(err.message)) return `${raw} asks its clients to sign in (401): give the harness the server's HS256 secret (--jwt-secret) or an Authorization template (--auth-header 'Bearer {user}')`;
  if (/timed out/.test(err.message)) return `${where} accepted the connection but did not complete the WebSocket upgrade: is it a WebSocket server?`;
  return `could not connect to ${raw}: ${err.message}`;
}
