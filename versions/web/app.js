// The browser test page: join any running version, chat, and watch its counters live.
// User text only ever reaches the page as text (textContent), never as HTML: the article's
// page used innerHTML, which runs whatever a peer sends. Each part of a line (time, name,
// message, round trip) is its own <bdi>, so right-to-left text in one never reorders another.
const $ = (id) => document.getElementById(id);

/** The workbench's versions and their default ports (versions/versions.ts; v4: its first two nodes). */
const VERSIONS = [
  ['v1', 8081],
  ['v2', 8082],
  ['v3', 8083],
  ['v4 n1', 8084],
  ['v4 n2', 8085],
];
const STATUS_POLL_MS = 5000;
const STATS_POLL_MS = 1000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
const HISTORY = 60;
const MAX_LINES = 500;
/** The limits every server starts with (joined.server.limits replaces them). */
const DEFAULT_LIMITS = { maxFrameBytes: 64 * 1024, maxContentChars: 16 * 1024 };
/** Refusals after which what was sent goes back into the box. */
const GIVE_BACK = new Set(['CONTENT_TOO_LARGE', 'EMPTY_CONTENT', 'BAD_FIELD', 'BACKPLANE_DOWN', 'FRAME_TOO_LARGE', 'RATE_LIMITED']);
/** A send the server could not answer for (v4, SEND_UNKNOWN) goes again with its id, this long after, at most this often. */
const RESEND_AFTER_MS = 1000;
const RESENDS = 5;
const NAME_KEY = 'chatroom-evolution.name';
const fmt = (n) => n.toLocaleString('en-US');

const state = {
  address: location.host,
  ws: null,
  /** Connected and greeted: counters and members are live; otherwise they are marked stale. */
  live: false,
  retries: 0,
  reconnectTimer: null,
  countdownTimer: null,
  retryAt: 0,
  /** The disconnect has been said once in the message list; retries only update the status line. */
  toldDisconnect: false,
  name: '',
  room: 'lobby',
  /** The room and server the messages on screen belong to. */
  section: null,
  limits: DEFAULT_LIMITS,
  closeWords: {},
  members: new Set(),
  pending: [],
  lastStats: null,
  series: { connections: [], rate: [], batch: [], deliveries: [], drops: [], queue: [], loop: [] },
  /** v4: where this page is in its room's stream, so a reconnect resumes there. */
  stream: null,
  /** v4: the other nodes of this node's cluster (host:port), where the page fails over to if its node goes. */
  siblings: [],
};

// --- the message list ---

