// Runs one scenario against one target: starts the version as its own process (or uses an
// external URL), spreads the clients over worker processes and loopback source addresses,
// ramps up, warms up, measures a fixed window, drains, samples the server every second, and
// stops everything it started in a finally.
import { fork, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ClientSpec, SwarmPlan, SwarmResult, SwarmTiming } from '../auto-client/swarm.ts';
import type { FromWorker, ToWorker } from '../auto-client/swarm-worker.ts';
import { nowUs } from '../auto-client/probe.ts';
import { localAddressOf } from '../common/helpers.ts';
import { DEFAULT_ROOM, type ServerStats } from '../versions/protocol.ts';
import { slowResumeUs, type ScenarioConfig } from './scenarios.ts';
import { pushOverHttp, type HttpPushResult } from './http-push.ts';
import { checkRelay, LivenessProbe, type LivenessTrace, type RelayCheck } from './server-health.ts';
import { ROOT, startServerProcess, stopProcessGroup, track, type ServerProcess } from './server-process.ts';

const WORKER = fileURLToPath(new URL('../auto-client/swarm-worker.ts', import.meta.url));
/** Connects a worker keeps in flight: a ramp is bound by connect latency, not by either side's CPU. */
const CONNECTS_IN_FLIGHT = 1000;
/** How long all workers may take to connect their clients. */
const READY_TIMEOUT_MS = 120_000;
/** Grace after the drain for workers to report. */
const RESULT_GRACE_MS = 30_000;
/** Time between the go signal and the first scheduled send, so every worker starts together. */
const START_DELAY_US = 500_000;
const SAMPLE_INTERVAL_MS = 1000;
/** While clients connect, the server's RSS is read this often: its slope is what one more connection costs. */
const RAMP_SAMPLE_INTERVAL_MS = 250;
/**
 * Workers run at this niceness. Server and generator share the cores; when both want one, the
 * server gets it. That can only delay the generator, which shows as schedule lag (policed) or
 * as more latency, never as less: it keeps the measuring from slowing what it measures.
 */
export const GENERATOR_NICE = 10;
/** A gap between deliveries is a stall when longer than this, or 10 schedule gaps if that is longer. */
export const STALL_MIN_MS = 250;
/** The same with autocannon as a sender: its rate limiter releases each second's requests at once. */
const HTTP_STALL_MIN_MS = 1500;

export interface Target {
  /** 'v1', 'v3-kick', or 'external'. */
  label: string;
  /** Arguments for versions/cli.ts, e.g. ['v3', '--on-full', 'kick']; absent for an external URL. */
  args?: string[];
  /** ws:// URL of an external server that relays {token, content} to every client. */
  url?: string;
  /** With args: the server script to start instead of versions/cli.ts (the tests' misbehaving servers). */
  script?: string;
}

/** How a spawned server ended before the harness stopped it. */
export interface ServerExitReport {
  code: number | null;
  signal: string | null;
  /** Seconds since sending began (negative: before). */
  atS: number;
  /** Its last lines on stderr. */
  lastLines: string[];
}

/** What the harness saw of the server itself, apart from what the clients measured. */
export interface ServerWatch {
  /** A spawned server that ended on its own (null: it ran until stopped, or it is not ours). */
  exit: ServerExitReport | null;
  /** TCP connects once a second through the run. */
  liveness: LivenessTrace;
  /** Two fresh clients after the drain. */
  afterRun: RelayCheck;
}

/** One sample of the server's /api/stats, `t` in seconds since sending started. */
export interface ServerSample {
  t: number;
  connections: number;
  poolSize: number;
  deliveries: number;
  drops: number;
  kicks: number;
  queueDepth: number;
  bufferedBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  loopDelayP99Ms: number;
  cpuPct: number;
}

export interface TargetRun {
  target: Target;
  describe: string;
  config: ScenarioConfig;
  timing: SwarmTiming;
  workers: SwarmResult[];
  samples: ServerSample[];
  /** /api/stats before the clients connected and after the drain (null for external targets). */
  statsBefore: RawStats | null;
  statsAfter: RawStats | null;
  stallThresholdMs: number;
  serverOutput: string[];
  /** http-push: what autocannon saw (null when no HTTP sender ran). */
  http: HttpPushResult | null;
  /** From telling every (loaded) worker to connect to all of them reporting their clients greeted. */
  connectSeconds: number;
  /** Share of all cores busy during the measured window (server, generator and anything else), or null off Linux. */
  machineBusyPct: number | null;
  /** The server's connections and RSS while the clients connected. */
  rampSamples: Array<{ connections: number; rssBytes: number }>;
  /** /api/stats once every client was greeted, before anything was sent: the server with idle connections. */
  statsConnected: RawStats | null;
  watch: ServerWatch;
}

