// Scenarios: what load each version faces. Each is bounded in time and sized for a 2-core machine.
// The default run's three (baseline, slow-consumer, churn) offer at most a third of what the slowest
// version (v1) sustains at p99 < 100 ms, so everyone reading is every version's normal day and only
// the slow reader (or the churn) separates them (docs/harness.md, "Sizing the default run").
import { instantsBefore } from '../auto-client/schedule.ts';
import { fmt as n, plural } from '../common/helpers.ts';
import { stuckReaderBuffers } from './loopback-buffers.ts';

export const SCENARIO_NAMES = ['baseline', 'slow-consumer', 'churn', 'burst', 'rooms', 'http-push', 'capacity', 'connections', 'scale-out', 'node-kill', 'broker-outage', 'redis-kill', 'redis-pause', 'redis-oom', 'direct', 'flood'] as const;

/** A fault a scenario injects into a v4 cluster mid-window. */
export type FaultKind = 'none' | 'node-kill' | 'broker-outage' | 'redis-kill' | 'redis-pause' | 'redis-oom' | 'flood';
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface ScenarioConfig {
  scenario: ScenarioName;
  /** Clients connected for the whole run (senders and slow readers among them). */
  clients: number;
  /** Clients that send, spread over the rooms. */
  senders: number;
  /** Messages per second per sender. */
  rate: number;
  /** Content size in bytes. */
  size: number;
  /** Rooms the clients are spread over (1: everyone in `lobby`). */
  rooms: number;
  /** Slow readers among the clients (never senders). */
  slow: number;
  slowMode: 'stuck' | 'throttle';
  /** Bytes per second a throttled reader reads. */
  slowBytesPerSec: number;
  /** Extra clients that leave and come back during the run. */
  churnClients: number;
  /** Every churn client leaves and rejoins once per this many ms. */
  churnPeriodMs: number;
  /** Senders send in bursts: this many messages at once, at the same average rate (1: steady). */
  burst: number;
  /** POST /api/send requests per second from autocannon into the first room (0: none). */
  httpRate: number;
  poisson: boolean;
  warmupS: number;
  durationS: number;
  drainS: number;
  /** Worker processes for the clients (each must stay under 20,000 open files). */
  workers: number;
  /** capacity: a step counts as sustained while the healthy receivers' p99 stays under this. */
  p99LimitMs: number;
  /** A message delivered more than this many ms after it was due puts its receiver behind. */
  behindMs: number;
  /**
   * node-kill: the last node gets SIGKILL; broker-outage: Redis is killed, and started again
   * `outageS` later; redis-kill: Redis closes every node's command connection, five times, 300 ms
   * apart, under load; redis-pause: Redis holds every client's commands for `outageS` (CLIENT PAUSE);
   * redis-oom: Redis's maxmemory is set just under what it uses for `outageS` (noeviction: it refuses writes).
   */
  fault: FaultKind;
  /** When the fault strikes, in seconds after sending began. */
  faultAtS: number;
  outageS: number;
  /**
   * direct: connections each signed-in user holds (its tabs and devices, spread over the nodes),
   * and how many users write to one in a fan-in group (beside the pairs who write to each other).
   */
  tabs: number;
  fanIn: number;
  /** flood: frames per second the one abusive client writes into a room of its own, from faultAtS to the end of the window. */
  floodRate: number;
  /**
   * Extra clients that, once a second each, switch rooms or take a new name, and wait for the
   * answer (`joined` or an error): broker-outage asks during the outage too. Never counted as receivers.
   */
  switchers: number;
}

/**
 * Deliveries per second the capacity steps aim at, in order (1-2-5: 1M and 2M are steps, and
 * v1 and v2 find theirs near the bottom); the first step that is not sustained ends the ladder.
 */
export const CAPACITY_LADDER = [10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000] as const;

