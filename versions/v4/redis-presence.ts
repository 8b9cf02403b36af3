// v4's presence over Redis: who is in which room on which node, the names they claim, and the
// nodes' heartbeats, by which a node that stops beating is taken out of every room. The scripts
// (JOIN, LEAVE, BEAT, FORGET) are in redis-scripts.ts; the backplane (redis-backplane.ts) owns the
// connection and says when it is up.
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { NameTakenError, type BackplaneEvents, type DepartedMember } from './backplane.ts';
import { roomKey, type RoomKey, type Scripts } from './redis-scripts.ts';
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

  constructor(
    private readonly cmd: Redis & Scripts,
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
    const { node, prefix } = this.options;
    this.departedFrom(await this.cmd.ceForget(`${prefix}nodes`, node, '', prefix));
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
    this.cmd.ceBeat(`${prefix}nodes`, node, heartbeatMs * MISSED_BEATS, prefix, roomTtlMs, mayReap).then(
      (out) => {
        this.beating = false;
        const now = performance.now();
        this.onTimeBeats = this.lastBeatAt > 0 && now - this.lastBeatAt <= heartbeatMs * LATE_BEAT_PERIODS ? this.onTimeBeats + 1 : 0;
        this.lastBeatAt = now;
        if (out[0] === 1) {
          this.events()?.reregister();
          if (this.url) void this.announce(this.url).catch(() => {});
        }
        this.departedFrom(out);
      },
      () => {
        this.beating = false; // down: the next beat after 'ready' tries again
        this.onTimeBeats = 0;
        this.lastBeatAt = 0;
      },
    );
  }

  /** The members a reap took out (room, name, members-left triples after the first element), told to the hub. */
  private departedFrom(out: Array<string | number>): void {
    const departed: DepartedMember[] = [];
    for (let i = 1; i + 2 < out.length; i += 3) departed.push({ room: String(out[i]), name: String(out[i + 1]), members: Number(out[i + 2]) });
    if (departed.length > 0) this.events()?.departed(departed);
  }

  private get roomsKey(): string {
    return `${this.options.prefix}node:${this.options.node}:rooms`;
  }

  async join(room: string, member: string, name: string, claim?: { key: string; was: string | null; secret: string }): Promise<number> {
    const members = await refused(this.cmd.ceJoin(this.key(room, 'members'), this.roomsKey, this.key(room, 'names'), member, name, room, this.options.roomTtlMs, claim?.key ?? '', claim?.was ?? '', claim?.secret ?? ''));
    if (members < 0) throw new NameTakenError(`another member of ${room} has the name ${name}`);
    return members;
  }

  leave(room: string, member: string, last: boolean, nameKey = ''): Promise<number> {
    return refused(this.cmd.ceLeave(this.key(room, 'members'), this.roomsKey, this.key(room, 'names'), member, room, last ? '1' : '0', nameKey));
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
