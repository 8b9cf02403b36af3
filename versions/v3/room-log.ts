// One room of the v3 hub: its members and the log of what it published that some member has
// still to be written.
//
// A broadcast is appended to the room's log once; each member that keeps up (attached) holds
// only a cursor into the log, and its queue is the log from its cursor on (plus any frames of its
// own: ClientPump). So a fan-out costs the same for 10 members as for 10,000, and the per-member
// work is one write per sweep, as in the machine's ceiling (versions/ceiling.ts). The bound of
// each queue is unchanged: a member whose queue reaches `queue` frames and whose socket does not
// take them is detached (its part of the log copied into a queue of its own) and from then on
// offered each message one by one, where the on-full policy applies as it always did. A
// detached member whose queue has emptied is attached again at the next message.
//
// The log keeps what the least advanced attached member has not been written; it is trimmed
// after every sweep that wrote the room, so it holds about one sweep's messages, and never more
// than `queue` behind the newest (further behind, a member is detached).
import type { ClientPump } from './client-pump.ts';

export class Room {
  /** Members whose queue is (their own frames and) the log from their cursor on; each knows its slot. */
  readonly attached: ClientPump[] = [];
  /** Members with a queue of their own, offered each message by the hub; each knows its slot. */
  readonly detached: ClientPump[] = [];
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
  low = 0;
  /** In the write scheduler's list for the next sweep. */
  dirty = false;

  constructor(readonly name: string) {}

  /** The seq the next message will have. */
  get end(): number {
    return this.base + this.log.length;
  }

  /** Appends one framed message (the same bytes for every member). */
  append(frame: Buffer, chat: boolean): void {
    this.log.push(frame);
    this.chatsAt.push((this.chatsAt[this.chatsAt.length - 1] as number) + (chat ? 1 : 0));
  }

  /** The frame of seq `seq` (which the log holds). */
  frame(seq: number): Buffer {
    return this.log[seq - this.base] as Buffer;
  }

  /** The frames of seqs from..end, in a new array. */
  frames(from: number): Buffer[] {
    return this.log.slice(from - this.base);
  }

  /** Chat messages among seqs from..end. */
  chatsFrom(from: number): number {
    return (this.chatsAt[this.log.length] as number) - (this.chatsAt[from - this.base] as number);
  }

  get size(): number {
    return this.attached.length + this.detached.length;
  }

  /** Adds `client` as attached, owed what is published from `cursor` on (a seq the log holds, or end). */
  attach(client: ClientPump, cursor: number): void {
    client.attachedTo(this, cursor);
    client.slot = this.attached.length;
    this.attached.push(client);
    this.holds(client.start);
  }

  /** An attached queue now starts at seq `start` (its own frames counted before its cursor): `low` goes no higher. */
  holds(start: number): void {
    if (start < this.low) this.low = start;
  }

  /** Gives `client` its part of the log as a queue of its own and moves it to the detached members. */
  detach(client: ClientPump): void {
    remove(this.attached, client);
    client.detached();
    client.slot = this.detached.length;
    this.detached.push(client);
  }

  /**
   * A detached member whose queue has emptied keeps up again: attached, owed the room's last
   * message on, if that is still `frame` (a hub that waited under `block` may find the log
   * trimmed past it; the member is then offered the frame as a detached one, and tried again next time).
   */
  reattach(client: ClientPump, frame: Buffer): boolean {
    if (this.log[this.log.length - 1] !== frame) return false;
    remove(this.detached, client);
    this.attach(client, this.end - 1);
    return true;
  }

  /** Takes `client` out of the room; what it was owed of the log is copied into its own queue first. */
  leave(client: ClientPump): void {
    if (client.isAttached) {
      remove(this.attached, client);
      client.detached();
    } else remove(this.detached, client);
  }

  /**
   * Forgets what every attached member has been written, and makes `low` exact again. After a
   * sweep, so O(members) per sweep, not per message.
   */
  trim(): void {
    const end = this.end;
    let written = end;
    let low = end;
    for (const c of this.attached) {
      if (c.cursor < written) written = c.cursor;
      const start = c.start;
      if (start < low) low = start;
    }
    this.low = low;
    const n = written - this.base;
    if (n <= 0) return;
    this.log = n === this.log.length ? [] : this.log.slice(n);
    this.chatsAt = this.chatsAt.slice(n);
    this.base = written;
  }
}

/** Swap-remove: the last member takes the leaver's slot (O(1); the order of a fan-out is no promise). */
function remove(members: ClientPump[], client: ClientPump): void {
  const last = members.pop() as ClientPump;
  if (last !== client) {
    members[client.slot] = last;
    last.slot = client.slot;
  }
}
