// Runs one scenario against one target: starts the version as its own process (or uses an
// external URL), hands each worker process its share of the plan (plan.ts), ramps up, warms up,
// measures a fixed window, drains, watches the server throughout (server-sampler.ts,
// server-health.ts), and stops everything it started in a finally.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { nowUs } from '../auto-client/probe.ts';
import type { FromWorker, ToWorker } from '../auto-client/swarm-worker.ts';
import type { ClientSpec, SwarmPlan, SwarmResult, SwarmTiming } from '../auto-client/swarm-plan.ts';
import { signToken } from '../versions/auth.ts';
import { pushOverHttp, type HttpPushResult } from './http-push.ts';
import { planClients, roomOf, stallThresholdMs, workerOf, type Target } from './plan.ts';
import { slowResumeUs, type ScenarioConfig } from './scenarios.ts';
import type { FaultEvent } from './cluster-figures.ts';
import { injectFault, type FaultContext } from './faults.ts';
import { startRedisServer, type RedisServer } from '../common/redis-server.ts';
import { fmt, round } from '../common/helpers.ts';
import { awaitConnected } from './connect-wait.ts';
import { checkRelay, LivenessProbe, type LivenessTrace, type RelayCheck } from './server-health.ts';
import { ROOT, startServerProcess, stopProcessGroup, track, type ServerProcess } from './server-process.ts';
import { alignNodes, busyPct, fetchStats, processCpuSeconds, readCpuTimes, sampleServer, type RawStats, type ServerSample } from './server-sampler.ts';
import { workerChannel } from './worker-channel.ts';

const WORKER = fileURLToPath(new URL('../auto-client/swarm-worker.ts', import.meta.url));
/** Connects a worker keeps in flight: a ramp is bound by connect latency, not by either side's CPU. */
const CONNECTS_IN_FLIGHT = 1000;
/** How long a worker may take to load and take its plan. */
const PLANNED_TIMEOUT_MS = 120_000;
/** Grace after the drain for workers to report. */
const RESULT_GRACE_MS = 30_000;
/** Time between the go signal and the first scheduled send, so every worker starts together. */
const START_DELAY_US = 500_000;
/** In a fault scenario, how long a client the server let go waits before it connects to another node. */
const RESUME_DELAY_MS = 200;
/** While clients connect, the server's RSS is read this often: its slope is what one more connection costs. */
const RAMP_SAMPLE_INTERVAL_MS = 250;
/**
 * Workers run at this niceness. Server and generator share the cores; when both want one, the
 * server gets it. That can only delay the generator, which shows as schedule lag (policed) or
 * as more latency, never as less: it keeps the measuring from slowing what it measures.
 */
export const GENERATOR_NICE = 10;
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
  /** v4 with its private Redis: redis-server's CPU over the measured window, % of one core. */
  redisCpuPct: number | null;
  /** Faults the scenario injected, on the run's clock. */
  faults: FaultEvent[];
}


/** Lines of a crashed server's stderr a report quotes. */
const STDERR_TAIL_LINES = 10;

export type Phase = 'start' | 'connect' | 'warmup' | 'measure' | 'drain' | 'stop';
/** `fraction`: of the run's planned time; `detail`: what the phase has done ("54,000 of 100,000 connected"). */
export type ProgressFn = (label: string, phase: Phase, fraction: number, detail?: string) => void;

