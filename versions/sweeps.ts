// The host's timers: each one sweep over the open connections, not a timer per socket (at 20k
// clients a timer each counts in memory and in the event loop).
//  - heartbeat (versions that have one): a ping with a payload of its own; a peer that has not
//    echoed the last one by the next is dropped.
//  - close reaper: a client the server closed that does not answer the close is cut off after
//    closeGraceMs, not after ws's own 30 s (a non-reader never answers).
//  - idle sweep: a socket with no traffic either way for idleTimeoutMs is closed (4001).
//  - frame sweep: bytes of a frame (or of a fragmented message) that has not ended within
//    frameTimeoutMs close the socket (1008): a peer dribbling one frame must not hold a socket.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { CLOSE_CODES } from './protocol.ts';
import type { Connection, ServerCounters } from './strategy.ts';

/** What the sweeps keep of one connection. */
export interface Swept {
  readonly conn: Connection;
  /** Echoed the last heartbeat ping, and that ping's payload while it is unanswered. */
  alive: boolean;
  pinged: Buffer | null;
  /** When the reaper first saw this connection closing (performance.now() ms; 0: not closing). */
  closingSince: number;
  /** Bytes read and written when the idle sweep last looked, and since when that has not changed. */
  bytesSeen: number;
  quietSince: number;
  /** Bytes read when the last whole message or control frame arrived, and since when more have waited unfinished (0: none). */
  bytesAtFrame: number;
  partialSince: number;
}

export interface SweepOptions {
  heartbeat: boolean;
  pingIntervalMs: number;
  closeGraceMs: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
}

/** How often the close reaper looks for clients that have not answered a close. */
const REAPER_INTERVAL_MS = 250;
/** The idle and frame sweeps look four times per timeout, within these bounds. */
const MIN_SWEEP_MS = 25;
const MAX_SWEEP_MS = 10_000;

const every = (timeoutMs: number): number => Math.max(MIN_SWEEP_MS, Math.min(timeoutMs / 4, MAX_SWEEP_MS));

/** A whole message or control frame from `st` has arrived: it is not in the middle of one. */
export function frameEnded(st: Swept): void {
  st.bytesAtFrame = st.conn.socket.bytesRead;
  st.partialSince = 0;
}

/** Starts the sweeps over `conns`; returns what stops them. */
export function startSweeps(conns: Map<WebSocket, Swept>, o: SweepOptions, counters: ServerCounters): () => void {
  const timers: NodeJS.Timeout[] = [];
  const repeat = (ms: number, sweep: (now: number) => void): void => {
    const t = setInterval(() => sweep(performance.now()), ms);
    t.unref();
    timers.push(t);
  };

  let pings = 0;
  if (o.heartbeat) {
    repeat(o.pingIntervalMs, () => {
      for (const st of conns.values()) {
        if (!st.alive) {
          st.conn.ws.terminate(); // no echo of the last ping: a dead peer
          continue;
        }
        st.alive = false;
        st.pinged = Buffer.from((++pings).toString(36));
        st.conn.ws.ping(st.pinged);
      }
    });
  }

  repeat(Math.min(REAPER_INTERVAL_MS, o.closeGraceMs), (now) => {
    for (const [ws, st] of conns) {
      if (ws.readyState !== WebSocket.CLOSING) continue;
      if (st.closingSince === 0) st.closingSince = now;
      else if (now - st.closingSince >= o.closeGraceMs) {
        counters.countRefusal('close_grace');
        ws.terminate();
      }
    }
  });

  if (o.idleTimeoutMs > 0) {
    repeat(every(o.idleTimeoutMs), (now) => {
      for (const [ws, st] of conns) {
        const bytes = st.conn.socket.bytesRead + st.conn.socket.bytesWritten;
        if (bytes !== st.bytesSeen) {
          st.bytesSeen = bytes;
          st.quietSince = now;
        } else if (now - st.quietSince >= o.idleTimeoutMs && ws.readyState === WebSocket.OPEN) {
          counters.countRefusal('idle_timeout');
          ws.close(CLOSE_CODES.IDLE_TIMEOUT, 'idle: no traffic');
        }
      }
    });
  }

  if (o.frameTimeoutMs > 0) {
    repeat(every(o.frameTimeoutMs), (now) => {
      for (const [ws, st] of conns) {
        if (st.conn.socket.bytesRead === st.bytesAtFrame || ws.readyState !== WebSocket.OPEN) continue;
        if (st.partialSince === 0) st.partialSince = now;
        else if (now - st.partialSince >= o.frameTimeoutMs) {
          counters.countRefusal('frame_timeout');
          ws.close(CLOSE_CODES.POLICY_VIOLATION, 'a frame did not end in time');
        }
      }
    });
  }

  return () => {
    for (const t of timers) clearInterval(t);
  };
}
