// Turns one target's raw run (worker results, server samples) into the numbers a report shows:
// merged latency, exact accounting, stalls, server cost, generator health, and a verdict.
import { encodeHistogram, mergeEncoded, spectrum, summarize, type LatencySummary } from '../auto-client/histogram.ts';
import { fmt, round } from '../common/helpers.ts';
import type { ClientKind, ClientReport } from '../auto-client/delivery-meter.ts';
import type { OfferedLoad, WorkerHealth } from '../auto-client/swarm.ts';
import { assessHealth, isGeneratorFailure, type ServerHealth } from './health.ts';
import type { HttpPushResult } from './http-push.ts';
import { stuckReaderBuffers } from './loopback-buffers.ts';
import { CLOSE_CODES } from '../versions/protocol.ts';
import { roomOf, type ServerSample, type TargetRun } from './run-target.ts';

/** Generator limits: past these the generator, not the server, may be the bottleneck. */
export const GENERATOR_LIMITS = {
  /** p99 lag between a message's intended and actual send time. */
  scheduleLagP99Ms: 100,
  /** Event-loop delay p99 of a worker. */
  loopDelayP99Ms: 200,
  /** CPU of one worker, in % of one core. */
  cpuPct: 95,
  /** All cores together during the measured window: past this, server and generator fight for CPU. */
  machineBusyPct: 95,
} as const;

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
  stalled: number;
  stalledMsMedian: number;
  stalledMsMax: number;
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
  /** capacity scenario only: every step, the highest sustained, and what broke the next one. */
  capacity?: CapacityResult;
  verdict: string;
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
}

export interface CapacityResult {
  steps: CapacityStep[];
  /** Highest delivered rate of a step that kept every limit (0: none did). */
  sustainedPerSecond: number;
  /** Why the ladder stopped, or null if it ran out of steps. */
  brokeBy: string | null;
}

const KINDS: ClientKind[] = ['healthy', 'slow', 'churn'];

