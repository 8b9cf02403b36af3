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

/**
 * What /api/stats answers: the host's JSON contract, shared with the page. For a v4 cluster, the
 * nodes' answers summed (CPU and memory of every node process; the slowest event loop), each
 * node's own in `nodes`.
 */
export type RawStats = ServerStats & { nodes?: ServerStats[]; nodesAsked?: number };

/**
 * Reads the server's /api/stats every SAMPLE_INTERVAL_MS into `samples`, `t` in seconds since
 * `sendStartUs`; returns the function that stops it. A server too busy to answer is a gap.
 */
export function sampleServer(statsUrl: string | readonly string[], epochNs: bigint, sendStartUs: number, samples: ServerSample[]): () => void {
  let last: RawStats | null = null;
  let lastAt = 0;
  const timer = setInterval(() => {
    const at = nowUs(epochNs);
    fetchStats(statsUrl)
      .then((s) => {
        // A cluster where another set of nodes answered than last time (one too busy, or killed):
        // its sums are not comparable with the last ones. A gap, and the next reading compares with this one.
        if (last && last.nodes?.length !== s.nodes?.length) {
          last = s;
          lastAt = at;
          return;
        }
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

/** A process's CPU time so far, in seconds, from /proc (Linux); null when it cannot be read. */
export async function processCpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) : utime is the 14th field, stime the 15th, in clock ticks (100/s).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
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

/**
 * A server's /api/stats, or an error naming the URL; gives up after 5 s. Given several URLs (the
 * nodes of a v4 cluster), the answers of those that answer, merged; an error if none does.
 */
export async function fetchStats(url: string | readonly string[]): Promise<RawStats> {
  if (typeof url === 'string') return fetchOne(url);
  const settled = await Promise.allSettled(url.map(fetchOne));
  const answered = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (answered.length === 0) throw (settled[0] as PromiseRejectedResult).reason;
  return answered.length === 1 && url.length === 1 ? (answered[0] as RawStats) : { ...mergeStats(answered), nodesAsked: url.length };
}

/**
 * `before` limited to the nodes `after` has: a node that stopped answering (killed) must not count
 * in one reading and not the other, or every difference between them (CPU, deliveries) is wrong.
 */
export function alignNodes(before: RawStats | null, after: RawStats | null): RawStats | null {
  if (!before?.nodes || !after?.nodes || after.nodes.length === before.nodes.length) return before;
  const names = new Set(after.nodes.map((n) => n.node));
  const kept = before.nodes.filter((n) => names.has(n.node));
  return kept.length === 0 ? before : { ...mergeStats(kept), nodesAsked: before.nodesAsked ?? before.nodes.length };
}

async function fetchOne(url: string): Promise<RawStats> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as RawStats;
}

type Summed = 'connections' | 'poolSize' | 'received' | 'deliveries' | 'drops' | 'kicks' | 'controlFrames' | 'writes' | 'queueDepth' | 'bufferedBytes' | 'rssBytes' | 'heapUsedBytes' | 'cpuUserUs' | 'cpuSystemUs';
const SUMMED: Summed[] = ['connections', 'poolSize', 'received', 'deliveries', 'drops', 'kicks', 'controlFrames', 'writes', 'queueDepth', 'bufferedBytes', 'rssBytes', 'heapUsedBytes', 'cpuUserUs', 'cpuSystemUs'];

/** Several nodes' answers as one server's: counts and costs summed, the worst of the rest. */
export function mergeStats(nodes: readonly ServerStats[]): RawStats {
  const first = nodes[0] as ServerStats;
  const merged: RawStats = { ...first, describe: `${first.describe.replace(/ · node \S+/, '')} · ${nodes.length} nodes answering`, nodes: [...nodes] };
  delete merged.node;
  delete merged.backplane;
  for (const k of SUMMED) merged[k] = nodes.reduce((sum, n) => sum + n[k], 0);
  const maxOf = (get: (n: ServerStats) => number): number => Math.max(...nodes.map(get));
  merged.rooms = maxOf((n) => n.rooms);
  merged.queueDepthMax = maxOf((n) => n.queueDepthMax);
  merged.loopDelayMs = { p50: maxOf((n) => n.loopDelayMs.p50), p99: maxOf((n) => n.loopDelayMs.p99), max: maxOf((n) => n.loopDelayMs.max) };
  merged.uptimeS = Math.min(...nodes.map((n) => n.uptimeS));
  const add = <K extends string>(into: Partial<Record<K, number>>, from: Partial<Record<K, number>>): void => {
    for (const [k, v] of Object.entries(from) as Array<[K, number]>) into[k] = (into[k] ?? 0) + v;
  };
  merged.badInput = {};
  merged.refusals = {};
  for (const n of nodes) {
    add(merged.badInput, n.badInput);
    add(merged.refusals, n.refusals);
  }
  return merged;
}