const COMMON = { rooms: 1, slow: 0, slowMode: 'stuck', slowBytesPerSec: 64 * 1024, churnClients: 0, churnPeriodMs: 0, burst: 1, httpRate: 0, poisson: false, warmupS: 2, drainS: 3, workers: 2, p99LimitMs: 100, behindMs: 1000, fault: 'none', faultAtS: 0, outageS: 0, tabs: 1, fanIn: 0, floodRate: 0, switchers: 0 } as const;


/** Each scenario's defaults, and one line that says what it does with the configuration it runs. */
export const SCENARIOS: Record<ScenarioName, { describe: (c: ScenarioConfig) => string; config: ScenarioConfig }> = {
  baseline: {
    describe: (c) => `everyone reads; ${plural(c.senders, 'sender')} × ${c.rate} msg/s${c.burst > 1 ? ` in bursts of ${c.burst}` : ''} into one room of ${n(c.clients)}`,
    // Chat comes in bursts: messages that arrive together are what a writer per client can batch.
    config: { ...COMMON, scenario: 'baseline', clients: 250, senders: 10, rate: 2, size: 256, burst: 5, durationS: 8 },
  },
  'slow-consumer': {
    describe: (c) => `${c.slow === 1 ? '1 reader stops' : `${c.slow} readers stop`} reading for most of the run among ${n(c.clients - c.slow)} healthy ones; ${plural(c.senders, 'sender')} × ${c.rate} msg/s of ${n(c.size)} B fill their kernel buffers in seconds`,
    // The stuck readers' loopback buffers fill well before they read again, so a version that waits
    // on them stalls for seconds (docs/harness.md, "Sizing the default run").
    config: { ...COMMON, scenario: 'slow-consumer', clients: 60, senders: 5, rate: 20, size: 8192, slow: 2, durationS: 12, drainS: 5 },
  },
  churn: {
    describe: (c) => `${n(c.clients)} clients stay while ${n(c.churnClients)} more leave and come back, each every ${c.churnPeriodMs / 1000} s`,
    config: { ...COMMON, scenario: 'churn', clients: 200, senders: 5, rate: 5, size: 256, churnClients: 100, churnPeriodMs: 4000, durationS: 8 },
  },
  burst: {
    describe: (c) => `${plural(c.senders, 'sender')} send ${c.burst} messages at once, ${c.rate} msg/s on average, into one room of ${n(c.clients)}`,
    config: { ...COMMON, scenario: 'burst', clients: 500, senders: 10, rate: 10, size: 256, burst: 50, durationS: 10 },
  },
  rooms: {
    describe: (c) => `${n(c.clients)} clients in ${c.rooms} rooms, ${plural(Math.floor(c.senders / c.rooms), 'sender')} each: isolation and fairness`,
    config: { ...COMMON, scenario: 'rooms', clients: 1000, senders: 100, rate: 5, size: 256, rooms: 50, durationS: 8 },
  },
  'http-push': {
    describe: (c) => `autocannon POSTs ${c.httpRate} messages/s to /api/send; ${n(c.clients)} clients in the room measure the fan-out`,
    config: { ...COMMON, scenario: 'http-push', clients: 300, senders: 0, rate: 1, size: 256, httpRate: 200, durationS: 8 },
  },
  connections: {
    describe: (c) => `${n(c.clients)} mostly idle clients on one server process (it may open 20,000 files): connect rate and RSS per connection`,
    config: { ...COMMON, scenario: 'connections', clients: 19_900, senders: 1, rate: 1, size: 64, warmupS: 1, durationS: 3, drainS: 1, workers: 3 },
  },
  'scale-out': {
    describe: (c) => `${n(c.clients)} clients in one room, spread over a cluster's nodes; ${plural(c.senders, 'sender')} × ${c.rate} msg/s of ${n(c.size)} B: one process (v3) against v4 on 2 and 4 nodes over Redis, same load`,
    // Four nodes, Redis and the generator share two cores: the load leaves them room to be measured (docs/harness.md).
    config: { ...COMMON, scenario: 'scale-out', clients: 2000, senders: 20, rate: 5, size: 256, durationS: 8, workers: 3 },
  },
  'node-kill': {
    describe: (c) => `${n(c.clients)} clients in one room over a cluster's nodes, ${plural(c.senders, 'sender')} × ${c.rate} msg/s; at ${c.faultAtS} s the last node is killed (SIGKILL): its clients resume on another node with since and epoch`,
    config: { ...COMMON, scenario: 'node-kill', clients: 300, senders: 10, rate: 10, size: 256, durationS: 8, fault: 'node-kill', faultAtS: 4.5 },
  },
  'broker-outage': {
    describe: (c) => `${n(c.clients)} clients in one room over a cluster's nodes, ${plural(c.senders, 'sender')} × ${c.rate} msg/s; at ${c.faultAtS} s Redis is killed and started again ${c.outageS} s later: sends meanwhile are refused (BACKPLANE_DOWN), never silently lost${c.churnClients > 0 ? `, and of ${c.churnClients} clients coming and going those that come meanwhile are answered at once (1013)` : ''}${c.switchers > 0 ? `; ${c.switchers} more switch rooms or rename once a second each, and every request gets an answer` : ''}`,
    // Beside them 20 churners come and go (one every 100 ms): those that come during the outage are answered at once (1013).
    config: { ...COMMON, scenario: 'broker-outage', clients: 300, senders: 10, rate: 10, size: 256, durationS: 8, drainS: 4, fault: 'broker-outage', faultAtS: 4.5, outageS: 2, churnClients: 20, churnPeriodMs: 2000, switchers: 10 },
  },
  'redis-kill': {
    describe: (c) => `${n(c.clients)} clients in one room over a cluster's nodes, ${plural(c.senders, 'sender')} × ${c.rate} msg/s; at ${c.faultAtS} s Redis closes the nodes' connections five times (CLIENT KILL): sends under way are answered SEND_UNKNOWN and resent with their ids, never delivered twice`,
    // Sends enough that some are under way at each kill: 500 msg/s through Redis.
    config: { ...COMMON, scenario: 'redis-kill', clients: 100, senders: 20, rate: 25, size: 256, durationS: 8, drainS: 4, fault: 'redis-kill', faultAtS: 4 },
  },
  'redis-pause': {
    describe: (c) => `${n(c.clients)} clients in one room over a cluster's nodes, ${plural(c.senders, 'sender')} × ${c.rate} msg/s; at ${c.faultAtS} s Redis pauses every client for ${c.outageS} s (CLIENT PAUSE): sends wait, nothing is lost, nobody is taken out of the room`,
    config: { ...COMMON, scenario: 'redis-pause', clients: 300, senders: 10, rate: 10, size: 256, durationS: 8, drainS: 4, fault: 'redis-pause', faultAtS: 4, outageS: 3 },
  },
  'redis-oom': {
    describe: (c) => `${n(c.clients)} clients in one room over a cluster's nodes, ${plural(c.senders, 'sender')} × ${c.rate} msg/s; at ${c.faultAtS} s Redis runs out of memory for ${c.outageS} s (maxmemory under what it holds, noeviction): sends are refused saying OOM, none accepted and lost`,
    config: { ...COMMON, scenario: 'redis-oom', clients: 300, senders: 10, rate: 10, size: 256, durationS: 8, drainS: 4, fault: 'redis-oom', faultAtS: 4, outageS: 2 },
  },
  flood: {
    describe: (c) => `${n(c.clients)} honest clients in ${c.rooms} rooms, ${plural(c.senders, 'sender')} × ${c.rate} msg/s; at ${c.faultAtS} s one more client writes tiny chats into a room of its own at ${n(c.floodRate)} frames/s until the window ends: the honest clients' p99 during the flood against before it, in the same run (each version with its own limits on)`,
    // The flood starts halfway through the window, so the same run measures the rooms before and during it.
    config: { ...COMMON, scenario: 'flood', clients: 200, senders: 20, rate: 5, size: 256, rooms: 10, durationS: 10, fault: 'flood', faultAtS: 0, floodRate: 20_000 },
  },
  direct: {
    describe: (c) => {
      const g = directGroups(c);
      return `${n(g.users)} signed-in users with ${plural(c.tabs, 'connection')} each, all in one room: ${n(g.pairs)} pairs write to each other and ${n(g.fanGroups)} groups of ${c.fanIn} write to one user, ${c.rate} direct msg/s each; ${n(g.bystanders)} bystanders must get none of it (a leak fails the run)`;
    },
    config: { ...COMMON, scenario: 'direct', clients: 400, senders: 1, rate: 5, size: 256, durationS: 8, tabs: 2, fanIn: 4 },
  },
  capacity: {
    describe: (c) => `${n(c.clients)} clients in one room; the rate steps up 10k, 20k, 50k … 5M deliveries/s until the server breaks, p99 passes ${c.p99LimitMs} ms, a delivery is lost, or the step cannot be measured (a step over the p99 limit alone is run once more first); then the last interval is halved until it is within 10%`,
    // One sender worker and two receiver workers; --rate is ignored: the steps set it. The
    // warm-up ramps the rate up, so a step measures the steady state, not a cold start.
    config: { ...COMMON, scenario: 'capacity', clients: 1000, senders: 20, rate: 0.5, size: 64, warmupS: 3, durationS: 4, drainS: 2, workers: 3 },
  },
};

