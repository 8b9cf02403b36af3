// One client of the v3 hub: a bounded queue of pre-framed messages and the writer pump that
// drains it. The pump is the only code that writes to this client's socket (ws still writes
// its own ping and close frames, each a whole frame, so nothing interleaves).
// The queue is, in order, the frames of its own (`frames`: replies, replays, what it was owed of
// a room it left) and then, while it is attached to its room, the room's log from its cursor on
// (room-log.ts). A detached client's queue is all its own: the hub offers it each message.
import type { Socket } from 'node:net';
import { encodeServerMessage, frameText } from '../protocol.ts';
import { isOpen, type Connection, type ServerCounters } from '../strategy.ts';
import type { Room } from './room-log.ts';

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

/**
 * Concatenations shared by the writes of one slice of a sweep (or of queues flushed early for
 * being full), by first frame and frame count. An attached client with no frames of its own is
 * owed a contiguous run of its room's log; two such runs with the same first frame and the same
 * length are the same bytes, so in a room of N one concatenation serves every member instead of
 * N copies. A queue with frames of its own is never shared.
 */
export type SharedBatches = Map<Buffer, Map<number, Buffer>>;

export class ClientPump {
  room: Room | null = null;
  /** Its index in its room's attached or detached members. */
  slot = 0;
  /** Attached: the seq of the first message of its room's log it has not been written. */
  cursor = 0;
  /** In the hub's sweep under way, not yet written, or in its list for the next sweep. */
  dirty = false;
  /** Chat messages dropped for this client since it was last told, and in all. */
  private dropsUntold = 0;
  private dropsTotal = 0;
  /** Its own frames, written before what it is owed of the log; a detached client's whole queue. */
  private frames: Buffer[] = [];
  /** How many of `frames` are chat messages (the rest are control frames). */
  private chatsQueued = 0;
  private attached = false;
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

  /** Attached: the seq its queue would start at if its own frames were in the log (the room's `low`). */
  get start(): number {
    return this.cursor - this.frames.length;
  }

  get isAttached(): boolean {
    return this.attached;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  hasRoom(): boolean {
    return this.closed || this.depth < this.capacity;
  }

  /** The room made it an attached member (Room.attach). */
  attachedTo(room: Room, cursor: number): void {
    this.room = room;
    this.cursor = cursor;
    this.attached = true;
  }

  /** The room detached it, or it left: what it was owed of the log becomes frames of its own. */
  detached(): void {
    if (this.attached) this.takeOwed();
    this.attached = false;
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
    if (this.attached) this.takeOwed(); // (a frame of its own goes after what it is owed of the log)
    this.frames.push(frame);
    if (chat) this.chatsQueued++;
    if (this.attached) (this.room as Room).holds(this.start);
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
      const end = room.end;
      frames = end - this.cursor;
      chats = room.chatsFrom(this.cursor);
      batch = frames === 1 ? room.frame(this.cursor) : shared ? joinShared(shared, room, this.cursor, frames) : Buffer.concat(room.frames(this.cursor));
      this.cursor = end;
    } else {
      if (this.attached) this.takeOwed();
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
    const chats = this.chatsQueued + (this.attached ? (this.room as Room).chatsFrom(this.cursor) : 0);
    this.closed = true;
    this.frames = [];
    this.chatsQueued = 0;
    if (this.attached) this.cursor = (this.room as Room).end;
    this.wake();
    return chats;
  }

  /** Attached: copies what it is owed of the log into its own frames, after those it has. */
  private takeOwed(): void {
    const room = this.room as Room;
    const end = room.end;
    if (this.cursor < end) {
      for (const f of room.frames(this.cursor)) this.frames.push(f);
      this.chatsQueued += room.chatsFrom(this.cursor);
      this.cursor = end;
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    if (!waiters) return;
    this.waiters = null;
    for (const w of waiters) w();
  }
}

function joinShared(shared: SharedBatches, room: Room, from: number, count: number): Buffer {
  const first = room.frame(from);
  let byLength = shared.get(first);
  if (!byLength) shared.set(first, (byLength = new Map()));
  let joined = byLength.get(count);
  if (!joined) byLength.set(count, (joined = Buffer.concat(room.frames(from))));
  return joined;
}
