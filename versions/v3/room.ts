// One room of the v3 hub: its members, the log of what it published, and every member's place
// in that log. The Room owns the fan-out's mechanics; the hub (hub.ts) owns the policy.
//
// A broadcast is appended to the room's log once. Each member that keeps up (attached) holds only
// a cursor into the log: its queue is the log from its cursor on, after any frames of its own
// (ClientPump). So a fan-out costs the same for 10 members as for 10,000, and the per-member work
// is one write per sweep, as in the machine's ceiling (versions/ceiling.ts). Each queue stays
// bounded: a member whose queue reaches `capacity` frames and whose socket does not take them is
// detached (its part of the log copied into a queue of its own), and from then on the hub offers
// it each message one by one, where the on-full policy applies. A detached member whose queue
// has emptied is attached again at the next message.
//
// The log keeps what the least advanced attached member has not been written; it is trimmed after
// every sweep that wrote the room, so it holds about one sweep's messages, and never more than
// `capacity` behind the newest.
//
// Only this file writes a member's cursor, slot, room and attached mark.

/**
 * Concatenations shared by the writes of one slice of a sweep (or of queues flushed early for
 * being full), by first frame and frame count. An attached member with no frames of its own is
 * owed a contiguous run of its room's log; two such runs with the same first frame and the same
 * length are the same bytes, so in a room of N one concatenation serves every member instead of
 * N copies. A queue with frames of its own is never shared.
 */
export type SharedBatches = Map<Buffer, Map<number, Buffer>>;

/** What the room needs of a member (client-pump.ts's ClientPump); the fields marked are the room's to write. */
export interface Member {
  /** The room's: the room it is in, or null. */
  room: Room | null;
  /** The room's: its queue ends with the room's log from its cursor on. */
  attached: boolean;
  /** The room's: attached, the seq of the first message of the log it has not been written. */
  cursor: number;
  /** The room's: its index in the room's attached or detached members. */
  slot: number;
  /** Frames of its own, queued before what it is owed of the log. */
  readonly ownFrames: number;
  readonly isClosed: boolean;
  /** Frames queued in all. */
  readonly depth: number;
  /** Writes its whole queue now if its socket takes it. */
  flush(shared?: SharedBatches): void;
  /** Takes frames of the log (and how many of them are chats) as frames of its own, after those it has. */
  own(frames: Buffer[], chats: number): void;
}

/** What one append leaves to the hub. */
export interface Appended {
  /** The detached members, to be offered the message one by one (where the policy applies). */
  offer: readonly Member[];
  /** An attached queue may be `hurryAt` frames deep: the writer should not rest before its next sweep. */
  hurry: boolean;
}

const NONE: readonly Member[] = [];

export class Room {
  /** Members whose queue is (their own frames and) the log from their cursor on. */
  readonly attached: Member[] = [];
  /** Members with a queue of their own, offered each message by the hub. */
  readonly detached: Member[] = [];
  /** The frames from seq `base` on, framed once; log[i] is seq base + i. */
  private log: Buffer[] = [];
  /** chatsAt[i]: chat messages among the room's seqs below base + i (so chatsAt has log.length + 1 entries). */
  private chatsAt: number[] = [0];
  private base = 0;
  /**
   * At most the least start (cursor minus frames of its own) of any attached member: the oldest
   * frame any attached queue holds. Exact after a sweep or a catch-up, lower (never higher) in
   * between, so `end - low` never misses a queue growing full.
   */
  private low = 0;
  /** In the write scheduler's list for the next sweep (the scheduler's to write). */
  scheduled = false;

  constructor(
    readonly name: string,
    /** Frames a member's queue holds before it is detached. */
    private readonly capacity: number,
    /** A queue this deep asks the writer to hurry (write-scheduler.ts decides the depth). */
    private readonly hurryAt: number,
  ) {}

  /** The seq the next message will have. */
  get end(): number {
    return this.base + this.log.length;
  }

  get size(): number {
    return this.attached.length + this.detached.length;
  }

  /** Adds `member`, owed what is published from now on. */
  join(member: Member): void {
    member.room = this;
    this.attach(member, this.end);
  }

  /** Takes `member` out of the room; what it was owed of the log is copied into its own queue first. */
  leave(member: Member): void {
    if (member.attached) {
      remove(this.attached, member);
      this.giveOwed(member);
      member.attached = false;
    } else remove(this.detached, member);
    member.room = null;
  }