function addLine(parts, cls) {
  const list = $('messages');
  const li = document.createElement('li');
  if (cls) li.className = cls;
  for (const [text, partCls] of parts) {
    const part = document.createElement('bdi');
    if (partCls) part.className = partCls;
    part.textContent = text;
    li.append(part, ' ');
  }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  while (list.children.length > MAX_LINES) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

/** A notice: in the list, and read out (the list itself is a log that does not announce every message). */
function system(text) {
  announce(text);
  return addLine([[text]], 'system');
}

let announceTimer = null;
const toAnnounce = [];
/** Screen readers hear notices and your own messages, gathered for a second, never a flood of others'. */
function announce(text) {
  toAnnounce.push(text);
  if (toAnnounce.length > 5) toAnnounce.shift();
  announceTimer ??= setTimeout(() => {
    $('announcer').textContent = toAnnounce.splice(0).join('. ');
    announceTimer = null;
  }, 1000);
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

/** Messages on screen belong to one room on one server: a switch starts a new section. */
function startSection(room, server) {
  const key = `${room}@${state.address}`;
  if (state.section === key) return;
  const first = state.section === null;
  state.section = key;
  $('messages').replaceChildren();
  addLine([[`${room} on ${server} · ${state.address}`]], 'divider');
  if (!first) announce(`now in ${room} on ${server}`);
}

function renderMembers() {
  const ul = $('members');
  ul.replaceChildren(
    ...[...state.members].sort().map((name) => {
      const li = document.createElement('li');
      const who = document.createElement('bdi');
      who.textContent = name;
      li.append(who);
      if (name === state.name) li.append(' (you)');
      return li;
    }),
  );
  $('member-count').textContent = String(state.members.size);
}

// --- connection state: one status line, and stale marks while not connected ---

function setState(text, cls) {
  $('state').textContent = text;
  $('state').className = `state ${cls}`;
}

function setLive(live) {
  state.live = live;
  for (const id of ['live', 'members-panel', 'server-info']) $(id).classList.toggle('stale', !live);
  $('stale-note').hidden = live;
}

function closeInWords(code) {
  return state.closeWords[code] ?? 'closed';
}

function showCountdown(address, code) {
  const left = Math.max(0, state.retryAt - Date.now());
  setState(`disconnected from ${address}: ${closeInWords(code)} (${code}) · retrying in ${Math.ceil(left / 1000)} s`, 'closed');
}

// --- the socket ---

function connect(address, resume = false) {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  $('retry-now').hidden = true;
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close(1000);
  }
  if (address !== state.address) state.toldDisconnect = false;
  state.address = address;
  setLive(false);
  const room = $('room').value || 'lobby';
  const query = new URLSearchParams({ room });
  if ($('name').value.trim()) query.set('name', $('name').value.trim());
  // v4: coming back to the same room, ask for what was missed meanwhile.
  if (resume && state.stream && state.stream.room === room) {
    query.set('since', String(state.stream.seq));
    query.set('epoch', state.stream.epoch);
  }
  setState(`connecting to ${address}…`, 'connecting');
  let ws;
  try {
    ws = new WebSocket(`ws://${address}/chatroom?${query}`);
  } catch {
    setState(`${address} is not an address a page can connect to`, 'closed');
    return;
  }
  state.ws = ws;
  ws.onopen = () => {
    state.retries = 0;
    setState(`connected to ${address}`, 'open');
  };
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    setLive(false);
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
  };
  state.lastStats = null;
  for (const k of Object.keys(state.series)) state.series[k] = [];
}

function onFrame(msg) {
  switch (msg.type) {
    case 'chat': {
      if (typeof msg.seq === 'number') state.stream = { room: msg.room, seq: msg.seq, epoch: msg.epoch };
      if ($('state').classList.contains('degraded')) setState(`connected to ${state.address}`, 'open');
      const li = addLine([[msg.replayed ? `${clock(msg.ts)} · missed` : clock(msg.ts), 'meta'], [msg.from, 'from'], [msg.content, 'content']], msg.replayed ? 'chat replayed' : 'chat');
      const mine = msg.from === state.name ? state.pending.findIndex((p) => (msg.id !== undefined ? p.id === msg.id : p.content === msg.content)) : -1;
      if (mine >= 0) {
        const [p] = state.pending.splice(mine, 1);
        const rtt = document.createElement('bdi');
        rtt.className = 'rtt';
        rtt.textContent = `${Math.round(performance.now() - p.at)} ms round trip`;
        li.append(rtt);
        announce(`sent: ${msg.content.slice(0, 100)}`);
      }
      break;
    }
    case 'joined': {
      const left = state.live && state.section !== null && msg.room !== state.room ? state.room : null;
      const renamed = state.live && msg.room === state.room && msg.name !== state.name ? state.name : null;
      const rejoined = state.live && msg.room === state.room && msg.name === state.name;
      state.name = msg.name;
      state.room = msg.room;
      state.members = new Set(msg.members);
      state.limits = msg.server.limits ?? DEFAULT_LIMITS;
      try {
        localStorage.setItem(NAME_KEY, msg.name);
      } catch {
        // storage refused (private mode): the name is only forgotten on reload
      }
      $('name').value = msg.name;
      $('room').value = msg.room;
      $('current-room').textContent = msg.room;
      const l = state.limits;
      $('server-info').textContent = `${msg.server.describe} · frame ${Math.round(l.maxFrameBytes / 1024)} KiB · content ${Math.round(l.maxContentChars / 1024)} KiB`;
      startSection(msg.room, msg.server.version + (msg.server.node ? ` ${msg.server.node}` : ''));
      state.siblings = [];
      if (msg.server.node) void learnSiblings(state.address, msg.server.node);
      state.toldDisconnect = false;
      setLive(true);
      renderMembers();
      if (left) system(`you left ${left}`);
      if (renamed) system(`you are now ${msg.name} in ${msg.room} (you were ${renamed})`);
      else if (!rejoined) system(`you joined ${msg.room} as ${msg.name} (${msg.members.length} here)`);
      break;
    }
    case 'presence':
      if (msg.room !== state.room) break;
      if (msg.event === 'rename') {
        state.members.delete(msg.from);
        state.members.add(msg.name);
        renderMembers();
        // (your own rename is said by the `joined` that follows it)
        if (msg.from !== state.name && msg.name !== state.name) system(`${msg.from} is now ${msg.name} in ${msg.room}`);
        break;
      }
      if (msg.event === 'join') state.members.add(msg.name);
      else state.members.delete(msg.name);
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
      break;
  }
}

