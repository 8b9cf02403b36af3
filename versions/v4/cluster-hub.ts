// v4: v3's hub on each node, and a backplane between the nodes (backplane.ts; Redis in
// redis-backplane.ts).
//
// A chat message is not fanned out where it arrives. It is appended to its room's stream on the
// backplane, which gives it `seq` and `epoch`, and every node with members in the room gets it
// back from the backplane and fans it out to them with v3's bounded queues and batched writes. So
// every member sees a room's messages in one order, the stream's, whichever node they and the
// sender are on; and the stream's history lets a client that lost its node resume.
//
// What this design gets wrong, measurably: every message makes a round trip to Redis before
// anyone sees it, the sender included (cross-node latency is at least that); one Redis carries
// every room of every node (its one core is the new ceiling); and while Redis is down no room
// works, not even between two members of one node: a send is refused with BACKPLANE_DOWN rather
// than delivered locally, because a local delivery would have no seq, and the order every member
// shares would be lost.
//
// Per room this node holds a feed of the room's stream (room-feeds.ts). A client that joins is
// first held outside the room; with a resume point it is replayed what it missed, from history
// and from what the feed delivered meanwhile (replay.ts), and only then let into the room, so it
// gets every seq once, in order.
import { encodeServerMessage, nameKey, type BackplaneStats, type ResumePoint, type ServerMessage } from '../protocol.ts';
import type { Connection, MemberDirectory, ServerCounters, Strategy, StrategyStats, UserRoute } from '../strategy.ts';
import { Hub, type HubOptions } from '../v3/hub.ts';
import { bounded, type Backplane, type BackplaneEvents, type DepartedMember, type StreamEntry } from './backplane.ts';
import type { RecoveryCounts } from './feed.ts';
import { Replayer } from './replay.ts';
import { RoomFeeds } from './room-feeds.ts';

/** Where a client waits until it may join its room: no valid room name has a NUL, so no one publishes here. */
const HOLD = '\u0000hold';

export interface ClusterHubOptions extends HubOptions {
  /** This node's name. */
  node: string;
  /** Entries of history a client may be replayed (the backplane keeps as many). */
  history: number;
  /** The version it plays: v4 over one Redis, v5 over a Redis Cluster. Default v4. */
  version?: 'v4' | 'v5';
}

export class ClusterHub implements Strategy, BackplaneEvents {
  readonly version: 'v4' | 'v5';
  readonly describe: string;
  readonly heartbeat = true;
  readonly limitsRate = true;
  readonly resendSafe = true;
  readonly claimsNames = true;
  readonly node: string;
  readonly directory: MemberDirectory;
  /** Direct messages go over a channel per user, which a node listens to while it holds a connection of theirs. */
  readonly users: UserRoute;
  private readonly hub: Hub;
  private readonly feeds: RoomFeeds;
  /** Connections added or moved whose `joined` reply has not gone out: they enter their room after it. */
  private readonly entering = new Map<Connection, { room: string; resume: ResumePoint | undefined }>();
  /** Members this node registered in the cluster's directory, and where: registered again after a broker restart. */
  private readonly registered = new Map<Connection, string>();
  /** How many of them each room has: a room leaves this node's list in Redis with its last one. */
  private readonly registeredIn = new Map<string, number>();
  private readonly recovery: RecoveryCounts = { replayed: 0, gaps: 0, resets: 0, refetched: 0 };
  private readonly replayer: Replayer;

  constructor(
    counters: ServerCounters,
    private readonly options: ClusterHubOptions,
    private readonly backplane: Backplane,
  ) {
    this.node = options.node;
    this.version = options.version ?? 'v4';
    this.describe = `${this.version} · node ${options.node} · ${backplane.describe} · on-full ${options.onFull} · queue ${options.queue}`;
    this.hub = new Hub(counters, options);
    this.feeds = new RoomFeeds(this.hub, backplane, options.history, this.recovery);
    this.replayer = new Replayer(this.hub, backplane, options.history, this.recovery);
    const count = (room: string, by: number): number => {
      const n = (this.registeredIn.get(room) ?? 0) + by;
      if (n > 0) this.registeredIn.set(room, n);
      else this.registeredIn.delete(room);
      return n;
    };
    // A name is one member's in its room across every node (claimed in Redis), but for a signed-in
    // user's, which is the token's: a user's tabs on several nodes share it.
    const claim = (conn: Connection, name: string, was: string | null): { key: string; was: string | null; secret: string } | undefined =>
      conn.account || conn.claim === undefined ? undefined : { key: nameKey(name), was: was === null ? null : nameKey(was), secret: conn.claim };
    this.directory = {
      join: async (conn) => {
        const members = await bounded(backplane.join(conn.room, this.memberOf(conn), conn.name, claim(conn, conn.name, null)), 'join');
        if (!this.registered.has(conn)) count(conn.room, 1);
        this.registered.set(conn, conn.room);
        return members;
      },
      leave: (conn, room) => {
        const key = conn.account ? '' : nameKey(conn.name);
        if (!this.registered.delete(conn)) return backplane.leave(room, this.memberOf(conn), false, key);
        return backplane.leave(room, this.memberOf(conn), count(room, -1) === 0, key);
      },
      // (registering again under the new name overwrites the old one, and counts the room)
      rename: (conn, name) => bounded(backplane.join(conn.room, this.memberOf(conn), name, claim(conn, name, conn.name)), 'rename'),
      members: (room, max) => bounded(backplane.members(room, max), 'list'),
    };
    this.users = {
      hold: (user) => bounded(backplane.holdUser(user), 'sign-in'),
      release: (user) => void backplane.releaseUser(user),
      send: async (to, from, json) => (await backplane.direct(to, from, json)) > 0,
      deliver: () => {}, // (the host sets it)
    };
  }

