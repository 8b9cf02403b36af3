// Whether the server under test held up, in words: it exited, stopped accepting connections,
// stopped relaying (for a while, or for good), let clients go that nobody asked it to, or refused
// them. A run that finds any of these found a broken server, whatever its latency figures say;
// a failure of the server is never put on the generator.
import { TIMELINE_STEP_MS, type ClientReport } from '../auto-client/delivery-meter.ts';
import { fmt, round } from '../common/helpers.ts';
import { CLOSE_CODES, closeCodeInWords } from '../versions/protocol.ts';
import type { ConnectFailure, SwarmResult } from '../auto-client/swarm-plan.ts';
import type { LivenessTrace, RelayCheck } from './server-health.ts';
import type { ServerExitReport, TargetRun } from './run-target.ts';

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

/** A stretch of the run in which messages were being sent and no healthy client received any. */
export interface RelayOutage {
  /** Seconds since sending began. */
  fromS: number;
  seconds: number;
  /** No healthy client received anything from `fromS` to the end of the run. */
  neverResumed: boolean;
}

export interface ClosedByServer {
  healthy: number;
  slow: number;
  churn: number;
  /** How many closes of healthy and churn clients had each code (1006: the connection ended without a close frame). */
  codes: Record<string, number>;
  /** The same for slow readers: a server may close them by policy (v3's kick, 4008). */
  slowCodes: Record<string, number>;
  /** The first close of a healthy or churn client, in seconds since sending began. */
  firstAtS: number | null;
  /** Closes the scenario's own fault caused (a node it killed): counted here, not in the others. */
  byFault: number;
  /** Connections v4 could not take in while the scenario held Redis down (1013, try again later): its defined answer. */
  refusedInOutage: number;
}

export interface ServerHealth {
  /** The run found a broken server: it exited, stopped accepting, stopped relaying, or let go or refused clients. */
  broken: boolean;
  /** What broke, in words, worst first; empty for a server that held up. */
  findings: string[];
  /** What is worth knowing but is no fault: slow readers closed by policy, frames the generator could not read. */
  notes: string[];
  /** One or two words for a table cell: "ok", "exited 2", "stopped relaying", … */
  status: string;
  exit: ServerExitReport | null;
  liveness: LivenessTrace;
  afterRun: RelayCheck;
  relayOutage: RelayOutage | null;
  closed: ClosedByServer;
  refused: { count: number; firstAtS: number | null; example: string | null };
  unparsed: { count: number; samples: string[] };
}

/** A relay outage shorter than this is a stall, not an outage, whatever else it is. */
export const OUTAGE_MIN_MS = 2000;
/** …and it must be this many stall thresholds long, so a slow schedule's gaps never make one. */
const OUTAGE_STALL_MULTIPLE = 4;

/** errno codes of a connect that failed on the generator's side (its files, its ports), not the server's. */
const GENERATOR_ERRNO = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'EADDRINUSE', 'ENOBUFS', 'ENOMEM']);

export function isGeneratorFailure(f: ConnectFailure): boolean {
  return f.code !== null && GENERATOR_ERRNO.has(f.code);
}

/**
 * The longest stretch, from the start of the measured window to the end of the drain, in which a
 * message had been sent within the last `owedSteps` steps and no healthy client received anything.
 * Steps are TIMELINE_STEP_MS wide; null when no stretch reaches `minSteps`.
 */
export function findRelayOutage(healthy: readonly number[], sent: readonly number[], fromStep: number, toStep: number, owedSteps: number, minSteps: number): RelayOutage | null {
  let best: { start: number; length: number } | null = null;
  let runStart = -1;
  let sentRecently = 0; // messages sent in the last owedSteps steps
  for (let b = Math.max(0, fromStep - owedSteps); b < toStep; b++) {
    sentRecently += (sent[b] ?? 0) - (b - owedSteps >= 0 ? (sent[b - owedSteps] ?? 0) : 0);
    if (b < fromStep) continue;
    const silent = sentRecently > 0 && (healthy[b] ?? 0) === 0;
    if (silent && runStart < 0) runStart = b;
    if (!silent && runStart >= 0) {
      if (!best || b - runStart > best.length) best = { start: runStart, length: b - runStart };
      runStart = -1;
    }
  }
  if (runStart >= 0 && (!best || toStep - runStart > best.length)) best = { start: runStart, length: toStep - runStart };
  if (!best || best.length < minSteps) return null;
  const start = best.start;
  const neverResumed = !healthy.some((n, b) => b >= start && n > 0);
  const stepS = TIMELINE_STEP_MS / 1000;
  return { fromS: round(start * stepS, 1), seconds: round(best.length * stepS, 1), neverResumed };
}

/** Sums per-worker timelines step by step. */
export function sumTimelines(timelines: ReadonlyArray<readonly number[]>): number[] {
  const out: number[] = [];
  for (const t of timelines) t.forEach((n, i) => (out[i] = (out[i] ?? 0) + n));
  return Array.from(out, (n) => n ?? 0);
}

