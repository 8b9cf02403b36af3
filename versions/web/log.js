// @ts-check
// The message list. User text only ever reaches the page as text (textContent), never as HTML:
// the article's page used innerHTML, which runs whatever a peer sends. Each part of a line (time,
// name, message, round trip) is its own <bdi>, so right-to-left text in one never reorders another.
import { $, state } from './state.js';

const MAX_LINES = 500;

/** @param {Array<[string, string?]>} parts @param {string} [cls] */
export function addLine(parts, cls, list = $('messages')) {
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
  while (list.firstElementChild && list.children.length > MAX_LINES) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

/**
 * A message's media fields (the IM article's model), as links the reader may follow: nothing is
 * fetched or shown until they click, and only http(s) links are made (the server checks too).
 */
/** @param {HTMLElement} li @param {{ media?: string, url?: string, pic?: string, memo?: string }} msg */
export function addMedia(li, msg) {
  /** @param {string} href @param {(u: URL) => string} label */
  const link = (href, label) => {
    let url;
    try {
      url = new URL(href);
    } catch {
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
    const a = document.createElement('a');
    a.href = url.href;
    a.textContent = label(url);
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    a.referrerPolicy = 'no-referrer';
    a.className = 'media';
    li.append(a, ' ');
  };
  if (msg.url) link(msg.url, (u) => `${msg.media ?? 'link'}: ${u.host}`);
  if (msg.pic) link(msg.pic, () => 'preview');
  if (msg.memo) {
    const memo = document.createElement('bdi');
    memo.className = 'memo';
    memo.textContent = msg.memo;
    li.append(memo);
  }
}

let announceTimer = null;
/** @type {string[]} */
const toAnnounce = [];
/** Screen readers hear notices and your own messages, gathered for a second, never a flood of others'. */
/** @param {string} text */
export function announce(text) {
  toAnnounce.push(text);
  if (toAnnounce.length > 5) toAnnounce.shift();
  announceTimer ??= setTimeout(() => {
    $('announcer').textContent = toAnnounce.splice(0).join('. ');
    announceTimer = null;
  }, 1000);
}

/** A notice: in the list, and read out (the list itself is a log that does not announce every message). */
/** @param {string} text */
export function system(text) {
  announce(text);
  return addLine([[text]], 'system');
}

/** @param {number} ms */
export const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

/** Messages on screen belong to one room on one server: a switch starts a new section. */
/** @param {string} room @param {string} server */
export function startSection(room, server) {
  const key = `${room}@${state.address}`;
  if (state.section === key) return;
  const first = state.section === null;
  state.section = key;
  $('messages').replaceChildren();
  addLine([[`${room} on ${server} · ${state.address}`]], 'divider');
  if (!first) announce(`now in ${room} on ${server}`);
}