/** v4: where the other nodes of `address`'s cluster serve (GET /api/nodes), for a failover. */
async function learnSiblings(address, node) {
  try {
    const res = await fetch(`http://${address}/api/nodes`, { signal: AbortSignal.timeout(1500) });
    const { nodes } = await res.json();
    if (state.address === address) state.siblings = nodes.filter((n) => n.node !== node).map((n) => new URL(n.url).host);
  } catch {
    // the node or its Redis is not answering: no failover target until the next joined
  }
}

/** A send the server refused goes back into the box, unless something new is being typed there. */
function giveBack(id) {
  const at = id === undefined ? 0 : state.pending.findIndex((p) => p.id === id);
  const [p] = at >= 0 ? state.pending.splice(at, 1) : [];
  if (p && $('text').value === '') $('text').value = p.content;
}

/** v4 lost its answer to a send: it may have gone through. The same id again is safe; the server keeps one. */
function resend(id) {
  const p = state.pending.find((q) => q.id === id);
  if (!p) return;
  if (++p.tries > RESENDS) return giveBack(id);
  setTimeout(() => {
    if (state.pending.includes(p)) send({ type: 'chat', content: p.content, id: p.id });
  }, RESEND_AFTER_MS);
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    system('not connected: the message was not sent, it is still in the box');
    return false;
  }
  state.ws.send(JSON.stringify(frame));
  return true;
}

/** Why `content` cannot be sent under the server's limits, or null. */
function tooLarge(content) {
  const { maxContentChars, maxFrameBytes } = state.limits;
  if (content.length > maxContentChars) return `${fmt(content.length)} of ${fmt(maxContentChars)} characters: too long to send`;
  const bytes = new TextEncoder().encode(JSON.stringify({ type: 'chat', content })).length;
  if (bytes > maxFrameBytes) return `${fmt(bytes)} of ${fmt(maxFrameBytes)} bytes: too large to send`;
  return null;
}

// --- the server selector: browsing it connects nowhere; Connect (or Enter) does ---

function serverOptions() {
  const host = location.hostname;
  const options = VERSIONS.map(([label, port]) => ({ label, address: `${host}:${port}` }));
  if (!options.some((o) => o.address === location.host)) options.unshift({ label: 'this server', address: location.host });
  return options;
}

const statuses = new Map();

function renderSelect() {
  const select = $('server-select');
  const chosen = select.value || state.address;
  select.replaceChildren(
    ...serverOptions().map((o) => {
      const opt = document.createElement('option');
      opt.value = o.address;
      const s = statuses.get(o.address);
      opt.textContent = `${o.label} · ${s === undefined ? '…' : s ? 'up' : 'down'}`;
      return opt;
    }),
  );
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  renderServerDetails();
}

function renderServerDetails() {
  const address = $('server-select').value;
  const s = statuses.get(address);
  $('server-details').textContent = `${address}${s ? ` · ${s}` : s === null ? ' · not answering' : ''}`;
}

