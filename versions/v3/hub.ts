// v3: the hub of the article (and of gorilla/websocket's chat example).
//
// Who writes to a socket: each client's writer pump (client-pump.ts), and nothing else. The hub
// loop owns rooms and membership and takes register / move / unregister / publish / send from one
// inbox; a broadcast is encoded and framed once and the same bytes go into every member's queue.
// Each queue holds at most `queue` messages; when it is full and the socket is not taking more:
//  - block: the hub waits for that one client, so every room stalls with it. This is the
//    article's v3 bug (its web client "could not send" under load); slow-consumer shows it.
//  - drop (default, the article's v3.1 fix): the message is dropped for that client only and
//    counted (chat_drops_total); the client is told how many with a "dropped" frame.
//  - kick: the client is closed with 4008 (gorilla's choice); chat_kicks_total counts it.
// Memory is bounded by clients × queue. Heartbeat: yes, as gorilla's hub has, so peers that
// vanish without a FIN leave.
// Writes are batched: a write (a system call) costs far more than the bytes in it, so the hub
// writes each client's whole queue at once, in sweeps over the clients with frames waiting.
//  - A sweep is sliced: after flushSliceMs of writing it yields to the event loop, which reads
//    what arrived meanwhile and queues it, then goes on where it stopped. A client the sweep has
//    not reached yet takes those frames in this sweep, so a message waits at most about one sweep,
//    not for the sweep under way to end and then for its place in the next. At 10,000 clients a
//    sweep is 10,000 writes and takes 200-350 ms here: slicing is what keeps that from doubling
//    latency (README, "What the comparison shows").
//  - Sweeps are paced: after a sweep that took d ms the next waits min(flushPacing × d,
//    flushRestMaxMs) ms, and what arrives meanwhile goes out together. Idle, a sweep takes
//    microseconds and nothing waits; under load batches grow with the load; the cap keeps the
//    rest from adding more than flushRestMaxMs of latency where a sweep is already long.
//  - Pacing never fills a queue: once one is half full the next sweep starts at once, so drops
//    stay for clients whose sockets do not take what is written to them.
import { performance } from 'node:perf_hooks';
import { encodeServerMessage, frameText, CLOSE_CODES, type ServerMessage } from '../protocol.ts';
import type { Connection, ServerCounters, Strategy, StrategyStats } from '../strategy.ts';
import { ClientPump, type SharedBatches } from './client-pump.ts';

export const ON_FULL_POLICIES = ['block', 'drop', 'kick'] as const;
export type OnFullPolicy = (typeof ON_FULL_POLICIES)[number];

export interface HubOptions {
  /** Messages each client's queue holds before `onFull` applies. Default 128 (the article's bufferSize). */
  queue: number;
  /** What the hub does when a client's queue is full. Default 'drop'. */
  onFull: OnFullPolicy;
  /**
   * After a sweep that took d ms, the next waits min(flushPacing × d, flushRestMaxMs) ms: writing
   * takes at most 1 / (1 + flushPacing) of the hub's time while sweeps are short. 0 never rests.
   * Default 1.
   */
  flushPacing: number;
  /** The longest rest between sweeps, in ms: the most batching may add to latency. Default 25. */
  flushRestMaxMs: number;
  /** A sweep yields to the event loop after this many ms of writing; 0 writes a whole sweep at once. Default 5. */
  flushSliceMs: number;
}

type Command =
  | { op: 'register'; conn: Connection; done: () => void }
  | { op: 'move'; conn: Connection; room: string; done: () => void }
  | { op: 'unregister'; conn: Connection; done: () => void }
  | { op: 'publish'; room: string; msg: ServerMessage }
  | { op: 'send'; conn: Connection; msg: ServerMessage };