/** Lines of a crashed server's stderr a report quotes. */
const STDERR_TAIL_LINES = 10;

/** What /api/stats answers: the host's JSON contract, shared with the page. */
export type RawStats = ServerStats;

export type Phase = 'start' | 'connect' | 'warmup' | 'measure' | 'drain' | 'stop';
export type ProgressFn = (label: string, phase: Phase, fraction: number) => void;

export function roomOf(i: number, rooms: number): string {
  return rooms === 1 ? DEFAULT_ROOM : `room-${i % rooms}`;
}

export function planClients(config: ScenarioConfig, wsUrls: string[]): ClientSpec[] {
  const specs: ClientSpec[] = [];
  const total = config.clients + config.churnClients;
  const slowFromUs = 0; // slow readers stop when sending starts
  const slowUntilUs = slowResumeUs(config);
  for (let i = 0; i < total; i++) {
    const churn = i >= config.clients;
    const slow = !churn && i >= config.clients - config.slow;
    specs.push({
      id: i,
      room: roomOf(i, config.rooms),
      sends: i < config.senders,
      kind: churn ? 'churn' : slow ? 'slow' : 'healthy',
      ...(slow ? { slow: { mode: config.slowMode, fromUs: slowFromUs, untilUs: slowUntilUs, bytesPerSec: config.slowBytesPerSec } } : {}),
      localAddress: localAddressOf(i),
      url: wsUrls[i % wsUrls.length] as string,
    });
  }
  return specs;
}

/**
 * With two or more workers, worker 0 holds only the senders: a worker busy parsing a flood of
 * deliveries must not delay the send schedule (its lag would be the generator's, not the server's).
 */
export function workerOf(spec: ClientSpec, workers: number): number {
  if (workers < 2) return 0;
  return spec.sends ? 0 : 1 + (spec.id % (workers - 1));
}

export function stallThresholdMs(config: ScenarioConfig): number {
  // The slowest room's message rate: WebSocket senders spread over the rooms, HTTP into room 0 only.
  const perRoom = Math.floor(config.senders / config.rooms) * config.rate + (config.rooms === 1 ? config.httpRate : 0);
  if (!(perRoom > 0)) throw new RangeError('every room needs a sender (senders >= rooms, or httpRate with one room)');
  const roomGapMs = 1000 / perRoom;
  // autocannon spends each second's request budget in a burst: gaps of up to a second are its own.
  const floorMs = config.httpRate > 0 ? HTTP_STALL_MIN_MS : STALL_MIN_MS;
  return Math.max(floorMs, 10 * roomGapMs * config.burst);
}

