// v4's and v5's presence over Redis: who is in which room on which node, the names they claim, and
// the nodes' heartbeats, by which a node that stops beating is taken out of every room. The scripts
// (JOIN, LEAVE, REAP_ROOM, BEAT) are in redis-scripts.ts; the backplane (redis-backplane.ts) owns
// the connection and says when it is up.
//
// Every step touches one room's keys, or one key of the node list, never both: on a Redis Cluster
// they are on different shards. So a node's list of rooms is written beside the join (first) and
// the leave (after), not inside them; and a dead node is reaped room by room, by the one node whose
// ZREM took it out of the heartbeats. A reaper that dies halfway leaves the rest to the rooms' TTL.
import { performance } from 'node:perf_hooks';
import { NameTakenError, type BackplaneEvents, type DepartedMember } from './backplane.ts';
import { roomKey, type RoomKey } from './redis-scripts.ts';
import type { RedisClient } from './redis-connect.ts';
import { refused } from './redis-failures.ts';

/** A beat answered later than this many periods after the one before was late: Redis paused or slow. */
const LATE_BEAT_PERIODS = 1.5;
/** Heartbeats a node may miss before others take it for dead. */
const MISSED_BEATS = 3;

export interface PresenceOptions {
  /** This node's name, unique in the cluster. */
  node: string;
  /** Key and channel prefix. Default 'ce:'. */
  prefix: string;
  /** Heartbeat period; a node silent for 3 periods is taken out of every room. Default 1,000 ms. */
  heartbeatMs: number;
  /** A room's keys expire after this long without an append (its members, without a join or a beat). Default 24 h. */
  roomTtlMs: number;
}

export class RedisPresence {
  private timer: NodeJS.Timeout | null = null;
  /** A beat is under way (one at a time: beats queued behind a paused Redis would all land at once). */
  private beating = false;
  /** When the last beat was answered (performance.now() ms), and how many in a row came on time. */
  private lastBeatAt = 0;
  private onTimeBeats = 0;
  /** Where this node serves clients, once announced (told again after a Redis that forgot it). */
  private url: string | null = null;
  /** When this node last pushed out the expiry of its rooms' members and names (performance.now() ms). */
  private refreshedAt = 0;

  constructor(
    private readonly cmd: RedisClient,
    private readonly options: PresenceOptions,
    /** Whether the backplane is up and not closed: a beat is tried only then. */
    private readonly live: () => boolean,
    private readonly events: () => BackplaneEvents | null,
  ) {}

  private key(room: string, part: RoomKey): string {
    return roomKey(this.options.prefix, room, part);
  }

  /** Takes out what an earlier process under this node's name left (it died, and was restarted). */
  async start(): Promise<void> {
    await this.reap(this.options.node);
  }

  private roomsOf(node: string): string {
    return `${this.options.prefix}node:${node}:rooms`;
  }

  /** Takes `node`'s members out of every room it listed, one room (one shard) at a time, and tells the hub who left. */
  private async reap(node: string): Promise<void> {
    const { prefix } = this.options;
    const departed: DepartedMember[] = [];
    for (const room of await this.cmd.smembers(this.roomsOf(node))) {
      const out = await this.cmd.ceReapRoom(this.key(room, 'members'), this.key(room, 'names'), `${node}:`);
      for (let i = 0; i + 1 < out.length; i += 2) departed.push({ room, name: String(out[i]), members: Number(out[i + 1]) });
    }
    await Promise.all([this.cmd.del(this.roomsOf(node)), this.cmd.hdel(`${prefix}node-urls`, node)]);
    if (departed.length > 0) this.events()?.departed(departed);
  }

  /** Keeps this node's rooms' members and names from expiring: every beat with a short TTL, every minute at most otherwise. */
  private async refresh(): Promise<void> {
    const { roomTtlMs } = this.options;
    const now = performance.now();
    if (now - this.refreshedAt < Math.min(roomTtlMs / 4, 60_000)) return;
    this.refreshedAt = now;
    const rooms = await this.cmd.smembers(this.roomsOf(this.options.node));
    await Promise.all(rooms.flatMap((room) => [this.cmd.pexpire(this.key(room, 'members'), roomTtlMs), this.cmd.pexpire(this.key(room, 'names'), roomTtlMs)]));
  }

