// Who is in which room, as the host sees it, and what the room is told of it: presence notices
// when someone joins or leaves, and the `joined` reply with the members. Versions keep their own
// delivery structures; this is the one view of membership every version shares.
import { nameKey, type ServerInfo, type ServerMessage } from './protocol.ts';
import type { Connection, Strategy } from './strategy.ts';

/** Presence notices are broadcast only in rooms up to this size; a 10k-member room would send N² frames. */
export const PRESENCE_MAX_MEMBERS = 64;
/** v4: guest names tried when a member on another node holds the one asked for, before giving up. */
const MAX_GUEST_ATTEMPTS = 6;
/** Names listed in a `joined` reply. */
const MEMBERS_LISTED = 100;

export class Roster {
  private readonly rooms = new Map<string, Set<Connection>>();
  /** Per room, each member by its name's key (nameKey): two members never share a name. */
  private readonly names = new Map<string, Map<string, Connection>>();

  constructor(
    private readonly strategy: Strategy,
    private readonly info: ServerInfo,
  ) {}

  /** Rooms with at least one member. */
  get size(): number {
    return this.rooms.size;
  }

  membersOf(room: string): number {
    return this.rooms.get(room)?.size ?? 0;
  }

  /** Another member of `room` than `except` has `name`, or one that differs only in case or Unicode form. */
  isTaken(room: string, name: string, except?: Connection): boolean {
    const holder = this.names.get(room)?.get(nameKey(name));
    return holder !== undefined && holder !== except;
  }

  /**
   * `guest-<id>` (v4: `guest-<node>-<id>`, connection ids are a node's own), or the first
   * `…-<k>` from `from` on that no member of `room` here has: a guest never shares a chosen name.
   */
  guestName(room: string, id: number, from = 2): string {
    const base = this.strategy.node ? `guest-${this.strategy.node}-${id}` : `guest-${id}`;
    let name = from > 2 ? `${base}-${from}` : base;
    for (let k = from; this.isTaken(room, name); k++) name = `${base}-${k}`;
    return name;
  }

  /** `conn` takes a new name in its room: the room hears who became whom. Refused (v4, Redis down), nothing changes. */
  async rename(conn: Connection, name: string): Promise<void> {
    const members = this.strategy.directory ? await this.strategy.directory.rename(conn, name) : (this.rooms.get(conn.room)?.size ?? 0);
    const names = this.names.get(conn.room);
    const from = conn.name;
    if (names?.get(nameKey(from)) === conn) names.delete(nameKey(from));
    conn.name = name;
    names?.set(nameKey(name), conn);
    if (members <= PRESENCE_MAX_MEMBERS) this.publish(conn.room, { type: 'presence', room: conn.room, event: 'rename', name, from, members });
  }

  /**
   * `conn` is in `conn.room` now (in every node's part of it, in v4); resolves with the room's
   * member count. The room hears of it from enter(), once `conn` has its `joined`: a newcomer's
   * first word from the server is where it is, not its own arrival.
   */
  private async add(conn: Connection): Promise<number> {
    let set = this.rooms.get(conn.room);
    if (!set) this.rooms.set(conn.room, (set = new Set()));
    set.add(conn);
    let names = this.names.get(conn.room);
    if (!names) this.names.set(conn.room, (names = new Map()));
    names.set(nameKey(conn.name), conn);
    const directory = this.strategy.directory;
    if (!directory) return set.size;
    for (let attempt = 1; ; attempt++) {
      try {
        return await directory.join(conn);
      } catch (err) {
        // v4: a member on another node holds the name: a guest name instead (the host says so).
        if ((err as { code?: string }).code !== 'NAME_TAKEN' || attempt > MAX_GUEST_ATTEMPTS) throw err;
        if (names.get(nameKey(conn.name)) === conn) names.delete(nameKey(conn.name));
        conn.name = this.guestName(conn.room, conn.id, attempt + 1);
        names.set(nameKey(conn.name), conn);
      }
    }
  }

  /** `conn` enters its room: it is added, told where it is (`joined`), and only then does the room hear of it. */
  async enter(conn: Connection): Promise<void> {
    const members = await this.add(conn);
    await this.sendJoined(conn);
    if (members > 1 && members <= PRESENCE_MAX_MEMBERS) this.announce(conn.room, 'join', conn.name, members);
  }

  /** `conn` has left `conn.room`: the room hears of it. */
  async remove(conn: Connection): Promise<void> {
    const room = conn.room;
    const set = this.rooms.get(room);
    if (!set?.delete(conn)) return;
    const names = this.names.get(room);
    if (names?.get(nameKey(conn.name)) === conn) names.delete(nameKey(conn.name));
    if (set.size === 0) {
      this.rooms.delete(room);
      this.names.delete(room);
    }
    const members = this.strategy.directory ? await this.strategy.directory.leave(conn, room) : set.size;
    if (members > 0 && members < PRESENCE_MAX_MEMBERS) this.announce(room, 'leave', conn.name, members);
  }

  private announce(room: string, event: 'join' | 'leave', name: string, members: number): void {
    this.publish(room, { type: 'presence', room, event, name, members });
  }

  private publish(room: string, msg: ServerMessage): void {
    // (v4 sends a presence notice over its backplane; one that cannot be sent is not worth an error)
    void Promise.resolve(this.strategy.publish(room, msg)).catch(() => {});
  }

  /** Tells `conn` it is in its room, who else is (the first MEMBERS_LISTED), and what server this is. */
  async sendJoined(conn: Connection): Promise<void> {
    let members: string[] = [];
    if (this.strategy.directory) members = (await this.strategy.directory.members(conn.room, MEMBERS_LISTED)).names;
    else {
      for (const c of this.rooms.get(conn.room) ?? []) {
        if (members.length === MEMBERS_LISTED) break; // a 20k-member room must not cost O(N) per join
        members.push(c.name);
      }
    }
    this.strategy.sendTo(conn, { type: 'joined', room: conn.room, name: conn.name, id: conn.id, members, server: this.info, ...(conn.account ? { user: conn.account.id } : {}), ...(conn.claim ? { claim: conn.claim } : {}) });
  }
}
