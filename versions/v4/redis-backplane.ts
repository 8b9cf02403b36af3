// The backplane over Redis (ioredis): one connection for commands, one for pub/sub.
//
// Per room, under a key prefix:
//   {room}:epoch   the stream's epoch: set by the first append after the stream was lost
//   {room}:seq     the last seq given (INCR)
//   {room}:log     a stream (XADD MAXLEN history), entry id `<seq>-0`, field m = the message JSON
//   {room}:members a hash, `<node>:<connection id>` → name
//   channel {room} `E|<seq>|<epoch>|<json>` for an entry, `S|<json>` for a notice
// and for the cluster: `nodes` (a sorted set of heartbeats, by Redis's clock) and
// `node:<id>:rooms` (where a node has registered members, for whoever reaps it).
//
// One Lua script appends: epoch, INCR, XADD and PUBLISH run as one step, so the order of seqs is
// the order of the stream and of the channel, whichever node sent. A send while Redis cannot be
// reached fails at once (no offline queue) and is refused to its sender: never queued in memory
// without bound, never silently lost. Commands in flight when the connection drops are not sent
// again (an append sent twice would be two messages).
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BackplaneStats } from '../protocol.ts';
import { BackplaneDownError, type Backplane, type BackplaneEvents, type DepartedMember, type HistorySlice, type StreamEntry } from './backplane.ts';

export interface RedisBackplaneOptions {
  /** redis://host:port */
  url: string;
  /** This node's name, unique in the cluster. */
  node: string;
  /** Entries kept per room. Default 1,000. */
  history: number;
  /** Appends in flight past which a send is refused (a slow Redis must not grow the node's memory). Default 10,000. */
  maxInFlight: number;
  /** Heartbeat period; a node silent for 3 periods is taken out of every room. Default 1,000 ms. */
  heartbeatMs: number;
  /** Key and channel prefix. Default 'ce:'. */
  prefix: string;
}

export const DEFAULT_HISTORY = 1_000;
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
export const DEFAULT_HEARTBEAT_MS = 1_000;
/** Heartbeats a node may miss before others take it for dead. */
const MISSED_BEATS = 3;
/** Reconnect delay: 50 ms, growing to 500 ms; never give up. */
const retryStrategy = (times: number): number => Math.min(50 * times, 500);

const APPEND = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
  redis.call('DEL', KEYS[2], KEYS[3])
