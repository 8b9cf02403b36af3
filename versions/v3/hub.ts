// v3: the hub of the article (and of gorilla/websocket's chat example).
//
// Who writes to a socket: each client's writer pump (client-pump.ts), and nothing else. The hub
// loop owns rooms and membership and takes register / move / unregister / publish / send from one
// inbox; a broadcast is encoded and framed once and appended to its room's log, which is the
// queue of every member that keeps up (each holds a cursor into it: room-log.ts), so a fan-out
// costs no more for 10,000 members than for 10. A member that falls a whole queue behind is
// detached and offered each message on its own until it has caught up.
// Each queue holds at most `queue` messages; when it is full and the socket is not taking more:
//  - block: the hub waits for that one client, so every room stalls with it. This is the
//    article's v3 bug (its web client "could not send" under load); slow-consumer shows it.
//  - drop (default, the article's v3.1 fix): the message is dropped for that client only and
//    counted (chat_drops_total); the client is told how many with a "dropped" frame.
//  - kick: the client is closed with 4008 (gorilla's choice); chat_kicks_total counts it.
// Memory is bounded by clients × queue. Heartbeat: yes, as gorilla's hub has, so peers that
// vanish without a FIN leave.
// Writes are batched: each client's whole queue in one socket write, in sliced and paced sweeps
// over the clients with frames waiting (write-scheduler.ts).
import { encodeServerMessage, frameText, CLOSE_CODES, type ServerMessage } from '../protocol.ts';
import type { Connection, ServerCounters, Strategy, StrategyStats } from '../strategy.ts';
import { ClientPump } from './client-pump.ts';
import { Room } from './room-log.ts';
import { WriteScheduler, type FlushOptions } from './write-scheduler.ts';

export const ON_FULL_POLICIES = ['block', 'drop', 'kick'] as const;
export type OnFullPolicy = (typeof ON_FULL_POLICIES)[number];

/** The flush options (pacing, rest, slice) are write-scheduler.ts's; their defaults, versions.ts's. */
export interface HubOptions extends FlushOptions {
  /** Messages each client's queue holds before `onFull` applies. Default 128 (the article's bufferSize). */
  queue: number;
  /** What the hub does when a client's queue is full. Default 'drop'. */
  onFull: OnFullPolicy;
}

/**
 * A queue this full ends the writer's rest (write-scheduler.ts). Three quarters, not half: at half,
 * 64 of the article's 128 was the most a write could carry, and past 1M deliveries/s to 1,000
 * clients that cap, not the load, set how often v3 wrote. A queue that fills anyway is written at
 * once if its socket takes it (ClientPump.offer), so no healthy client is dropped for it.
 */
const HURRY_AT = 0.75;

type Command =
  | { op: 'register'; conn: Connection; room: string; done: () => void }
  | { op: 'move'; conn: Connection; room: string; done: () => void }
  | { op: 'unregister'; conn: Connection; done: () => void }
  | { op: 'publish'; room: string; frame: Buffer; chat: boolean }
  | { op: 'send'; conn: Connection; frame: Buffer; chat: boolean };

export class Hub implements Strategy {
  readonly version = 'v3';
  readonly describe: string;
  readonly heartbeat = true;
  readonly limitsRate = true;
  private readonly clients = new Map<Connection, ClientPump>();
  /** Each room's members and log (room-log.ts). */
  private readonly rooms = new Map<string, Room>();
  private inbox: Command[] = [];
  private readonly writer: WriteScheduler;
  /** A queue this deep makes the next sweep start without resting (write-scheduler.ts). */
  private readonly hurryAt: number;
  private scheduled = false;
  private running = false;
  private stopped = false;

  constructor(
    private readonly counters: ServerCounters,
    private readonly options: HubOptions,
  ) {
    this.describe = `v3 · on-full ${options.onFull} · queue ${options.queue}`;
    this.writer = new WriteScheduler(options);
    this.hurryAt = Math.max(1, Math.ceil(options.queue * HURRY_AT));
  }

  add(conn: Connection): Promise<void> {
    return this.addTo(conn, conn.room);
  }

  /** Registers `conn` in `room`: v4 first holds a client where no one publishes, until it has caught up. */
  addTo(conn: Connection, room: string): Promise<void> {
    return new Promise((done) => this.submit({ op: 'register', conn, room, done }));
  }

  move(conn: Connection, room: string): Promise<void> {
    return new Promise((done) => this.submit({ op: 'move', conn, room, done }));
  }

  remove(conn: Connection): Promise<void> {
    return new Promise((done) => this.submit({ op: 'unregister', conn, done }));
  }

  publish(room: string, msg: ServerMessage): void {
    this.publishText(room, encodeServerMessage(msg), msg.type === 'chat');
  }

  /** A reply, or a direct message (queued, counted and dropped on full like a chat). */
  sendTo(conn: Connection, msg: ServerMessage): void {
    this.sendText(conn, encodeServerMessage(msg), msg.type === 'direct');
  }

