// v2: the pool behind a mutex, as the article's v2 adds a lock to v1.
//
// Who writes to a socket: the broadcast, holding the lock, one ws.send per client, awaiting each
// write's completion before the next (the blocking conn.WriteMessage of Go).
// What it gets wrong: one slow reader stalls the whole room. Once its kernel buffers are full its
// write does not complete, the lock stays held, and every other client, every later message and
// every join or leave waits behind it (healthy clients' latency grows to the slow reader's drain
// rate; the slow-consumer scenario shows it). `--hold-ms N` reproduces the article's
// time.Sleep under the lock. What it gets right over v1: ordering and pruning, and its socket
// buffers stay small (each write is awaited). Its memory is still not bounded: every broadcast
// that arrives while the lock is held waits in the lock's queue, without limit, for as long as
// the slow reader holds it.
// No heartbeat: the article's v2 has none.
import { setTimeout as sleep } from 'node:timers/promises';
import { Mutex } from 'async-mutex';
import { encodeServerMessage, type ServerMessage } from '../protocol.ts';
import { isOpen, type Connection, type ServerCounters, type Strategy, type StrategyStats } from '../strategy.ts';

export interface MutexPoolOptions {
  /** Milliseconds to sleep under the lock before each broadcast (the article's sleep). Default 0. */
  holdMs: number;
}

interface PoolEntry {
  conn: Connection;
  room: string;
}

export class MutexPool implements Strategy {
  readonly version = 'v2';
  readonly describe: string;
  readonly heartbeat = false;
  private readonly lock = new Mutex();
  private readonly pool: PoolEntry[] = [];
  /** Broadcasts waiting for the lock: nothing bounds them (its queue depth in /metrics). */
  private waiting = 0;

  constructor(
    private readonly counters: ServerCounters,
    private readonly options: MutexPoolOptions,
  ) {
    this.describe = options.holdMs > 0 ? `v2 · mutex pool · hold ${options.holdMs} ms` : 'v2 · mutex pool';
  }

  add(conn: Connection): Promise<void> {
    return this.lock.runExclusive(() => {
      this.pool.push({ conn, room: conn.room });
    });
  }

  move(conn: Connection, room: string): Promise<void> {
    return this.lock.runExclusive(() => {
      const entry = this.pool.find((e) => e.conn === conn);
      if (entry) entry.room = room;
    });
  }

  remove(conn: Connection): Promise<void> {
    return this.lock.runExclusive(() => {
      const i = this.pool.findIndex((e) => e.conn === conn);
      if (i >= 0) this.pool.splice(i, 1);
    });
  }

  publish(room: string, msg: ServerMessage): void {
    this.waiting++;
    void this.lock.runExclusive(() => {
      this.waiting--;
      return this.broadcast(room, msg);
    });
  }

  // A reply goes straight out, outside the lock: v1's sendTo (naive-pool.ts) on purpose.
  sendTo(conn: Connection, msg: ServerMessage): void {
    if (!isOpen(conn)) return;
    conn.ws.send(encodeServerMessage(msg));
    if (msg.type === 'direct') this.counters.deliveries++;
    else this.counters.controlFrames++;
    this.counters.writes++;
  }

  private async broadcast(room: string, msg: ServerMessage): Promise<void> {
    if (this.options.holdMs > 0) await sleep(this.options.holdMs);
    const isChat = msg.type === 'chat';
    // v1's loop (naive-pool.ts) on purpose, line for line but for the lock around it and the
    // awaited write: what differs between the two files is what v2 changes.
    for (const entry of this.pool) {
      if (entry.room !== room || !isOpen(entry.conn)) continue;
      // Resolves when the bytes reach the kernel; a full socket buffer holds the lock here.
      await new Promise<void>((resolve) => entry.conn.ws.send(encodeServerMessage(msg), () => resolve()));
      this.counters.writes++;
      if (isChat) this.counters.deliveries++;
      else this.counters.controlFrames++;
    }
  }

  stats(): StrategyStats {
    return { poolSize: this.pool.length, queueDepth: this.waiting, queueDepthMax: this.waiting };
  }

  close(): void {
    this.pool.length = 0;
  }
}