  /**
   * Appends one framed message (the same bytes for every member). First, if some attached queue
   * may be a hurry deep, finds out which (catchUp); after, attaches again every detached member
   * whose queue has emptied, which reads this message from the log.
   */
  append(frame: Buffer, chat: boolean, shared: SharedBatches): Appended {
    if (this.end + 1 - this.low >= this.hurryAt) this.catchUp(shared);
    this.log.push(frame);
    this.chatsAt.push((this.chatsAt[this.chatsAt.length - 1] as number) + (chat ? 1 : 0));
    const detached = this.detached;
    for (let i = 0; i < detached.length; i++) {
      const m = detached[i] as Member;
      if (m.depth > 0 || m.isClosed) continue;
      remove(detached, m);
      this.attach(m, this.end - 1);
      i--; // the slot holds the last detached member now
    }
    return {
      offer: detached.length > 0 ? detached.slice() : NONE,
      hurry: this.attached.length > 0 && this.end - this.low >= this.hurryAt,
    };
  }

  /**
   * An attached member's whole queue, when it has no frames of its own: the run of the log from
   * its cursor on, as one buffer (shared with every member at that cursor), and its cursor moved
   * past it.
   */
  take(member: Member, shared?: SharedBatches): Buffer {
    const at = member.cursor - this.base;
    const frames = this.log.length - at;
    member.cursor = this.end;
    return frames === 1 ? (this.log[at] as Buffer) : shared ? this.joinShared(shared, at, frames) : Buffer.concat(this.log.slice(at));
  }

  /** Chat messages among what an attached member is owed of the log. */
  chatsOwed(member: Member): number {
    return this.chatsFrom(member.cursor);
  }

  /** An attached member's part of the log becomes frames of its own (a frame of its own must go after it). */
  giveOwed(member: Member): void {
    const from = member.cursor;
    if (from >= this.end) return;
    member.own(this.log.slice(from - this.base), this.chatsFrom(from));
    member.cursor = this.end;
  }

  /** An attached member gained a frame of its own: its queue starts one earlier, and `low` goes no higher. */
  grew(member: Member): void {
    const start = startOf(member);
    if (start < this.low) this.low = start;
  }

  /** A closed member is owed nothing more; returns how many chat messages it was owed of the log. */
  release(member: Member): number {
    const chats = this.chatsFrom(member.cursor);
    member.cursor = this.end;
    return chats;
  }

  /**
   * Forgets what every attached member has been written, and makes `low` exact again. After a
   * sweep, so O(members) per sweep, not per message.
   */
  trim(): void {
    const end = this.end;
    let written = end;
    let low = end;
    for (const m of this.attached) {
      if (m.cursor < written) written = m.cursor;
      const start = startOf(m);
      if (start < low) low = start;
    }
    this.low = low;
    const n = written - this.base;
    if (n <= 0) return;
    this.log = n === this.log.length ? [] : this.log.slice(n);
    this.chatsAt = this.chatsAt.slice(n);
    this.base = written;
  }

  /**
   * Some attached queue may be a hurry deep: finds out which, and makes `low` exact. A queue
   * already full (the message about to be appended would be one too many) is written on the spot
   * if its socket takes it; if not, the member is detached, and the hub offers it the message
   * alone, where the policy applies.
   */
  private catchUp(shared: SharedBatches): void {
    const end = this.end;
    let low = end;
    for (let i = 0; i < this.attached.length; i++) {
      const m = this.attached[i] as Member;
      if (end - startOf(m) >= this.capacity) {
        m.flush(shared);
        if (end - startOf(m) >= this.capacity) {
          this.detach(m);
          i--; // the slot holds the last attached member now
          continue;
        }
      }
      const start = startOf(m);
      if (start < low) low = start;
    }
    this.low = low;
  }

  private attach(member: Member, cursor: number): void {
    member.attached = true;
    member.cursor = cursor;
    member.slot = this.attached.length;
    this.attached.push(member);
    this.grew(member);
  }

  private detach(member: Member): void {
    remove(this.attached, member);
    this.giveOwed(member);
    member.attached = false;
    member.slot = this.detached.length;
    this.detached.push(member);
  }

  /** Chat messages among seqs from..end. */
  private chatsFrom(from: number): number {
    return (this.chatsAt[this.log.length] as number) - (this.chatsAt[from - this.base] as number);
  }

  /** The log from index `at` on (`count` frames) as one buffer, made once per slice for every member at that place. */
  private joinShared(shared: SharedBatches, at: number, count: number): Buffer {
    const first = this.log[at] as Buffer;
    let byLength = shared.get(first);
    if (!byLength) shared.set(first, (byLength = new Map()));
    let joined = byLength.get(count);
    if (!joined) byLength.set(count, (joined = Buffer.concat(this.log.slice(at))));
    return joined;
  }
}

/** Where an attached member's queue starts, as a seq: its cursor, less the frames of its own queued before it. */
function startOf(m: Member): number {
  return m.cursor - m.ownFrames;
}

/** Swap-remove: the last member takes the leaver's slot (O(1); the order of a fan-out is no promise). */
function remove(members: Member[], member: Member): void {
  const last = members.pop() as Member;
  if (last !== member) {
    members[member.slot] = last;
    last.slot = member.slot;
  }
}
