// @ts-check
// What this page sends: each message waits, by its id, for its echo (its round trip), or for a
// refusal that puts it back in the box; v4's SEND_UNKNOWN sends it again with the same id.
import { $field, fmt, state } from './state.js';
import { announce, system } from './log.js';

/** A send the server could not answer for (v4, SEND_UNKNOWN) goes again with its id, this long after, at most this often. */
const RESEND_AFTER_MS = 1000;
const RESENDS = 5;

/** @param {object} frame */
export function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    system('not connected: the message was not sent, it is still in the box');
    return false;
  }
  state.ws.send(JSON.stringify(frame));
  return true;
}

/** Your own message came back: its round trip, beside it. */
/** @param {{ id?: string, content: string }} msg @param {HTMLElement} li */
export function settle(msg, li) {
  const mine = state.pending.findIndex((p) => (msg.id !== undefined ? p.id === msg.id : p.content === msg.content));
  if (mine < 0) return;
  const p = /** @type {import('./state.js').Pending} */ (state.pending.splice(mine, 1)[0]);
  const rtt = document.createElement('bdi');
  rtt.className = 'rtt';
  rtt.textContent = `${Math.round(performance.now() - p.at)} ms round trip`;
  li.append(rtt);
  announce(`sent: ${msg.content.slice(0, 100)}`);
}

/** A send the server refused goes back into the box, unless something new is being typed there. */
/** @param {string} [id] */
export function giveBack(id) {
  const at = id === undefined ? 0 : state.pending.findIndex((p) => p.id === id);
  const [p] = at >= 0 ? state.pending.splice(at, 1) : [];
  if (p && $field('text').value === '') $field('text').value = p.content;
}

/** v4 lost its answer to a send: it may have gone through. The same id again is safe; the server keeps one. */
/** @param {string} [id] */
export function resend(id) {
  const p = state.pending.find((q) => q.id === id);
  if (!p) return;
  if (++p.tries > RESENDS) return giveBack(id);
  setTimeout(() => {
    if (state.pending.includes(p)) send(p.frame);
  }, RESEND_AFTER_MS);
}

/** Why `content` cannot be sent under the server's limits, or null. */
/** @param {string} content */
export function tooLarge(content) {
  const { maxContentChars, maxFrameBytes } = state.limits;
  if (content.length > maxContentChars) return `${fmt(content.length)} of ${fmt(maxContentChars)} characters: too long to send`;
  const bytes = new TextEncoder().encode(JSON.stringify({ type: 'chat', content })).length;
  if (bytes > maxFrameBytes) return `${fmt(bytes)} of ${fmt(maxFrameBytes)} bytes: too large to send`;
  return null;
}