export async function runTarget(target: Target, config: ScenarioConfig, seed: number, onProgress: ProgressFn): Promise<TargetRun> {
  const epochNs = process.hrtime.bigint();
  const label = target.label;
  let server: ServerProcess | null = null;
  const workers: ChildProcess[] = [];
  const samples: ServerSample[] = [];
  let sampler: NodeJS.Timeout | null = null;
  let liveness: LivenessProbe | null = null;
  try {
    onProgress(label, 'start', 0);
    let wsUrl: string;
    let statsUrl: string | null = null;
    let describe = target.label;
    if (target.args) {
      server = await startServerProcess(target.args, target.script);
      wsUrl = server.info.wsUrl;
      statsUrl = `${server.info.url}api/stats`;
      describe = server.info.describe;
    } else if (target.url) {
      wsUrl = target.url;
    } else {
      throw new TypeError(`target ${label} needs args or url`);
    }
    const wsTarget = new URL(wsUrl);
    liveness = new LivenessProbe(wsTarget.hostname.replace(/^\[|\]$/g, ''), Number(wsTarget.port || 80), () => nowUs(epochNs) / 1e6);
    liveness.start();
    const statsBefore = statsUrl ? await fetchStats(statsUrl) : null;
    const threshold = stallThresholdMs(config);
    const specs = planClients(config, [wsUrl]);
    const slowUntilUs = slowResumeUs(config);
    const plans: SwarmPlan[] = Array.from({ length: config.workers }, (_, w) => ({
      workerId: w,
      epochNs: epochNs.toString(),
      clients: specs.filter((s) => workerOf(s, config.workers) === w),
      ratePerSender: config.rate,
      poisson: config.poisson,
      burst: config.burst,
      seed,
      sizeBytes: config.size,
      awaitJoined: target.args !== undefined && target.script === undefined, // only our versions greet with `joined`
      stallThresholdUs: threshold * 1000,
      churnPeriodMs: config.churnPeriodMs,
      connectConcurrency: CONNECTS_IN_FLIGHT,
      slowResumeUs: config.slow > 0 ? slowUntilUs : null,
    }));

    onProgress(label, 'connect', 0);
    const channels = plans.map((plan) => {
      const child = track(fork(WORKER, [], { cwd: ROOT, execArgv: ['--import', 'tsx'], detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      workers.push(child);
      if (child.pid !== undefined) setPriority(child.pid, GENERATOR_NICE);
      return { child, plan, ...workerChannel(child) };
    });
    // Every worker loads and takes its plan first; then all connect at once (swarm-worker.ts).
    for (const ch of channels) ch.child.send({ type: 'plan', plan: ch.plan } satisfies ToWorker);
    await Promise.all(channels.map((ch) => ch.next('planned', READY_TIMEOUT_MS)));
    const connectStart = nowUs(epochNs);
    const rampSamples: TargetRun['rampSamples'] = [];
    const rampSampler = statsUrl
      ? setInterval(() => {
          fetchStats(statsUrl)
            .then((s) => rampSamples.push({ connections: s.connections, rssBytes: s.rssBytes }))
            .catch(() => {});
        }, RAMP_SAMPLE_INTERVAL_MS)
      : null;
    for (const ch of channels) ch.child.send({ type: 'connect' } satisfies ToWorker);
    try {
      await Promise.all(channels.map((ch) => ch.next('ready', READY_TIMEOUT_MS)));
    } finally {
      if (rampSampler) clearInterval(rampSampler);
    }
    const connectSeconds = (nowUs(epochNs) - connectStart) / 1e6;
    const statsConnected = statsUrl ? await fetchStats(statsUrl).catch(() => null) : null; // a reading, not a requirement

    const start = nowUs(epochNs) + START_DELAY_US;
    const timing: SwarmTiming = {
      sendStartUs: start,
      measureStartUs: start + config.warmupS * 1e6,
      measureEndUs: start + (config.warmupS + config.durationS) * 1e6,
      drainEndUs: start + (config.warmupS + config.durationS + config.drainS) * 1e6,
    };
    if (statsUrl) {
      let last: RawStats | null = null;
      let lastAt = 0;
      sampler = setInterval(() => {
        const at = nowUs(epochNs);
        fetchStats(statsUrl)
          .then((s) => {
            const cpuPct = last ? ((s.cpuUserUs + s.cpuSystemUs - last.cpuUserUs - last.cpuSystemUs) / (at - lastAt)) * 100 : 0;
            last = s;
            lastAt = at;
            samples.push({
              t: Math.round((at - timing.sendStartUs) / 1e5) / 10,
              connections: s.connections,
              poolSize: s.poolSize,
              deliveries: s.deliveries,
              drops: s.drops,
              kicks: s.kicks,
              queueDepth: s.queueDepth,
              bufferedBytes: s.bufferedBytes,
              rssBytes: s.rssBytes,
              heapUsedBytes: s.heapUsedBytes,
              loopDelayP99Ms: s.loopDelayMs.p99,
              cpuPct: Math.round(cpuPct * 10) / 10,
            });
          })
          .catch(() => {}); // a server too busy to answer is visible as a gap in the series
      }, SAMPLE_INTERVAL_MS);
    }
    for (const ch of channels) ch.child.send({ type: 'go', timing } satisfies ToWorker);
    // The server as the clients leave it: read just before the drain ends, while they are connected.
    // A server that died answers nothing: its report then has no server figures, and its health says why.
    const statsAfterP = statsUrl
      ? sleep((timing.drainEndUs - nowUs(epochNs)) / 1000 - 150)
          .then(() => fetchStats(statsUrl))
          .catch(() => null)
      : Promise.resolve(null);
    // The whole machine over the measured window: server and generator share its cores.
    const machineP = sleep((timing.measureStartUs - nowUs(epochNs)) / 1000)
      .then(() => readCpuTimes())
      .then(async (start) => {
        await sleep((timing.measureEndUs - nowUs(epochNs)) / 1000);
        return busyPct(start, await readCpuTimes());
      })
      .catch(() => null);
    const httpP =
      config.httpRate > 0 && server
        ? sleep((timing.sendStartUs - nowUs(epochNs)) / 1000).then(() =>
            pushOverHttp(`${server!.info.url}api/send`, roomOf(0, config.rooms), config.httpRate, config.warmupS + config.durationS, config.size, epochNs),
          )
        : Promise.resolve(null);
    httpP.catch(() => {});
    const total = (timing.drainEndUs - timing.sendStartUs) / 1e6;
    const ticker = setInterval(() => {
      const t = (nowUs(epochNs) - timing.sendStartUs) / 1e6;
      if (t < 0) return; // still connected and waiting for the start (a timer may fire a little early)
      const phase: Phase = t < config.warmupS ? 'warmup' : t < config.warmupS + config.durationS ? 'measure' : 'drain';
      onProgress(label, phase, Math.min(1, Math.max(0, t / total)));
    }, 500);
    let results: SwarmResult[];
    try {
      const waitMs = (timing.drainEndUs - nowUs(epochNs)) / 1000 + RESULT_GRACE_MS;
      results = await Promise.all(channels.map((ch) => ch.next('result', waitMs).then((m) => (m as Extract<FromWorker, { type: 'result' }>).result)));
    } finally {
      clearInterval(ticker);
    }
    const statsAfter = await statsAfterP;
    const http = await httpP;
    const machineBusyPct = await machineP;
    // Every client has gone: does the server still take two fresh ones and relay between them?
    const afterRun = await checkRelay(wsUrl, roomOf(0, config.rooms), epochNs);
    onProgress(label, 'stop', 1);
    const originS = timing.sendStartUs / 1e6;
    const exited = server?.exited ?? null;
    const watch: ServerWatch = {
      exit: exited && server
        ? { code: exited.code, signal: exited.signal, atS: Math.round((Number(exited.atNs - epochNs) / 1e9 - originS) * 10) / 10, lastLines: server.stderr.slice(-STDERR_TAIL_LINES) }
        : null,
      liveness: await liveness.stop(originS),
      afterRun,
    };
    return { target, describe, config, timing, workers: results, samples, statsBefore, statsAfter, stallThresholdMs: threshold, serverOutput: server?.output.slice(-50) ?? [], http, connectSeconds, machineBusyPct, rampSamples, statsConnected, watch };
  } finally {
    if (sampler) clearInterval(sampler);
    await liveness?.stop(0);
    await Promise.all(workers.map((w) => stopProcessGroup(w, 2_000)));
    await server?.stop();
  }
}

/** Waits for the next message of a type from a worker; a worker error or exit rejects. */
export function workerChannel(child: ChildProcess): { next(type: FromWorker['type'], timeoutMs: number): Promise<FromWorker> } {
  const inbox: FromWorker[] = [];
  const waiting: Array<() => void> = [];
  let failure: Error | null = null;
  child.on('message', (m: FromWorker) => {
    if (m.type === 'error') failure = new Error(`worker failed: ${m.message}`);
    else inbox.push(m);
    waiting.splice(0).forEach((w) => w());
  });
  child.on('exit', (code) => {
    if (code !== 0) failure ??= new Error(`worker exited with ${code}`);
    waiting.splice(0).forEach((w) => w());
  });
  return {
    next(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker gave no ${type} in ${Math.round(timeoutMs)} ms`)), timeoutMs);
        const check = (): void => {
          const i = inbox.findIndex((m) => m.type === type);
          if (i >= 0) {
            clearTimeout(timer);
            resolve(inbox.splice(i, 1)[0] as FromWorker);
          } else if (failure) {
            clearTimeout(timer);
            reject(failure);
          } else waiting.push(check);
        };
        check();
      });
    },
  };
}

interface CpuTimes {
  busy: number;
  total: number;
}

/** Aggregate CPU times of all cores, from the first line of /proc/stat. */
async function readCpuTimes(): Promise<CpuTimes> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0] ?? '';
  const [, ...fields] = line.trim().split(/\s+/);
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const v = fields.slice(0, 8).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

function busyPct(a: CpuTimes, b: CpuTimes): number | null {
  const total = b.total - a.total;
  return total > 0 ? Math.round(((b.busy - a.busy) / total) * 1000) / 10 : null;
}

/** A server's /api/stats, or an error naming the URL; gives up after 5 s. */
export async function fetchStats(url: string): Promise<RawStats> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as RawStats;
}
