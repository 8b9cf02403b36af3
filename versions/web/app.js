// @ts-check
// The browser test page: join any running version, chat in a room or privately, and watch its
// counters live. This module holds the connection and what each server frame does; the parts
// beside it are the message list (log.js), members, private messages and sign-in (people.js),
// the server selector (servers.js) and the counters (counters.js).
import { $, $field, DEFAULT_LIMITS, state } from './state.js';
import { addLine, addMedia, announce, clock, startSection, system } from './log.js';
import { giveBack, resend, send, settle, tooLarge } from './outbox.js';
import { memberJoined, memberLeft, renderMembers, renderSignIn, setMembers, showDirect, tokenFor, writeTo } from './people.js';
import { authOf, pollServers, renderSelect, renderServerDetails } from './servers.js';
import { pollStats } from './counters.js';

const STATUS_POLL_MS = 5000;
const STATS_POLL_MS = 1000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
/** Refusals after which what was sent goes back into the box. */
const GIVE_BACK = new Set(['CONTENT_TOO_LARGE', 'EMPTY_CONTENT', 'BAD_FIELD', 'BACKPLANE_DOWN', 'FRAME_TOO_LARGE', 'RATE_LIMITED', 'USER_OFFLINE', 'BAD_MEDIA']);
/** Refusals of a name: the box goes back to the name you have, and says why beside it. */
const NAME_REFUSED = new Set(['NAME_TAKEN', 'BAD_NAME', 'NAME_FIXED']);
const NAME_KEY = 'chatroom-evolution.name';
/** The WebSocket subprotocol a signed-in page offers beside `bearer.<token>` (versions/auth.ts). */
const SUBPROTOCOL = 'chatroom';

// --- connection state: one status line, and stale marks while not connected ---

/** @param {string} text @param {string} cls */
function setState(text, cls) {
  $('state').textContent = text;
  $('state').className = `state ${cls}`;
}

/** @param {boolean} live */
function setLive(live) {
  state.live = live;
  for (const id of ['live', 'members-panel', 'server-info']) $(id).classList.toggle('stale', !live);
  $('stale-note').hidden = live;
}

/** @param {number} code */
function closeInWords(code) {
  return state.closeWords[code] ?? 'closed';
}

/** @param {string} address @param {number} code */
function showCountdown(address, code) {
  const left = Math.max(0, state.retryAt - Date.now());
  setState(`disconnected from ${address}: ${closeInWords(code)} (${code}) · retrying in ${Math.ceil(left / 1000)} s`, 'closed');
}

// --- the socket ---

/** @param {string} address */
function connect(address, resume = false) {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  $('retry-now').hidden = true;
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close(1000);
  }
  if (address !== state.address) {
    state.toldDisconnect = false;
    // a sign-in is one server's (a v4 cluster's nodes share it: a failover keeps it)
    if (!state.siblings.includes(address)) state.token = null;
  }
  state.address = address;
  setLive(false);
  const room = $field('room').value || 'lobby';
  const query = new URLSearchParams({ room });
  state.asked = state.token ? '' : $field('name').value.trim();
  if (state.asked) query.set('name', state.asked);
  // v4: the claim to the name, so another node of the cluster keeps it this page's
  if (state.claim) query.set('claim', state.claim);
  // v4: coming back to the same room, ask for what was missed meanwhile.
  if (resume && state.stream && state.stream.room === room) {
    query.set('since', String(state.stream.seq));
    query.set('epoch', state.stream.epoch);
  }
  setState(`connecting to ${address}…`, 'connecting');
  let ws;
  try {
    ws = new WebSocket(`ws://${address}/chatroom?${query}`, state.token ? [SUBPROTOCOL, `bearer.${state.token}`] : []);
  } catch {
    setState(`${address} is not an address a page can connect to`, 'closed');
    return;
  }
  state.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    state.retries = 0;
    setState(`connected to ${address}`, 'open');
  };
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = (ev) => void onClose(ws, address, ev, opened);
  state.lastStats = null;
  for (const k of Object.keys(state.series)) state.series[k] = [];
}

