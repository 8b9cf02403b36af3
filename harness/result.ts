// The result model: what a report holds for one version in one scenario. Types only; aggregate.ts
// builds it from a run, verdict.ts words it, capacity.ts builds the capacity ladder's.
import type { ClientKind } from '../auto-client/delivery-meter.ts';
import type { LatencySummary } from '../auto-client/histogram.ts';
import type { OfferedLoad, SwitchFigures, WorkerHealth } from '../auto-client/swarm-plan.ts';
import type { ClusterFigures, RecoveryFigures } from './cluster-figures.ts';
import type { ServerHealth } from './health.ts';
import type { HttpPushResult } from './http-push.ts';
import type { ServerSample } from './server-sampler.ts';

/** What one kind of receiver was owed and got. */
export interface KindAccounting {
  clients: number;
  expected: number;
  received: number;
  lost: number;
  toldDropped: number;
}

export interface Accounting {
  /**
   * Every healthy and slow client the scenario planned, whether it connected, stayed or was closed:
   * each is owed every message sent into its room. Churn clients come and go, so no fixed set of
   * messages is owed to them; they are not counted here.
   */
  receivers: number;
  /** Σ over those receivers of the messages sent into their room. */
  expected: number;
  received: number;
  /** expected − received. */
  lost: number;
  duplicates: number;
  reordered: number;
  /** The server's own counters over the run. */
  serverDrops: number;
  serverKicks: number;
  /** What the server told the counted receivers it dropped for them ("dropped" frames). */
  toldDropped: number;
  /** lost − toldDropped: losses nobody accounted for. 0 in a correct run. */
  unexplained: number;
  /** Slow readers closed by the server with 4008 (v3 kick); they stay counted as receivers. */
  kicked: number;
  /** The same, split by the kind of client: "lost 1,436, all for the slow readers". */
  byKind: Record<'healthy' | 'slow', KindAccounting>;
  /**
   * The share of what was sent into a room that reached its best-served healthy client, in the room
   * where it is lowest (1: every message reached someone). Below 1, the server did not relay
   * messages to anyone: it discards at ingress. Absent in older reports.
   */
  relayedShare?: number;
  /**
   * direct: messages delivered to a connection that was neither their recipient's nor their
   * sender's (a private message someone else read). Must be 0; absent for room scenarios.
   */
  leaked?: number;
}

/** Did the scenario's slow readers fall far enough behind for any server to feel them? */
export interface SlowReaderEffect {
  readers: number;
  /** Median over the slow readers of the content bytes owed and not yet read when they read again. */
  backlogBytesMedian: number;
  /** What loopback holds for a stuck reader before its writer feels it. */
  kernelBytes: number;
  kernelSource: string;
  /** The backlog passed what the kernel holds: the server had to buffer, queue, drop, close or wait. */
  pushedBack: boolean;
  /** What the server's own counters showed (a spawned version only): its queues, buffers, drops, kicks. */
  serverEvidence: string[];
}

export interface StallSummary {
  clients: number;
  /** Clients that saw a gap between deliveries far longer than the schedule explains. */
  stalled: number;
  stalledMsMedian: number;
  stalledMsMax: number;
  /** Clients that were behind (held a message more than `behindMs` after it was due), and for how long (median, max over them). */
  behind: number;
  behindMsMedian: number;
  behindMsMax: number;
  /** Clients that stalled, fell behind, or both: the ones whose chat did not keep up. */
  affected: number;
  /** Median over those of the longer of their stalled and behind time. */
  affectedMsMedian: number;
}