/** The versions a scenario runs when --versions is not given: scale-out compares one process with clusters. */
export const SCENARIO_VERSIONS: Partial<Record<ScenarioName, string[]>> = {
  'scale-out': ['v3', 'v4 --nodes 2', 'v4 --nodes 4'],
  'node-kill': ['v4 --nodes 3'],
  'broker-outage': ['v4 --nodes 2'],
  'redis-kill': ['v4 --nodes 2'],
  'redis-pause': ['v4 --nodes 2'],
  'redis-oom': ['v4 --nodes 2'],
  // one process that routes by its own map, and a cluster that routes over Redis channels
  direct: ['v1', 'v3', 'v4 --nodes 3'],
  // two without a per-connection limit (their story has none), and one with
  flood: ['v1', 'v2', 'v3'],
};

/** What `npm run stress -- --full` adds to the default run: the story past one process (v4). */
export const FULL_SCENARIOS: readonly ScenarioName[] = ['scale-out', 'node-kill', 'broker-outage', 'redis-kill', 'redis-pause', 'redis-oom'];

/** How the direct scenario's users are grouped: pairs, fan-in groups (fanIn senders to one user), and bystanders. */
export interface DirectGroups {
  users: number;
  pairs: number;
  fanGroups: number;
  bystanders: number;
  /** Users that send: both of each pair, the fanIn of each group. */
  senders: number;
}