export function aggregate(run: TargetRun): VersionResult {
  const { config } = run;
  const clients = run.workers.flatMap((w) => w.clients);
  const sentByRoom: Record<string, number> = {};
  for (const w of run.workers) for (const [room, n] of Object.entries(w.sentByRoom)) sentByRoom[room] = (sentByRoom[room] ?? 0) + n;
  if (run.http && run.statsBefore && run.statsAfter) {
    // What HTTP pushed is what the server accepted beyond the WebSocket senders' messages.
    const wsSent = Object.values(sentByRoom).reduce((a, b) => a + b, 0);
    const room = roomOf(0, config.rooms);
    sentByRoom[room] = (sentByRoom[room] ?? 0) + (run.statsAfter.received - run.statsBefore.received - wsSent);
  }

  const merged = Object.fromEntries(KINDS.map((k) => [k, mergeEncoded(run.workers.map((w) => w.latency[k].corrected))])) as Record<ClientKind, ReturnType<typeof mergeEncoded>>;
  const mergedRaw = Object.fromEntries(KINDS.map((k) => [k, mergeEncoded(run.workers.map((w) => w.latency[k].uncorrected))])) as Record<ClientKind, ReturnType<typeof mergeEncoded>>;

  // Nobody is filtered out: a client that never connected, or that the server closed, is owed its room's messages too.
  const counted = clients.filter((c) => c.kind !== 'churn');
  const kicked = clients.filter((c) => c.kind === 'slow' && c.closedByServer?.code === CLOSE_CODES.SLOW_CONSUMER).length;
  const owed = (cs: readonly ClientReport[]): KindAccounting => {
    const expected = sum(cs, (c) => sentByRoom[c.room] ?? 0);
    const received = sum(cs, (c) => c.received);
    return { clients: cs.length, expected, received, lost: expected - received, toldDropped: sum(cs, (c) => c.droppedByServer) };
  };
  const byKind = { healthy: owed(counted.filter((c) => c.kind === 'healthy')), slow: owed(counted.filter((c) => c.kind === 'slow')) };
  const expected = byKind.healthy.expected + byKind.slow.expected;
  const received = byKind.healthy.received + byKind.slow.received;
  const toldDropped = byKind.healthy.toldDropped + byKind.slow.toldDropped;
  const before = run.statsBefore;
  const after = run.statsAfter;
  const accounting: Accounting = {
    receivers: counted.length,
    expected,
    received,
    lost: expected - received,
    duplicates: sum(clients, (c) => c.duplicates),
    reordered: sum(clients, (c) => c.reordered),
    serverDrops: before && after ? after.drops - before.drops : 0,
    serverKicks: before && after ? after.kicks - before.kicks : 0,
    toldDropped,
    unexplained: expected - received - toldDropped,
    kicked,
    byKind,
  };

  const perSecond: number[] = [];
  for (const w of run.workers) w.deliveriesPerSecond.forEach((n, i) => (perSecond[i] = (perSecond[i] ?? 0) + n));
  const measured = perSecond.slice(config.warmupS, config.warmupS + config.durationS);
  const deliveryRate = measured.length ? Math.round(sum(measured, (n) => n ?? 0) / config.durationS) : 0;

  const invalidReasons: string[] = [];
  for (const w of run.workers) {
    const h = w.health;
    const id = `worker ${w.workerId}`;
    if (h.scheduleLagP99Ms > GENERATOR_LIMITS.scheduleLagP99Ms) invalidReasons.push(`${id} schedule lag p99 ${h.scheduleLagP99Ms.toFixed(0)} ms > ${GENERATOR_LIMITS.scheduleLagP99Ms} ms`);
    if (h.loopDelayP99Ms > GENERATOR_LIMITS.loopDelayP99Ms) invalidReasons.push(`${id} event-loop delay p99 ${h.loopDelayP99Ms.toFixed(0)} ms > ${GENERATOR_LIMITS.loopDelayP99Ms} ms`);
    if (h.cpuPct > GENERATOR_LIMITS.cpuPct) invalidReasons.push(`${id} CPU ${h.cpuPct}% > ${GENERATOR_LIMITS.cpuPct}% of a core`);
  }
  if (run.machineBusyPct !== null && run.machineBusyPct > GENERATOR_LIMITS.machineBusyPct) {
    invalidReasons.push(`the machine was ${run.machineBusyPct}% busy (> ${GENERATOR_LIMITS.machineBusyPct}%): server and generator competed for the cores`);
  }
  // Only failures on the generator's side (its files, its ports) put the measurement in doubt; the server's are its health.
  const failures = run.workers.flatMap((w) => w.connectFailures).filter(isGeneratorFailure).map((f) => f.message);
  if (failures.length > 0) invalidReasons.push(`${failures.length} clients could not connect for want of the generator's own resources (${failures[0]})`);

  const server = after && before ? serverSummary(run, after, before) : null;
  const offeredSum: OfferedLoad = { senders: 0, planned: 0, sent: 0, sendersLost: 0 };
  for (const w of run.workers) {
    offeredSum.senders += w.offered.senders;
    offeredSum.planned += w.offered.planned;
    offeredSum.sent += w.offered.sent;
    offeredSum.sendersLost += w.offered.sendersLost;
  }
  const offered = { ...offeredSum, share: offeredSum.planned > 0 ? round(offeredSum.sent / offeredSum.planned, 3) : 1 };
  const result: VersionResult = {
    label: run.target.label,
    describe: run.describe,
    valid: invalidReasons.length === 0,
    invalidReasons,
    latency: mapKinds((k) => summarize(merged[k])),
    latencyUncorrected: mapKinds((k) => summarize(mergedRaw[k])),
    spectrum: mapKinds((k) => spectrum(merged[k])),
    histograms: mapKinds((k) => encodeHistogram(merged[k])),
    accounting,
    health: assessHealth(run, clients, byKind.healthy.clients),
    offered,
    slowReaders: slowReaderEffect(run, clients, server),
    stalls: { healthy: stallSummary(counted.filter((c) => c.kind === 'healthy')), slow: stallSummary(clients.filter((c) => c.kind === 'slow')) },
    deliveriesPerSecond: perSecond.map((n) => n ?? 0),
    deliveryRate,
    server,
    samples: run.samples,
    generator: {
      workers: run.workers.map((w) => w.health),
      framesReceived: sum(run.workers, (w) => w.framesReceived),
      connectP99Ms: summarize(mergeEncoded(run.workers.map((w) => w.connectUs))).p99,
      machineBusyPct: run.machineBusyPct,
      connectsPerSecond: connectRate(run),
      rampSeconds: round(run.connectSeconds, 2),
      connectFailures: failures.slice(0, 5),
    },
    churn: { joins: sum(run.workers, (w) => w.churn.joins), leaves: sum(run.workers, (w) => w.churn.leaves) },
    http: run.http,
    verdict: '',
  };
  result.verdict = verdict(result, config.slow);
  return result;
}

