// The wire format, and the only module that knows it: JSON text frames for the chat
// protocol, and the WebSocket frame header for the versions that pre-frame a broadcast.
// Every version, the browser page and the auto-client speak what is defined here; so are the
// other contracts a server keeps with the outside (its /api/stats answer and its LISTENING line).
// It imports nothing but its own parts (codes.ts: error and close codes; names.ts: what a name
// may be), so a client or the harness can take it without a server's weight.
import { ERROR_CODES, type ErrorCode, type LimitName } from './protocol/codes.ts';
import { isValidUser, parseMediaFields, type MediaFields } from './protocol/message.ts';
import { isValidName } from './protocol/names.ts';

export * from './protocol/codes.ts';
export { isValidName, nameKey } from './protocol/names.ts';
export { isValidUser, parseMediaFields, MEDIA_KINDS, type MediaFields } from './protocol/message.ts';

/** Where every version takes the WebSocket upgrade; everything else on its port is the page and the HTTP API. */
export const WS_PATH = '/chatroom';

/** The room a connection starts in, and the only one a scenario with one room uses. */
export const DEFAULT_ROOM = 'lobby';

export interface ProtocolLimits {
  /** Largest accepted frame, in bytes; a larger one closes the socket with 1009. Default 64 KiB. */
  maxFrameBytes: number;
  /** Largest chat content, in UTF-16 code units (what JSON.parse hands back). Default 16 KiB. */
  maxContentChars: number;
}

export const DEFAULT_LIMITS: ProtocolLimits = {
  maxFrameBytes: 64 * 1024,
  maxContentChars: 16 * 1024,
};

const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Where a client left a room's stream (v4): it has every message up to `since` of stream `epoch`. */
export interface ResumePoint {
  since: number;
  epoch: string;
}

export type ClientFrame =
  | { type: 'join'; room: string; name?: string; resume?: ResumePoint }
  /** `id` (optional): the sender's name for this send; v4 delivers one send per (sender, id) however often it comes. */
  | ({ type: 'chat'; content: string; id?: string } & MediaFields)
  /** A private message to every connection of user `to` (and the sender's own connections). */
  | ({ type: 'direct'; to: string; content: string; id?: string } & MediaFields);

export type ParseResult = { ok: true; frame: ClientFrame } | { ok: false; code: ErrorCode; message: string };

/** A client frame's JSON object, or why it is not one. */
export type ObjectResult = { ok: true; value: Record<string, unknown> } | { ok: false; code: 'BAD_JSON' | 'BAD_FRAME'; message: string };

/** Parses text that must hold a JSON object: a client frame, or a POST /api/send body. */
export function parseJsonObject(text: string): ObjectResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'BAD_JSON', message: ERROR_CODES.BAD_JSON };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, code: 'BAD_FRAME', message: ERROR_CODES.BAD_FRAME };
  return { ok: true, value: value as Record<string, unknown> };
}

function fail(code: ErrorCode, detail?: string): ParseResult {
  return { ok: false, code, message: detail ? `${ERROR_CODES[code]}: ${detail}` : ERROR_CODES[code] };
}

export function isValidRoom(room: unknown): room is string {
  return typeof room === 'string' && ROOM_PATTERN.test(room);
}

/** What to add to a content error so its sender can fix it: the limit and the size sent. */
export function contentDetail(code: ErrorCode, content: unknown, limits: ProtocolLimits): string | undefined {
  if (code === 'BAD_FIELD') return '"content" must be a string';
  if (code === 'CONTENT_TOO_LARGE' && typeof content === 'string') return `${content.length.toLocaleString('en-US')} of ${limits.maxContentChars.toLocaleString('en-US')} characters`;
  return undefined;
}

/** Validates chat content; returns an error code or null. */
export function checkContent(content: unknown, limits: ProtocolLimits): ErrorCode | null {
  if (typeof content !== 'string') return 'BAD_FIELD';
  if (content.length === 0) return 'EMPTY_CONTENT';
  if (content.length > limits.maxContentChars) return 'CONTENT_TOO_LARGE';
  return null;
}

/**
 * Parses one text frame from a client. Never throws: bad input comes back as a code.
 * A frame without `type` but with `content` (the article's `{"token","content"}`) is a chat.
 */