/** A tenth of the users (at least one) stand by; of the rest, about half pair up and half form fan-in groups; who is left over stands by too. */
export function directGroups(c: Pick<ScenarioConfig, 'clients' | 'tabs' | 'fanIn'>): DirectGroups {
  const users = Math.floor(c.clients / c.tabs);
  const active = users - Math.max(1, Math.floor(users / 10));
  const pairs = Math.floor(active / 4);
  const fanGroups = c.fanIn > 0 ? Math.floor((active - 2 * pairs) / (c.fanIn + 1)) : 0;
  return { users, pairs, fanGroups, bystanders: users - 2 * pairs - fanGroups * (c.fanIn + 1), senders: 2 * pairs + fanGroups * c.fanIn };
}

/** The per-sender rate that makes `deliveriesPerSecond` with this config's clients and senders. */
export function rateFor(config: ScenarioConfig, deliveriesPerSecond: number): number {
  return deliveriesPerSecond / (config.clients * config.senders);
}

/** Clients one worker process may hold: 20,000 open files a process, with room for its own. */
export const MAX_CLIENTS_PER_WORKER = 15_000;
/** When the worker count is not given, workers are added until none holds more than this. */
const AUTO_CLIENTS_PER_WORKER = 12_500;

/** The most clients one worker holds under plan.ts's split: worker 0 holds only the senders once there are two or more. */
export function largestWorkerShare(c: ScenarioConfig): number {
  const all = c.clients + c.churnClients + c.switchers;
  if (c.workers < 2) return all;
  return Math.max(c.senders, Math.ceil((all - c.senders) / (c.workers - 1)));
}

