// The browser test page. User text is only ever put into the page as text (textContent).
const $ = (id) => document.getElementById(id);
const list = $('messages');
let ws;

function line(text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function connect() {
  ws = new WebSocket(`ws://${location.host}/chatroom`);
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'chat') line(`${msg.from}: ${msg.content}`);
    else if (msg.type === 'joined') { $('server-info').textContent = msg.server.describe; line(`joined ${msg.room} as ${msg.name}`, 'system'); }
    else if (msg.type === 'error') line(`error ${msg.code}: ${msg.message}`, 'system');
  };
  ws.onclose = (ev) => line(`disconnected (${ev.code})`, 'system');
}

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim();
  ws.send(JSON.stringify({ type: 'join', room: $('room').value, ...(name ? { name } : {}) }));
});
$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!$('text').value) return;
  ws.send(JSON.stringify({ type: 'chat', content: $('text').value }));
  $('text').value = '';
});
connect();
