// One client of the v3 hub: a bounded queue of pre-framed messages and the writer pump that
// drains it. The pump is the only code that writes to this client's socket (ws still writes
// its own ping and close frames, each a whole frame, so nothing interleaves).
// The queue is, in order, the frames of its own (`frames`: replies, replays, what it was owed of
// a room it left) and then, while it is attached to its room, the room's log from its cursor on
// (room.ts, which alone moves the cursor). A detached client's queue is all its own: the hub
// offers it each message.
import type { Socket } from 'node:net';
import { encodeServerMessage, frameText } from '../protocol.ts';
import { isOpen, type Connection, type ServerCounters } from '../strategy.ts';
import type { Member, Room, SharedBatches } from './room.ts';

/**
 * Where a socket's listeners find their pump: one pair of listener functions serves every client.
 * Both are added only when first needed (a write the kernel did not take whole, a hub waiting for
 * room), so an idle or keeping-up client costs neither the listeners nor the property: at 20k
 * idle connections every field of every socket counts in server memory.
 */
const PUMP = Symbol('v3 client pump');
type PumpedSocket = Socket & { [PUMP]?: ClientPump };

function onDrain(this: PumpedSocket): void {
  this[PUMP]?.drained();
}

/** A socket that dies frees a hub that is waiting on it (block), before unregister arrives. */
function onSocketClose(this: PumpedSocket): void {
  this[PUMP]?.close();
}

export class ClientPump implements Member {
  // The room's to write (room.ts): where this client is, and its place in the room's log.
  room: Room | null = null;
  attached = false;
  cursor = 0;
  slot = 0;
  /** In the sweep under way and not yet written, or in the list for the next (write-scheduler.ts's to write). */
  scheduled = false;
  /** Chat messages dropped for this client since it was last told, and in all. */
  private dropsUntold = 0;
  private dropsTotal = 0;
  /** Its own frames, written before what it is owed of the log; a detached client's whole queue. */
  private frames: Buffer[] = [];
  /** How many of `frames` are chat messages (the rest are control frames). */
  private chatsQueued = 0;
  private closed = false;
  /** Who waits for room in the queue (the hub under `block`); made when first needed. */
  private waiters: Array<() => void> | null = null;
  /** The socket's drain and close listeners are on (see PUMP). */
  private listening = false;

  constructor(
    readonly conn: Connection,
    /** Messages the queue holds before the on-full policy applies. */
    private readonly capacity: number,
    private readonly counters: ServerCounters,
  ) {}

  /** From the first backpressure on, the socket tells this pump when it drains or dies. */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    const socket = this.conn.socket as PumpedSocket;
    socket[PUMP] = this;
    socket.on('drain', onDrain);
    socket.on('close', onSocketClose);
  }

  /** The kernel took what the socket held: write what queued meanwhile. */
  drained(): void {
    this.flush();
    if (this.hasRoom()) this.wake();
  }

  /** Frames queued: its own, and (attached) the room's log from its cursor on. */
  get depth(): number {
    return this.attached ? this.frames.length + (this.room as Room).end - this.cursor : this.frames.length;
  }

  get ownFrames(): number {
    return this.frames.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  hasRoom(): boolean {
    return this.closed || this.depth < this.capacity;
  }

  /** Frames of its room's log given to it as its own (room.ts), after those it has. */
  own(frames: Buffer[], chats: number): void {
    for (const f of frames) this.frames.push(f);
    this.chatsQueued += chats;
  }

  /**
   * Queues one frame of its own: each message, for a detached client (Room.detach); a reply or a
   * replay, for any client. When the queue is full the pump first tries to hand it to the socket;
   * false means the queue is full and the socket is not taking more: the policy decides.
   */
  offer(frame: Buffer, chat: boolean, shared?: SharedBatches): boolean {
    if (this.closed) return true; // leaving: nothing to deliver, nothing to count
    if (this.depth >= this.capacity) {
      this.flush(shared);
      if (this.depth >= this.capacity) return false;
    }
    const room = this.attached ? (this.room as Room) : null;
    room?.giveOwed(this); // (a frame of its own goes after what it is owed of the log)
    this.frames.push(frame);
    if (chat) this.chatsQueued++;
    room?.grew(this);
    return true;
  }

  /** Counts a chat message the hub dropped for this client; it is told once it catches up. */
  noteDrop(): void {
    this.dropsUntold++;
    this.dropsTotal++;
  }

  /**
   * Writes everything queued in ONE socket write, unless the socket is still draining the
   * last one. One write per client per sweep, not one per message, is what lets v3 fan out
   * far more deliveries per second than v1 and v2 (docs/results.md, Capacity).
   */
  flush(shared?: SharedBatches): void {
    const socket = this.conn.socket;
    // Still holding a full buffer from the last write: the kernel is not taking more (a slow reader).
    // (writableNeedDrain would also be true right after a write the kernel took whole, until the next tick.)
    // Once ws has sent a close frame (CLOSING) no data frame may follow it (RFC 6455 §5.5.1).
    if (this.closed || this.depth === 0 || !socket.writable || !isOpen(this.conn)) return;
    if (socket.writableLength >= socket.writableHighWaterMark) return this.listen(); // (ws's own ping may have filled it)
    let batch: Buffer;
    let frames: number;
    let chats: number;
    if (this.frames.length === 0 && this.dropsUntold === 0) {
      // Attached, nothing of its own: a run of the room's log, the same bytes for every member at this cursor.
      const room = this.room as Room;
      frames = this.depth;
      chats = room.chatsOwed(this);
      batch = room.take(this, shared);
    } else {
      if (this.attached) (this.room as Room).giveOwed(this);
      if (this.dropsUntold > 0) {
        this.frames.push(frameText(encodeServerMessage({ type: 'dropped', count: this.dropsUntold, total: this.dropsTotal })));
        this.dropsUntold = 0;
      }
      const own = this.frames;
      frames = own.length;
      chats = this.chatsQueued;
      batch = frames === 1 ? (own[0] as Buffer) : Buffer.concat(own);
      this.frames = [];
      this.chatsQueued = 0;
    }
    if (!socket.write(batch)) this.listen();
    this.counters.deliveries += chats;
    this.counters.controlFrames += frames - chats;
    this.counters.writes++;
  }

  /** Resolves when the queue has room again or the client is gone. */
  whenRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    this.listen();
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  /** Stops the pump; returns how many chat messages were still queued (now undeliverable). */
  close(): number {
    if (this.closed) return 0;
    const chats = this.chatsQueued + (this.attached ? (this.room as Room).release(this) : 0);
    this.closed = true;
    this.frames = [];
    this.chatsQueued = 0;
    this.wake();
    return chats;
  }

  private wake(): void {
    const waiters = this.waiters;
    if (!waiters) return;
    this.waiters = null;
    for (const w of waiters) w();
  }
}
