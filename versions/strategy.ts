// The one interface between the shared host and a version. The host owns HTTP, the upgrade,
// the protocol, presence, metrics and shutdown; a strategy owns only how a message reaches the
// sockets of a room. Reading v1/, v2/ and v3/ side by side shows what each design changes.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Account } from './auth.ts';
import type { BackplaneStats, ErrorCode, LimitName, ResumePoint, ServerMessage } from './protocol.ts';

/** One client, as the host sees it. `socket` is the raw TCP socket under `ws`. */
export interface Connection {
  readonly id: number;
  readonly ws: WebSocket;
  readonly socket: Socket;
  name: string;
  /** The room the host has confirmed; strategies keep their own membership. */
  room: string;
  /** Who signed in (--auth), or undefined: then the connection's user is its name. */
  readonly account?: Account;
  /**
   * v4, not signed in: what proves its name is its own (told in `joined`). A client that comes back
   * on another node after its own died shows it (?claim=) and keeps its name at once.
   */
  claim?: string;
}

/** The user a connection is: its account's id when it signed in, else the name it goes by. */
export function userOf(conn: Connection): string {
  return conn.account?.id ?? conn.name;
}

/** Plain numbers, bumped on hot paths and read by /metrics and /api/stats. */
export class ServerCounters {
  /** Frames accepted from clients and HTTP sends, before fan-out. */
  received = 0;
  /** Chat and direct messages handed to a client's socket. */
  deliveries = 0;
  /** Direct messages accepted (each counted once, however many connections it reached). */
  directs = 0;
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

/**
 * Who is in a room when membership spans processes (v4): the host's roster registers each member
 * here and asks here for the room's count and names, instead of counting only its own sockets.
 */
export interface MemberDirectory {
  /** `conn` is in `conn.room`; resolves with the room's member count across the cluster. */
  join(conn: Connection): Promise<number>;
  /** `conn` has left `room`; resolves with the members left. */
  leave(conn: Connection, room: string): Promise<number>;
  /** `conn` takes the name `name` in its room; resolves with the room's member count. */
  rename(conn: Connection, name: string): Promise<number>;
  /** Up to `max` names of the room's members, and how many there are. */
  members(room: string, max: number): Promise<{ names: string[]; count: number }>;
}

/**
 * Users across processes (v4): a node holds the users it has connections of, and a direct message
 * goes to every node that holds its recipient or its sender. Absent, the host routes direct
 * messages among its own connections.
 */
export interface UserRoute {
  /** This node has its first connection of `user`: messages to them reach it from now on. */
  hold(user: string): Promise<void>;
  /** Its last connection of `user` has gone. */
  release(user: string): void;
  /** Sends a direct message (`json`) to every node holding `to` or `from`; resolves with whether any node holds `to`. */
  send(to: string, from: string, json: string): Promise<boolean>;
  /** Where a node hands a message for `user` that reached it: the host sets this. */
  deliver: (user: string, json: string) => void;
}

export interface Strategy {
  /** 'v1', 'v1.1', 'v2', 'v3' or 'v4'. */
  readonly version: string;
  /** v4: this node's name in its cluster. */
  readonly node?: string;
  /** v4: membership across nodes; absent, the host's roster counts its own connections. */
  readonly directory?: MemberDirectory;
  /** v4: users across nodes, for direct messages; absent, the host routes them itself. */
  readonly users?: UserRoute;
  /** v4: a name is claimed across nodes, and a connection gets a claim to show when it comes back. */
  readonly claimsNames?: boolean;
  /** One line for people: "v3 · on-full drop · queue 128". */
  readonly describe: string;
  /** Whether the host pings clients and drops the ones that stop answering. */
  readonly heartbeat: boolean;
  /** A version with a hub (v3, v4) limits each connection's rate by default; v1 and v2 reproduce servers that do not. */
  readonly limitsRate?: boolean;
  /** v4: every send gets an id (the client's, or one the host assigns), so a resend is not a second message. */
  readonly resendSafe?: boolean;
  /**
   * A new connection, to join `conn.room`. Resolves once it is a member. `resume` (v4; the others
   * have no history and ignore it): the client has the room's stream up to there; replay the rest.
   */
  add(conn: Connection, resume?: ResumePoint): void | Promise<void>;
  /** `conn` leaves `conn.room` for `room`. Resolves once it is a member of `room`. */
  move(conn: Connection, room: string, resume?: ResumePoint): void | Promise<void>;
  /** The connection closed. What a version does with that is part of its story. */
  remove(conn: Connection): void | Promise<void>;
  /**
   * Fan `msg` out to every member of `room`, sender included. Never throws. v4 returns a promise
   * that rejects (BackplaneDownError, code BACKPLANE_DOWN) when the message could not be sent.
   */
  publish(room: string, msg: ServerMessage): void | Promise<void>;
  /** A reply to one connection (joined, error). Goes the version's own way to the socket. */
  sendTo(conn: Connection, msg: ServerMessage): void;
  stats(): StrategyStats;
  /** v4: what its backplane has done. */
  backplaneStats?(): BackplaneStats;
  /** v4: the cluster's live nodes and where they serve clients (GET /api/nodes). */
  peers?(): Promise<Array<{ node: string; url: string }>>;
  /** Stop timers and pumps; the host closes the sockets. */
  close(): void | Promise<void>;
}

export function isOpen(conn: Connection): boolean {
  return conn.ws.readyState === 1; // WebSocket.OPEN
}