end
local seq = redis.call('INCR', KEYS[2])
local json = ARGV[1] .. ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '"}'
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], seq .. '-0', 'm', json)
redis.call('PUBLISH', ARGV[4], 'E|' .. seq .. '|' .. epoch .. '|' .. json)
return {seq, epoch}`;

const HISTORY = `
local epoch = redis.call('GET', KEYS[1])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = 0
local head = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
if #head > 0 then first = tonumber(string.match(head[1][1], '^(%d+)')) end
local out = {}
if tonumber(ARGV[2]) > 0 then
  for _, e in ipairs(redis.call('XRANGE', KEYS[3], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])) do
    out[#out + 1] = e[2][2]
  end
end
return {epoch or '', last, first, out}`;

const JOIN = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return redis.call('HLEN', KEYS[1])`;

const LEAVE = `
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HLEN', KEYS[1])`;

// Beats for this node (by Redis's clock, the one clock every node shares) and reaps the nodes
// that stopped: their members leave every room. Returns whether this node was new to the set
// (a restarted Redis, or taken for dead), then room, name, members-left triples.
const BEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = redis.call('ZADD', KEYS[1], now, ARGV[1])
local out = {fresh}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))) do
  redis.call('ZREM', KEYS[1], id)
  local roomsKey = ARGV[3] .. 'node:' .. id .. ':rooms'
  local pre = id .. ':'
  for _, room in ipairs(redis.call('SMEMBERS', roomsKey)) do
    local h = ARGV[3] .. room .. ':members'
    local all = redis.call('HGETALL', h)
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, #pre) == pre then
        redis.call('HDEL', h, all[i])
        out[#out + 1] = room
        out[#out + 1] = all[i + 1]
        out[#out + 1] = redis.call('HLEN', h)
      end
    end
  end
  redis.call('DEL', roomsKey)
end
return out`;

type Scripts = {
  ceAppend(epochKey: string, seqKey: string, logKey: string, jsonOpen: string, newEpoch: string, history: number, channel: string): Promise<[number, string]>;
  ceHistory(epochKey: string, seqKey: string, logKey: string, after: number, max: number): Promise<[string, number, number, string[]]>;
  ceJoin(membersKey: string, roomsKey: string, member: string, name: string, room: string): Promise<number>;
  ceLeave(membersKey: string, member: string): Promise<number>;
  ceBeat(nodesKey: string, node: string, deadAfterMs: number, prefix: string): Promise<Array<string | number>>;
};

export class RedisBackplane implements Backplane {
  readonly describe: string;
  private readonly cmd: Redis & Scripts;
  private readonly sub: Redis;
  private events: BackplaneEvents | null = null;
  private up = false;
  private downSince = 0;
  private outageMs = 0;
  private beat: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly rtt = createHistogram();
  private readonly rttAll = createHistogram();
  private lastRtt = { p50: 0, p99: 0, max: 0 };
  private readonly rttTimer: NodeJS.Timeout;
  private readonly counts = { published: 0, received: 0, inFlight: 0, refused: 0, reconnects: 0 };

  constructor(private readonly options: RedisBackplaneOptions) {
    const url = new URL(options.url);
    this.describe = `redis ${url.host}`;
    const common = { retryStrategy, lazyConnect: true, connectionName: `chatroom-v4-${options.node}` } as const;
    // Commands fail at once while Redis is unreachable, and are never sent twice.
    this.cmd = new Redis(options.url, { ...common, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 }) as Redis & Scripts;
    this.sub = new Redis(options.url, { ...common, autoResubscribe: true, maxRetriesPerRequest: null });
    this.cmd.defineCommand('ceAppend', { numberOfKeys: 3, lua: APPEND });
    this.cmd.defineCommand('ceHistory', { numberOfKeys: 3, lua: HISTORY });
    this.cmd.defineCommand('ceJoin', { numberOfKeys: 2, lua: JOIN });
    this.cmd.defineCommand('ceLeave', { numberOfKeys: 1, lua: LEAVE });
    this.cmd.defineCommand('ceBeat', { numberOfKeys: 1, lua: BEAT });
    this.rttTimer = setInterval(() => {
      this.lastRtt = rttOf(this.rtt);
      this.rtt.reset();
    }, 1_000);
    this.rttTimer.unref();
  }

  get isUp(): boolean {
    return this.up;
  }

  private key(room: string, part: 'epoch' | 'seq' | 'log' | 'members'): string {
    return `${this.options.prefix}${room}:${part}`;
  }

  private channel(room: string): string {
    return `${this.options.prefix}${room}`;
  }

  async start(events: BackplaneEvents): Promise<void> {
    this.events = events;
    // Both connections must be ready for the node to be up; either one lost takes it down.
    const onReady = (): void => {
      if (this.closed || this.up || this.cmd.status !== 'ready' || this.sub.status !== 'ready') return;
      if (this.downSince > 0) {
        this.outageMs += performance.now() - this.downSince;
        this.downSince = 0;
        this.counts.reconnects++;
      }
      this.up = true;
      events.up();
      this.heartbeat();
    };
    const onLost = (): void => {
      if (this.closed || !this.up) return;
      this.up = false;
      this.downSince = performance.now();
      events.down();
    };
    for (const c of [this.cmd, this.sub]) {
      c.on('ready', onReady);
      c.on('close', onLost);
      c.on('error', () => {}); // reconnects by itself; 'close' marks the outage
    }
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
    onReady();
    this.beat = setInterval(() => this.heartbeat(), this.options.heartbeatMs);
    this.beat.unref();
  }

  private onMessage(channelBuf: Buffer, message: Buffer): void {
    const events = this.events;
    if (!events) return;
    const room = channelBuf.toString('utf8').slice(this.options.prefix.length);
    const text = message.toString('utf8');
    if (text.startsWith('S|')) return events.signal(room, text.slice(2));
    // E|<seq>|<epoch>|<json>
    const a = text.indexOf('|', 2);
    const b = text.indexOf('|', a + 1);
    if (!text.startsWith('E|') || a < 0 || b < 0) return; // not ours
    this.counts.received++;
    events.entry(room, { seq: Number(text.slice(2, a)), epoch: text.slice(a + 1, b), json: text.slice(b + 1) });
  }

  private heartbeat(): void {
    if (!this.up || this.closed) return;
    const { node, heartbeatMs, prefix } = this.options;
    this.cmd.ceBeat(`${prefix}nodes`, node, heartbeatMs * MISSED_BEATS, prefix).then(
      (out) => {
        if (out[0] === 1) this.events?.reregister();
        const departed: DepartedMember[] = [];
        for (let i = 1; i + 2 < out.length; i += 3) departed.push({ room: String(out[i]), name: String(out[i + 1]), members: Number(out[i + 2]) });
        if (departed.length > 0) this.events?.departed(departed);
      },
      () => {}, // down: the next beat after 'ready' tries again
    );
  }

  async append(room: string, jsonOpen: string): Promise<StreamEntry> {
    if (!this.up || this.counts.inFlight >= this.options.maxInFlight) {
      this.counts.refused++;
      throw new BackplaneDownError(this.up ? `the backplane has ${this.counts.inFlight} sends waiting (its cap)` : 'the backplane is down');
    }
    this.counts.inFlight++;
    const t0 = process.hrtime.bigint();
    try {
      const [seq, epoch] = await this.cmd.ceAppend(this.key(room, 'epoch'), this.key(room, 'seq'), this.key(room, 'log'), jsonOpen, newEpoch(), this.options.history, this.channel(room));
      const ns = Math.max(1, Number(process.hrtime.bigint() - t0));
      this.rtt.record(ns);
      this.rttAll.record(ns);
      this.counts.published++;
      return { seq, epoch, json: `${jsonOpen},"seq":${seq},"epoch":"${epoch}"}` };
    } catch (err) {
      this.counts.refused++;
      throw new BackplaneDownError(`the backplane failed the send: ${(err as Error).message}`);
    } finally {
      this.counts.inFlight--;
    }
  }

  async history(room: string, after: number, max: number): Promise<HistorySlice> {
    const [epoch, last, first, jsons] = await this.cmd.ceHistory(this.key(room, 'epoch'), this.key(room, 'seq'), this.key(room, 'log'), after, max);
    const entries: StreamEntry[] = [];
    for (let i = 0; i < jsons.length; i++) entries.push({ seq: Math.max(after, first - 1) + 1 + i, epoch, json: jsons[i] as string });
    // (ids are consecutive: seqs are never skipped, and XADD MAXLEN trims from the oldest)
    return { epoch: epoch === '' ? null : epoch, last: Number(last), first: Number(first), entries };
  }

  async subscribe(room: string): Promise<void> {
    await this.sub.subscribe(this.channel(room));
  }

  async unsubscribe(room: string): Promise<void> {
    await this.sub.unsubscribe(this.channel(room)).catch(() => {});
  }

  async signal(room: string, json: string): Promise<void> {
    await this.cmd.publish(this.channel(room), `S|${json}`);
  }

  join(room: string, member: string, name: string): Promise<number> {
    return this.cmd.ceJoin(this.key(room, 'members'), `${this.options.prefix}node:${this.options.node}:rooms`, member, name, room);
  }

  leave(room: string, member: string): Promise<number> {
    return this.cmd.ceLeave(this.key(room, 'members'), member);
  }

  async members(room: string, max: number): Promise<{ names: string[]; count: number }> {
    const key = this.key(room, 'members');
    // One page of the hash, not all of it: a 20k-member room must not cost O(N) per join.
    const [[, page], count] = await Promise.all([this.cmd.hscan(key, '0', 'COUNT', max), this.cmd.hlen(key)]);
    const names: string[] = [];
    for (let i = 1; i < page.length && names.length < max; i += 2) names.push(page[i] as string);
    return { names, count };
  }

  stats(): Omit<BackplaneStats, 'replayed' | 'gaps' | 'resets' | 'refetched'> {
    const outage = this.outageMs + (this.downSince > 0 ? performance.now() - this.downSince : 0);
    return { state: this.up ? 'up' : 'down', ...this.counts, outageS: Math.round(outage) / 1000, publishRttMs: this.lastRtt, publishRttAllMs: rttOf(this.rttAll) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.beat) clearInterval(this.beat);
    clearInterval(this.rttTimer);
    // Leave the cluster now rather than after three missed beats (best effort: Redis may be down).
    if (this.up) await this.cmd.zrem(`${this.options.prefix}nodes`, this.options.node).catch(() => {});
    this.cmd.disconnect();
    this.sub.disconnect();
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
