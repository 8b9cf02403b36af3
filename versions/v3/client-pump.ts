// One client of the v3 hub: a bounded queue of pre-framed messages and the writer pump that
// drains it. The pump is the only code that writes to this client's socket (ws still writes
// its own ping and close frames, each a whole frame, so nothing interleaves).
import type { Socket } from 'node:net';
import { encodeServerMessage, frameText } from '../protocol.ts';
import { isOpen, type Connection, type ServerCounters } from '../strategy.ts';

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
 * being full), by first frame and frame count. A queue that has only room frames, taken in one
 * room with nothing dropped since its last flush, holds a contiguous run of what that room
 * published; two such runs with the same first frame and the same length are the same bytes, so
 * in a room of N one concatenation serves every member instead of N copies. A queue that moved
 * rooms, took a frame of its own or lost one is never shared (`own`), even where its length alone
 * would tell it apart.
 */
export type SharedBatches = Map<Buffer, Map<number, Buffer>>;

export class ClientPump {
  room: string | null = null;
  /** Its index in the room's member array (the hub's). */
  slot = 0;
  /** In the hub's sweep under way, not yet written, or in its list for the next sweep. */
  dirty = false;
  /** Chat messages dropped for this client since it was last told, and in all. */
  private dropsUntold = 0;
  private dropsTotal = 0;
  private frames: Buffer[] = [];
  /** How many of `frames` are chat messages (the rest are control frames). */
  private chatsQueued = 0;
  /** Since the last flush the queue took a frame of its own, a drop or a room change: its batch is not shared. */
  private own = false;
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

  get depth(): number {
    return this.frames.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  hasRoom(): boolean {
    return this.closed || this.frames.length < this.capacity;
  }

  /**
   * Queues one frame. When the queue is full the pump first tries to hand it to the socket;
   * false means the queue is full and the socket is not taking more: the policy decides.
   */
  offer(frame: Buffer, chat: boolean, shared?: SharedBatches): boolean {
    if (this.closed) return true; // leaving: nothing to deliver, nothing to count
    if (this.frames.length >= this.capacity) {
      this.flush(shared);
      if (this.frames.length >= this.capacity) return false;
    }
    this.frames.push(frame);
    if (chat) this.chatsQueued++;
    return true;
  }

  /** Queues a frame for this client alone (a reply, an error, a replayed chat); false as for offer. */
  offerOwn(frame: Buffer, chat = false): boolean {
    const queued = this.offer(frame, chat); // (a full queue is flushed first, which clears `own`)
    if (queued) this.own = true;
    return queued;
  }

  /** The hub moved this client to another room: what is queued now mixes two rooms' runs. */
  moved(): void {
    if (this.frames.length > 0) this.own = true;
  }

  /** Counts a chat message the hub dropped for this client; it is told once it catches up. */
  noteDrop(): void {
    this.dropsUntold++;
    this.dropsTotal++;
    this.own = true;
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
    if (this.closed || this.frames.length === 0 || !socket.writable || !isOpen(this.conn)) return;
    if (socket.writableLength >= socket.writableHighWaterMark) return this.listen(); // (ws's own ping may have filled it)
    if (this.dropsUntold > 0) {
      this.frames.push(frameText(encodeServerMessage({ type: 'dropped', count: this.dropsUntold, total: this.dropsTotal })));
      this.dropsUntold = 0;
    }
    const frames = this.frames;
    const chats = this.chatsQueued;
    const own = this.own;
    this.frames = [];
    this.chatsQueued = 0;
    this.own = false;
    if (!socket.write(frames.length === 1 ? (frames[0] as Buffer) : own || !shared ? Buffer.concat(frames) : joinShared(shared, frames))) this.listen();
    this.counters.deliveries += chats;
    this.counters.controlFrames += frames.length - chats;
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
    this.closed = true;
    const chats = this.chatsQueued;
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

function joinShared(shared: SharedBatches, frames: Buffer[]): Buffer {
  const first = frames[0] as Buffer;
  let byLength = shared.get(first);
  if (!byLength) shared.set(first, (byLength = new Map()));
  let joined = byLength.get(frames.length);
  if (!joined) byLength.set(frames.length, (joined = Buffer.concat(frames)));
  return joined;
}
