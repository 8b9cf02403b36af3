// The report model, and the renderers for the terminal and Markdown. Renderers return strings;
// only the CLI decides where they go.
import { cpus, totalmem, type as osType, release } from 'node:os';
import Table from 'cli-table3';
import { fmt, GENERATOR_LIMITS, type VersionResult } from './aggregate.ts';
import type { ScenarioConfig } from './scenarios.ts';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
}

export interface ScenarioReport {
  scenario: string;
  describe: string;
  config: ScenarioConfig;
  results: VersionResult[];
}

export interface StressReport {
  createdAt: string;
  command: string;
  machine: MachineInfo;
  seed: number;
  scenarios: ScenarioReport[];
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${osType()} ${release()}`,
    node: process.version,
  };
}

export const TABLE_HEAD = ['version', 'p50', 'p90', 'p99', 'p99.9', 'max', 'delivered/s', 'lost', 'dropped', 'stalled', 'srv CPU', 'peak RSS', 'generator'];

export function tableRow(r: VersionResult): string[] {
  const l = r.latency.healthy;
  const a = r.accounting;
  const s = r.stalls.healthy;
  const gen = r.valid ? `ok (lag p99 ${Math.max(...r.generator.workers.map((w) => w.scheduleLagP99Ms)).toFixed(0)} ms)` : 'INVALID';
  return [
    r.label,
    ms(l.p50),
    ms(l.p90),
    ms(l.p99),
    ms(l.p999),
    ms(l.max),
    fmt(r.deliveryRate),
    fmt(a.lost),
    fmt(a.serverDrops),
    s.stalled > 0 ? `${s.stalled}/${s.clients} ${(s.stalledMsMedian / 1000).toFixed(1)} s` : `0/${s.clients}`,
    r.server ? `${r.server.cpuPctMean}%` : '–',
    r.server ? `${r.server.peakRssMB} MB` : '–',
    gen,
  ];
}

function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`;
}

/** The comparison table and one verdict line per version, for a terminal. */
export function renderTerminal(s: ScenarioReport, color = false): string {
  const table = new Table({ head: TABLE_HEAD, style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [] } });
  for (const r of s.results) table.push(tableRow(r));
  const lines = [`${s.scenario}: ${s.describe}`, 'latency: healthy receivers, one-way, from the intended send time (coordinated-omission corrected)', table.toString()];
  for (const r of s.results) lines.push(`  ${r.verdict}`);
  const ratios = capacityRatios(s.results.filter((r) => r.capacity));
  if (ratios) lines.push(`  ${ratios}`);
  return lines.join('\n');
}

