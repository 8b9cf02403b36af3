// The shared host's options: its limits and timeouts, their defaults, and their validation.
import { DEFAULT_LIMITS, type ProtocolLimits } from './protocol.ts';
import { DEFAULT_RATE_LIMIT, type RateLimitOptions } from './rate-limit.ts';
import { AUTH_MODES, type AuthOptions } from './auth.ts';
import type { MessageLogOptions } from './message-log.ts';
/** How often the heartbeat pings; a client that has not answered the previous ping by then is dropped. */
export const DEFAULT_PING_INTERVAL_MS = 30_000;
/** Below the 20,000 files a process may open here, with room for the server's own. */
export const DEFAULT_MAX_CONNECTIONS = 19_950;
/** One address may hold this many connections; tools that open thousands spread over 127.0.0.0/8. */
export const DEFAULT_MAX_PER_IP = 1_000;
/** A socket with no traffic either way for this long is closed: all that clears a vanished peer in v1 and v2. */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000;
/** A client the server closed gets this long to answer the close before it is cut off. */
export const DEFAULT_CLOSE_GRACE_MS = 1_000;
/** Node's own defaults are 60 s for headers and 300 s for a whole request: far longer than a chat server needs. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** A frame dribbled byte by byte holds a socket and a parser: it must end within this. */
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000;

export interface HostOptions {
  /** Interface to listen on. Default '127.0.0.1'. */
  host: string;
  /** TCP port; 0 takes a free one. Default 0. */
  port: number;
  /** Frame and content limits. Default 64 KiB frames, 16 KiB content. */
  limits: ProtocolLimits;
  /** Heartbeat period in ms, for versions that have one. Default 30 000. */
  pingIntervalMs: number;
  /** Origins allowed besides the workbench's own (http(s) on localhost/127.0.0.0/8). '*' allows all. Default []. */
  allowOrigins: string[];
  /** Open connections past which an upgrade is answered 503. Default 19,950; 0: no cap. */
  maxConnections: number;
  /** Open connections one remote address may hold; past it, 503. Default 1,000; 0: no cap. */
  maxPerIp: number;
  /** A socket with no traffic either way for this many ms is closed (4001). Default 600 000; 0: never. */
  idleTimeoutMs: number;
  /** A client the server closed is cut off if it has not answered the close in this many ms. Default 1 000. */
  closeGraceMs: number;
  /** An HTTP request's headers must arrive within this many ms. Default 10 000. */
  headersTimeoutMs: number;
  /** A whole HTTP request (headers and body) must arrive within this many ms. Default 30 000. */
  requestTimeoutMs: number;
  /**
   * Frames per second one connection may send, on average (a token bucket; frames past it are
   * dropped, RATE_LIMITED). null: the version's default, 100 for the versions with a hub (v3, v4)
   * and no limit for v1 and v2, whose story has none; 0: no limit.
   */
  maxMsgsPerS: number | null;
  /** Frames a connection may send at once above its rate. Default 50. */
  burst: number;
  /** A frame, or a fragmented message, must end within this many ms of its first bytes (1008 after). Default 10 000; 0: no limit. */
  frameTimeoutMs: number;
  /** How connections sign in (auth.ts). Default { mode: 'none' }. */
  auth: AuthOptions;
  /** The credential that authorises pushing to a user over HTTP (Authorization: Bearer <key>). Default null: only a token with the push scope may. */
  apiKey: string | null;
  /** Where accepted messages are recorded (message-log.ts). Default null: nowhere. */
  messageLog: MessageLogOptions | null;
}

export const DEFAULT_HOST_OPTIONS: HostOptions = {
  host: '127.0.0.1',
  port: 0,
  limits: DEFAULT_LIMITS,
  pingIntervalMs: DEFAULT_PING_INTERVAL_MS,
  allowOrigins: [],
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxPerIp: DEFAULT_MAX_PER_IP,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  closeGraceMs: DEFAULT_CLOSE_GRACE_MS,
  headersTimeoutMs: DEFAULT_HEADERS_TIMEOUT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  maxMsgsPerS: null,
  burst: DEFAULT_RATE_LIMIT.burst,
  frameTimeoutMs: DEFAULT_FRAME_TIMEOUT_MS,
  auth: { mode: 'none' },
  apiKey: null,
  messageLog: null,
};

