// What every part of the page shares: the connection's state, and a short way to an element.
export const $ = (id) => document.getElementById(id);

/** The limits every server starts with (joined.server.limits replaces them). */
export const DEFAULT_LIMITS = { maxFrameBytes: 64 * 1024, maxContentChars: 16 * 1024 };
export const fmt = (n) => n.toLocaleString('en-US');

export const state = {
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
  /** The name this page asked for last (URL or join frame): only that one is remembered. */
  asked: '',
  room: 'lobby',
  /** The room and server the messages on screen belong to. */
  section: null,
  limits: DEFAULT_LIMITS,
  closeWords: {},
  /** Members by name, with how many of them go by it (a signed-in user's tabs share one). */
  members: new Map(),
  pending: [],
  lastStats: null,
  series: { connections: [], rate: [], batch: [], deliveries: [], drops: [], queue: [], loop: [] },
  /** v4: where this page is in its room's stream, so a reconnect resumes there. */
  stream: null,
  /** v4: the other nodes of this node's cluster (host:port), where the page fails over to if its node goes. */
  siblings: [],
  /** v4: the claim to its name its node gave it: shown on another node, the name stays this page's. */
  claim: null,
  /** Signed in: the token, and who it makes this page (the server's `joined.user`). */
  token: null,
  user: null,
  /** The user a message goes to privately (null: the room). */
  directTo: null,
};