async function pollServers() {
  await Promise.all(
    serverOptions().map(async (o) => {
      try {
        const res = await fetch(`http://${o.address}/healthz`, { signal: AbortSignal.timeout(1500) });
        statuses.set(o.address, (await res.json()).describe);
      } catch {
        statuses.set(o.address, null);
      }
    }),
  );
  renderSelect();
}

// --- live counters ---

function spark(id, values) {
  const canvas = $(id);
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const numbers = values.filter((v) => typeof v === 'number');
  const range = $(`${id}-range`);
  if (numbers.length < 2) {
    range.textContent = '';
    return;
  }
  const max = Math.max(...numbers, 1);
  const min = Math.min(...numbers);
  range.textContent = `${fmt(min)}–${fmt(max)} over ${numbers.length} s`;
  ctx.strokeStyle = '#2557d6';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let drawing = false;
  values.forEach((v, i) => {
    if (typeof v !== 'number') {
      drawing = false;
      return;
    }
    const x = (i / (HISTORY - 1)) * width;
    const y = height - 2 - (v / max) * (height - 4);
    if (!drawing) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
    drawing = true;
  });
  ctx.stroke();
}

function push(key, value) {
  const s = state.series[key];
  s.push(value);
  if (s.length > HISTORY) s.shift();
}

async function pollStats() {
  if (!state.live) return; // stale until connected again: the marks say so, the values stay as they were
  try {
    const res = await fetch(`http://${state.address}/api/stats`, { signal: AbortSignal.timeout(1500) });
    const s = await res.json();
    const now = performance.now();
    const last = state.lastStats;
    const rate = last ? Math.max(0, ((s.deliveries - last.s.deliveries) * 1000) / (now - last.at)) : 0;
    // How much the version batches, over the last second: 1 for v1 and v2, more for v3 under load;
    // none when nothing was written.
    const writes = last ? s.writes - last.s.writes : 0;
    const batch = writes > 0 ? Math.round(((s.deliveries - last.s.deliveries) / writes) * 10) / 10 : null;
    state.lastStats = { s, at: now };
    const values = { connections: s.connections, rate: Math.round(rate), batch, deliveries: s.deliveries, drops: s.drops, queue: s.queueDepth, loop: Math.round(s.loopDelayMs.p99 * 10) / 10 };
    for (const [key, v] of Object.entries(values)) {
      push(key, v);
      $(`stat-${key}`).textContent = v === null ? '–' : v.toLocaleString('en-US');
      spark(`chart-${key}`, state.series[key]);
    }
  } catch {
    // the server is too busy to answer: the gap in the charts says so
  }
}

// --- wiring ---

$('server-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const custom = $('custom-address').value.trim().replace(/^(ws|http)s?:\/\//, '').replace(/\/.*$/, '');
  // (in the same room of a v4 cluster, the new node replays what this page missed: since and epoch go along)
  connect(custom || $('server-select').value, true);
});
$('server-select').addEventListener('change', renderServerDetails);
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim();
  send({ type: 'join', room: $('room').value.trim(), ...(name ? { name } : {}) });
});
$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const content = $('text').value;
  if (!content) return;
  const problem = tooLarge(content);
  $('send-problem').textContent = problem ?? '';
  if (problem) return; // the text stays in the box
  const id = `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  if (send({ type: 'chat', content, id })) {
    state.pending.push({ content, id, at: performance.now(), tries: 0 });
    if (state.pending.length > 100) state.pending.shift();
    $('text').value = '';
  }
});
$('text').addEventListener('input', () => {
  if ($('send-problem').textContent) $('send-problem').textContent = tooLarge($('text').value) ?? '';
});

try {
  const remembered = localStorage.getItem(NAME_KEY);
  if (remembered && !$('name').value) $('name').value = remembered;
} catch {
  // no storage: a guest name, as before
}
fetch('/close-codes.json')
  .then((res) => res.json())
  .then((words) => (state.closeWords = words))
  .catch(() => {});
renderSelect();
connect(location.host);
pollServers();
setInterval(pollServers, STATUS_POLL_MS);
setInterval(pollStats, STATS_POLL_MS);
pollStats();