/** The rate limit a server with these options puts on each connection of a version (null: none). */
export function rateLimitOf(o: HostOptions, versionLimitsRate: boolean): RateLimitOptions | null {
  const perS = o.maxMsgsPerS ?? (versionLimitsRate ? DEFAULT_RATE_LIMIT.msgsPerS : 0);
  return perS > 0 ? { msgsPerS: perS, burst: o.burst } : null;
}

export function resolveHostOptions(partial: Partial<HostOptions> = {}): HostOptions {
  const o: HostOptions = { ...DEFAULT_HOST_OPTIONS, ...partial, limits: { ...DEFAULT_LIMITS, ...partial.limits } };
  if (typeof o.host !== 'string' || o.host.length === 0) throw new TypeError('options.host must be a non-empty string');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError('options.port must be an integer from 0 to 65535');
  if (!Number.isInteger(o.limits.maxFrameBytes) || o.limits.maxFrameBytes < 128) throw new RangeError('options.limits.maxFrameBytes must be an integer >= 128');
  if (!Number.isInteger(o.limits.maxContentChars) || o.limits.maxContentChars < 1) throw new RangeError('options.limits.maxContentChars must be an integer >= 1');
  if (!Number.isFinite(o.pingIntervalMs) || o.pingIntervalMs < 10) throw new RangeError('options.pingIntervalMs must be a number >= 10');
  if (!Array.isArray(o.allowOrigins)) throw new TypeError('options.allowOrigins must be an array of origins');
  const count = (k: 'maxConnections' | 'maxPerIp' | 'idleTimeoutMs' | 'closeGraceMs', min: number): void => {
    if (!Number.isInteger(o[k]) || (o[k] !== 0 && o[k] < min)) throw new RangeError(`options.${k} must be 0 or an integer >= ${min}`);
  };
  count('maxConnections', 1);
  count('maxPerIp', 1);
  count('idleTimeoutMs', 100);
  count('closeGraceMs', 10);
  if (!Number.isInteger(o.headersTimeoutMs) || o.headersTimeoutMs < 100) throw new RangeError('options.headersTimeoutMs must be an integer >= 100');
  if (!Number.isInteger(o.requestTimeoutMs) || o.requestTimeoutMs < o.headersTimeoutMs) throw new RangeError('options.requestTimeoutMs must be an integer >= options.headersTimeoutMs');
  if (o.maxMsgsPerS !== null && !(Number.isFinite(o.maxMsgsPerS) && o.maxMsgsPerS >= 0)) throw new RangeError('options.maxMsgsPerS must be a number >= 0 (0: no limit)');
  if (!Number.isInteger(o.frameTimeoutMs) || (o.frameTimeoutMs !== 0 && o.frameTimeoutMs < 100)) throw new RangeError('options.frameTimeoutMs must be 0 or an integer >= 100');
  if (!Number.isInteger(o.burst) || o.burst < 1) throw new RangeError('options.burst must be an integer >= 1');
  if (!AUTH_MODES.includes(o.auth.mode)) throw new RangeError(`options.auth.mode must be one of ${AUTH_MODES.join(', ')}`);
  // --auth dev signs anyone in under any name: only where nobody else can reach it.
  if (o.auth.mode === 'dev' && !isLoopback(o.host)) throw new RangeError('--auth dev signs in anyone as anyone: it listens on loopback only (--host 127.0.0.1)');
  if (o.apiKey !== null && (typeof o.apiKey !== 'string' || o.apiKey.length < 16)) throw new RangeError('options.apiKey (--api-key) must be at least 16 characters');
  return o;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
