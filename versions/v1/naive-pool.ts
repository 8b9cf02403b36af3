// v1: the naive connection pool of the article, and v1.1 (`--prune`).
//
// Who writes to a socket: the broadcast loop, with ws.send, one write per message per client.
// What it gets wrong:
//  - v1 never removes a socket from the pool: after churn the pool holds dead sockets
//    (chat_pool_size > chat_connections_open; the churn scenario shows it).
//  - Nothing bounds what is buffered for a slow reader: ws.send queues in user space without
//    limit (chat_buffered_bytes and RSS climb; the slow-consumer scenario shows it).
//  - The O(N) loop re-encodes the message for every client on the receive path, so a large
//    room blocks the event loop for everyone (event-loop delay, latency of every client).
// v1.1 removes a socket on close/error and defers the broadcast off the receive path
// (the article's `go broadcast()`); unbounded buffering and per-client encoding remain.
// No heartbeat: the article's v1 has none, so a peer that vanishes without a FIN stays.
import { encodeServerMessage, type ServerMessage } from '../protocol.ts';
import { isOpen, type Connection, type ServerCounters, type Strategy, type StrategyStats } from '../strategy.ts';

export interface NaivePoolOptions {
  /** v1.1: remove closed sockets and defer the broadcast. Default false (v1). */
  prune: boolean;
}

interface PoolEntry {
  conn: Connection;
  room: string;
}

export class NaivePool implements Strategy {
  readonly version: string;
  readonly describe: string;
  readonly heartbeat = false;
  private readonly pool: PoolEntry[] = [];

  constructor(
    private readonly counters: ServerCounters,
    private readonly options: NaivePoolOptions,
  ) {
    this.version = options.prune ? 'v1.1' : 'v1';
    this.describe = options.prune ? 'v1.1 · naive pool, pruned on close' : 'v1 · naive pool';
  }

  add(conn: Connection): void {
    this.pool.push({ conn, room: conn.room });
  }

  move(conn: Connection, room: string): void {
    const entry = this.pool.find((e) => e.conn === conn);
    if (entry) entry.room = room;
  }

  remove(conn: Connection): void {
    if (!this.options.prune) return; // the v1 leak: the entry stays forever
    const i = this.pool.findIndex((e) => e.conn === conn);
    if (i >= 0) this.pool.splice(i, 1);
  }

  publish(room: string, msg: ServerMessage): void {
    if (this.options.prune) setImmediate(() => this.broadcast(room, msg));
    else this.broadcast(room, msg);
  }

  sendTo(conn: Connection, msg: ServerMessage): void {
    if (!isOpen(conn)) return;
    conn.ws.send(encodeServerMessage(msg));
    if (msg.type === 'direct') this.counters.deliveries++;
    else this.counters.controlFrames++;
    this.counters.writes++;
  }

  private broadcast(room: string, msg: ServerMessage): void {
    const isChat = msg.type === 'chat';
    for (const entry of this.pool) {
      if (entry.room !== room) continue;
      // The dead entry stays in the pool (the leak) and is walked past on every broadcast.
      if (!isOpen(entry.conn)) continue;
      entry.conn.ws.send(encodeServerMessage(msg)); // re-encoded per client, as the article does
      this.counters.writes++;
      if (isChat) this.counters.deliveries++;
      else this.counters.controlFrames++;
    }
  }

  stats(): StrategyStats {
    return { poolSize: this.pool.length, queueDepth: 0, queueDepthMax: 0 };
  }

  close(): void {
    this.pool.length = 0;
  }
}
