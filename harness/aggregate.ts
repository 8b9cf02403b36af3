// Turns one target's raw run (worker results, server samples) into the numbers a report shows
// (result.ts): merged latency, exact accounting, stalls, server cost, the server's and the
// generator's health, and the verdict (verdict.ts).
import type { ClientKind, ClientReport } from '../auto-client/delivery-meter.ts';
import { encodeHistogram, mergeEncoded, spectrum, summarize } from '../auto-client/histogram.ts';
import type { OfferedLoad, SwitchFigures } from '../auto-client/swarm-plan.ts';
import { fmt, round } from '../common/helpers.ts';
import { clusterFigures, recoveryFigures } from './cluster-figures.ts';
import { assessHealth, GENERATOR_LIMITS, isGeneratorFailure } from './health.ts';
import { stuckReaderBuffers } from './loopback-buffers.ts';
import { CLOSE_CODES } from '../versions/protocol.ts';
import { roomOf } from './plan.ts';
import type { Accounting, FloodFigures, KindAccounting, SlowReaderEffect, StallSummary, VersionResult } from './result.ts';
import type { TargetRun } from './run-target.ts';
import { verdict } from './verdict.ts';

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

  // A send the server refused (v4's BACKPLANE_DOWN) was never sent: nobody is owed it.
  // Nor is one its node took and died with before it reached the stream (counted and reported as such).
  for (const c of clients) if (c.recovery) sentByRoom[c.room] = (sentByRoom[c.room] ?? 0) - c.recovery.refused - c.recovery.lostWithNode;

  const merged = Object.fromEntries(KINDS.map((k) => [k, mergeEncoded(run.workers.map((w) => w.latency[k].corrected))])) as Record<ClientKind, ReturnType<typeof mergeEncoded>>;
  const mergedRaw = Object.fromEntries(KINDS.map((k) => [k, mergeEncoded(run.workers.map((w) => w.latency[k].uncorrected))])) as Record<ClientKind, ReturnType<typeof mergeEncoded>>;

  // Nobody is filtered out: a client that never connected, or that the server closed, is owed its room's messages too.
  const counted = clients.filter((c) => c.kind !== 'churn');
  const kicked = clients.filter((c) => c.kind === 'slow' && c.closedByServer?.code === CLOSE_CODES.SLOW_CONSUMER).length;
  // direct: a connection is owed what its peers sent (its user's partner's, its own user's), not its room's.
  const sentBySender = new Map<number, number>();
  for (const c of clients) if (c.sent !== undefined) sentBySender.set(c.id, c.sent);
  const owedTo = (c: ClientReport): number => (c.peers ? sum(c.peers, (id) => sentBySender.get(id) ?? 0) : (sentByRoom[c.room] ?? 0));
  const owed = (cs: readonly ClientReport[]): KindAccounting => {
    const expected = sum(cs, owedTo);
    const received = sum(cs, (c) => c.received - (c.leaked ?? 0)); // (a leak is not a delivery it was owed)
    return { clients: cs.length, expected, received, lost: expected - received, toldDropped: sum(cs, (c) => c.droppedByServer) };
  };
  const byKind = { healthy: owed(counted.filter((c) => c.kind === 'healthy')), slow: owed(counted.filter((c) => c.kind === 'slow')) };
  const expected = byKind.healthy.expected + byKind.slow.expected;
  const received = byKind.healthy.received + byKind.slow.received;
  const toldDropped = byKind.healthy.toldDropped + byKind.slow.toldDropped;
  const before = run.statsBefore;
  const after = run.statsAfter;
  // What the server relayed, as the best-served healthy client of each room saw it: a server that
  // discards at ingress relays to nobody what it dropped, and no slow reader was owed that either.
  const relayedShare: Record<string, number> = {};
  for (const c of counted) {
    if (c.kind !== 'healthy' || c.peers || !(sentByRoom[c.room]! > 0)) continue;
    relayedShare[c.room] = Math.max(relayedShare[c.room] ?? 0, Math.min(1, c.received / sentByRoom[c.room]!));
  }
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
    relayedShare: Object.keys(relayedShare).length > 0 ? round(Math.min(...Object.values(relayedShare)), 3) : 1,
    ...(clients.some((c) => c.peers) ? { leaked: sum(clients, (c) => c.leaked ?? 0) } : {}),
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
    slowReaders: slowReaderEffect(run, clients, server, relayedShare),
    stalls: { healthy: stallSummary(counted.filter((c) => c.kind === 'healthy')), slow: stallSummary(clients.filter((c) => c.kind === 'slow')) },
    deliveriesPerSecond: perSecond.map((n) => n ?? 0),
    latencyOverTime: latencyOverTime(run.workers),
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
    cluster: clusterFigures(run.statsBefore, run.statsAfter, run.redisCpuPct),
    // (a flood is no fault a client recovers from: its figures are its own)
    recovery: recoveryFigures((run.faults ?? []).filter((f) => f.kind !== 'flood'), clients),
    ...floodOf(run),
    ...switchesOf(run),
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
function slowReaderEffect(run: TargetRun, clients: readonly ClientReport[], server: VersionResult['server'], relayedShare: Readonly<Record<string, number>>): SlowReaderEffect | null {
  const slow = clients.filter((c) => c.kind === 'slow');
  if (slow.length === 0) return null;
  const sentBefore: Record<string, number> = {};
  for (const w of run.workers) for (const [room, n] of Object.entries(w.sentBeforeResumeByRoom)) sentBefore[room] = (sentBefore[room] ?? 0) + n;
  // A slow reader is behind by what the server relayed into its room before it read again, not by what was sent.
  const owed = (room: string): number => (sentBefore[room] ?? 0) * (relayedShare[room] ?? 1);
  const backlogs = slow.map((c) => Math.max(0, owed(c.room) - (c.receivedBeforeResume ?? c.received)) * run.config.size).sort((a, b) => a - b);
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

export function stallSummary(cs: readonly ClientReport[]): StallSummary {
  const sorted = (xs: number[]): number[] => xs.sort((a, b) => a - b);
  const stalled = sorted(cs.filter((c) => c.stalls > 0).map((c) => c.stalledMs));
  const behind = sorted(cs.filter((c) => c.behindMs > 0).map((c) => c.behindMs));
  const affected = sorted(cs.filter((c) => c.stalls > 0 || c.behindMs > 0).map((c) => Math.max(c.stalledMs, c.behindMs)));
  const median = (xs: number[]): number => (xs.length ? (xs[Math.floor(xs.length / 2)] as number) : 0);
  return {
    clients: cs.length,
    stalled: stalled.length,
    stalledMsMedian: median(stalled),
    stalledMsMax: stalled.at(-1) ?? 0,
    behind: behind.length,
    behindMsMedian: median(behind),
    behindMsMax: behind.at(-1) ?? 0,
    affected: affected.length,
    affectedMsMedian: median(affected),
  };
}

function mapKinds<T>(f: (k: ClientKind) => T): Record<ClientKind, T> {
  return { healthy: f('healthy'), slow: f('slow'), churn: f('churn') };
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  let s = 0;
  for (const x of xs) s += f(x);
  return s;
}

/** p50 and p99 of the healthy receivers' latency for each second of intended send time, all workers merged. */
/** The switchers' requests over every worker (none asked: no figures). */
function switchesOf(run: TargetRun): { switches?: SwitchFigures } {
  const all = run.workers.map((w) => w.switches).filter((s): s is SwitchFigures => s !== undefined);
  const asked = sum(all, (s) => s.asked);
  if (asked === 0) return {};
  return { switches: { asked, joined: sum(all, (s) => s.joined), refused: sum(all, (s) => s.refused), unanswered: sum(all, (s) => s.unanswered), slowestMs: Math.max(...all.map((s) => s.slowestMs)) } };
}

/** flood: the honest clients' p99 over the measured seconds before the flood began, and over those after, by intended send time. */
function floodOf(run: TargetRun): { flood?: FloodFigures } {
  const f = (run.faults ?? []).find((e) => e.kind === 'flood');
  if (!f?.flood) return {};
  const { warmupS, durationS } = run.config;
  const p99Over = (from: number, to: number): number => {
    const encoded = run.workers.flatMap((w) => (w.healthyLatencyBySecond ?? []).slice(from, to)).filter((e): e is string => typeof e === 'string');
    return encoded.length > 0 ? summarize(mergeEncoded(encoded)).p99 : 0;
  };
  const quietP99Ms = p99Over(warmupS, Math.floor(f.atS));
  const floodedP99Ms = p99Over(Math.ceil(f.atS), warmupS + durationS);
  return { flood: { atS: f.atS, ...f.flood, quietP99Ms, floodedP99Ms, ratio: quietP99Ms > 0 ? round(floodedP99Ms / quietP99Ms, 1) : 0 } };
}

export function latencyOverTime(workers: ReadonlyArray<{ healthyLatencyBySecond?: Array<string | null> }>): VersionResult['latencyOverTime'] {
  const seconds = Math.max(0, ...workers.map((w) => w.healthyLatencyBySecond?.length ?? 0));
  const out: VersionResult['latencyOverTime'] = [];
  for (let t = 0; t < seconds; t++) {
    const encoded = workers.map((w) => w.healthyLatencyBySecond?.[t]).filter((e): e is string => typeof e === 'string');
    if (encoded.length === 0) continue;
    const s = summarize(mergeEncoded(encoded));
    out.push({ t, p50Ms: s.p50, p99Ms: s.p99, count: s.count });
  }
  return out;
}