  /** Beats every heartbeat period from now on. */
  keepBeating(): void {
    this.timer = setInterval(() => this.beat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  /** One beat: this node is alive; with enough beats of its own on time, it reaps the nodes that stopped. */
  beat(): void {
    if (!this.live() || this.beating) return;
    const { node, heartbeatMs, prefix, roomTtlMs } = this.options;
    // This node reaps others only after MISSED_BEATS beats of its own on time: after a pause or a
    // slow spell every node's beats were late alike, and the others get their turn to beat first.
    const mayReap = this.onTimeBeats >= MISSED_BEATS ? '1' : '0';
    this.beating = true;
    this.cmd.ceBeat(`${prefix}nodes`, node, heartbeatMs * MISSED_BEATS, mayReap).then(
      async (out) => {
        const now = performance.now();
        this.onTimeBeats = this.lastBeatAt > 0 && now - this.lastBeatAt <= heartbeatMs * LATE_BEAT_PERIODS ? this.onTimeBeats + 1 : 0;
        this.lastBeatAt = now;
        if (out[0] === 1) {
          this.refreshedAt = 0;
          this.events()?.reregister();
          if (this.url) void this.announce(this.url).catch(() => {});
        }
        try {
          // Of the silent nodes, each is reaped by the one node whose ZREM took it out.
          for (const dead of out.slice(1).map(String)) if ((await this.cmd.zrem(`${prefix}nodes`, dead)) === 1) await this.reap(dead);
          await this.refresh();
        } catch {
          // (Redis lost meanwhile: the next beat tries again; a reap half done is finished by the rooms' TTL)
        }
        this.beating = false;
      },
      () => {
        this.beating = false; // down: the next beat after 'ready' tries again
        this.onTimeBeats = 0;
        this.lastBeatAt = 0;
      },
    );
  }

  async join(room: string, member: string, name: string, claim?: { key: string; was: string | null; secret: string }): Promise<number> {
    // The room goes on the node's list first: a node that dies between the two steps leaves a room
    // listed with none of its members in it, which its reaper passes over.
    await refused(this.cmd.sadd(this.roomsOf(this.options.node), room));
    const members = await refused(this.cmd.ceJoin(this.key(room, 'members'), this.key(room, 'names'), member, name, this.options.roomTtlMs, claim?.key ?? '', claim?.was ?? '', claim?.secret ?? ''));
    if (members < 0) throw new NameTakenError(`another member of ${room} has the name ${name}`);
    return members;
  }

  async leave(room: string, member: string, last: boolean, nameKey = ''): Promise<number> {
    const members = await refused(this.cmd.ceLeave(this.key(room, 'members'), this.key(room, 'names'), member, nameKey));
    if (last) await refused(this.cmd.srem(this.roomsOf(this.options.node), room));
    return members;
  }

  async members(room: string, max: number): Promise<{ names: string[]; count: number }> {
    const key = this.key(room, 'members');
    // One page of the hash, not all of it: a 20k-member room must not cost O(N) per join.
    const [[, page], count] = await refused(Promise.all([this.cmd.hscan(key, '0', 'COUNT', max), this.cmd.hlen(key)]));
    const names: string[] = [];
    for (let i = 1; i < page.length && names.length < max; i += 2) names.push(page[i] as string);
    return { names, count };
  }

  async announce(url: string): Promise<void> {
    this.url = url;
    await refused(this.cmd.hset(`${this.options.prefix}node-urls`, this.options.node, url));
  }

  async peers(): Promise<Array<{ node: string; url: string }>> {
    const { prefix } = this.options;
    const [live, urls] = await refused(Promise.all([this.cmd.zrange(`${prefix}nodes`, 0, -1), this.cmd.hgetall(`${prefix}node-urls`)]));
    return live.filter((node) => urls[node] !== undefined).map((node) => ({ node, url: urls[node] as string }));
  }

  /** This node leaves the cluster now, not three missed beats later (best effort: Redis may be down). */
  async stop(up: boolean): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (up) await Promise.all([this.cmd.zrem(`${this.options.prefix}nodes`, this.options.node), this.cmd.hdel(`${this.options.prefix}node-urls`, this.options.node)]).catch(() => {});
  }
}