/** @param {WebSocket} ws @param {string} address @param {CloseEvent} ev @param {boolean} opened */
async function onClose(ws, address, ev, opened) {
  setLive(false);
  if (state.ws !== ws) return;
  // A server that signs people in refuses an upgrade without a good token (401: the page sees only
  // a failed connection), and closes a socket whose token expired (4401): sign in, no retry loop.
  if (ev.code === 4401 || (!opened && (await authOf(address)) !== 'none' && (await authOf(address)) !== null)) {
    if (state.ws !== ws) return;
    const expired = ev.code === 4401;
    state.token = null;
    state.user = null;
    renderSignIn((await authOf(address)) ?? 'jwt');
    system(expired ? `your sign-in on ${address} expired: sign in again` : `${address} asks you to sign in (above)`);
    setState(expired ? `signed out of ${address}: token expired (4401)` : `${address} asks you to sign in`, 'closed');
    return;
  }
  // v4: when its node goes (shut down, or lost), another node of the cluster takes the page at
  // once and replays what it missed meanwhile. Any other close retries the same node, with backoff.
  const sibling = ev.code === 1001 || ev.code === 1006 ? state.siblings.shift() : undefined;
  if (sibling) {
    state.siblings.push(sibling);
    system(`disconnected from ${address}: ${closeInWords(ev.code)} (${ev.code}); failing over to ${sibling}, another node of its cluster: what you missed follows, marked "missed"`);
    setState(`failing over to ${sibling}…`, 'connecting');
    state.reconnectTimer = setTimeout(() => connect(sibling, true), RECONNECT_MIN_MS);
    return;
  }
  const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** state.retries) * (0.75 + Math.random() / 2);
  state.retries++;
  // Said once in the list; the status line counts down each retry.
  if (!state.toldDisconnect) {
    state.toldDisconnect = true;
    const words = closeInWords(ev.code);
    system(`disconnected from ${address}: ${words} (${ev.code})${ev.reason && ev.reason !== words ? `, ${ev.reason}` : ''}`);
  }
  state.retryAt = Date.now() + delay;
  showCountdown(address, ev.code);
  state.countdownTimer = setInterval(() => showCountdown(address, ev.code), 250);
  $('retry-now').hidden = false;
  $('retry-now').onclick = () => connect(address, true);
  state.reconnectTimer = setTimeout(() => connect(address, true), delay);
}

/** @param {import('../protocol.ts').ServerMessage} msg */
function onFrame(msg) {
  switch (msg.type) {
    case 'chat': {
      if (typeof msg.seq === 'number' && msg.epoch !== undefined) state.stream = { room: msg.room, seq: msg.seq, epoch: msg.epoch };
      if ($('state').classList.contains('degraded')) setState(`connected to ${state.address}`, 'open');
      const li = addLine([[msg.replayed ? `${clock(msg.ts)} · missed` : clock(msg.ts), 'meta'], [msg.from, 'from'], [msg.content, 'content']], msg.replayed ? 'chat replayed' : 'chat');
      addMedia(li, msg);
      if (msg.from === state.name) settle(msg, li);
      break;
    }
    case 'direct': {
      const li = showDirect(msg);
      if (msg.from === (state.user ?? state.name)) settle(msg, li);
      break;
    }
    case 'joined':
      return onJoined(msg);
    case 'presence':
      if (msg.room !== state.room) break;
      if (msg.event === 'rename') {
        if (msg.from !== undefined) memberLeft(msg.from);
        memberJoined(msg.name);
        renderMembers();
        // (your own rename is said by the `joined` that follows it)
        if (msg.from !== state.name && msg.name !== state.name) system(`${msg.from} is now ${msg.name} in ${msg.room}`);
        break;
      }
      if (msg.event === 'join') memberJoined(msg.name);
      else memberLeft(msg.name);
      renderMembers();
      // Your own arrival was said by `joined`, as yours.
      if (msg.name !== state.name || msg.event === 'leave') system(`${msg.name} ${msg.event === 'join' ? 'joined' : 'left'} ${msg.room} (${msg.members} here)`);
      break;
    case 'gap':
      state.stream = { room: msg.room, seq: msg.to, epoch: msg.epoch };
      system(`messages ${msg.from}–${msg.to} of ${msg.room} are lost to you: the server's history no longer holds them`);
      break;
    case 'reset':
      state.stream = msg.epoch === null ? null : { room: msg.room, seq: 0, epoch: msg.epoch };
      system(`the history of ${msg.room} was lost on the server (its Redis restarted): what you missed cannot be sent again`);
      break;
    case 'dropped':
      system(`the server dropped ${msg.count} message(s) for you: your queue was full (${msg.total} in all)`);
      break;
    case 'error':
      if (msg.code === 'SEND_UNKNOWN') {
        resend(msg.id);
        break;
      }
      addLine([[`error ${msg.code}: `, 'code'], [msg.message]], 'error');
      announce(`error ${msg.code}`);
      if (msg.code === 'BACKPLANE_DOWN') setState(`connected to ${state.address}, but sends are refused: the server cannot reach Redis`, 'degraded');
      if (GIVE_BACK.has(msg.code)) giveBack(msg.id);
      if (NAME_REFUSED.has(msg.code)) {
        // The name you have stays yours, and the box says so: a refused one is not sent again on the next Join.
        $field('name').value = state.name;
        $('name-problem').textContent = msg.message;
      }
      break;
  }
}