export class Hub implements Strategy {
  readonly version = 'v3';
  readonly describe: string;
  readonly heartbeat = true;
  private readonly clients = new Map<Connection, ClientPump>();
  private readonly rooms = new Map<string, Set<ClientPump>>();
  private inbox: Command[] = [];
  /** The sweep under way: clients it has still to write from `sweepAt` on (each once: ClientPump.dirty). */
  private sweep: ClientPump[] = [];
  private sweepAt = 0;
  private sweepStartedAt = 0;
  private sliceScheduled: NodeJS.Immediate | null = null;
  /** Clients with frames waiting that the sweep under way will not reach: the next sweep's. */
  private dirty: ClientPump[] = [];
  /** When the next sweep may start (performance.now() ms), and the timer that starts it. */
  private nextSweepAt = 0;
  private restTimer: NodeJS.Timeout | null = null;
  /** A queue is half full: the next sweep starts without resting. */
  private urgent = false;
  /** Concatenations shared by the writes of one slice, or of one inbox batch (queues flushed early for being full). */
  private batches: SharedBatches = new Map();
  private scheduled = false;
  private running = false;
  private stopped = false;

  constructor(
    private readonly counters: ServerCounters,
    private readonly options: HubOptions,
  ) {
    this.describe = `v3 · on-full ${options.onFull} · queue ${options.queue}`;
  }

  add(conn: Connection): Promise<void> {
    return new Promise((done) => this.submit({ op: 'register', conn, done }));
  }

  move(conn: Connection, room: string): Promise<void> {
    return new Promise((done) => this.submit({ op: 'move', conn, room, done }));
  }

  remove(conn: Connection): Promise<void> {
    return new Promise((done) => this.submit({ op: 'unregister', conn, done }));
  }

  publish(room: string, msg: ServerMessage): void {
    this.submit({ op: 'publish', room, msg });
  }

  sendTo(conn: Connection, msg: ServerMessage): void {
    this.submit({ op: 'send', conn, msg });
  }

  stats(): StrategyStats {
    let queueDepth = 0;
    let queueDepthMax = 0;
    for (const c of this.clients.values()) {
      queueDepth += c.depth;
      if (c.depth > queueDepthMax) queueDepthMax = c.depth;
    }
    return { poolSize: this.clients.size, queueDepth, queueDepthMax };
  }

  close(): void {
    this.stopped = true;
    if (this.restTimer) clearTimeout(this.restTimer);
    if (this.sliceScheduled) clearImmediate(this.sliceScheduled);
    for (const c of this.clients.values()) c.close();
  }

  private submit(cmd: Command): void {
    this.inbox.push(cmd);
    if (!this.running) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    // Everything that arrives in one event-loop turn is handled in one go, then flushed.
    setImmediate(() => void this.run());
  }