/**
 * How far behind the slow readers were when they read again, against what the kernel holds for
 * them: past it, the server must have buffered, queued, dropped, closed or waited. A server's own
 * counters, where it has them, say which.
 */
function slowReaderEffect(run: TargetRun, clients: readonly ClientReport[], server: VersionResult['server']): SlowReaderEffect | null {
  const slow = clients.filter((c) => c.kind === 'slow');
  if (slow.length === 0) return null;
  const sentBefore: Record<string, number> = {};
  for (const w of run.workers) for (const [room, n] of Object.entries(w.sentBeforeResumeByRoom)) sentBefore[room] = (sentBefore[room] ?? 0) + n;
  const backlogs = slow.map((c) => Math.max(0, (sentBefore[c.room] ?? 0) - (c.receivedBeforeResume ?? c.received)) * run.config.size).sort((a, b) => a - b);
  const median = backlogs[Math.floor(backlogs.length / 2)] ?? 0;
  const kernel = stuckReaderBuffers();
  const evidence: string[] = [];
  if (server) {
    if (server.peakQueueDepth > 0) evidence.push(`queued up to ${fmt(server.peakQueueDepth)} messages`);
    if (server.peakBufferedMB >= 0.1) evidence.push(`buffered up to ${server.peakBufferedMB} MB in user space`);
  }
  if (run.statsBefore && run.statsAfter) {
    const drops = run.statsAfter.drops - run.statsBefore.drops;
    const kicks = run.statsAfter.kicks - run.statsBefore.kicks;
    if (drops > 0) evidence.push(`dropped ${fmt(drops)} messages`);
    if (kicks > 0) evidence.push(`kicked ${fmt(kicks)} clients`);
  }
  return { readers: slow.length, backlogBytesMedian: median, kernelBytes: kernel.bytes, kernelSource: kernel.source, pushedBack: median >= kernel.bytes, serverEvidence: evidence };
}

/** Clients greeted per second, from the first worker's first connect to the last worker's last greeting. */
function connectRate(run: TargetRun): number {
  const ramps = run.workers.map((w) => w.ramp).filter((r) => r.endUs > r.startUs);
  if (ramps.length === 0) return 0;
  const seconds = (Math.max(...ramps.map((r) => r.endUs)) - Math.min(...ramps.map((r) => r.startUs))) / 1e6;
  return Math.round(sum(ramps, (r) => r.connected) / seconds);
}

/** RSS per connection, in KB, fitted over the samples from a quarter of the most connections on. */
export function rssSlopeKB(samples: ReadonlyArray<{ connections: number; rssBytes: number }>): number | null {
  const most = Math.max(0, ...samples.map((s) => s.connections));
  const pts = samples.filter((s) => s.connections >= most / 4);
  const n = pts.length;
  if (n < 3 || most < 1000) return null;
  const mx = sum(pts, (p) => p.connections) / n;
  const my = sum(pts, (p) => p.rssBytes) / n;
  const sxx = sum(pts, (p) => (p.connections - mx) ** 2);
  if (sxx === 0) return null;
  return round(sum(pts, (p) => (p.connections - mx) * (p.rssBytes - my)) / sxx / 1000, 2);
}

function serverSummary(run: TargetRun, after: NonNullable<TargetRun['statsAfter']>, before: NonNullable<TargetRun['statsBefore']>): NonNullable<VersionResult['server']> {
  const s = run.samples;
  const cpuSeconds = (after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs) / 1e6;
  const wall = after.uptimeS - before.uptimeS;
  const deliveries = after.deliveries - before.deliveries;
  const writes = after.writes - before.writes;
  const idle = run.statsConnected;
  return {
    cpuSeconds: round(cpuSeconds, 2),
    cpuPctMean: wall > 0 ? round((cpuSeconds / wall) * 100, 1) : 0,
    peakRssMB: round(Math.max(after.rssBytes, ...s.map((x) => x.rssBytes)) / 1e6, 1),
    rssPerConnectionKB: after.connections > 0 ? round((after.rssBytes - before.rssBytes) / after.connections / 1000, 2) : 0,
    rssPerIdleConnectionKB: idle && idle.connections > 0 ? round((idle.rssBytes - before.rssBytes) / idle.connections / 1000, 2) : null,
    rssPerAddedConnectionKB: rssSlopeKB(idle ? [...run.rampSamples, { connections: idle.connections, rssBytes: idle.rssBytes }] : run.rampSamples),
    peakBufferedMB: round(Math.max(after.bufferedBytes, ...s.map((x) => x.bufferedBytes)) / 1e6, 2),
    peakQueueDepth: Math.max(after.queueDepth, ...s.map((x) => x.queueDepth)),
    poolSize: after.poolSize,
    connections: after.connections,
    loopDelayP99MaxMs: round(Math.max(0, ...s.map((x) => x.loopDelayP99Ms)), 1),
    deliveriesPerCpuSecond: cpuSeconds > 0 ? Math.round(deliveries / cpuSeconds) : 0,
    deliveriesPerWrite: writes > 0 ? round(deliveries / writes, 1) : 0,
  };
}

