// Who is who on one server: every connection of each user (its account's id when it signed in,
// else the name it goes by), and the direct messages between them. A direct message reaches
// every connection of its recipient, all their tabs and devices, and every connection of its
// sender, the one it came from included (its echo is its receipt), and nobody else. A version
// with users across processes (v4, a UserRoute) carries it to the nodes that hold either user;
// on the others it goes straight to the local connections.
import { encodeServerMessage, type ClientFrame, type ServerMessage } from './protocol.ts';
import type { MessageLog } from './message-log.ts';
import { userOf, type Connection, type ServerCounters, type Strategy } from './strategy.ts';

type DirectFrame = Extract<ClientFrame, { type: 'direct' }>;

export class Users {
  private readonly byUser = new Map<string, Set<Connection>>();
  /** The user each bound connection was bound as (its name may change later, without auth). */
  private readonly boundAs = new Map<Connection, string>();

  constructor(
    private readonly strategy: Strategy,
    private readonly counters: ServerCounters,
    private readonly log: MessageLog | null,
  ) {
    if (strategy.users) strategy.users.deliver = (user, json) => this.deliverLocal(user, JSON.parse(json) as ServerMessage);
  }

  /** `conn` is one of its user's connections from now on (v4: once its node hears the user's messages). */
  async bind(conn: Connection): Promise<void> {
    const user = userOf(conn);
    this.boundAs.set(conn, user);
    let set = this.byUser.get(user);
    if (!set) {
      this.byUser.set(user, (set = new Set()));
      set.add(conn);
      try {
        await this.strategy.users?.hold(user);
      } catch (err) {
        this.unbind(conn);
        throw err;
      }
      return;
    }
    set.add(conn);
  }

  unbind(conn: Connection): void {
    const user = this.boundAs.get(conn);
    if (user === undefined) return;
    this.boundAs.delete(conn);
    const set = this.byUser.get(user);
    if (!set?.delete(conn) || set.size > 0) return;
    this.byUser.delete(user);
    this.strategy.users?.release(user);
  }

  /** Without sign-in a user is a name: a renamed connection is the new name's from now on. */
  async rebind(conn: Connection): Promise<void> {
    if (!this.boundAs.has(conn) || this.boundAs.get(conn) === userOf(conn)) return;
    this.unbind(conn);
    await this.bind(conn);
  }

  isBound(conn: Connection): boolean {
    return this.boundAs.has(conn);
  }

  /**
   * Sends a direct message from `conn`. Resolves with whether its recipient had a connection
   * anywhere (false: USER_OFFLINE, nothing delivered); v4 rejects as its backplane refuses.
   */
  async direct(conn: Connection, frame: DirectFrame): Promise<boolean> {
    const from = userOf(conn);
    const { type: _type, to, ...rest } = frame;
    const msg: ServerMessage = { type: 'direct', from, name: conn.name, to, ...rest, ts: Date.now() };
    return this.send(msg, from, to);
  }

  /** A message pushed to `to` over HTTP, from `from` (a server credential's holder). */
  push(from: string, to: string, fields: { content: string; id?: string }): Promise<boolean> {
    return this.send({ type: 'direct', from, name: from, to, ...fields, ts: Date.now() }, from, to);
  }

  private async send(msg: Extract<ServerMessage, { type: 'direct' }>, from: string, to: string): Promise<boolean> {
    let reached: boolean;
    if (this.strategy.users) reached = await this.strategy.users.send(to, from, encodeServerMessage(msg));
    else {
      reached = (this.byUser.get(to)?.size ?? 0) > 0;
      if (reached) {
        this.deliverLocal(to, msg);
        if (from !== to) this.deliverLocal(from, msg);
      }
    }
    if (!reached) return false;
    this.counters.directs++;
    this.log?.record({ kind: 'direct', id: msg.id, from, to, content: msg.content });
    return true;
  }

  /** A message for `user` that reached this server: to each of the user's connections here. */
  private deliverLocal(user: string, msg: ServerMessage): void {
    for (const c of this.byUser.get(user) ?? []) this.strategy.sendTo(c, msg);
  }
}
