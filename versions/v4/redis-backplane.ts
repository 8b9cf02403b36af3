// The backplane over Redis (ioredis), one Redis (v4) or a Redis Cluster (v5): one connection for
// commands, one for shard channels (redis-connect.ts). The keys and the scripts are in
// redis-scripts.ts; a room's channel carries `E|<seq>|<epoch>|<json>` for an entry and `S|<json>`
// for a notice.
//
// Acknowledged when the master has it (--ack master, the default): a master that dies before its
// replica got the append takes it with it, and its replica, promoted, gives the same seq to the next
// send. Acknowledged when a replica has it (--ack replica): after the append the node asks WAIT 1 on
// the same connection, and the entry is published only then (RELEASE), so no member ever sees an
// entry the promoted replica lacks. That costs a round trip to the replica on every send.
//
// One Lua script appends: epoch, INCR, XADD and PUBLISH run as one step, so the order of seqs is
// the order of the stream and of the channel, whichever node sent. A send while Redis cannot be
// reached fails at once (no offline queue) and is refused to its sender: never queued in memory
// without bound, never silently lost. Commands in flight when the connection drops are not sent
// again by ioredis; their senders are told the send may have gone through, and a resend with the
// same id is not appended twice (the script looks the id up first).
//
// Redis must not forget on its own: at start, and after every reconnect, the backplane reads
// maxmemory-policy. An evicting policy is refused unless allowEviction is set (then what Redis
// evicted reaches members as a gap or a reset); an OOM refusal marks the backplane down until an
// append goes through again.
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { BackplaneStats } from '../protocol.ts';
import { BackplaneDownError, NOT_REACHED, SendUnknownError, type Appended, type Backplane, type BackplaneEvents, type HistorySlice, type StreamEntry } from './backplane.ts';
import { RedisPresence, type PresenceOptions } from './redis-presence.ts';
import { APPEND_KEYS, roomChannel, roomKey, userChannel, type RoomKey } from './redis-scripts.ts';
import { ReplicaAcks } from './replica-acks.ts';
import { connectRedis, type RedisClient, type RedisConnections } from './redis-connect.ts';
import { failureOf, refused, sendFailure } from './redis-failures.ts';

/** Also the presence's (redis-presence.ts): node, prefix, heartbeatMs, roomTtlMs. */
export interface RedisBackplaneOptions extends PresenceOptions {
  /** redis://host:port of one Redis; or `cluster`. */
  url?: string;
  /** host:port of members of a Redis Cluster (v5). */
  cluster?: readonly string[];
  /** When a send is acknowledged: once its shard's master has it, or once a replica has it too. Default master. */
  ack: 'master' | 'replica';
  /** With ack replica: how long a replica may take to confirm; past it the send is answered SEND_UNKNOWN. Default 1,000 ms. */
  ackTimeoutMs: number;
  /** Entries kept per room. Default 1,000. */
  history: number;
  /** Appends in flight past which a send is refused (a slow Redis must not grow the node's memory). Default 10,000. */
  maxInFlight: number;
  /** Bytes of history kept per room, beside the entries. Default 8 MiB. */
  historyBytes: number;
  /** Bytes one history read (a replay, a refetch) returns at most; the rest reads as a gap. Default 256 KiB. */
  replayBytes: number;
  /** Run on a Redis whose maxmemory-policy evicts keys. Default false: such a Redis is refused. */
  allowEviction: boolean;
}

export const DEFAULT_HISTORY = 1_000;
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
export const DEFAULT_HEARTBEAT_MS = 1_000;
export const DEFAULT_ROOM_TTL_MS = 24 * 3600_000;
export const DEFAULT_HISTORY_BYTES = 8 * 1024 * 1024;
export const DEFAULT_REPLAY_BYTES = 256 * 1024;
export const DEFAULT_ACK_TIMEOUT_MS = 1_000;

export class RedisBackplane implements Backplane {
  readonly describe: string;
  private readonly cmd: RedisClient;
  private readonly sub: RedisConnections['sub'];
  private readonly barriers: RedisClient | null;
  /** --ack replica: confirms each append on a replica before it is published and acknowledged. */
  private readonly acks: ReplicaAcks | null;
  private events: BackplaneEvents | null = null;
  private up = false;
  private downSince = 0;
  private outageMs = 0;
  /** Why the backplane refuses sends though its connections are up: Redis evicts keys. */
  private refusing: string | null = null;
  /** Redis refused the last append for want of memory: down (chat_backplane_up 0) until an append goes through. */
  private oom = false;
  private closed = false;
  /** Members, names and heartbeats (redis-presence.ts). */
  private readonly presence: RedisPresence;
  private readonly rtt = createHistogram();
  private readonly rttAll = createHistogram();
  private lastRtt = { p50: 0, p99: 0, max: 0 };
  private readonly rttTimer: NodeJS.Timeout;
  private readonly counts = { published: 0, received: 0, inFlight: 0, refused: 0, reconnects: 0 };

