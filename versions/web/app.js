// The browser test page: join any running version, chat, and watch its counters live.
// User text only ever reaches the page as text (textContent), never as HTML: the article's
// page used innerHTML, which runs whatever a peer sends.
const $ = (id) => document.getElementById(id);

/** The workbench's versions and their default ports (versions/versions.ts; v4: its first two nodes). */
const VERSIONS = [
  ['v1', 8081],
  ['v2', 8082],
  ['v3', 8083],
  ['v4 node 1', 8084],
  ['v4 node 2', 8085],
];
const STATUS_POLL_MS = 5000;
const STATS_POLL_MS = 1000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
const HISTORY = 60;
const MAX_LINES = 500;

const state = {
  address: location.host,
  ws: null,
  retries: 0,
  reconnectTimer: null,
  name: '',
  room: 'lobby',
  members: new Set(),
  pending: [],
  lastStats: null,
  series: { connections: [], rate: [], batch: [], deliveries: [], drops: [], queue: [], loop: [] },
  /** v4: where this page is in its room's stream, so a reconnect resumes there. */
  stream: null,
};

// --- the message list ---

function addLine(parts, cls) {
  const list = $('messages');
  const li = document.createElement('li');
  if (cls) li.className = cls;
  for (const [text, partCls] of parts) {
    const span = document.createElement('span');
    if (partCls) span.className = partCls;
    span.textContent = text;
    li.append(span);
  }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  while (list.children.length > MAX_LINES) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

const system = (text) => addLine([[text]], 'system');
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

function renderMembers() {
  const ul = $('members');
  ul.replaceChildren(
    ...[...state.members].sort().map((name) => {
      const li = document.createElement('li');
      li.textContent = name === state.name ? `${name} (you)` : name;
      return li;
    }),
  );
  $('member-count').textContent = String(state.members.size);
}

// --- the socket ---

function setState(text, cls) {
  $('state').textContent = text;
  $('state').className = `state ${cls}`;
}

function connect(address, resume = false) {
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close(1000);
  }
  state.address = address;
  const room = $('room').value || 'lobby';
  const query = new URLSearchParams({ room });
  if ($('name').value.trim()) query.set('name', $('name').value.trim());
  // v4: coming back to the same room, ask for what was missed meanwhile.
  if (resume && state.stream && state.stream.room === room) {
    query.set('since', String(state.stream.seq));
    query.set('epoch', state.stream.epoch);
  }
  setState(`connecting to ${address}…`, 'connecting');
  const ws = new WebSocket(`ws://${address}/chatroom?${query}`);
  state.ws = ws;
  ws.onopen = () => {
    state.retries = 0;
    setState(`connected to ${address}`, 'open');
  };
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** state.retries) * (0.75 + Math.random() / 2);
    state.retries++;
    setState(`disconnected (${ev.code}), retrying in ${(delay / 1000).toFixed(1)} s`, 'closed');
    system(`disconnected from ${address}: ${ev.code}${ev.reason ? ` ${ev.reason}` : ''}`);
    state.reconnectTimer = setTimeout(() => connect(address, true), delay);
  };
  state.lastStats = null;
  for (const k of Object.keys(state.series)) state.series[k] = [];
}

function onFrame(msg) {
  switch (msg.type) {
    case 'chat': {
      if (typeof msg.seq === 'number') state.stream = { room: msg.room, seq: msg.seq, epoch: msg.epoch };
      const li = addLine([[msg.replayed ? `${clock(msg.ts)} · missed` : clock(msg.ts), 'meta'], [msg.from, 'from'], [msg.content, 'content']], msg.replayed ? 'chat replayed' : 'chat');
      const mine = msg.from === state.name ? state.pending.findIndex((p) => p.content === msg.content) : -1;
      if (mine >= 0) {
        const [p] = state.pending.splice(mine, 1);
        const rtt = document.createElement('span');
        rtt.className = 'rtt';
        rtt.textContent = `${Math.round(performance.now() - p.at)} ms round trip`;
        li.append(rtt);
      }
      break;
    }
    case 'joined':
      state.name = msg.name;
      state.room = msg.room;
      state.members = new Set(msg.members);
      $('name').value = msg.name;
      $('room').value = msg.room;
      $('current-room').textContent = msg.room;
      {
        const l = msg.server.limits;
        $('server-info').textContent = `${msg.server.describe} · frame ${Math.round(l.maxFrameBytes / 1024)} KiB · content ${Math.round(l.maxContentChars / 1024)} KiB`;
      }
      renderMembers();
      system(`you are ${msg.name} in ${msg.room} on ${state.address} (${msg.server.describe})`);
      break;
    case 'presence':
      if (msg.room !== state.room) break;
      if (msg.event === 'join') state.members.add(msg.name);
      else state.members.delete(msg.name);
      renderMembers();
      system(`${msg.name} ${msg.event === 'join' ? 'joined' : 'left'} (${msg.members} here)`);
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
      addLine([[`error ${msg.code}: `, 'code'], [msg.message]], 'error');
      break;
  }
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    system('not connected: the message was not sent');
    return false;
  }
  state.ws.send(JSON.stringify(frame));
  return true;
}