/** @param {Extract<import('../protocol.ts').ServerMessage, { type: 'joined' }>} msg */
function onJoined(msg) {
  const left = state.live && state.section !== null && msg.room !== state.room ? state.room : null;
  const renamed = state.live && msg.room === state.room && msg.name !== state.name ? state.name : null;
  const rejoined = state.live && msg.room === state.room && msg.name === state.name;
  state.name = msg.name;
  state.room = msg.room;
  state.user = msg.user ?? null;
  state.claim = msg.claim ?? null;
  setMembers(msg.members);
  state.limits = msg.server.limits ?? DEFAULT_LIMITS;
  // Only the name asked for is remembered: a guest name the server gave instead is not yours.
  if (msg.name === state.asked || state.user !== null) {
    try {
      localStorage.setItem(NAME_KEY, msg.name);
    } catch {
      // storage refused (private mode): the name is only forgotten on reload
    }
  }
  if (msg.name === state.asked) $('name-problem').textContent = '';
  $field('name').value = msg.name;
  $field('room').value = msg.room;
  $('current-room').textContent = msg.room;
  const l = state.limits;
  $('server-info').textContent = `${msg.server.describe} · frame ${Math.round(l.maxFrameBytes / 1024)} KiB · content ${Math.round(l.maxContentChars / 1024)} KiB`;
  startSection(msg.room, msg.server.version + (msg.server.node ? ` ${msg.server.node}` : ''));
  state.siblings = [];
  if (msg.server.node) void learnSiblings(state.address, msg.server.node);
  state.toldDisconnect = false;
  setLive(true);
  renderMembers();
  renderSignIn(msg.server.auth ?? 'none');
  if (left) system(`you left ${left}`);
  if (renamed) system(`you are now ${msg.name} in ${msg.room} (you were ${renamed})`);
  else if (!rejoined) system(`you joined ${msg.room} as ${msg.name}${state.user !== null && state.user !== msg.name ? ` (signed in as ${state.user})` : ''} (${msg.members.length} here)`);
}

/** v4: where the other nodes of `address`'s cluster serve (GET /api/nodes), for a failover. */
/** @param {string} address @param {string} node */
async function learnSiblings(address, node) {
  try {
    const res = await fetch(`http://${address}/api/nodes`, { signal: AbortSignal.timeout(1500) });
    const { nodes } = await res.json();
    if (state.address === address) state.siblings = /** @type {Array<{ node: string, url: string }>} */ (nodes).filter((n) => n.node !== node).map((n) => new URL(n.url).host);
  } catch {
    // the node or its Redis is not answering: no failover target until the next joined
  }
}

// --- wiring ---

$('server-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const custom = $field('custom-address').value.trim().replace(/^(ws|http)s?:\/\//, '').replace(/\/.*$/, '');
  const address = custom || $field('server-select').value;
  // Connect on the server you are on changes nothing: a second socket would take your name from you.
  if (address === state.address && state.live) return setState(`connected to ${address}`, 'open');
  // (in the same room of a v4 cluster, the new node replays what this page missed: since and epoch go along)
  connect(address, true);
});
$('server-select').addEventListener('change', renderServerDetails);
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = state.user !== null ? '' : $field('name').value.trim();
  if (name) state.asked = name;
  send({ type: 'join', room: $field('room').value.trim(), ...(name ? { name } : {}) });
});
$('name').addEventListener('input', () => ($('name-problem').textContent = ''));
$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const typed = $field('signin').value.trim();
  if (!typed) return;
  const address = state.address;
  try {
    state.token = await tokenFor(address, (await authOf(address)) ?? 'jwt', typed);
  } catch (err) {
    $('signin-note').textContent = `not signed in: ${/** @type {Error} */ (err).message}`;
    return;
  }
  $field('signin').value = '';
  connect(address, true);
});
$('direct-cancel').addEventListener('click', () => writeTo(null));
$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const content = $field('text').value;
  if (!content) return;
  const problem = tooLarge(content);
  $('send-problem').textContent = problem ?? '';
  if (problem) return; // the text stays in the box
  const id = `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const frame = state.directTo !== null ? { type: 'direct', to: state.directTo, content, id } : { type: 'chat', content, id };
  if (send(frame)) {
    state.pending.push({ content, id, frame, at: performance.now(), tries: 0 });
    if (state.pending.length > 100) state.pending.shift();
    $field('text').value = '';
  }
});
$('text').addEventListener('input', () => {
  if ($('send-problem').textContent) $('send-problem').textContent = tooLarge($field('text').value) ?? '';
});

try {
  const remembered = localStorage.getItem(NAME_KEY);
  if (remembered && !$field('name').value) $field('name').value = remembered;
} catch {
  // no storage: a guest name, as before
}
fetch('/close-codes.json')
  .then((res) => res.json())
  .then((words) => (state.closeWords = words))
  .catch(() => {});
renderSelect(state.address);
connect(location.host);
void pollServers(state.address);
setInterval(() => void pollServers(state.address), STATUS_POLL_MS);
setInterval(pollStats, STATS_POLL_MS);
void pollStats();