export function renderMarkdown(report: StressReport): string {
  const m = report.machine;
  const out: string[] = [
    `# chatroom-evolution stress report`,
    '',
    `${report.createdAt} · \`${report.command}\` · seed ${report.seed}`,
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}. Server and generator share it.`,
    '',
  ];
  for (const s of report.scenarios) {
    const c = s.config;
    out.push(`## ${s.scenario}`, '', s.describe, '');
    out.push(
      `${fmt(c.clients)} clients${c.churnClients ? ` + ${c.churnClients} churning` : ''}, ${c.senders} senders × ${c.rate} msg/s, ${c.size} B, ${c.rooms} room${c.rooms > 1 ? 's' : ''}` +
        `${c.slow ? `, ${c.slow} slow (${c.slowMode})` : ''}${c.burst > 1 ? `, bursts of ${c.burst}` : ''}; warm-up ${c.warmupS} s, measured ${c.durationS} s, drain ${c.drainS} s, ${c.workers} workers.`,
      '',
    );
    out.push(`| ${TABLE_HEAD.join(' | ')} |`, `|${TABLE_HEAD.map(() => '---').join('|')}|`);
    for (const r of s.results) out.push(`| ${tableRow(r).join(' | ')} |`);
    out.push('', 'Latency: healthy receivers, one-way, from the intended send time. Uncorrected p99 (from the actual send time) beside it:', '');
    out.push('| version | p99 corrected | p99 uncorrected | slow readers p99 | expected | received | lost | told dropped | unexplained | kicked | pool − open | srv deliveries/CPU-s | deliveries/write |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of s.results) {
      const a = r.accounting;
      out.push(
        `| ${r.label} | ${ms(r.latency.healthy.p99)} | ${ms(r.latencyUncorrected.healthy.p99)} | ${r.latency.slow.count ? ms(r.latency.slow.p99) : '–'} | ${fmt(a.expected)} | ${fmt(a.received)} | ${fmt(a.lost)} | ${fmt(a.toldDropped)} | ${fmt(a.unexplained)} | ${a.kicked} | ${r.server ? r.server.poolSize - r.server.connections : '–'} | ${r.server ? fmt(r.server.deliveriesPerCpuSecond) : '–'} | ${r.server?.deliveriesPerWrite ?? '–'} |`,
      );
    }
    const ladders = s.results.filter((r) => r.capacity);
    if (ladders.length > 0) {
      out.push('', `Capacity steps (each a fresh run; a step counts when p99 stays under ${s.config.p99LimitMs} ms, nothing is lost and the run is measurable):`, '');
      out.push('| version | target/s | delivered/s | p99 | lost | measurable | machine busy | server CPU | deliveries per CPU-s | deliveries per write |', '|---|---|---|---|---|---|---|---|---|---|');
      for (const r of ladders) {
        for (const st of r.capacity!.steps) {
          out.push(
            `| ${r.label} | ${fmt(st.targetPerSecond)} | ${fmt(st.deliveryRate)} | ${ms(st.p99Ms)} | ${fmt(st.lost)} | ${st.valid ? 'yes' : 'INVALID'} | ${st.machineBusyPct ?? '–'}% | ${st.serverCpuPct}% | ${fmt(st.deliveriesPerCpuSecond)} | ${st.deliveriesPerWrite} |`,
          );
        }
      }
      const ratios = capacityRatios(ladders);
      if (ratios) out.push('', ratios);
    }
    out.push('', ...s.results.map((r) => `- ${r.verdict}`), '');
  }
  out.push(
    '## How to read this',
    '',
    '- **expected** counts, for every client connected from before the first send to the end of the drain, the messages sent into its room: who was there when each was sent. **lost** = expected − received; **told dropped** is what the server told those clients it dropped for them (v3 drop); **unexplained** = lost − told dropped, messages neither delivered by the end of the drain nor accounted for by the server.',
    '- **stalled**: healthy clients that saw a gap between deliveries far longer than the schedule explains, and the median of their total stalled time.',
    `- **generator**: a run is INVALID when a worker's schedule lag p99 exceeds ${GENERATOR_LIMITS.scheduleLagP99Ms} ms, its event-loop delay p99 ${GENERATOR_LIMITS.loopDelayP99Ms} ms, or its CPU ${GENERATOR_LIMITS.cpuPct}% of a core, or when the whole machine was more than ${GENERATOR_LIMITS.machineBusyPct}% busy during the measured window: then the generator, not the server, may have been the bottleneck.`,
    '',
  );
  return out.join('\n');
}

/** "v3 sustained 24.5× v1 and 31.0× v2 (one run)": how far the versions' sustained rates lie apart. */
export function capacityRatios(results: VersionResult[]): string | null {
  const sustained = results.filter((r) => (r.capacity?.sustainedPerSecond ?? 0) > 0);
  if (sustained.length < 2) return null;
  const best = sustained.reduce((a, b) => ((b.capacity?.sustainedPerSecond ?? 0) > (a.capacity?.sustainedPerSecond ?? 0) ? b : a));
  const others = sustained.filter((r) => r !== best);
  const top = best.capacity?.sustainedPerSecond ?? 0;
  return `${best.label} sustained ${others.map((r) => `${(top / (r.capacity?.sustainedPerSecond ?? 1)).toFixed(1)}× ${r.label}`).join(' and ')} (one run)`;
}