// --- the server selector ---

function serverOptions() {
  const host = location.hostname;
  const options = VERSIONS.map(([label, port]) => ({ label, address: `${host}:${port}` }));
  if (!options.some((o) => o.address === location.host)) options.unshift({ label: 'this server', address: location.host });
  return options;
}

function renderSelect(statuses = new Map()) {
  const select = $('server-select');
  const chosen = select.value || state.address;
  select.replaceChildren(
    ...serverOptions().map((o) => {
      const opt = document.createElement('option');
      opt.value = o.address;
      const s = statuses.get(o.address);
      opt.textContent = `${o.label} · ${o.address} · ${s === undefined ? '…' : s ? `up (${s})` : 'down'}`;
      return opt;
    }),
  );
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

async function pollServers() {
  const statuses = new Map();
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
  renderSelect(statuses);
}

// --- live counters ---

function spark(id, values) {
  const canvas = $(id);
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  if (values.length < 2) return;
  const max = Math.max(...values, 1);
  ctx.strokeStyle = '#2557d6';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (HISTORY - 1)) * width;
    const y = height - 2 - (v / max) * (height - 4);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function push(key, value) {
  const s = state.series[key];
  s.push(value);
  if (s.length > HISTORY) s.shift();
}

async function pollStats() {
  try {
    const res = await fetch(`http://${state.address}/api/stats`, { signal: AbortSignal.timeout(1500) });
    const s = await res.json();
    const now = performance.now();
    const last = state.lastStats;
    const rate = last ? Math.max(0, ((s.deliveries - last.s.deliveries) * 1000) / (now - last.at)) : 0;
    // How much the version batches, over the last second: 1 for v1 and v2, more for v3 under load.
    const writes = last ? s.writes - last.s.writes : 0;
    const batch = writes > 0 ? Math.round(((s.deliveries - last.s.deliveries) / writes) * 10) / 10 : 0;
    state.lastStats = { s, at: now };
    const values = { connections: s.connections, rate: Math.round(rate), batch, deliveries: s.deliveries, drops: s.drops, queue: s.queueDepth, loop: Math.round(s.loopDelayMs.p99 * 10) / 10 };
    for (const [key, v] of Object.entries(values)) {
      push(key, v);
      $(`stat-${key}`).textContent = v.toLocaleString('en-US');
      spark(`chart-${key}`, state.series[key]);
    }
  } catch {
    // the server is down or too busy to answer: the gap in the charts says so
  }
}

// --- wiring ---

$('server-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const custom = $('custom-address').value.trim().replace(/^(ws|http)s?:\/\//, '').replace(/\/.*$/, '');
  connect(custom || $('server-select').value);
});
$('server-select').addEventListener('change', () => {
  $('custom-address').value = '';
  connect($('server-select').value);
});
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim();
  send({ type: 'join', room: $('room').value.trim(), ...(name ? { name } : {}) });
});
$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const content = $('text').value;
  if (!content) return;
  if (send({ type: 'chat', content })) {
    state.pending.push({ content, at: performance.now() });
    if (state.pending.length > 100) state.pending.shift();
    $('text').value = '';
  }
});

renderSelect();
connect(location.host);
pollServers();
setInterval(pollServers, STATUS_POLL_MS);
setInterval(pollStats, STATS_POLL_MS);
pollStats();