/** The scenario's workers, or more, so that none holds over AUTO_CLIENTS_PER_WORKER clients. */
function workersFor(c: ScenarioConfig): number {
  let workers = c.workers;
  while (largestWorkerShare({ ...c, workers }) > AUTO_CLIENTS_PER_WORKER && workers < 64) workers++;
  return workers;
}

export function resolveScenario(name: ScenarioName, overrides: Partial<ScenarioConfig> = {}): ScenarioConfig {
  const base = SCENARIOS[name];
  if (!base) throw new RangeError(`scenario must be one of ${SCENARIO_NAMES.join(', ')}`);
  const c: ScenarioConfig = { ...base.config, ...stripUndefined(overrides), scenario: name };
  const workersGiven = overrides.workers !== undefined;
  // flood: halfway through the window, whatever its length: the same run measures before and during
  if (c.fault === 'flood') c.faultAtS = c.warmupS + c.durationS / 2;
  const positiveInt = (k: keyof ScenarioConfig, min = 1): void => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`${k} must be an integer >= ${min}`);
  };
  positiveInt('clients');
  positiveInt('senders', c.httpRate > 0 ? 0 : 1);
  positiveInt('rooms');
  positiveInt('workers');
  positiveInt('slow', 0);
  positiveInt('churnClients', 0);
  positiveInt('burst');
  if (!(c.rate > 0)) throw new RangeError('rate must be > 0');
  if (!Number.isInteger(c.size) || c.size < 32 || c.size > 16_000) throw new RangeError('size must be an integer from 32 to 16000 (the content limit)');
  if (c.senders + c.slow > c.clients) throw new RangeError('senders + slow must not exceed clients');
  if (c.senders < c.rooms && !(c.httpRate > 0 && c.rooms === 1)) throw new RangeError('senders must be at least rooms, so every room has a sender');
  if (!(c.httpRate >= 0)) throw new RangeError('httpRate must be >= 0');
  if (!(c.p99LimitMs > 0)) throw new RangeError('p99LimitMs must be > 0');
  if (!(c.behindMs > 0)) throw new RangeError('behindMs must be > 0');
  if (!(c.durationS > 0 && c.warmupS >= 0 && c.drainS >= 0)) throw new RangeError('durationS must be > 0, warmupS and drainS >= 0');
  // (the window is counted in whole seconds: a rate over 1.5 s would count 1 s of deliveries)
  if (!Number.isInteger(c.durationS) || !Number.isInteger(c.warmupS)) throw new RangeError('durationS and warmupS must be whole seconds');
  if (c.fault !== 'none' && !(c.faultAtS > 0 && c.faultAtS < c.warmupS + c.durationS)) throw new RangeError('faultAtS must fall after sending begins and before the measured window ends');
  if ((c.fault === 'broker-outage' || c.fault === 'redis-pause' || c.fault === 'redis-oom') && !(c.outageS > 0 && c.faultAtS + c.outageS < c.warmupS + c.durationS + c.drainS)) throw new RangeError('outageS must be > 0 and Redis back before the drain ends');
  if (c.durationS + c.warmupS + c.drainS > 600) throw new RangeError('a run is bounded: warmup + duration + drain must be at most 600 s');
  if (!workersGiven) c.workers = workersFor(c);
  const share = largestWorkerShare(c);
  if (share > MAX_CLIENTS_PER_WORKER) throw new RangeError(`at most ${n(MAX_CLIENTS_PER_WORKER)} clients per worker (20,000 open files per process), and one of ${c.workers} workers would hold ${n(share)}: raise workers (or leave --workers out and it is chosen for you)`);
  if (c.slow > 0) checkSlowReadersFallBehind(c);
  positiveInt('tabs');
  positiveInt('switchers', 0);
  if (c.fault === 'flood' && !(Number.isInteger(c.floodRate) && c.floodRate >= 1 && c.floodRate <= 100_000)) throw new RangeError('floodRate must be an integer from 1 to 100,000 frames/s');
  positiveInt('fanIn', 0);
  if (c.scenario === 'direct') {
    if (c.tabs > 1 && c.clients < 4 * c.tabs) throw new RangeError('direct needs at least 4 users: clients >= 4 × tabs');
    if (directGroups(c).pairs < 1) throw new RangeError('direct needs at least one pair: raise --clients');
    c.senders = directGroups(c).senders;
  }
  return c;
}

