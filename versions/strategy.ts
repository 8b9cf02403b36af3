// The one interface between the shared host and a version. The host owns HTTP, the upgrade,
// the protocol, presence, metrics and shutdown; a strategy owns only how a message reaches the
// sockets of a room. Reading v1/, v2/ and v3/ side by side shows what each design changes.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { ErrorCode, LimitName, ServerMessage } from './protocol.ts';

/** One client, as the host sees it. `socket` is the raw TCP socket under `ws`. */
export interface Connection {
  readonly id: number;
  readonly ws: WebSocket;
  readonly socket: Socket;
  name: string;
  /** The room the host has confirmed; strategies keep their own membership. */
  room: string;
}

/** Plain numbers, bumped on hot paths and read by /metrics and /api/stats. */
export class ServerCounters {
  /** Frames accepted from clients and HTTP sends, before fan-out. */
  received = 0;
  /** Chat messages handed to a client's socket. */
  deliveries = 0;
  /** Chat messages a version decided not to deliver to some client (v3 drop and kick). */
  drops = 0;
  /** Clients closed for being slow (v3 kick). */
  kicks = 0;
  /** Non-chat frames sent (joined, presence, error, dropped notices). */
  controlFrames = 0;
  /**
   * Socket writes made: one per frame in v1 and v2, one per flush of a client's queue in v3.
   * Deliveries per write is how much a version batches; a write is what costs (a system call).
   */
  writes = 0;
  readonly badInput = new Map<ErrorCode, number>();
  readonly refusals = new Map<LimitName, number>();

  countBadInput(code: ErrorCode): void {
    this.badInput.set(code, (this.badInput.get(code) ?? 0) + 1);
  }

  countRefusal(limit: LimitName): void {
    this.refusals.set(limit, (this.refusals.get(limit) ?? 0) + 1);
  }
}

export interface StrategyStats {
  /** What the version holds, dead sockets included (v1 never lets go of them). */
  poolSize: number;
  /** Messages queued: in v3's per-client queues, summed; in v2, broadcasts waiting for the lock; 0 in v1. */
  queueDepth: number;
  /** The deepest single queue right now (v2: its one queue, the lock's). */
  queueDepthMax: number;
}

export interface Strategy {
  /** 'v1', 'v1.1', 'v2' or 'v3'. */
  readonly version: string;
  /** One line for people: "v3 · on-full drop · queue 128". */
  readonly describe: string;
  /** Whether the host pings clients and drops the ones that stop answering. */
  readonly heartbeat: boolean;
  /** A new connection, to join `conn.room`. Resolves once it is a member. */
  add(conn: Connection): void | Promise<void>;
  /** `conn` leaves `conn.room` for `room`. Resolves once it is a member of `room`. */
  move(conn: Connection, room: string): void | Promise<void>;
  /** The connection closed. What a version does with that is part of its story. */
  remove(conn: Connection): void | Promise<void>;
  /** Fan `msg` out to every member of `room`, sender included. Never throws. */
  publish(room: string, msg: ServerMessage): void;
  /** A reply to one connection (joined, error). Goes the version's own way to the socket. */
  sendTo(conn: Connection, msg: ServerMessage): void;
  stats(): StrategyStats;
  /** Stop timers and pumps; the host closes the sockets. */
  close(): void;
}

export function isOpen(conn: Connection): boolean {
  return conn.ws.readyState === 1; // WebSocket.OPEN
}