export async function runTarget(target: Target, config: ScenarioConfig, seed: number, onProgress: ProgressFn): Promise<TargetRun> {
  const epochNs = process.hrtime.bigint();
  const label = target.label;
  let server: ServerProcess | null = null;
  const workers: ChildProcess[] = [];
  const samples: ServerSample[] = [];
  let stopSampling: (() => void) | null = null;
  let liveness: LivenessProbe | null = null;
  let redis: RedisServer | null = null;
  const faults: FaultEvent[] = [];
  const killed: string[] = [];
  /** What the scenario's fault works on (broker-outage replaces its Redis: the one to stop is there). */
  let fault: FaultContext | null = null;
  try {
    onProgress(label, 'start', 0);
    let wsUrl: string;
    // A v4 cluster has several nodes: clients are spread over them, and its figures are theirs summed.
    let wsUrls: string[];
    let statsUrl: string[] | null = null;
    let describe = target.label;
    const clusterFault = config.fault !== 'none' && config.fault !== 'flood';
    if (clusterFault && target.args?.[0] !== 'v4') throw new RangeError(`${config.scenario} injects a fault into a v4 cluster: run it with --versions "v4 --nodes 3"`);
    let args = target.args;
    if (clusterFault && config.fault !== 'node-kill' && args && !args.includes('--redis')) {
      // The harness strikes at Redis itself, so it starts it, on a port the cluster is told.
      redis = await startRedisServer({ detached: true });
      track(redis.child);
      args = [...args, '--redis', redis.url];
    }
    // direct: users sign in. The harness starts its servers with a secret of this run's (in the
    // environment, never on a command line or in a report) and signs each user's token with it;
    // a --target is signed for with $CHAT_JWT_SECRET (npm run stress -- --jwt-secret), if given.
    const direct = config.scenario === 'direct';
    const secret = args && direct ? randomBytes(32).toString('base64url') : null;
    if (direct && args && target.script === undefined) args = [...args, '--auth', 'jwt'];
    if (args) {
      // (flood measures each version with its own per-connection limit: the one thing it is about)
      server = await startServerProcess(args, target.script, secret ? { CHAT_JWT_SECRET: secret } : {}, { rateLimit: config.scenario === 'flood' });
      wsUrl = server.info.wsUrl;
      wsUrls = server.nodes.map((n) => n.wsUrl);
      statsUrl = server.nodes.map((n) => `${n.url}api/stats`);
      if (config.fault === 'node-kill' && server.nodes.length < 2) throw new RangeError('node-kill needs at least 2 nodes (--versions "v4 --nodes 3")');
      describe = server.nodes.length > 1 ? `${server.info.describe.replace(/ · node \S+/, '')} · ${server.nodes.length} nodes` : server.info.describe;
    } else if (target.url) {
      wsUrl = target.url;
      wsUrls = [wsUrl];
    } else {
      throw new TypeError(`target ${label} needs args or url`);
    }
    const wsTarget = new URL(wsUrl);
    liveness = new LivenessProbe(wsTarget.hostname.replace(/^\[|\]$/g, ''), Number(wsTarget.port || 80), () => nowUs(epochNs) / 1e6);
    liveness.start();
    const statsBefore = statsUrl ? await fetchStats(statsUrl) : null;
    const threshold = stallThresholdMs(config);
    const specs = planClients(config, wsUrls);
    // Each user's Authorization (a --target that signs people in is signed in to in every scenario).
    const authFor = args ? (secret ? signedWith(secret) : undefined) : targetSignIn();
    if (authFor) await signIn(specs, authFor);
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
      behindUs: config.behindMs * 1000,
      churnPeriodMs: config.churnPeriodMs,
      connectConcurrency: CONNECTS_IN_FLIGHT,
      slowResumeUs: config.slow > 0 ? slowUntilUs : null,
      // In a fault scenario a client let go comes back on another node and resumes the stream.
      resume: clusterFault ? { urls: wsUrls, delayMs: RESUME_DELAY_MS } : null,
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
    await Promise.all(channels.map((ch) => ch.next('planned', PLANNED_TIMEOUT_MS)));
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
      await awaitConnected(
        channels.map((ch) => ({ channel: ch, share: ch.plan.clients.length })),
        (connected, total) => onProgress(label, 'connect', 0, `${fmt(connected)} of ${fmt(total)} connected`),
      );
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
    if (statsUrl) stopSampling = sampleServer(statsUrl, epochNs, timing.sendStartUs, samples);
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
    const redisPid = server?.redisPid ?? null;
    const redisP: Promise<number | null> = redisPid
      ? sleep((timing.measureStartUs - nowUs(epochNs)) / 1000)
          .then(() => processCpuSeconds(redisPid))
          .then(async (start) => {
            await sleep((timing.measureEndUs - nowUs(epochNs)) / 1000);
            const end = await processCpuSeconds(redisPid);
            return start === null || end === null ? null : round(((end - start) / config.durationS) * 100, 1);
          })
          .catch(() => null)
      : Promise.resolve(null);
    const httpP =
      config.httpRate > 0 && server
        ? sleep((timing.sendStartUs - nowUs(epochNs)) / 1000).then(() =>
            pushOverHttp(`${server!.info.url}api/send`, roomOf(0, config.rooms), config.httpRate, config.warmupS + config.durationS, config.size, epochNs),
          )
        : Promise.resolve(null);
    httpP.catch(() => {});
    const ctx: FaultContext = { config, server, redis, killed, faults, atS: () => Math.round((nowUs(epochNs) - timing.sendStartUs) / 1e5) / 10, wsUrl, windowEndS: config.warmupS + config.durationS };
    fault = ctx;
    const faultP = config.fault === 'none' ? Promise.resolve() : sleep((timing.sendStartUs - nowUs(epochNs)) / 1000 + config.faultAtS * 1000).then(() => injectFault(ctx));
    faultP.catch(() => {});
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
    // (a node killed by the scenario answers before the run and not after: both readings without it)
    const statsBeforeAligned = alignNodes(statsBefore, statsAfter);
    const http = await httpP;
    const machineBusyPct = await machineP;
    const redisCpuPct = await redisP;
    await faultP;
    // Every client has gone: does the server still take two fresh ones and relay between them?
    // (on a cluster: sent on the first node, received on the last, so the backplane is in the path)
    // (a node the scenario killed is not asked: it is dead by design)
    const standing = wsUrls.filter((u) => !killed.includes(u));
    const afterRun = await checkRelay(standing.at(-1) ?? wsUrl, roomOf(0, config.rooms), epochNs, undefined, standing[0] ?? wsUrl, authFor);
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
    return { target, describe, config, timing, workers: results, samples, statsBefore: statsBeforeAligned, statsAfter, stallThresholdMs: threshold, serverOutput: server?.output.slice(-50) ?? [], http, connectSeconds, machineBusyPct, rampSamples, statsConnected, watch, redisCpuPct, faults };
  } finally {
    stopSampling?.();
    await liveness?.stop(0);
    await Promise.all(workers.map((w) => stopProcessGroup(w, 2_000)));
    await server?.stop();
    await redis?.stop();
    if (fault?.redis && fault.redis !== redis) await fault.redis.stop();
  }
}

