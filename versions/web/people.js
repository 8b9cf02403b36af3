// @ts-check
// Who is here and who you are: the members list (each a way to write to them privately), the
// private messages, apart from the room's, and signing in on a server that asks for it.
import { $, $field, state } from './state.js';
import { addLine, addMedia, announce, clock } from './log.js';

// --- members: by name, counted (a signed-in user's tabs share a name; one leaving does not take the others) ---

/** @param {string[]} names */
export function setMembers(names) {
  state.members = new Map();
  for (const name of names) memberJoined(name);
}

/** @param {string} name */
export function memberJoined(name) {
  state.members.set(name, (state.members.get(name) ?? 0) + 1);
}

/** @param {string} name */
export function memberLeft(name) {
  const n = (state.members.get(name) ?? 0) - 1;
  if (n > 0) state.members.set(name, n);
  else state.members.delete(name);
}

export function renderMembers() {
  $('members').replaceChildren(
    ...[...state.members.keys()].sort().map((name) => {
      const li = document.createElement('li');
      const who = document.createElement('bdi');
      who.textContent = name;
      li.append(who);
      if (name === state.name) li.append(' (you)');
      else {
        // (its mark is drawn by the style sheet: the list reads as names)
        const write = document.createElement('button');
        write.type = 'button';
        write.className = 'dm';
        write.title = `write to ${name} privately`;
        write.setAttribute('aria-label', `write to ${name} privately`);
        write.onclick = () => writeTo(name);
        li.append(' ', write);
      }
      return li;
    }),
  );
  $('member-count').textContent = String(state.members.size);
}

// --- private messages ---

/** The send box writes to `user` privately from now on (null: to the room again). */
/** @param {string | null} user */
export function writeTo(user) {
  state.directTo = user;
  $('direct-to').hidden = user === null;
  $('direct-to-name').textContent = user ?? '';
  $field('text').placeholder = user === null ? 'Say something, Enter sends' : `A private message to ${user}`;
  $('text').focus();
}

/** A direct message: yours (to someone, or from another of your tabs) or to you, in the private list. */
/** @param {Extract<import('../protocol.ts').ServerMessage, { type: 'direct' }>} msg */
export function showDirect(msg) {
  const mine = msg.from === (state.user ?? state.name);
  const li = addLine([[clock(msg.ts), 'meta'], ['', 'from'], [msg.content, 'content']], 'direct', $('directs'));
  // The other's name in a <bdi> of its own: an Arabic name must not turn "bob → you" around.
  const who = document.createElement('bdi');
  who.textContent = mine ? msg.to : msg.name;
  /** @type {HTMLElement} */ (li.querySelector('.from')).append(...(mine ? ['you → ', who] : [who, ' → you']));
  addMedia(li, msg);
  const other = mine ? msg.to : msg.from;
  const reply = document.createElement('button');
  reply.type = 'button';
  reply.className = 'reply';
  reply.textContent = 'reply';
  reply.setAttribute('aria-label', `write to ${other} privately`);
  reply.onclick = () => writeTo(other);
  li.append(reply);
  if (!mine) announce(`private message from ${msg.name}`);
  return li;
}

// --- signing in ---

/** What the sign-in form offers on a server that signs people in this way. */
/** @param {string} auth */
export function renderSignIn(auth) {
  const form = $('signin-form');
  const note = $('signin-note');
  form.hidden = auth === 'none';
  $field('name').readOnly = state.user !== null;
  $('name').title = state.user !== null ? 'your name comes from your sign-in' : '';
  if (auth === 'none') return;
  $('signin-label').textContent = auth === 'dev' ? 'Sign in as' : 'Token';
  $field('signin').placeholder = auth === 'dev' ? 'any name (a local dev server)' : 'a JWT from your identity provider';
  note.textContent = state.user !== null ? `signed in as ${state.user}` : 'this server asks you to sign in';
}

/** A token for what was typed: --auth dev signs any name (POST /api/dev-token); --auth jwt takes a pasted token. */
/** @param {string} address @param {string} auth @param {string} typed @returns {Promise<string>} */
export async function tokenFor(address, auth, typed) {
  if (auth !== 'dev') return typed;
  const res = await fetch(`http://${address}/api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: typed }) });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  return body.token;
}