function stallSummary(cs: ClientReport[]): StallSummary {
  const stalled = cs.filter((c) => c.stalls > 0).map((c) => c.stalledMs).sort((a, b) => a - b);
  return {
    clients: cs.length,
    stalled: stalled.length,
    stalledMsMedian: stalled.length ? (stalled[Math.floor(stalled.length / 2)] as number) : 0,
    stalledMsMax: stalled.length ? (stalled[stalled.length - 1] as number) : 0,
  };
}

export function capacityStep(r: VersionResult, targetPerSecond: number): CapacityStep {
  return {
    targetPerSecond,
    deliveryRate: r.deliveryRate,
    p99Ms: r.latency.healthy.p99,
    lost: r.accounting.lost,
    valid: r.valid,
    serverCpuPct: r.server?.cpuPctMean ?? 0,
    deliveriesPerCpuSecond: r.server?.deliveriesPerCpuSecond ?? 0,
    deliveriesPerWrite: r.server?.deliveriesPerWrite ?? 0,
    machineBusyPct: r.generator.machineBusyPct,
  };
}

/** Why a capacity step does not count as sustained, or null if it does. */
export function capacityBreak(step: CapacityStep, p99LimitMs: number, reasons: string[]): string | null {
  if (!step.valid) return `not measurable: ${reasons[0] ?? 'invalid'}`;
  if (step.lost > 0) return `${fmt(step.lost)} deliveries lost`;
  if (step.p99Ms > p99LimitMs) return `p99 ${step.p99Ms.toFixed(0)} ms > ${p99LimitMs} ms`;
  return null;
}

export function capacityVerdict(label: string, c: CapacityResult): string {
  const best = c.steps.find((s) => s.deliveryRate === c.sustainedPerSecond && c.sustainedPerSecond > 0);
  const head = best
    ? `${label}: sustained ${fmt(best.deliveryRate)} deliveries/s (p99 ${best.p99Ms.toFixed(1)} ms, ${fmt(best.deliveriesPerCpuSecond)} per server CPU-second, ${best.deliveriesPerWrite} per socket write)`
    : `${label}: sustained no step`;
  const last = c.steps.at(-1);
  return c.brokeBy && last ? `${head}; at ${fmt(last.targetPerSecond)}/s: ${c.brokeBy}` : head;
}

/** A share of the planned sends below this is said in the verdict: the load was not what the header says. */
export const OFFERED_MIN_SHARE = 0.95;