/** `Authorization` for a user: a token signed with `secret`. */
function signedWith(secret: string): (user: string) => Promise<string> {
  return async (user) => `Bearer ${await signToken(secret, { sub: user }, '1h')}`;
}

/**
 * How a --target is signed in to: a token signed with $CHAT_JWT_SECRET (--jwt-secret), or the
 * $CHAT_AUTH_HEADER template (--auth-header) with `{user}` for the user; undefined: not at all.
 */
export function targetSignIn(): ((user: string) => Promise<string>) | undefined {
  const secret = process.env.CHAT_JWT_SECRET;
  const template = process.env.CHAT_AUTH_HEADER;
  if (secret) return signedWith(secret);
  if (template) return async (user) => template.replaceAll('{user}', user);
  return undefined;
}

/** Each user's Authorization header, made once and given to every connection of theirs. */
async function signIn(specs: ClientSpec[], authFor: (user: string) => Promise<string>): Promise<void> {
  const headers = new Map<string, Promise<string>>();
  const userOf = (s: ClientSpec): string => s.user ?? `c${s.id}`;
  for (const s of specs) if (!headers.has(userOf(s))) headers.set(userOf(s), authFor(userOf(s)));
  for (const s of specs) s.authorization = await (headers.get(userOf(s)) as Promise<string>);
}