export interface VersionResult {
  label: string;
  describe: string;
  valid: boolean;
  invalidReasons: string[];
  latency: Record<ClientKind, LatencySummary>;
  latencyUncorrected: Record<ClientKind, LatencySummary>;
  /** [percentile, ms] points of the healthy receivers' corrected latency. */
  spectrum: Record<ClientKind, Array<[number, number]>>;
  /** Encoded merged histograms (µs), for anyone who wants to recompute. */
  histograms: Record<ClientKind, string>;
  accounting: Accounting;
  /** What became of the server: broken or not, and why, in words. */
  health: ServerHealth;
  /** The senders' planned and achieved sends; `share` = sent / planned. */
  offered: OfferedLoad & { share: number };
  /** Null when the scenario has no slow readers. */
  slowReaders: SlowReaderEffect | null;
  stalls: Record<'healthy' | 'slow', StallSummary>;
  /** Deliveries per second seen by the clients, per second since sending began. */
  deliveriesPerSecond: number[];
  /** Healthy receivers' p50 and p99 (ms) for the messages due in each second since sending began: a stall as it happens. */
  latencyOverTime: Array<{ t: number; p50Ms: number; p99Ms: number; count: number }>;
  /** Mean deliveries per second over the measured window. */
  deliveryRate: number;
  server: {
    cpuSeconds: number;
    cpuPctMean: number;
    peakRssMB: number;
    /**
     * (RSS once every client is connected, before anything is sent − RSS before any) / connections,
     * in KB: what idle connections cost, the heap's one-off growth included. Null without that reading.
     */
    rssPerIdleConnectionKB: number | null;
    /** As rssPerIdleConnectionKB, but read after the traffic and the drain: what the heap kept of them too. */
    rssPerConnectionKB: number;
    /**
     * What one more connection costs, in KB: the least-squares slope of RSS over connections from a
     * quarter of the ramp on (the heap's one-off growth is behind by then). Null with too few samples.
     */
    rssPerAddedConnectionKB: number | null;
    peakBufferedMB: number;
    peakQueueDepth: number;
    poolSize: number;
    connections: number;
    loopDelayP99MaxMs: number;
    /** Deliveries per server CPU-second over the run. */
    deliveriesPerCpuSecond: number;
    /** Deliveries per socket write: how much the version batches (1 for v1 and v2). */
    deliveriesPerWrite: number;
  } | null;
  samples: ServerSample[];
  generator: {
    workers: WorkerHealth[];
    framesReceived: number;
    connectP99Ms: number;
    /** Clients connected (and greeted) per second, from the first connect begun to the last greeted (every worker loaded before any connects). */
    connectsPerSecond: number;
    /** From telling the loaded workers to connect to every worker ready: the ramp, as the harness saw it. */
    rampSeconds: number;
    /** Share of all cores busy during the measured window, anything on the machine included. */
    machineBusyPct: number | null;
    /** Connect failures of the generator's own (out of files or ports); the server's are in health.refused. */
    connectFailures: string[];
  };
  churn: { joins: number; leaves: number };
  /** http-push: autocannon's view of POST /api/send. */
  http: HttpPushResult | null;
  /** --repeat N: how many runs this result stands for, and each key figure's median and range (repeats.ts). */
  repeats?: { n: number; figures: Partial<Record<string, RepeatSpread>> };
  /** capacity scenario only: every step, the highest sustained, and what broke the next one. */
  capacity?: CapacityResult;
  /** v4: the nodes, Redis and the backplane (null for a single process). */
  cluster?: ClusterFigures | null;
  /** A scenario with a fault (v4): what clients went through to resume. */
  recovery?: RecoveryFigures | null;
  /** flood: the honest clients' p99 before the flood and during it, in the same run, and what the abuser did. */
  flood?: FloodFigures;
  /** The switchers' rooms switches and renames (broker-outage asks during the outage): every one answered? */
  switches?: SwitchFigures;
  verdict: string;
}

export interface FloodFigures {
  /** When the flood began (s after sending began), what the abusive client wrote, and when and how the server closed it. */
  atS: number;
  sent: number;
  closedCode: number | null;
  closedAtS: number | null;
  /** Healthy receivers' p99 (ms) over the window's seconds before the flood, and over those during it; their ratio. */
  quietP99Ms: number;
  floodedP99Ms: number;
  ratio: number;
}

export interface CapacityStep {
  targetPerSecond: number;
  deliveryRate: number;
  p99Ms: number;
  lost: number;
  valid: boolean;
  serverCpuPct: number;
  deliveriesPerCpuSecond: number;
  deliveriesPerWrite: number;
  /** Share of all cores busy during the window (null off Linux). */
  machineBusyPct: number | null;
  /** The step ran twice: its first run's p99 passed the limit, and this is the second run (capacity-figures.ts, isNoiseBreak). */
  firstP99Ms?: number;
}

export interface CapacityResult {
  steps: CapacityStep[];
  /** Highest delivered rate of a step that kept every limit (0: none did). */
  sustainedPerSecond: number;
  /** Why the lowest target not sustained was not, or null if the ladder ran out of steps. */
  brokeBy: string | null;
  /** That target (deliveries/s), when there is one; older reports lack it: the last step's. */
  brokeAtPerSecond?: number;
}

/** One figure over repeated runs. */
export interface RepeatSpread {
  median: number;
  min: number;
  max: number;
  /** Each run's value in the order run: runs of different versions with one index ran side by side. */
  runs?: number[];
}
