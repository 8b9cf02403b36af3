// v3's room alone (versions/v3/room.ts), with members that only keep what the room gives them: the
// log, the cursors, who is detached and attached again, when the writer must hurry, the trim.
import { describe, expect, it } from 'vitest';
import { Room, type Member, type SharedBatches } from '../../../versions/v3/room.ts';

/** A member whose socket takes everything (or nothing, `stuck`): its writes are kept as frame lists. */
class FakeMember implements Member {
  room: Room | null = null;
  attached = false;
  cursor = 0;
  slot = 0;
  isClosed = false;
  stuck = false;
  own_: Buffer[] = [];
  ownChats = 0;
  readonly written: string[] = [];

  get ownFrames(): number {
    return this.own_.length;
  }

  get depth(): number {
    return this.own_.length + (this.attached && this.room ? this.room.end - this.cursor : 0);
  }

  own(frames: Buffer[], chats: number): void {
    this.own_.push(...frames);
    this.ownChats += chats;
  }

  flush(shared?: SharedBatches): void {
    if (this.stuck || this.depth === 0) return;
    const room = this.room as Room;
    if (this.own_.length === 0) this.written.push(room.take(this, shared).toString());
    else {
      if (this.attached) room.giveOwed(this);
      this.written.push(Buffer.concat(this.own_).toString());
      this.own_ = [];
      this.ownChats = 0;
    }
  }
}

const msg = (n: number): Buffer => Buffer.from(`m${n};`);

/** A room of capacity 4 (hurry at 3) and its members. */
function roomOf(n: number): { room: Room; members: FakeMember[]; shared: SharedBatches } {
  const room = new Room('r', 4, 3);
  const members = Array.from({ length: n }, () => new FakeMember());
  for (const m of members) room.join(m);
  return { room, members, shared: new Map() };
}

describe('v3 room', () => {
  it('appends a message once and owes it to every attached member through its cursor', () => {
    const { room, members, shared } = roomOf(3);
    expect(room.append(msg(1), true, shared)).toEqual({ offer: [], hurry: false });
    room.append(msg(2), true, shared);
    expect(members.map((m) => m.depth)).toEqual([2, 2, 2]);
    for (const m of members) m.flush(shared);
    expect(members.map((m) => m.written)).toEqual([['m1;m2;'], ['m1;m2;'], ['m1;m2;']]);
    // One concatenation served all three.
    expect([...shared.values()].map((byLength) => [...byLength.keys()])).toEqual([[2]]);
    room.trim();
    expect(room.append(msg(3), true, shared).hurry).toBe(false);
  });

  it('asks the writer to hurry once a queue may be three quarters full, and not before', () => {
    const { room, shared } = roomOf(2);
    expect(room.append(msg(1), true, shared).hurry).toBe(false);
    expect(room.append(msg(2), true, shared).hurry).toBe(false);
    expect(room.append(msg(3), true, shared).hurry).toBe(true);
  });

  it('writes a full queue on the spot if its socket takes it, and detaches it if not: the hub offers it the message alone', () => {
    const { room, members, shared } = roomOf(2);
    const [ok, stuck] = members as [FakeMember, FakeMember];
    stuck.stuck = true;
    for (let i = 1; i <= 4; i++) expect(room.append(msg(i), true, shared).offer).toEqual([]);
    // The fifth would be one too many for both: ok is written at once, stuck is detached.
    const fifth = room.append(msg(5), true, shared);
    expect(fifth.offer).toEqual([stuck]);
    expect(ok.written).toEqual(['m1;m2;m3;m4;']);
    expect(ok.depth).toBe(1); // m5, from the log
    expect([ok.attached, stuck.attached]).toEqual([true, false]);
    expect(stuck.own_.map(String)).toEqual(['m1;', 'm2;', 'm3;', 'm4;']); // its part of the log, now its own
    expect(stuck.ownChats).toBe(4);
  });

  it('attaches a detached member again at the next message once its queue has emptied', () => {
    const { room, members, shared } = roomOf(2);
    const [, slow] = members as [FakeMember, FakeMember];
    slow.stuck = true;
    for (let i = 1; i <= 5; i++) room.append(msg(i), true, shared);
    expect(slow.attached).toBe(false);
    slow.stuck = false;
    slow.flush(shared);
    expect(slow.written).toEqual(['m1;m2;m3;m4;']);
    const next = room.append(msg(6), true, shared);
    expect(next.offer).toEqual([]); // attached again: it reads m6 from the log
    expect(slow.attached).toBe(true);
    slow.flush(shared);
    expect(slow.written.at(-1)).toBe('m6;');
  });

  it('trims what every attached member has been written, and keeps what one has not', () => {
    const { room, members, shared } = roomOf(2);
    const [a, b] = members as [FakeMember, FakeMember];
    room.append(msg(1), true, shared);
    room.append(msg(2), true, shared);
    a.flush(shared);
    room.trim();
    expect(b.depth).toBe(2); // b still owed m1 and m2: the log kept them
    b.flush(shared);
    expect(b.written).toEqual(['m1;m2;']);
    room.trim();
    room.append(msg(3), true, shared);
    expect([a.depth, b.depth]).toEqual([1, 1]);
  });

  it('gives a leaving member what it was owed as its own queue, and one that closes owes nothing more', () => {
    const { room, members, shared } = roomOf(3);
    const [a, b] = members as [FakeMember, FakeMember, FakeMember];
    room.append(msg(1), true, shared);
    room.append(msg(2), false, shared);
    room.leave(a);
    expect([a.room, a.attached, a.own_.map(String), a.ownChats]).toEqual([null, false, ['m1;', 'm2;'], 1]);
    expect(room.release(b)).toBe(1);
    expect(b.depth).toBe(0);
    expect(room.size).toBe(2);
  });
});
