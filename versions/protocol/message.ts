// The IM article's message model, for a chat in a room and a direct message alike: beside its
// text, a message may say what it carries (`media`), point at it (`url`), show a preview (`pic`)
// and add a note (`memo`). The server checks and relays these fields; it never fetches them, and
// the page shows them as links, never as HTML. Part of protocol.ts (which re-exports it); it
// imports nothing.

export const MEDIA_KINDS = ['text', 'image', 'voice', 'link'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

export interface MediaFields {
  media?: MediaKind;
  /** What the message points at: an http(s) URL. */
  url?: string;
  /** A preview image: an http(s) URL. */
  pic?: string;
  memo?: string;
}

/** The longest `url` or `pic`, in characters (what browsers and proxies take without trouble). */
export const MAX_URL_CHARS = 2048;
/** The longest `memo`, in characters. */
export const MAX_MEMO_CHARS = 256;

/** A user id (`to` of a direct message, a token's `sub`): 1-64 characters, none of them a control character. */
const USER_PATTERN = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]{1,64}$/u;

export function isValidUser(user: unknown): user is string {
  return typeof user === 'string' && USER_PATTERN.test(user);
}

/** The media fields of a frame, checked: the fields (only those given), or what is wrong with the first bad one. */
export function parseMediaFields(obj: Record<string, unknown>): { ok: true; fields: MediaFields } | { ok: false; detail: string } {
  const fields: MediaFields = {};
  if (obj.media !== undefined) {
    if (!(MEDIA_KINDS as readonly unknown[]).includes(obj.media)) return { ok: false, detail: `"media" must be one of ${MEDIA_KINDS.join(', ')}` };
    fields.media = obj.media as MediaKind;
  }
  for (const key of ['url', 'pic'] as const) {
    const v = obj[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length > MAX_URL_CHARS || !isWebUrl(v)) return { ok: false, detail: `"${key}" must be an http or https URL of at most ${MAX_URL_CHARS} characters` };
    fields[key] = v;
  }
  if (obj.memo !== undefined) {
    if (typeof obj.memo !== 'string' || obj.memo.length > MAX_MEMO_CHARS) return { ok: false, detail: `"memo" must be a string of at most ${MAX_MEMO_CHARS} characters` };
    fields.memo = obj.memo;
  }
  return { ok: true, fields };
}

/** http: or https:, with a host, and nothing a link could hide (no credentials, no white space). */
function isWebUrl(text: string): boolean {
  if (/\s/.test(text)) return false;
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}
