// @ts-check
// What every part of the page shares: the connection's state, and a short way to an element.

/** An element of the page (index.html has every one the scripts ask for). @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** A field of the page: an input or a select. @param {string} id */
export const $field = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

/** The limits every server starts with (joined.server.limits replaces them). */
export const DEFAULT_LIMITS = { maxFrameBytes: 64 * 1024, maxContentChars: 16 * 1024 };
/** @param {number} n */
export const fmt = (n) => n.toLocaleString('en-US');

/**
 * @typedef {{ maxFrameBytes: number, maxContentChars: number }} Limits
 * @typedef {{ content: string, id: string, frame: object, at: number, tries: number }} Pending
 * @typedef {{ room: string, seq: number, epoch: string }} StreamPlace
 */

export const state = {
  address: location.host,
  ws: /** @type {WebSocket | null} */ (null),
  /** Connected and greeted: counters and members are live; otherwise they are marked stale. */
  live: false,
  retries: 0,
  reconnectTimer: /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined),
  countdownTimer: /** @type {ReturnType<typeof setInterval> | undefined} */ (undefined),
  retryAt: 0,
  /** The disconnect has been said once in the message list; retries only update the status line. */
  toldDisconnect: false,
  name: '',
  /** The name this page asked for last (URL or join frame): only that one is remembered. */
  asked: '',
  room: 'lobby',
  /** The room and server the messages on screen belong to. */
  section: /** @type {string | null} */ (null),
  limits: /** @type {Limits} */ (DEFAULT_LIMITS),
  /** @type {Record<string, string>} */
  closeWords: {},
  /** Members by name, with how many of them go by it (a signed-in user's tabs share one). */
  members: /** @type {Map<string, number>} */ (new Map()),
  pending: /** @type {Pending[]} */ ([]),
  /** @type {{ s: any, at: number } | null} */
  lastStats: null,
  /** @type {Record<string, Array<number | null>>} */
  series: { connections: [], rate: [], batch: [], deliveries: [], drops: [], queue: [], loop: [] },
  /** v4: where this page is in its room's stream, so a reconnect resumes there. */
  stream: /** @type {StreamPlace | null} */ (null),
  /** v4: the other nodes of this node's cluster (host:port), where the page fails over to if its node goes. */
  siblings: /** @type {string[]} */ ([]),
  /** v4: the claim to its name its node gave it: shown on another node, the name stays this page's. */
  claim: /** @type {string | null} */ (null),
  /** Signed in: the token, and who it makes this page (the server's `joined.user`). */
  token: /** @type {string | null} */ (null),
  user: /** @type {string | null} */ (null),
  /** The user a message goes to privately (null: the room). */
  directTo: /** @type {string | null} */ (null),
};