  constructor(private readonly options: RedisBackplaneOptions) {
    const { describe, cmd, sub, barriers } = connectRedis(options, `chatroom-${options.node}`, options.ack === 'replica');
    this.describe = `${describe}${options.ack === 'replica' ? ' · ack replica' : ''}`;
    this.cmd = cmd;
    this.sub = sub;
    this.barriers = barriers;
    this.acks = barriers && new ReplicaAcks(barriers, cmd, { seq: (room) => this.key(room, 'seq'), release: (room) => [this.key(room, 'epoch'), this.key(room, 'log'), this.key(room, 'pub'), this.channel(room)] }, options.ackTimeoutMs, options.roomTtlMs);
    this.presence = new RedisPresence(this.cmd, options, () => this.up && !this.closed, () => this.events);
    this.rttTimer = setInterval(() => {
      this.lastRtt = rttOf(this.rtt);
      this.rtt.reset();
    }, 1_000);
    this.rttTimer.unref();
  }

  get isUp(): boolean {
    return this.up;
  }

  private key(room: string, part: RoomKey): string {
    return roomKey(this.options.prefix, room, part);
  }

  private channel(room: string): string {
    return roomChannel(this.options.prefix, room);
  }

  private userChannel(user: string): string {
    return userChannel(this.options.prefix, user);
  }

  async start(events: BackplaneEvents): Promise<void> {
    this.events = events;
    // Both connections must be ready for the node to be up; either one lost takes it down.
    const onReady = async (): Promise<void> => {
      if (this.closed || this.up || this.cmd.status !== 'ready' || this.sub.status !== 'ready') return;
      this.refusing = await this.evictionRefusal();
      if (this.closed || this.up || this.cmd.status !== 'ready') return;
      if (this.downSince > 0) {
        this.outageMs += performance.now() - this.downSince;
        this.downSince = 0;
        this.counts.reconnects++;
      }
      this.up = true;
      events.up();
      this.presence.beat();
    };
    const onLost = (): void => {
      if (this.closed || !this.up) return;
      this.up = false;
      this.downSince = performance.now();
      events.down();
    };
    for (const c of [this.cmd, this.sub]) {
      c.on('ready', () => void onReady());
      c.on('close', onLost);
      c.on('error', () => {}); // reconnects by itself; 'close' marks the outage
    }
    this.sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    this.barriers?.on('error', () => {});
    await Promise.all([this.cmd.connect(), this.sub.connect(), this.barriers?.connect()]);
    await this.presence.start(); // what an earlier process under this node's name left goes first
    await onReady();
    if (this.refusing !== null) throw new Error(this.refusing);
    this.presence.keepBeating();
  }

  /** Why this Redis must not be used as it is (it evicts keys), or null; a Redis that hides CONFIG is taken at its word. */
  private async evictionRefusal(): Promise<string | null> {
    const [, policy] = ((await this.cmd.config('GET', 'maxmemory-policy').catch(() => [])) as string[]) ?? [];
    if (policy === undefined || policy === 'noeviction') return null;
    if (this.options.allowEviction) {
      console.error(`[v4 ${this.options.node}] Redis evicts keys (maxmemory-policy ${policy}); --allow-eviction: what it evicts reaches members as gap or reset notices`);
      return null;
    }
    return `Redis evicts keys (maxmemory-policy ${policy}): rooms would lose messages without a word; set maxmemory-policy noeviction, or pass --allow-eviction`;
  }

  private onMessage(channelBuf: Buffer, message: Buffer): void {
    const events = this.events;
    if (!events) return;
    // `<prefix>{<room>}` or `<prefix>{user:<id>}`
    const room = channelBuf.toString('utf8').slice(this.options.prefix.length + 1, -1);
    const text = message.toString('utf8');
    if (text.startsWith('S|')) return events.signal(room, text.slice(2));
    if (text.startsWith('D|') && room.startsWith('user:')) return events.direct(room.slice(5), text.slice(2));
    // E|<seq>|<epoch>|<json>
    const a = text.indexOf('|', 2);
    const b = text.indexOf('|', a + 1);
    if (!text.startsWith('E|') || a < 0 || b < 0) return; // not ours
    this.counts.received++;
    events.entry(room, { seq: Number(text.slice(2, a)), epoch: text.slice(a + 1, b), payload: text.slice(b + 1) });
  }