  /** A message already encoded (v4 gets each one as JSON from its backplane); framed once here. */
  publishText(room: string, json: string, chat: boolean): void {
    this.submit({ op: 'publish', room, frame: frameText(json), chat });
  }

  /** One encoded message to one client: a reply, or (chat) a message replayed to it alone. */
  sendText(conn: Connection, json: string, chat: boolean): void {
    this.submit({ op: 'send', conn, frame: frameText(json), chat });
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
    this.writer.close();
    for (const c of this.clients.values()) c.close();
  }

  private submit(cmd: Command): void {
    this.inbox.push(cmd);
    if (!this.running) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    // Everything submitted in one callback (every frame of one socket read) is handled in one go,
    // right after it: not a turn of the event loop later, where a slice of the sweep under way
    // would run first and a message that could have joined it would wait for the next sweep.
    queueMicrotask(() => void this.run());
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
            this.writer.startSweep(); // the other clients' pumps keep running while the hub waits
            await wait;
          }
        }
        this.writer.endTurn();
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
        this.join(client, cmd.room);
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
          client.close(); // first: what it was owed of the log is not copied only to be thrown away
          this.leave(client);
          this.clients.delete(cmd.conn);
        }
        cmd.done();
        return undefined;
      }
      case 'send': {
        const client = this.clients.get(cmd.conn);
        if (!client) return undefined;
        if (client.offer(cmd.frame, cmd.chat)) this.writer.markDirty(client);
        else if (cmd.chat) {
          // A replay (v4) larger than the queue, to a socket not taking more: dropped and told, never silently.
          this.counters.drops++;
          client.noteDrop();
        }
        return undefined;
      }
      case 'publish': {
        const room = this.rooms.get(cmd.room);
        if (!room) return undefined;
        return this.broadcast(room, cmd.frame, cmd.chat); // encoded and framed once
      }
    }
  }

  /**
   * One message to a room, where every delivery starts. Appended once to the room's log, which is
   * every attached member's queue; only detached members are visited one by one, and the attached
   * ones only when one of them may be three quarters of a queue behind (catchUp).
   */
  private broadcast(room: Room, frame: Buffer, chat: boolean): Promise<void> | undefined {
    if (room.end + 1 - room.low >= this.hurryAt) this.catchUp(room);
    room.append(frame, chat);
    this.writer.markRoom(room);
    if (room.attached.length > 0 && room.end - room.low >= this.hurryAt) this.writer.hurry();
    return room.detached.length > 0 ? this.fanOut(room, 0, frame, chat) : undefined;
  }

  /**
   * Some attached queue may be three quarters full: finds out which, and makes the room's `low`
   * exact. A queue already full (the message about to be appended would be one too many) is
   * written on the spot if its socket takes it, as a detached client's is; if not, the client is
   * detached, and the message is offered to it alone, where the policy applies.
   */
  private catchUp(room: Room): void {
    const end = room.end;
    const capacity = this.options.queue;
    let low = end;
    for (let i = 0; i < room.attached.length; i++) {
      const client = room.attached[i] as ClientPump;
      if (end - client.start >= capacity) {
        client.flush(this.writer.batches);
        if (end - client.start >= capacity) {
          room.detach(client);
          this.writer.markDirty(client);
          i--; // the slot holds the last attached member now
          continue;
        }
      }
      if (client.start < low) low = client.start;
    }
    room.low = low;
  }

  /**
   * Offers `frame` (already the last of the room's log) to the detached members from `from` on.
   * While `block` waits the hub applies nothing else, so the room is the same when it goes on;
   * a kick or a member attached again moves the last detached member into its slot, which is
   * then offered the frame in its turn.
   */
  private fanOut(room: Room, from: number, frame: Buffer, chat: boolean): Promise<void> | undefined {
    const members = room.detached;
    const hurryAt = this.hurryAt;
    for (let i = from; i < members.length; i++) {
      const client = members[i] as ClientPump;
      if (client.depth === 0 && !client.isClosed && room.reattach(client, frame)) {
        i--; // written all it had: it keeps up again and reads this message from the log; its slot holds another
        continue;
      }
      if (client.offer(frame, chat, this.writer.batches)) {
        this.writer.markDirty(client);
        if (client.depth >= hurryAt) this.writer.hurry();
        continue;
      }
      switch (this.options.onFull) {
        case 'block':
          // Wait for this one client, then retry it and go on with the rest.
          return client.whenRoom().then(() => this.fanOut(room, i, frame, chat));
        case 'drop':
          if (chat) {
            this.counters.drops++;
            client.noteDrop();
          }
          break;
        case 'kick':
          this.kick(client, chat);
          i--; // the slot holds the last detached member now (or the room ended here)
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
    let r = this.rooms.get(room);
    if (!r) {
      r = new Room(room);
      this.rooms.set(room, r);
    }
    r.attach(client, r.end);
  }

  private leave(client: ClientPump): void {
    const room = client.room;
    if (room === null) return;
    room.leave(client);
    if (room.size === 0) this.rooms.delete(room.name);
    client.room = null;
  }
}