  direct(user: string, json: string): void {
    this.users.deliver(user, json);
  }

  /** A connection's name in the cluster's member lists: unique across nodes. */
  private memberOf(conn: Connection): string {
    return `${this.node}:${conn.id}`;
  }

  // --- Strategy ---

  /** Rejects (BACKPLANE_DOWN) at once while the backplane is down, or after ENTRY_TIMEOUT_MS: a join never waits in silence. */
  async add(conn: Connection, resume?: ResumePoint): Promise<void> {
    await this.feeds.acquire(conn, conn.room);
    await this.hub.addTo(conn, HOLD);
    this.entering.set(conn, { room: conn.room, resume });
  }

  /** As add(): refused, it leaves `conn` where it was. */
  async move(conn: Connection, room: string, resume?: ResumePoint): Promise<void> {
    const from = await this.feeds.acquire(conn, room);
    await this.hub.move(conn, HOLD);
    if (from !== undefined) this.feeds.release(from); // (a resume in its own room held its feed twice: once is let go)
    this.entering.set(conn, { room, resume });
  }

  async remove(conn: Connection): Promise<void> {
    this.entering.delete(conn);
    await this.hub.remove(conn);
    this.feeds.drop(conn);
  }

  publish(room: string, msg: ServerMessage): Promise<void> {
    const json = encodeServerMessage(msg);
    // Chat goes into the room's stream and comes back to every node from there, this one included.
    // Its sender and id make it one message however often it is sent (a resend after SEND_UNKNOWN).
    if (msg.type === 'chat') return this.backplane.append(room, json, msg.id === undefined ? '' : `${msg.from}\n${msg.id}`).then(() => undefined);
    return this.backplane.signal(room, json);
  }

  sendTo(conn: Connection, msg: ServerMessage): void {
    this.hub.sendTo(conn, msg);
    const entry = msg.type === 'joined' ? this.entering.get(conn) : undefined;
    if (!entry) return;
    // It has its `joined`: now it enters the room, after a replay if it asked for one.
    this.entering.delete(conn);
    const feed = this.feeds.get(entry.room);
    if (entry.resume && feed) void this.replayer.recover(conn, feed, entry.resume);
    else void this.hub.move(conn, entry.room);
  }

  stats(): StrategyStats {
    return this.hub.stats();
  }

  peers(): Promise<Array<{ node: string; url: string }>> {
    return this.backplane.peers();
  }

  backplaneStats(): BackplaneStats {
    return { ...this.backplane.stats(), ...this.recovery };
  }

  async close(): Promise<void> {
    this.hub.close();
    // A node that stops on purpose takes its members out of the lists now, not three beats later.
    await Promise.allSettled([...this.registered].map(([conn, room]) => this.backplane.leave(room, this.memberOf(conn), true)));
    this.registered.clear();
    await this.backplane.close();
  }

  // --- what the backplane tells ---

  entry(room: string, entry: StreamEntry): void {
    this.feeds.entry(room, entry);
  }

  signal(room: string, json: string): void {
    if (this.feeds.get(room)) this.hub.publishText(room, json, false);
  }

  up(): void {
    this.feeds.syncAll();
  }

  down(): void {}

  reregister(): void {
    for (const [conn, room] of this.registered) void this.backplane.join(room, this.memberOf(conn), conn.name).catch(() => {});
  }

  departed(members: DepartedMember[]): void {
    // This node reaped a dead one: it tells every node's members, as the dead node cannot.
    for (const m of members) {
      if (m.members === 0) continue;
      void this.backplane.signal(m.room, encodeServerMessage({ type: 'presence', room: m.room, event: 'leave', name: m.name, members: m.members })).catch(() => {});
    }
  }
}