  async append(room: string, payload: string, key = ''): Promise<Appended> {
    if (!this.up || this.refusing !== null || this.counts.inFlight >= this.options.maxInFlight) {
      this.counts.refused++;
      throw new BackplaneDownError(!this.up ? NOT_REACHED : (this.refusing ?? `${this.counts.inFlight} sends are waiting for Redis, the node's cap`));
    }
    this.counts.inFlight++;
    const t0 = process.hrtime.bigint();
    const { history, roomTtlMs, historyBytes } = this.options;
    try {
      const keys = APPEND_KEYS.map((k) => this.key(room, k)) as [string, string, string, string, string, string];
      const args = [payload, newEpoch(), history, this.channel(room), key, roomTtlMs, historyBytes] as const;
      const [seq, epoch, had] = await this.cmd.ceAppend(...keys, ...args, this.acks ? '0' : '1');
      await this.acks?.confirm(room, seq);
      const ns = Math.max(1, Number(process.hrtime.bigint() - t0));
      this.rtt.record(ns);
      this.rttAll.record(ns);
      this.oom = false;
      if (had === 0) this.counts.published++;
      return { seq, epoch, payload, duplicate: had === 1 };
    } catch (err) {
      this.counts.refused++;
      this.oom = failureOf(err).oom;
      throw err instanceof SendUnknownError ? err : sendFailure(err);
    } finally {
      this.counts.inFlight--;
    }
  }

  async history(room: string, after: number, max: number): Promise<HistorySlice> {
    const out = await refused(this.cmd.ceHistory(this.key(room, 'epoch'), this.key(room, 'seq'), this.key(room, 'log'), after, max, this.options.replayBytes));
    const epoch = String(out[0]);
    const entries: StreamEntry[] = [];
    for (let i = 3; i + 1 < out.length; i += 2) entries.push({ seq: parseInt(String(out[i]), 10), epoch, payload: String(out[i + 1]) });
    return { epoch: epoch === '' ? null : epoch, last: Number(out[1]), first: Number(out[2]), entries };
  }

  async subscribe(room: string): Promise<void> {
    await this.sub.ssubscribe(this.channel(room));
  }

  async unsubscribe(room: string): Promise<void> {
    await this.sub.sunsubscribe(this.channel(room)).catch(() => {});
  }

  async signal(room: string, json: string): Promise<void> {
    await refused(this.cmd.spublish(this.channel(room), `S|${json}`));
  }

  async holdUser(user: string): Promise<void> {
    if (!this.up) throw new BackplaneDownError(NOT_REACHED);
    await this.sub.ssubscribe(this.userChannel(user));
  }

  async releaseUser(user: string): Promise<void> {
    await this.sub.sunsubscribe(this.userChannel(user)).catch(() => {});
  }

  async direct(to: string, from: string, json: string): Promise<number> {
    if (!this.up) throw new BackplaneDownError(NOT_REACHED);
    const message = `D|${json}`;
    try {
      // SPUBLISH answers how many subscribers got it: the nodes that hold the user, none if offline.
      const [reached] = await Promise.all([this.cmd.spublish(this.userChannel(to), message), from === to ? 0 : this.cmd.spublish(this.userChannel(from), message)]);
      return Number(reached);
    } catch (err) {
      throw sendFailure(err);
    }
  }

  join(room: string, member: string, name: string, claim?: { key: string; was: string | null; secret: string }): Promise<number> {
    return this.presence.join(room, member, name, claim);
  }

  leave(room: string, member: string, last: boolean, nameKey = ''): Promise<number> {
    return this.presence.leave(room, member, last, nameKey);
  }

  members(room: string, max: number): Promise<{ names: string[]; count: number }> {
    return this.presence.members(room, max);
  }

  announce(url: string): Promise<void> {
    return this.presence.announce(url);
  }

  peers(): Promise<Array<{ node: string; url: string }>> {
    return this.presence.peers();
  }

  stats(): Omit<BackplaneStats, 'replayed' | 'gaps' | 'resets' | 'refetched'> {
    const outage = this.outageMs + (this.downSince > 0 ? performance.now() - this.downSince : 0);
    return { state: this.up && this.refusing === null && !this.oom ? 'up' : 'down', ...this.counts, outageS: Math.round(outage) / 1000, publishRttMs: this.lastRtt, publishRttAllMs: rttOf(this.rttAll) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.rttTimer);
    await this.presence.stop(this.up);
    this.cmd.disconnect();
    this.sub.disconnect();
    this.barriers?.disconnect();
  }
}

/** A round-trip histogram (ns) in ms: p50, p99, max; zeros when empty. */
function rttOf(h: RecordableHistogram): { p50: number; p99: number; max: number } {
  const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;
  return h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : { p50: 0, p99: 0, max: 0 };
}

/** This process's part of every epoch it proposes: two nodes never propose the same one. */
const EPOCH_SALT = randomBytes(4).toString('hex');

/** An epoch: the millisecond and this process; used only when the room's stream is new. */
function newEpoch(): string {
  return `${Date.now().toString(36)}${EPOCH_SALT}`;
}