/** One line that says in words what happened to this version's users, the server's health first. */
export function verdict(r: VersionResult, slowReaders: number): string {
  if (r.capacity) return capacityVerdict(r.label, r.capacity);
  const parts: string[] = [];
  const health = r.health;
  if (health.broken) parts.push(`BROKEN: ${health.findings.join('; ')}`);
  if (!r.valid) parts.push(`INVALID, the generator may have been the bottleneck (${r.invalidReasons.join('; ')})`);
  if (!health.broken && !r.valid) return `${r.label}: ${parts.join('; ')}`;
  const h = r.stalls.healthy;
  const a = r.accounting;
  const slowWord = slowReaders === 1 ? 'one slow reader' : `${slowReaders} slow readers`;
  // Only a server that stayed up, kept its clients and never refused one was stalled by its slow readers.
  const slowToBlame = slowReaders > 0 && !health.exit && health.liveness.unreachableFromS === null && health.closed.healthy === 0 && health.refused.count === 0;
  if (h.clients > 0 && h.stalled > 0) {
    const who = slowToBlame ? `${slowWord} stalled` : 'stalls hit';
    parts.push(`${who} ${h.stalled === h.clients ? 'all' : fmt(h.stalled) + ' of'} ${fmt(h.clients)} healthy clients for ${(h.stalledMsMedian / 1000).toFixed(1)} s (median)`);
  } else if (h.clients > 0) {
    parts.push(`${fmt(h.clients)} healthy clients never stalled, p99 ${msOrNa(r.latency.healthy.count, r.latency.healthy.p99)}`);
  }
  if (a.lost > 0) parts.push(lossInWords(a, slowReaders));
  if (a.kicked > 0) parts.push(`${a.kicked} slow reader${a.kicked > 1 ? 's' : ''} kicked (${CLOSE_CODES.SLOW_CONSUMER})`);
  if (r.offered.planned > 0 && r.offered.share < OFFERED_MIN_SHARE) {
    const why = r.offered.sendersLost > 0 ? `${fmt(r.offered.sendersLost)} of ${fmt(r.offered.senders)} senders lost their connection` : 'the senders could not keep their schedule';
    parts.push(`offered only ${Math.round(r.offered.share * 100)}% of the planned load (${fmt(r.offered.sent)} of ${fmt(r.offered.planned)} sends): ${why}`);
  }
  const sr = r.slowReaders;
  if (sr && !sr.pushedBack) {
    parts.push(`the slow readers did NOT push back: they were ${mb(sr.backlogBytesMedian)} behind when they read again, less than the ${mb(sr.kernelBytes)} loopback holds for them, so this run cannot show a server that blocks on a slow reader`);
  }
  if (r.server && r.accounting.receivers >= 5000) {
    const { rssPerIdleConnectionKB: idle, rssPerConnectionKB: kept, rssPerAddedConnectionKB: added } = r.server;
    const notes = [idle !== null ? `${kept} KB after the traffic` : '', added !== null ? `${added} KB per added connection` : ''].filter((x) => x !== '');
    parts.push(
      `${fmt(r.server.connections)} connections at ${idle ?? kept} KB of server RSS each${idle !== null ? ' while idle' : ''}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}, opened at ${fmt(r.generator.connectsPerSecond)}/s`,
    );
  }
  if (r.http) {
    const failed = r.http.non2xx + r.http.errors;
    const keptUp = r.http.ok >= r.http.planned * 0.98 ? '' : `, rate not kept: the server took requests slower than they were due`;
    parts.push(`POST /api/send answered in p99 ${r.http.latencyMs.p99} ms (autocannon, ${fmt(r.http.ok)} accepted of ${fmt(r.http.planned)} due${failed > 0 ? `, ${fmt(failed)} failed` : ''}${keptUp})`);
  }
  if (r.server) {
    const leak = r.server.poolSize - r.server.connections;
    if (leak > 0) parts.push(`pool holds ${fmt(leak)} dead sockets after ${fmt(r.churn.leaves)} leaves`);
    if (r.server.peakBufferedMB >= 1) parts.push(`server buffered ${r.server.peakBufferedMB} MB in socket buffers (peak RSS ${r.server.peakRssMB} MB)`);
  }
  parts.push(...health.notes);
  return `${r.label}: ${parts.join('; ')}`;
}

/** "1,436 deliveries lost, all for the 2 slow readers; healthy clients lost 0 (each dropped and told by the server)". */
function lossInWords(a: Accounting, slowReaders: number): string {
  const { healthy, slow } = a.byKind;
  const slowWord = slowReaders === 1 ? 'the slow reader' : `the ${slowReaders} slow readers`;
  const where =
    healthy.lost <= 0 ? `all for ${slowWord}; healthy clients lost 0` : slow.lost <= 0 ? 'all by healthy clients' : `${fmt(healthy.lost)} by healthy clients, ${fmt(slow.lost)} by ${slowWord}`;
  const why =
    a.unexplained <= 0
      ? a.toldDropped > 0
        ? 'each dropped by the server and told'
        : ''
      : a.toldDropped > 0
        ? `${fmt(a.unexplained)} not made by the end of the drain beyond the ${fmt(a.toldDropped)} the server told of dropping`
        : 'not made by the end of the drain, and no drop told';
  return `${fmt(a.lost)} deliveries lost, ${where}${why ? ` (${why})` : ''}`;
}

/** A latency figure, or "n/a" when nothing was measured: no samples is never 0 ms. */
export function msOrNa(count: number, ms: number): string {
  return count > 0 ? `${ms.toFixed(1)} ms` : 'n/a';
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function mapKinds<T>(f: (k: ClientKind) => T): Record<ClientKind, T> {
  return { healthy: f('healthy'), slow: f('slow'), churn: f('churn') };
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  let s = 0;
  for (const x of xs) s += f(x);
  return s;
}


