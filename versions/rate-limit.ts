// Fairness per connection: one client cannot take the server from the others. A token bucket per
// connection for frames (and a smaller one for joins, which cost presence and replays), checked
// before a frame is parsed. A frame past the bucket is dropped and counted; its sender hears
// RATE_LIMITED at most once a second. A connection that keeps sending far past its rate (three
// bursts' worth dropped within a second) is not worth reading: it is closed with 1008.

export interface RateLimitOptions {
  /** Frames a connection may send per second, on average; 0: no limit. */
  msgsPerS: number;
  /** Frames it may send at once above that rate (the bucket's size). */
  burst: number;
}

/** v3 and v4, unless told otherwise: far above a person's typing; small enough that one burst is no event for the rest (docs/results.md, bench:abuse). */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { msgsPerS: 100, burst: 50 };
/** Joins (and switches, renames, resumes) a connection may make at once, and per second after that. */
export const JOIN_BURST = 5;
export const JOINS_PER_S = 1;
/**
 * Bursts' worth of frames dropped within one second past which the connection is closed (1008).
 * Within a second, not in a row: a client at 50× its rate gets a frame through each time a token
 * comes back, and "in a row" never closed it (the flood scenario found it: 5,000 frames/s for
 * seconds against 100/s, 98% dropped, never closed).
 */
export const FLOOD_BURSTS = 3;
/** The window FLOOD_BURSTS counts drops over. */
const FLOOD_WINDOW_MS = 1_000;
/** A connection hears RATE_LIMITED at most this often. */
const NOTICE_INTERVAL_MS = 1_000;

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perS: number,
    private readonly size: number,
    now: number,
  ) {
    this.tokens = size;
    this.last = now;
  }

  /** Takes a token if there is one. `now` in ms (performance.now()). */
  take(now: number): boolean {
    this.tokens = Math.min(this.size, this.tokens + ((now - this.last) * this.perS) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** What a connection's limiter says of a frame. */
export type RateVerdict = 'ok' | 'drop' | 'drop-and-tell' | 'close';

/** One connection's limits: its frames, and its joins. */
export class ConnectionLimiter {
  private readonly frames: TokenBucket;
  private readonly joins: TokenBucket;
  /** Frames dropped since `windowStart` (reset every FLOOD_WINDOW_MS). */
  private dropped = 0;
  private windowStart = -Infinity;
  private toldAt = -Infinity;

  constructor(
    private readonly options: RateLimitOptions,
    now: number,
  ) {
    this.frames = new TokenBucket(options.msgsPerS, options.burst, now);
    this.joins = new TokenBucket(JOINS_PER_S, JOIN_BURST, now);
  }

  /** A frame arrived. */
  frame(now: number): RateVerdict {
    if (this.frames.take(now)) return 'ok';
    return this.refuse(now);
  }

  /** A join frame arrived (after frame() let it through). */
  join(now: number): RateVerdict {
    return this.joins.take(now) ? 'ok' : this.refuse(now);
  }

  private refuse(now: number): RateVerdict {
    if (now - this.windowStart >= FLOOD_WINDOW_MS) {
      this.windowStart = now;
      this.dropped = 0;
    }
    if (++this.dropped >= this.options.burst * FLOOD_BURSTS) return 'close';
    if (now - this.toldAt < NOTICE_INTERVAL_MS) return 'drop';
    this.toldAt = now;
    return 'drop-and-tell';
  }
}
