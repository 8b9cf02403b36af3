// What the harness reads of a server and of the machine while a run goes: the server's
// /api/stats once a second (a version only), and the whole machine's CPU from /proc/stat.
import { readFile } from 'node:fs/promises';
import { nowUs } from '../auto-client/probe.ts';
import type { ServerStats } from '../versions/protocol.ts';

const SAMPLE_INTERVAL_MS = 1000;

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

/** What /api/stats answers: the host's JSON contract, shared with the page. */
export type RawStats = ServerStats;

/**
 * Reads the server's /api/stats every SAMPLE_INTERVAL_MS into `samples`, `t` in seconds since
 * `sendStartUs`; returns the function that stops it. A server too busy to answer is a gap.
 */
export function sampleServer(statsUrl: string, epochNs: bigint, sendStartUs: number, samples: ServerSample[]): () => void {
  let last: RawStats | null = null;
  let lastAt = 0;
  const timer = setInterval(() => {
    const at = nowUs(epochNs);
    fetchStats(statsUrl)
      .then((s) => {
        const cpuPct = last ? ((s.cpuUserUs + s.cpuSystemUs - last.cpuUserUs - last.cpuSystemUs) / (at - lastAt)) * 100 : 0;
        last = s;
        lastAt = at;
        samples.push({
          t: Math.round((at - sendStartUs) / 1e5) / 10,
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
  return () => clearInterval(timer);
}

export interface CpuTimes {
  busy: number;
  total: number;
}

/** Aggregate CPU times of all cores, from the first line of /proc/stat. */
export async function readCpuTimes(): Promise<CpuTimes> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0] ?? '';
  const [, ...fields] = line.trim().split(/\s+/);
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const v = fields.slice(0, 8).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

export function busyPct(a: CpuTimes, b: CpuTimes): number | null {
  const total = b.total - a.total;
  return total > 0 ? Math.round(((b.busy - a.busy) / total) * 1000) / 10 : null;
}

/** A server's /api/stats, or an error naming the URL; gives up after 5 s. */
export async function fetchStats(url: string): Promise<RawStats> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as RawStats;
}