/**
 * When the slow readers read again, in µs after sending starts: two seconds before sending ends,
 * so the healthy clients of a stalling version can be seen catching up during the drain.
 */
export function slowResumeUs(c: ScenarioConfig): number {
  return Math.max(1e6, (c.warmupS + c.durationS - 2) * 1e6);
}

/**
 * Bytes of content a slow reader is owed and has not read when it reads again, by the plan: what
 * its room's senders (and HTTP pushes, with one room) send before then, less what a throttled
 * reader reads. Frames are larger than their content, so this errs low.
 */
export function plannedBacklogBytes(c: ScenarioConfig): number {
  const resumeUs = slowResumeUs(c);
  const perRoomSenders = Math.floor(c.senders / c.rooms);
  const wsMessages = perRoomSenders * c.burst * instantsBefore(resumeUs, (1e6 / c.rate) * c.burst, c.warmupS * 1e6);
  const httpMessages = c.rooms === 1 ? (c.httpRate * resumeUs) / 1e6 : 0;
  const read = c.slowMode === 'throttle' ? (c.slowBytesPerSec * resumeUs) / 1e6 : 0;
  return (wsMessages + httpMessages) * c.size - read;
}

/**
 * A slow reader must fall this many times the loopback buffers behind, so that a server which
 * blocks on it stays blocked for a good part of the window, not for its last moment.
 */
export const SLOW_BACKLOG_FACTOR = 1.5;

/** Refuses a plan whose slow readers would not fill the kernel's buffers: a blocking server would never feel them. */
function checkSlowReadersFallBehind(c: ScenarioConfig): void {
  const kernel = stuckReaderBuffers();
  const need = SLOW_BACKLOG_FACTOR * kernel.bytes;
  const owed = plannedBacklogBytes(c);
  if (owed >= need) return;
  let minDuration: number | null = null;
  for (let d = Math.ceil(c.durationS) + 1; d + c.warmupS + c.drainS <= 600; d++) {
    if (plannedBacklogBytes({ ...c, durationS: d }) >= need) {
      minDuration = d;
      break;
    }
  }
  const mb = (b: number): string => `${(Math.max(0, b) / 1e6).toFixed(1)} MB`;
  throw new RangeError(
    `${c.scenario}: a slow reader would have only ${mb(owed)} unread when it reads again, less than ${SLOW_BACKLOG_FACTOR} × the ${mb(kernel.bytes)} ` +
      `loopback buffers for it (${kernel.source}), so a server that blocks on a slow reader might never block: ` +
      `${minDuration !== null ? `raise --duration to at least ${minDuration}, or ` : ''}raise --rate or --size`,
  );
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The versions `npm run stress` compares by default, as CLI arguments. */
export const DEFAULT_VERSIONS: Record<string, string[]> = {
  v1: ['v1'],
  'v1.1': ['v1', '--prune'],
  v2: ['v2'],
  v3: ['v3'],
  'v3-block': ['v3', '--on-full', 'block'],
  'v3-kick': ['v3', '--on-full', 'kick'],
  /** v3's hub on `--nodes` processes (default 2) over a private Redis; not among the defaults. */
  v4: ['v4'],
};