export function parseClientFrame(text: string, limits: ProtocolLimits): ParseResult {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const obj = parsed.value;
  const type = obj.type ?? ('content' in obj ? 'chat' : undefined);
  if (type === 'chat' || type === 'direct') {
    if (type === 'direct' && !isValidUser(obj.to)) return fail('BAD_RECIPIENT');
    const bad = checkContent(obj.content, limits);
    if (bad) return fail(bad, contentDetail(bad, obj.content, limits));
    if (obj.id !== undefined && !isValidId(obj.id)) return fail('BAD_ID');
    const media = parseMediaFields(obj);
    if (!media.ok) return fail('BAD_MEDIA', media.detail);
    const common = { content: obj.content as string, ...(obj.id !== undefined ? { id: obj.id as string } : {}), ...media.fields };
    return { ok: true, frame: type === 'chat' ? { type, ...common } : { type, to: obj.to as string, ...common } };
  }
  if (type === 'join') {
    if (!isValidRoom(obj.room)) return fail('BAD_ROOM');
    if (obj.name !== undefined && !isValidName(obj.name)) return fail('BAD_NAME');
    const resume = parseResumePoint(obj.since, obj.epoch);
    if (resume === 'bad') return fail('BAD_SINCE');
    return { ok: true, frame: { type: 'join', room: obj.room, ...(obj.name !== undefined ? { name: obj.name as string } : {}), ...(resume ? { resume } : {}) } };
  }
  if (typeof type !== 'string') return fail('BAD_FIELD', '"type" must be a string');
  return fail('UNKNOWN_TYPE', JSON.stringify(type).slice(0, 80));
}

const EPOCH_PATTERN = /^[\x21-\x7e]{1,64}$/;
/** A send's id: what a client may resend under; printable ASCII, no space, so it is safe in a Redis key. */
const ID_PATTERN = EPOCH_PATTERN;

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/**
 * A resume point from a join frame's fields or a URL's query (strings): null when neither is
 * given, 'bad' when only one is or either is malformed.
 */
export function parseResumePoint(since: unknown, epoch: unknown): ResumePoint | null | 'bad' {
  if ((since === undefined || since === null) && (epoch === undefined || epoch === null)) return null;
  const n = typeof since === 'string' && /^\d{1,15}$/.test(since) ? Number(since) : since;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return 'bad';
  if (typeof epoch !== 'string' || !EPOCH_PATTERN.test(epoch)) return 'bad';
  return { since: n, epoch };
}

/**
 * What the server sends. `chat.content` is relayed verbatim. v4 adds to each chat its place in
 * the room's stream (`seq`, from 1, in `epoch`), and `replayed` to those sent again on recovery.
 */
export type ServerMessage =
  /** `user`: the sender's user id, when it signed in (--auth). */
  | ({ type: 'chat'; room: string; from: string; content: string; ts: number; id?: string; user?: string; seq?: number; epoch?: string; replayed?: true } & MediaFields)
  /** `from`: the sender's user id (what a reply goes `to`); `name`: how it is shown. */
  | ({ type: 'direct'; from: string; name: string; to: string; content: string; ts: number; id?: string } & MediaFields)
  /**
   * `user`: who this connection is, when it signed in (--auth; else its name is its user).
   * `claim` (v4): show it (?claim=) when you come back on another node, and your name is yours at once.
   */
  | { type: 'joined'; room: string; name: string; id: number; members: string[]; server: ServerInfo; user?: string; claim?: string }
  /** Someone joined, left, or (rename) took the name `name`, having been `from`. */
  | { type: 'presence'; room: string; event: 'join' | 'leave' | 'rename'; name: string; members: number; from?: string }
  | { type: 'dropped'; count: number; total: number }
  /** `id`: the send it is about, when it is about one. */
  | { type: 'error'; code: ErrorCode; message: string; id?: string }
  /** v4 recovery: messages `from`..`to` of the room's stream are lost to this client (trimmed from history). */
  | { type: 'gap'; room: string; epoch: string; from: number; to: number }
  /** v4: the room's stream is not the one the client knew (`was`): its history was lost; `seq` starts again. */
  | { type: 'reset'; room: string; epoch: string | null; was: string };

export interface ServerInfo {
  version: string;
  describe: string;
  limits: ProtocolLimits;
  /** Frames per second a connection may send, and at once above that; absent: no limit. */
  rate?: { msgsPerS: number; burst: number };
  /** v4: the node of the cluster this connection is on. */
  node?: string;
  /** How connections sign in: none, dev (any name, loopback) or jwt. */
  auth?: 'none' | 'dev' | 'jwt';
}

export function encodeServerMessage(msg: ServerMessage): string {
  return JSON.stringify(msg);
}

/**
 * A v4 chat as it goes out: its JSON (`payload`, as the sender's node encoded it, and as the
 * room's stream keeps it) with its place in the stream, `seq` and `epoch`, and `replayed` when it
 * is sent again on recovery. The one place a chat's place is written: the backplane carries seq
 * and epoch beside the untouched payload, and each node writes them in when it delivers.
 */
