// What a report shows of a v4 cluster beside what its clients measured: each node's share of the
// deliveries and its CPU, Redis's CPU, and the backplane's own figures (publish round trip,
// refusals, replays). A single-process version has none of these.
import { fmt, round } from '../common/helpers.ts';
import type { ServerStats } from '../versions/protocol.ts';
import type { ClientReport } from '../auto-client/delivery-meter.ts';
import type { FaultKind } from './scenarios.ts';
import type { RawStats } from './server-sampler.ts';

/** A fault the harness injected: what, when (s after sending began), and until when for an outage. */
export interface FaultEvent {
  kind: Exclude<FaultKind, 'none'>;
  atS: number;
  endS: number | null;
  detail: string;
  /** flood: what the abusive client wrote, and when (s after sending began) and how the server closed it. */
  flood?: { sent: number; closedCode: number | null; closedAtS: number | null };
}

export interface ClusterFigures {
  nodes: Array<{ node: string; connections: number; deliveries: number; cpuPct: number }>;
  /** redis-server's CPU over the measured window, % of one core; null when the run did not start it. */
  redisCpuPct: number | null;
  /** The worst node's publish round trip p99 over its life (this run), in ms. */
  publishRttP99Ms: number;
  published: number;
  refused: number;
  replayed: number;
  gaps: number;
  resets: number;
  reconnects: number;
  outageS: number;
}

/** A cluster's figures from its stats before and after the run; null for a single process. */
export function clusterFigures(before: RawStats | null, after: RawStats | null, redisCpuPct: number | null): ClusterFigures | null {
  if (!after?.nodes || after.nodes.length === 0) return null;
  const earlier = new Map<string, ServerStats>((before?.nodes ?? []).map((n) => [n.node ?? '', n]));
  const nodes = [...after.nodes].sort((a, b) => (a.node ?? '').localeCompare(b.node ?? '', 'en', { numeric: true })).map((n) => {
    const b = earlier.get(n.node ?? '');
    const cpuUs = n.cpuUserUs + n.cpuSystemUs - (b ? b.cpuUserUs + b.cpuSystemUs : 0);
    const wallS = n.uptimeS - (b?.uptimeS ?? 0);
    return { node: n.node ?? '?', connections: n.connections, deliveries: n.deliveries - (b?.deliveries ?? 0), cpuPct: wallS > 0 ? round((cpuUs / 1e6 / wallS) * 100, 1) : 0 };
  });
  const sum = (get: (n: ServerStats) => number): number => after.nodes!.reduce((a, n) => a + get(n), 0) - (before?.nodes ?? []).reduce((a, n) => a + get(n), 0);
  const bp = (n: ServerStats): NonNullable<ServerStats['backplane']> => n.backplane ?? { state: 'down', published: 0, received: 0, inFlight: 0, refused: 0, reconnects: 0, outageS: 0, replayed: 0, gaps: 0, resets: 0, refetched: 0, publishRttMs: { p50: 0, p99: 0, max: 0 }, publishRttAllMs: { p50: 0, p99: 0, max: 0 } };
  return {
    nodes,
    redisCpuPct,
    publishRttP99Ms: Math.max(...after.nodes.map((n) => bp(n).publishRttAllMs.p99)),
    published: sum((n) => bp(n).published),
    refused: sum((n) => bp(n).refused),
    replayed: sum((n) => bp(n).replayed),
    gaps: sum((n) => bp(n).gaps),
    resets: sum((n) => bp(n).resets),
    reconnects: sum((n) => bp(n).reconnects),
    outageS: round(sum((n) => bp(n).outageS), 1),
  };
}

/** One line for people: where the deliveries were made, what it cost, what the backplane did. */
export function clusterLine(c: ClusterFigures): string {
  const total = c.nodes.reduce((a, n) => a + n.deliveries, 0);
  const perNode = c.nodes.map((n) => `${n.node} ${fmt(n.deliveries)} (${total > 0 ? Math.round((n.deliveries / total) * 100) : 0}%, CPU ${n.cpuPct}%)`).join(', ');
  const faults = [c.refused ? `${fmt(c.refused)} sends refused (BACKPLANE_DOWN)` : '', c.replayed ? `${fmt(c.replayed)} replayed` : '', c.gaps ? `${c.gaps} gap notices` : '', c.resets ? `${c.resets} reset notices` : '', c.reconnects ? `${c.reconnects} reconnects, ${c.outageS} node-seconds down` : '']
    .filter(Boolean)
    .join(', ');
  return `${c.nodes.length} nodes, deliveries by node: ${perNode}; Redis CPU ${c.redisCpuPct === null ? 'not measured (not started by this run)' : `${c.redisCpuPct}%`}; ${fmt(c.published)} published, publish round trip p99 ${c.publishRttP99Ms} ms${faults ? `; ${faults}` : ''}`;
}