  /** The hub loop: applies commands in arrival order; only `block` ever makes it wait. */
  private async run(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      while (this.inbox.length > 0 && !this.stopped) {
        const batch = this.inbox;
        this.inbox = [];
        for (const cmd of batch) {
          const wait = this.apply(cmd);
          if (wait) {
            this.startSweep(); // the other clients' pumps keep running while the hub waits
            await wait;
          }
        }
        this.batches = new Map();
        this.requestSweep();
      }
    } finally {
      this.running = false;
      if (this.inbox.length > 0) this.schedule();
    }
  }

  private apply(cmd: Command): Promise<void> | undefined {
    switch (cmd.op) {
      case 'register': {
        const client = new ClientPump(cmd.conn, this.options.queue, this.counters);
        this.clients.set(cmd.conn, client);
        this.join(client, cmd.conn.room);
        cmd.done();
        return undefined;
      }
      case 'move': {
        const client = this.clients.get(cmd.conn);
        if (client) this.join(client, cmd.room);
        cmd.done();
        return undefined;
      }
      case 'unregister': {
        const client = this.clients.get(cmd.conn);
        if (client) {
          this.leave(client);
          this.clients.delete(cmd.conn);
          client.close();
        }
        cmd.done();
        return undefined;
      }
      case 'send': {
        const client = this.clients.get(cmd.conn);
        if (client && client.offerOwn(frameText(encodeServerMessage(cmd.msg)))) this.markDirty(client);
        return undefined;
      }
      case 'publish': {
        const members = this.rooms.get(cmd.room);
        if (!members || members.size === 0) return undefined;
        const frame = frameText(encodeServerMessage(cmd.msg)); // encoded and framed once
        return this.fanOut(members.values(), frame, cmd.msg.type === 'chat');
      }
    }
  }

  private fanOut(members: Iterator<ClientPump>, frame: Buffer, chat: boolean): Promise<void> | undefined {
    for (let next = members.next(); !next.done; next = members.next()) {
      const client = next.value;
      if (client.offer(frame, chat, this.batches)) {
        this.markDirty(client);
        if (client.depth * 2 >= this.options.queue) this.urgent = true;
        continue;
      }
      switch (this.options.onFull) {
        case 'block': {
          // Wait for this one client, then retry it and go on with the rest.
          const rest: ClientPump[] = [client];
          for (let r = members.next(); !r.done; r = members.next()) rest.push(r.value);
          return client.whenRoom().then(() => this.fanOut(rest.values(), frame, chat));
        }
        case 'drop':
          if (chat) {
            this.counters.drops++;
            client.noteDrop();
          }
          break;
        case 'kick':
          this.kick(client, chat);
          break;
      }
    }
    return undefined;
  }

  private kick(client: ClientPump, chat: boolean): void {
    this.counters.kicks++;
    this.leave(client);
    // What was queued for it, and this message, will never be delivered.
    this.counters.drops += client.close() + (chat ? 1 : 0);
    client.conn.ws.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: queue full');
  }

  private join(client: ClientPump, room: string): void {
    this.leave(client);
    client.moved();
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(client);
    client.room = room;
  }

  private leave(client: ClientPump): void {
    if (client.room === null) return;
    const members = this.rooms.get(client.room);
    members?.delete(client);
    if (members && members.size === 0) this.rooms.delete(client.room);
    client.room = null;
  }

  private markDirty(client: ClientPump): void {
    if (client.dirty) return;
    client.dirty = true;
    this.dirty.push(client);
  }

  /** Starts a sweep now if the last one has rested long enough or a queue is half full, else when it has rested. */
  private requestSweep(): void {
    if (this.dirty.length === 0 || this.stopped || this.sweeping) return; // (a sweep under way goes on by itself)
    const wait = this.urgent ? 0 : this.nextSweepAt - performance.now();
    if (wait > 0) {
      this.restTimer ??= setTimeout(() => {
        this.restTimer = null;
        this.startSweep();
      }, wait);
      return;
    }
    this.startSweep();
  }

  /** A sweep is under way: it has clients left to write. */
  private get sweeping(): boolean {
    return this.sweepAt < this.sweep.length;
  }

  /** Takes every client with frames waiting into a new sweep, unless one is under way, and writes its first slice. */
  private startSweep(): void {
    if (this.sweeping || this.dirty.length === 0 || this.stopped) return;
    if (this.restTimer) clearTimeout(this.restTimer);
    this.restTimer = null;
    this.sweep = this.dirty;
    this.sweepAt = 0;
    this.dirty = [];
    this.urgent = false;
    this.sweepStartedAt = performance.now();
    this.writeSlice();
  }

  /**
   * Writes the sweep's next clients, one socket write each, for flushSliceMs at most, then lets
   * the event loop read before the next slice. Clients of one slice share concatenations.
   */
  private writeSlice(): void {
    this.sliceScheduled = null;
    if (this.stopped) return;
    const sweep = this.sweep;
    const sliceMs = this.options.flushSliceMs;
    const started = performance.now();
    while (this.sweepAt < sweep.length) {
      const client = sweep[this.sweepAt++] as ClientPump;
      client.dirty = false;
      client.flush(this.batches);
      if (sliceMs > 0 && performance.now() - started >= sliceMs) break;
    }
    this.batches = new Map();
    if (this.sweeping) {
      this.sliceScheduled = setImmediate(() => this.writeSlice());
      return;
    }
    const ended = performance.now();
    this.sweep = [];
    this.sweepAt = 0;
    this.nextSweepAt = ended + Math.min((ended - this.sweepStartedAt) * this.options.flushPacing, this.options.flushRestMaxMs);
    this.requestSweep();
  }
}