export function placeInStream(payload: string, seq: number, epoch: string, replayed = false): string {
  return `${payload.slice(0, -1)},"seq":${seq},"epoch":${JSON.stringify(epoch)}${replayed ? REPLAYED_END : '}'}`;
}

const REPLAYED_END = ',"replayed":true}';
const PLACE = /,"seq":(\d+),"epoch":"([^"]+)"(?:,"replayed":true)?\}$/;
/** Bytes of a chat's end that hold its place and mark, whatever its content (epochs are short). */
export const PLACE_TAIL_BYTES = 112;

/** A v4 chat's place in its room's stream, read from its JSON's end (placeInStream's), or null. */
export function placeOf(tail: string): { seq: number; epoch: string } | null {
  const m = PLACE.exec(tail);
  return m ? { seq: Number(m[1]), epoch: m[2] as string } : null;
}

/** Whether a v4 chat (its JSON, or that JSON's end) was sent again on recovery. */
export function isReplayed(tail: string): boolean {
  return tail.endsWith(REPLAYED_END);
}

/** What a client sends: a join, or a chat in its room. */
export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

export function errorMessage(code: ErrorCode, message: string = ERROR_CODES[code], id?: string): ServerMessage {
  return id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id };
}

/**
 * Frames a text payload as one unmasked, final WebSocket text frame (RFC 6455 §5.2), as a
 * server sends it. A broadcast is framed once here and the same bytes go to every socket.
 */
export function frameText(payload: string | Buffer): Buffer {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLen + len);
  frame[0] = 0x81; // FIN + opcode 1 (text)
  if (len < 126) {
    frame[1] = len;
  } else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  // Encoded straight into the frame: no intermediate buffer for the payload.
  if (typeof payload === 'string') frame.write(payload, headerLen, 'utf8');
  else payload.copy(frame, headerLen);
  return frame;
}

/** What GET /api/stats answers: every server's counters as JSON, for the page and the harness. */
export interface ServerStats {
  version: string;
  describe: string;
  connections: number;
  poolSize: number;
  rooms: number;
  received: number;
  /** Chat and direct messages handed to sockets; direct messages accepted. */
  deliveries: number;
  directs?: number;
  drops: number;
  kicks: number;
  controlFrames: number;
  /** Socket writes: deliveries per write is how much the version batches. */
  writes: number;
  queueDepth: number;
  queueDepthMax: number;
  bufferedBytes: number;
  badInput: Partial<Record<ErrorCode, number>>;
  /** What the server's limits refused, by limit. */
  refusals: Partial<Record<LimitName, number>>;
  /** Event-loop delay over the last completed window, in milliseconds. */
  loopDelayMs: { p50: number; p99: number; max: number };
  rssBytes: number;
  heapUsedBytes: number;
  /** Process CPU time since start, in microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  uptimeS: number;
  /** v4: which node of the cluster answered, and its backplane's figures. */
  node?: string;
  backplane?: BackplaneStats;
}

/** v4: what one node's backplane has done since it started. */
export interface BackplaneStats {
  /** 'up' while the node can publish; 'down' from a lost connection until it is back. */
  state: 'up' | 'down';
  /** Messages this node appended to the backplane, and entries it took from it (live and fetched). */
  published: number;
  received: number;
  /** Appends under way (sent, not answered): the backlog while Redis is slow. */
  inFlight: number;
  /** Sends refused with BACKPLANE_DOWN (down, or the backlog at its cap). */
  refused: number;
  reconnects: number;
  /** Seconds the backplane has been down, in all. */
  outageS: number;
  /** Messages replayed to clients that resumed, and gap and reset notices sent. */
  replayed: number;
  gaps: number;
  resets: number;
  /** Entries fetched from history because the live feed skipped them (a reconnect). */
  refetched: number;
  /** Round trip of an append, in ms, over the last completed second. */
  publishRttMs: { p50: number; p99: number; max: number };
  /** The same over the node's whole life (what a report quotes for a run). */
  publishRttAllMs: { p50: number; p99: number; max: number };
}

/** What a server prints, once it listens, on one line of stdout: `LISTENING {json}`. */
export interface Listening {
  version: string;
  describe: string;
  port: number;
  /** http://host:port/ */
  url: string;
  /** ws://host:port/path */
  wsUrl: string;
  pid: number;
  /** v4: the node's name in its cluster. */
  node?: string;
}

const LISTENING_TAG = 'LISTENING ';

export function formatListening(info: Listening): string {
  return LISTENING_TAG + JSON.stringify(info);
}

/** The Listening a line announces, or null for any other line. */
export function parseListening(line: string): Listening | null {
  return line.startsWith(LISTENING_TAG) ? (JSON.parse(line.slice(LISTENING_TAG.length)) as Listening) : null;
}