/** What clients went through when a scenario injected a fault (v4's node-kill, broker-outage). */
export interface RecoveryFigures {
  faults: FaultEvent[];
  /** Clients the server let go, how many of them got a connection back, how long that took (ms). */
  letGo: number;
  resumed: number;
  reconnectMsP50: number;
  reconnectMsMax: number;
  /** Messages replayed to them, seqs a gap notice said were lost, reset notices, sends refused. */
  replayed: number;
  gapMissed: number;
  resets: number;
  refused: number;
  /** Refused sends that arrived anyway (must be 0), sends the server could not answer for, and their resends. */
  refusedButDelivered: number;
  uncertain: number;
  resent: number;
  uncertainArrived: number;
  /** Sends a dying node took and never published (their senders never saw them come back). */
  lostWithNode: number;
}

export function recoveryFigures(faults: readonly FaultEvent[], clients: readonly ClientReport[]): RecoveryFigures | null {
  if (faults.length === 0 && !clients.some((c) => c.recovery)) return null;
  const times = clients.flatMap((c) => c.recovery?.reconnectMs ?? []).sort((a, b) => a - b);
  const total = (get: (r: NonNullable<ClientReport['recovery']>) => number): number => clients.reduce((a, c) => a + (c.recovery ? get(c.recovery) : 0), 0);
  return {
    faults: [...faults],
    letGo: clients.filter((c) => c.closedByServer).length,
    resumed: clients.filter((c) => (c.recovery?.reconnects ?? 0) > 0).length,
    reconnectMsP50: times.length > 0 ? (times[Math.floor((times.length - 1) / 2)] as number) : 0,
    reconnectMsMax: times.at(-1) ?? 0,
    replayed: total((r) => r.replayed),
    gapMissed: total((r) => r.gapMissed),
    resets: total((r) => r.resets),
    refused: total((r) => r.refused),
    refusedButDelivered: total((r) => r.refusedButDelivered ?? 0),
    uncertain: total((r) => r.uncertain ?? 0),
    resent: total((r) => r.resent ?? 0),
    uncertainArrived: total((r) => r.uncertainArrived ?? 0),
    lostWithNode: total((r) => r.lostWithNode ?? 0),
  };
}

export function recoveryLine(r: RecoveryFigures): string {
  const faults = r.faults.map((f) => `${f.detail} at ${f.atS} s${f.endS !== null ? `, back at ${f.endS} s` : ''}`).join('; ') || 'no fault injected';
  const back = r.letGo > 0 ? `${fmt(r.resumed)} of ${fmt(r.letGo)} clients let go got a connection back (reconnect p50 ${r.reconnectMsP50} ms, max ${r.reconnectMsMax} ms)` : 'no client was let go';
  const withNode = r.lostWithNode > 0 ? `; ${fmt(r.lostWithNode)} sends went down with the node before it published them (owed to nobody)` : '';
  const uncertain = r.uncertain > 0 ? `; ${fmt(r.uncertain)} sends the server could not answer for (SEND_UNKNOWN), resent ${fmt(r.resent)} times with their ids, ${fmt(r.uncertainArrived)} of them arrived` : '';
  const lied = r.refusedButDelivered > 0 ? `; ${fmt(r.refusedButDelivered)} REFUSED SENDS WERE DELIVERED ANYWAY` : '';
  return `${faults}. ${back}; ${fmt(r.replayed)} messages replayed, ${fmt(r.gapMissed)} reported lost in gap notices, ${r.resets} reset notices, ${fmt(r.refused)} sends refused (BACKPLANE_DOWN)${uncertain}${withNode}${lied}`;
}
