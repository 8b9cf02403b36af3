// The protocol's codes: error codes in error frames, close codes, and what the limits refuse.
// Part of protocol.ts (which re-exports it); it imports nothing.

/** Stable codes for bad input, sent in `{"type":"error","code":…}` frames and counted in /metrics. */
export const ERROR_CODES = {
  BAD_JSON: 'the frame is not valid JSON',
  BAD_FRAME: 'the frame is not a JSON object',
  UNKNOWN_TYPE: 'the frame has an unknown "type"',
  BAD_FIELD: 'a field has the wrong type',
  EMPTY_CONTENT: '"content" is empty',
  CONTENT_TOO_LARGE: '"content" is longer than the content limit',
  BAD_ROOM: '"room" must match [A-Za-z0-9_-]{1,64}',
  BAD_NAME: '"name" must be 1-64 printable characters, something visible among them, and no invisible, direction-changing or line-breaking ones',
  NAME_TAKEN: 'another member of the room has that name (letter case and Unicode look-alikes count as the same)',
  BINARY_FRAME: 'binary frames are not accepted; send JSON text',
  FRAME_TOO_LARGE: 'the frame is larger than the frame limit (closed with 1009; the limit is in joined.server.limits.maxFrameBytes)',
  PROTOCOL_ERROR: 'the frame breaks RFC 6455: unmasked, reserved bits, a bad opcode, a control frame over 125 bytes (closed with 1002)',
  BAD_UTF8: 'a text frame is not valid UTF-8 (closed with 1007)',
  BACKPLANE_DOWN: 'v4: not done: the backplane (Redis) cannot take it now; try again later',
  SEND_UNKNOWN: 'v4: the connection to the backplane was lost while this send was under way: it may have been delivered; sending it again with the same id is safe',
  RATE_LIMITED: 'too many frames: this connection is over its rate (joined.server.rate); frames past it are dropped, and a connection that keeps on is closed with 1008',
  NOT_IN_ROOM: 'you are not in a room yet: wait for "joined" before you send',
  BAD_ID: '"id" must be 1-64 printable ASCII characters',
  HISTORY_UNAVAILABLE: 'v4: what you missed could not be read from history (the backplane is down); you are in the room without it: join again with since and epoch later',
  BAD_SINCE: '"since" must be an integer >= 0 and "epoch" a string of 1-64 characters, given together',
  BAD_MEDIA: 'a media field is wrong: "media" one of text, image, voice, link; "url" and "pic" http(s) URLs; "memo" a short string',
  BAD_RECIPIENT: '"to" must be a user: 1-64 characters, no control characters',
  USER_OFFLINE: 'the user you wrote to has no connection open on any node now; nothing was delivered',
  NAME_FIXED: 'you are signed in: your name comes from your token, and a join frame cannot change it',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

/** Close codes this workbench uses, beside the RFC 6455 ones ws sends by itself. */
export const CLOSE_CODES = {
  /** Server shutting down (SIGINT/SIGTERM). */
  GOING_AWAY: 1001,
  /** A frame that breaks RFC 6455; ws closes with it. */
  PROTOCOL_ERROR: 1002,
  /** A text frame that is not UTF-8; ws closes with it. */
  INVALID_PAYLOAD: 1007,
  /** Frame above the frame limit; ws closes with it. */
  MESSAGE_TOO_BIG: 1009,
  /** A peer that keeps a frame unfinished past the frame timeout, or floods past its rate. */
  POLICY_VIOLATION: 1008,
  /** v4: the server could not take the connection into its room (its backplane is down): connect again later. */
  TRY_AGAIN_LATER: 1013,
  /** No traffic either way for the idle timeout: the server closed the socket. */
  IDLE_TIMEOUT: 4001,
  /** v3 `--on-full kick`: the client's queue was full, so the server closed it. */
  SLOW_CONSUMER: 4008,
  /** --auth: the token the connection signed in with has expired; sign in again with a fresh one. */
  TOKEN_EXPIRED: 4401,
} as const;

/** Close codes in words, for people: a client, a report, and the page (served as /close-codes.json). */
export const CLOSE_CODE_WORDS: Readonly<Record<number, string>> = {
  1000: 'normal close',
  1001: 'server shutting down',
  1002: 'protocol error',
  1005: 'no code given',
  1006: 'connection lost, no close frame',
  1003: 'a kind of data it cannot accept',
  1007: 'text that is not UTF-8',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'server error',
  1013: 'try again later',
  [CLOSE_CODES.IDLE_TIMEOUT]: 'idle: no traffic for too long',
  [CLOSE_CODES.SLOW_CONSUMER]: 'too slow: kicked',
  [CLOSE_CODES.TOKEN_EXPIRED]: 'token expired: sign in again',
};

/** A close code in words. */
export function closeCodeInWords(code: number): string {
  return CLOSE_CODE_WORDS[code] ?? 'no meaning this workbench knows';
}

/**
 * What a server's limits refuse, counted in chat_limit_refusals_total{limit}: a peer that would
 * hold the server (too many frames or connections, silence, slow headers or bodies), a request from a page
 * that is not the workbench's, a client that did not answer a close.
 */
export const LIMITS = ['auth', 'rate', 'flood', 'frame_timeout', 'max_connections', 'max_per_ip', 'headers_timeout', 'request_timeout', 'idle_timeout', 'close_grace', 'origin', 'host', 'content_type'] as const;
export type LimitName = (typeof LIMITS)[number];

/** The error code a ws protocol error (its WS_ERR_*) counts as: every frame ws refuses is counted. */
export function wsErrorCode(code: string | undefined): ErrorCode {
  switch (code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH': // a message over maxPayload
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH': // a 64-bit length past 2^53
      return 'FRAME_TOO_LARGE';
    case 'WS_ERR_INVALID_UTF8':
      return 'BAD_UTF8';
    default:
      return 'PROTOCOL_ERROR';
  }
}

/**
 * The error frame a v4 step that did not go through reads as: SEND_UNKNOWN when it may have been
 * done (the answer was lost), else BACKPLANE_DOWN; the text gives what was tried and why it failed.
 */
export function backplaneRefusal(err: { code?: string; message: string }, what = ''): { code: 'SEND_UNKNOWN' | 'BACKPLANE_DOWN'; message: string } {
  const code = err.code === 'SEND_UNKNOWN' ? 'SEND_UNKNOWN' : 'BACKPLANE_DOWN';
  return { code, message: `${ERROR_CODES[code]} (${what ? `${what}: ` : ''}${err.message})` };
}