export function assessHealth(run: TargetRun, clients: readonly ClientReport[], healthyCount: number): ServerHealth {
  const { config, timing, watch } = run;
  const atS = (us: number): number => round((us - timing.sendStartUs) / 1e6, 1);

  const closed: ClosedByServer = { healthy: 0, slow: 0, churn: 0, codes: {}, slowCodes: {}, firstAtS: null, byFault: 0, refusedInOutage: 0 };
  // A node the scenario killed lets its clients go: that is the fault under test, not the server failing.
  const kills = (run.faults ?? []).filter((f) => f.kind === 'node-kill');
  const byFault = (atUs: number): boolean => kills.some((f) => atS(atUs) >= f.atS - FAULT_SLACK_S && atS(atUs) <= f.atS + FAULT_SLACK_S);
  // While the scenario holds Redis down, v4 answers a new connection at once with BACKPLANE_DOWN and 1013: by design.
  const redisDown = (run.faults ?? []).filter((f) => f.kind === 'broker-outage' || f.kind === 'redis-oom');
  const inRedisDown = (atUs: number): boolean => redisDown.some((f) => atS(atUs) >= f.atS - FAULT_SLACK_S && atS(atUs) <= (f.endS ?? f.atS) + FAULT_SLACK_S);
  const tryAgainLater = `(${CLOSE_CODES.TRY_AGAIN_LATER})`;
  for (const c of clients) {
    if (!c.closedByServer) continue;
    if (byFault(c.closedByServer.atUs)) {
      closed.byFault++;
      continue;
    }
    if (c.closedByServer.code === CLOSE_CODES.TRY_AGAIN_LATER && inRedisDown(c.closedByServer.atUs)) {
      closed.refusedInOutage++;
      continue;
    }
    closed[c.kind]++;
    const codes = c.kind === 'slow' ? closed.slowCodes : closed.codes;
    const code = String(c.closedByServer.code);
    codes[code] = (codes[code] ?? 0) + 1;
    if (c.kind !== 'slow') {
      const t = atS(c.closedByServer.atUs);
      if (closed.firstAtS === null || t < closed.firstAtS) closed.firstAtS = t;
    }
  }

  const outageRefusals = run.workers.flatMap((w) => w.connectFailures).filter((f) => f.message.includes(tryAgainLater) && inRedisDown(f.atUs));
  closed.refusedInOutage += outageRefusals.length;
  const serverFailures = run.workers.flatMap((w) => w.connectFailures).filter((f) => !isGeneratorFailure(f) && !outageRefusals.includes(f));
  const generatorFailures = run.workers.flatMap((w) => w.connectFailures).filter(isGeneratorFailure).length;
  const allFailures = run.workers.reduce((n, w) => n + w.connectFailureCount, 0) - outageRefusals.length;
  // Only a sample of failures travels with its text; the rest are the server's in the same share.
  const kept = serverFailures.length + generatorFailures;
  const refusedCount = kept === 0 ? 0 : Math.round((allFailures * serverFailures.length) / kept);
  const firstRefused = serverFailures.reduce<ConnectFailure | null>((a, f) => (a === null || f.atUs < a.atUs ? f : a), null);
  const refused = { count: refusedCount, firstAtS: firstRefused ? atS(firstRefused.atUs) : null, example: firstRefused?.message ?? null };

  const unparsed = { count: 0, samples: [] as string[] };
  for (const w of run.workers) {
    unparsed.count += w.unparsed.count;
    unparsed.samples.push(...w.unparsed.samples.slice(0, 3 - unparsed.samples.length));
  }

  const stepMs = TIMELINE_STEP_MS;
  const relayOutage =
    healthyCount > 0
      ? findRelayOutage(
          sumTimelines(run.workers.map((w: SwarmResult) => w.healthyTimeline)),
          sumTimelines(run.workers.map((w: SwarmResult) => w.sentTimeline)),
          0, // from when sending began: the warm-up sends too, at a lower rate the owed window allows for
          Math.round(((config.warmupS + config.durationS + config.drainS) * 1000) / stepMs),
          Math.max(Math.round(1000 / stepMs), Math.ceil(run.stallThresholdMs / stepMs)),
          Math.ceil(Math.max(OUTAGE_MIN_MS, OUTAGE_STALL_MULTIPLE * run.stallThresholdMs) / stepMs),
        )
      : null;

  const findings: string[] = [];
  let status = 'ok';
  const setStatus = (s: string): void => {
    if (status === 'ok') status = s;
  };
  const exit = watch.exit;
  const unreachable = watch.liveness.unreachableFromS;
  if (exit) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const words = lastWords(exit.lastLines);
    findings.push(`the server ${how} ${when(exit.atS)}${words ? `: ${words}` : ''}`);
    setStatus(exit.signal ? `killed (${exit.signal})` : `exited ${exit.code}`);
  } else if (unreachable !== null) {
    findings.push(`unreachable from ${unreachable} s: it accepted no TCP connection after that (${watch.liveness.lastError ?? 'no answer'})`);
    setStatus('unreachable');
  }
  // While the scenario holds Redis down, v4 refuses every send by design: no relay is the defined outcome.
  const outages = (run.faults ?? []).filter((f) => f.kind === 'broker-outage' || f.kind === 'redis-pause' || f.kind === 'redis-oom');
  const inOutage = relayOutage !== null && outages.some((f) => relayOutage.fromS >= f.atS - FAULT_SLACK_S && (relayOutage.neverResumed ? false : relayOutage.fromS + relayOutage.seconds <= (f.endS ?? f.atS) + FAULT_SLACK_S));
  if (relayOutage && inOutage) {
    // (reported in the notes below)
  } else if (relayOutage && !exit && unreachable === null) {
    if (relayOutage.neverResumed) {
      findings.push(
        `the server stopped relaying at ${relayOutage.fromS} s and ${watch.afterRun.relaying ? 'relayed again only after every client had gone' : 'was still not relaying after the run (deadlock?)'}`,
      );
    } else {
      findings.push(`the server stopped relaying to every healthy client at ${relayOutage.fromS} s for ${relayOutage.seconds} s while messages were being sent`);
    }
    setStatus('stopped relaying');
  } else if (!watch.afterRun.relaying && !exit && unreachable === null) {
    findings.push(`after the run, the server was not relaying: ${watch.afterRun.detail}`);
    setStatus(watch.afterRun.accepting ? 'not relaying' : 'not accepting');
  }
  const unasked = closed.healthy + closed.churn;
  if (unasked > 0) {
    findings.push(`the server closed ${fmt(unasked)} client${unasked === 1 ? '' : 's'} nobody asked it to (${codesInWords(closed.codes)}), the first ${when(closed.firstAtS ?? 0)}`);
    setStatus(`closed ${fmt(unasked)}`);
    // Its own traffic past the server's limit: the scenario never ran as planned, and a smaller size would.
    if ((closed.codes['1009'] ?? 0) > 0) {
      findings.push(`the server took the scenario's ${fmt(config.size)} B messages for too big (1009): the scenario never ran as planned; try a --size under the server's limit (e.g. --size 256)`);
    }
  }
  if (refused.count > 0) {
    findings.push(`${fmt(refused.count)} connect${refused.count === 1 ? '' : 's'} failed on the server's side (refused, reset, or never greeted), the first ${when(refused.firstAtS ?? 0)}: ${refused.example}`);
    setStatus(`${fmt(refused.count)} connects failed`);
  }

  const notes: string[] = [];
  if (closed.refusedInOutage > 0) notes.push(`${fmt(closed.refusedInOutage)} connection${closed.refusedInOutage === 1 ? '' : 's'} made while the scenario held Redis down ${closed.refusedInOutage === 1 ? 'was' : 'were'} answered at once (BACKPLANE_DOWN, closed with 1013: try again later), as designed`);
  if (closed.byFault > 0) notes.push(`${fmt(closed.byFault)} client${closed.byFault === 1 ? '' : 's'} lost their node when the scenario killed it at ${kills[0]?.atS} s, as intended`);
  if (relayOutage && inOutage) notes.push(`no healthy client received anything from ${relayOutage.fromS} s for ${relayOutage.seconds} s while the scenario held Redis ${outages.some((f) => f.kind === 'redis-pause') ? 'paused, as designed: sends waited for it' : outages.some((f) => f.kind === 'redis-oom') ? 'out of memory, as designed: sends were refused (BACKPLANE_DOWN, OOM)' : 'down, as designed: sends were refused (BACKPLANE_DOWN)'}`);
  if (unparsed.count > 0) {
    notes.push(`${fmt(unparsed.count)} frame${unparsed.count === 1 ? '' : 's'} the generator could not read (neither a probe nor JSON), e.g. ${JSON.stringify(unparsed.samples[0] ?? '')}`);
  }

  return {
    broken: findings.length > 0,
    findings,
    notes,
    status,
    exit,
    liveness: watch.liveness,
    afterRun: watch.afterRun,
    relayOutage,
    closed,
    refused,
    unparsed,
  };
}

/** "1006 ×5, 1011 ×2", with 1006 said in words. */
/** Seconds either side of an injected fault within which what it causes is counted as its doing. */
const FAULT_SLACK_S = 2;

export function codesInWords(codes: Record<string, number>): string {
  return Object.entries(codes)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${closeCodeInWords(Number(code))} ×${fmt(n)}`)
    .join(', ');
}

function when(s: number): string {
  return s < 0 ? 'before sending began' : `${s} s after sending began`;
}

/** The line of a crashed server's stderr that says most: an error, a panic, an exception; else its last. */
function lastWords(lines: readonly string[]): string | null {
  const said = lines.map((l) => l.trim()).filter((l) => l !== '');
  return said.find((l) => /panic|fatal|error|exception|abort/i.test(l)) ?? said.at(-1) ?? null;
}
