// Who is in which room, as the host sees it, and what the room is told of it: presence notices
// when someone joins or leaves, and the `joined` reply with the members. Versions keep their own
// delivery structures; this is the one view of membership every version shares.
import { nameKey, type ServerInfo, type ServerMessage } from './protocol.ts';
import type { Connection, Strategy } from './strategy.ts';

/** Presence notices are broadcast only in rooms up to this size; a 10k-member room would send N² frames. */
export const PRESENCE_MAX_MEMBERS = 64;
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

  /** `guest-<id>`, or the first `guest-<id>-<k>` no member of `room` has: a guest never shares a chosen name. */
  guestName(room: string, id: number): string {
    let name = `guest-${id}`;
    for (let k = 2; this.isTaken(room, name); k++) name = `guest-${id}-${k}`;
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
    return this.strategy.directory ? await this.strategy.directory.join(conn) : set.size;
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
    this.strategy.sendTo(conn, { type: 'joined', room: conn.room, name: conn.name, id: conn.id, members, server: this.info, ...(conn.account ? { user: conn.account.id } : {}) });
  }
}
