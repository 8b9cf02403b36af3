// v3: the hub of the article (and of gorilla/websocket's chat example).
//
// Who writes to a socket: each client's writer pump (client-pump.ts), and nothing else. The hub
// loop owns rooms and membership and takes register / move / unregister / publish / send from one
// inbox; a broadcast is encoded and framed once and appended to its room's log, which is the
// queue of every member that keeps up (each holds a cursor into it: room.ts, the fan-out's
// mechanics), so a fan-out costs no more for 10,000 members than for 10. A member that falls a
// whole queue behind is detached and offered each message on its own until it has caught up;
// that offer is where this file's policy applies (offer, below).
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
import { Room } from './room.ts';
import { WriteScheduler, type FlushOptions } from './write-scheduler.ts';

export const ON_FULL_POLICIES = ['block', 'drop', 'kick'] as const;
export type OnFullPolicy = (typeof ON_FULL_POLICIES)[number];

/** The flush options (pacing, rest, slice) are write-scheduler.ts's; their defaults, version-options.ts's. */
export interface HubOptions extends FlushOptions {
  /** Messages each client's queue holds before `onFull` applies. Default 128 (the article's bufferSize). */
  queue: number;
  /** What the hub does when a client's queue is full. Default 'drop'. */
  onFull: OnFullPolicy;
}

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
  /** Each room's members and log (room.ts). */
  private readonly rooms = new Map<string, Room>();
  private inbox: Command[] = [];
  private readonly writer: WriteScheduler;
  private scheduled = false;
  private running = false;
  private stopped = false;

  constructor(
    private readonly counters: ServerCounters,
    private readonly options: HubOptions,
  ) {
    this.describe = `v3 · on-full ${options.onFull} · queue ${options.queue}`;
    this.writer = new WriteScheduler(options, options.queue);
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
        if (client.offer(cmd.frame, cmd.chat)) this.writer.schedule(client);
        else this.drop(client, cmd.chat); // a replay (v4) larger than the queue, to a socket not taking more
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
   * One message to a room, where every delivery starts: appended once to the room's log, which is
   * every attached member's queue; only the detached members are offered it one by one.
   */
  private broadcast(room: Room, frame: Buffer, chat: boolean): Promise<void> | undefined {
    const { offer, hurry } = room.append(frame, chat, this.writer.batches);
    this.writer.scheduleRoom(room, hurry);
    return offer.length > 0 ? this.offer(offer as ClientPump[], 0, frame, chat) : undefined;
  }

  /**
   * The policy: offers `frame` to `members` from `from` on, and decides for each whose queue is
   * full and whose socket takes nothing more. While `block` waits the hub applies nothing else.
   */
  private offer(members: readonly ClientPump[], from: number, frame: Buffer, chat: boolean): Promise<void> | undefined {
    for (let i = from; i < members.length; i++) {
      const client = members[i] as ClientPump;
      if (client.offer(frame, chat, this.writer.batches)) {
        this.writer.schedule(client);
        continue;
      }
      switch (this.options.onFull) {
        case 'block': // wait for this one client, then retry it and go on with the rest
          return client.whenRoom().then(() => this.offer(members, i, frame, chat));
        case 'drop': // this client loses this message, and is told how many it lost once it catches up
          this.drop(client, chat);
          break;
        case 'kick': // this client is closed; what was queued for it, and this message, are lost
          this.kick(client, chat);
          break;
      }
    }
    return undefined;
  }

  private drop(client: ClientPump, chat: boolean): void {
    if (!chat) return; // (a control frame is not a delivery)
    this.counters.drops++;
    client.noteDrop();
  }

  private kick(client: ClientPump, chat: boolean): void {
    this.counters.kicks++;
    this.leave(client);
    this.counters.drops += client.close() + (chat ? 1 : 0);
    client.conn.ws.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: queue full');
  }

  private join(client: ClientPump, room: string): void {
    this.leave(client);
    let r = this.rooms.get(room);
    if (!r) {
      r = new Room(room, this.options.queue, this.writer.hurryAt);
      this.rooms.set(room, r);
    }
    r.join(client);
  }

  private leave(client: ClientPump): void {
    const room = client.room;
    if (room === null) return;
    room.leave(client);
    if (room.size === 0) this.rooms.delete(room.name);
  }
}
