// The renderers for the terminal and Markdown (the report itself: report-model.ts). Renderers
// return strings; only the CLI decides where they go.
import Table from 'cli-table3';
import { fmt, plural } from '../common/helpers.ts';
import { clusterLine, recoveryLine } from './cluster-figures.ts';
import { byTarget, capacityRatios } from './capacity-figures.ts';
import { isReference } from './reference.ts';
import type { RepeatSpread, VersionResult } from './result.ts';
import { deadSockets, ms, msOrNa, verdictParts } from './verdict.ts';
import { codesInWords, GENERATOR_LIMITS } from './health.ts';
import { evolutionStory, headlineLines, rowMark, storyLines } from './story.ts';
import { OUTCOME_WORDS } from './outcome.ts';
import type { ScenarioReport, StressReport } from './report-model.ts';

/** A figure of repeated runs as its median and its range in brackets, or the one run's value. */
function ranged(spreadOf: RepeatSpread | undefined, one: string, show: (x: number) => string): string {
  return spreadOf ? `${show(spreadOf.median)} (${show(spreadOf.min)}-${show(spreadOf.max)})` : one;
}

export const TABLE_HEAD = ['version', 'server', 'p50', 'p90', 'p99', 'p99.9', 'max', 'delivered/s', 'lost', 'dropped', 'stalled', 'behind', 'srv CPU', 'peak RSS', 'generator'];

export function tableRow(r: VersionResult): string[] {
  const l = r.latency.healthy;
  const a = r.accounting;
  const s = r.stalls.healthy;
  const gen = r.valid ? `ok (lag p99 ${Math.max(...r.generator.workers.map((w) => w.scheduleLagP99Ms)).toFixed(0)} ms)` : 'INVALID';
  const lat = (x: number): string => msOrNa(l.count, x);
  const f = r.repeats?.figures;
  return [
    r.repeats ? `${r.label} ×${r.repeats.n}` : r.label,
    r.health.broken ? `BROKEN: ${r.health.status}` : r.health.status,
    ranged(f?.p50, lat(l.p50), ms),
    lat(l.p90),
    ranged(f?.p99, lat(l.p99), ms),
    lat(l.p999),
    ranged(f?.max, lat(l.max), ms),
    ranged(f?.['delivered/s'], fmt(r.deliveryRate), (x) => fmt(Math.round(x))),
    ranged(f?.lost, fmt(a.lost), (x) => fmt(Math.round(x))),
    fmt(a.serverDrops),
    s.stalled > 0 ? `${s.stalled}/${s.clients} ${(s.stalledMsMedian / 1000).toFixed(1)} s` : `0/${s.clients}`,
    (s.behind ?? 0) > 0 ? `${s.behind}/${s.clients} ${(s.behindMsMedian / 1000).toFixed(1)} s` : `0/${s.clients}`,
    r.server ? `${r.server.cpuPctMean}%` : '–',
    r.server ? `${r.server.peakRssMB} MB` : '–',
    gen,
  ];
}


/** The columns a terminal shows by default, to fit 120 columns; --wide shows TABLE_HEAD. */
export const COMPACT_HEAD = ['version', 'server', 'p50', 'p99', 'deliv./s', 'lost', 'dropped', 'stalled', 'behind', 'generator'];

/** A row of the compact table: the detail is in the verdict lines under it. */
export function compactRow(r: VersionResult): string[] {
  const l = r.latency.healthy;
  const f = r.repeats?.figures;
  const who = (n: number, of: number, medianMs: number): string => (n === 0 ? `0/${fmt(of)}` : `${n === of ? 'all' : `${fmt(n)}/${fmt(of)}`} ${(medianMs / 1000).toFixed(1)} s`);
  const s = r.stalls.healthy;
  return [
    r.repeats ? `${r.label} ×${r.repeats.n}` : r.label,
    r.health.broken ? 'BROKEN' : 'ok',
    ranged(f?.p50, msOrNa(l.count, l.p50), ms),
    ranged(f?.p99, msOrNa(l.count, l.p99), ms),
    ranged(f?.['delivered/s'], fmt(r.deliveryRate), (x) => fmt(Math.round(x))),
    ranged(f?.lost, fmt(r.accounting.lost), (x) => fmt(Math.round(x))),
    fmt(r.accounting.serverDrops),
    who(s.stalled, s.clients, s.stalledMsMedian),
    who(s.behind ?? 0, s.clients, s.behindMsMedian ?? 0),
    r.valid ? 'ok' : 'INVALID',
  ];
}

/** The headline and checks first, then the comparison table and each version's findings, one a line, for a terminal. */
export function renderTerminal(s: ScenarioReport, color = false, wide = false): string {
  const table = new Table({ head: wide ? TABLE_HEAD : COMPACT_HEAD, style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [] } });
  for (const r of s.results) table.push(wide ? tableRow(r) : compactRow(r));
  const lines = [`${s.scenario}: ${s.describe}`, ...headlineLines(s).map((l) => `  ${l}`), 'latency: healthy receivers, one-way, from the intended send time (coordinated-omission corrected)', table.toString()];
  for (const r of s.results) {
    if (r.capacity || r.repeats) {
      lines.push(`  ${r.verdict}`);
      continue;
    }
    const [first, ...rest] = verdictParts(r, s.config.slow);
    lines.push(`  ${r.label}: ${first ?? ''}`, ...rest.map((p) => `    ${p}`));
  }
  for (const r of s.results) if (r.cluster) lines.push(`  ${r.label}: ${clusterLine(r.cluster)}`);
  for (const r of s.results) if (r.recovery) lines.push(`  ${r.label} fault: ${recoveryLine(r.recovery)}`);
  return lines.join('\n');
}

/** The evolution table, for a terminal, or null when the run holds none of the story. */
export function renderStoryTerminal(report: Pick<StressReport, 'scenarios'>): string | null {
  const rows = evolutionStory(report);
  return rows ? storyLines(rows).join('\n') : null;
}

/** The run's last word: its exit code and why, for a terminal. */
export function renderOutcome(report: Pick<StressReport, 'outcome' | 'scenarios'>): string {
  const { exitCode, reasons, sections } = report.outcome;
  const story = report.scenarios.some((s) => s.mode === 'story');
  if (exitCode === 0) return story ? 'exit 0: the story held: every version did what the story says, every run was measurable' : 'exit 0: every server held up, every check passed, every run was measurable';
  const body = sections ? sections.flatMap((x) => [`  ${x.heading}:`, ...x.lines.map((l) => `    - ${l}`)]) : reasons.map((r) => `  - ${r}`);
  return [`exit ${exitCode}: ${OUTCOME_WORDS[exitCode] ?? 'failed'}`, ...body].join('\n');
}

/** One line on what the harness saw of the server itself. */
export function healthLine(r: VersionResult): string {
  const h = r.health;
  const said = [...h.findings, ...h.notes];
  const probes = `${h.liveness.probes - h.liveness.failures} of ${h.liveness.probes} TCP probes answered`;
  const after = h.afterRun.relaying ? 'relayed between two fresh clients after the run' : `after the run: ${h.afterRun.detail}`;
  const slowClosed = h.closed.slow > 0 ? `closed ${h.closed.slow} slow reader${h.closed.slow === 1 ? '' : 's'} (${codesInWords(h.closed.slowCodes)})` : '';
  return [h.broken ? 'BROKEN' : 'held up', ...said, slowClosed, probes, after].filter((x) => x !== '').join('; ');
}

/** Where the messages owed went, by kind of client, and how much of the planned load was offered. */
export function offeredCell(r: VersionResult): string {
  const o = r.offered;
  if (o.planned === 0) return '–';
  const pct = `${Math.round(o.share * 1000) / 10}%`;
  return o.sendersLost > 0 ? `${pct} (${o.sendersLost}/${o.senders} senders lost)` : pct;
}

/** "7.4 MB behind > 4.3 MB: yes (dropped 1,436 messages)". */
export function slowReaderCell(r: VersionResult): string {
  const sr = r.slowReaders;
  if (!sr) return '–';
  const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
  const evidence = sr.serverEvidence.length > 0 ? `; server ${sr.serverEvidence.join(', ')}` : '';
  return `${sr.pushedBack ? 'yes' : 'NO'}: ${mb(sr.backlogBytesMedian)} behind at resume, loopback holds ${mb(sr.kernelBytes)}${evidence}`;
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
  if (report.outcome.exitCode !== 0) out.push('```', renderOutcome(report), '```', '');
  const story = evolutionStory(report);
  if (story) {
    out.push('## The evolution, as this run measured it', '', '| | flaw | hurts | evidence from this run | fixed by |', '|---|---|---|---|---|');
    for (const r of story) out.push(`| ${rowMark(r)} | ${r.flaw} | ${r.hurts} | ${r.evidence ?? 'not in this run'} | ${r.fixedBy} |`);
    out.push('');
  }
  for (const s of report.scenarios) {
    const c = s.config;
    out.push(`## ${s.scenario}`, '', s.describe, '');
    const [head, ...checks] = headlineLines(s);
    out.push(`**${head}**`, '', ...checks.map((l) => `- ${l}`), '');
    out.push(
      `${plural(c.clients, 'client')}${c.churnClients ? ` + ${c.churnClients} churning` : ''}, ${plural(c.senders, 'sender')} × ${c.rate} msg/s, ${c.size} B, ${c.rooms} room${c.rooms > 1 ? 's' : ''}` +
        `${c.slow ? `, ${c.slow} slow (${c.slowMode})` : ''}${c.burst > 1 ? `, bursts of ${c.burst}` : ''}; warm-up ${c.warmupS} s, measured ${c.durationS} s, drain ${c.drainS} s, ${plural(c.workers, 'worker')}.`,
      '',
    );
    const repeated = s.results.find((r) => r.repeats)?.repeats?.n;
    if (repeated) out.push(`Each version ran ${repeated} times, interleaved with the others: p50, p99, max, delivered/s and lost are medians, their min-max in brackets; the rest are the median run's.`, '');
    out.push(`| ${TABLE_HEAD.join(' | ')} |`, `|${TABLE_HEAD.map(() => '---').join('|')}|`);
    for (const r of s.results) out.push(`| ${tableRow(r).join(' | ')} |`);
    out.push('', 'Server health: what the harness saw of the server itself (its exit, TCP probes once a second, two fresh clients after the run):', '');
    for (const r of s.results) out.push(`- **${r.label}**: ${healthLine(r)}`);
    if (s.results.some((r) => r.cluster)) {
      out.push('', 'Clusters (v4): where the deliveries were made, what each node and Redis cost over the measured window, and what the backplane did:', '');
      for (const r of s.results) if (r.cluster) out.push(`- **${r.label}**: ${clusterLine(r.cluster)}`);
    }
    if (s.results.some((r) => r.recovery)) {
      out.push('', 'The fault, and how clients came back (lost messages are in the tables above, split by kind):', '');
      for (const r of s.results) if (r.recovery) out.push(`- **${r.label}**: ${recoveryLine(r.recovery)}`);
    }
    out.push('', 'Latency: healthy receivers, one-way, from the intended send time. Uncorrected p99 (from the actual send time) beside it:', '');
    out.push(
      '| version | p99 corrected | p99 uncorrected | slow readers p99 | expected | received | lost | lost: healthy | lost: slow | told dropped | unexplained | kicked | offered | pool − open | srv deliveries/CPU-s | deliveries/write |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of s.results) {
      const a = r.accounting;
      out.push(
        `| ${r.label} | ${msOrNa(r.latency.healthy.count, r.latency.healthy.p99)} | ${msOrNa(r.latencyUncorrected.healthy.count, r.latencyUncorrected.healthy.p99)} | ${r.latency.slow.count ? ms(r.latency.slow.p99) : '–'} | ${fmt(a.expected)} | ${fmt(a.received)} | ${fmt(a.lost)} | ${fmt(a.byKind.healthy.lost)} | ${a.byKind.slow.clients > 0 ? fmt(a.byKind.slow.lost) : '–'} | ${fmt(a.toldDropped)} | ${fmt(a.unexplained)} | ${a.kicked} | ${offeredCell(r)} | ${r.server ? deadSockets(r) : '–'} | ${r.server ? fmt(r.server.deliveriesPerCpuSecond) : '–'} | ${r.server?.deliveriesPerWrite ?? '–'} |`,
      );
    }
    if (s.results.some((r) => r.slowReaders)) {
      out.push('', 'Did the slow readers push back? They must fall further behind than loopback buffers for them, or a server that blocks on a slow reader never blocks:', '');
      for (const r of s.results) out.push(`- **${r.label}**: ${slowReaderCell(r)}`);
    }
    const ladders = s.results.filter((r) => r.capacity);
    if (ladders.length > 0) {
      out.push('', `Capacity steps (each a fresh run; a step counts when p99 stays under ${s.config.p99LimitMs} ms, nothing is lost and the run is measurable):`, '');
      out.push('| version | target/s | delivered/s | p99 | lost | measurable | machine busy | server CPU | deliveries per CPU-s | deliveries per write |', '|---|---|---|---|---|---|---|---|---|---|');
      for (const r of ladders) {
        for (const st of byTarget(r.capacity!.steps)) {
          out.push(
            `| ${r.label} | ${fmt(st.targetPerSecond)} | ${fmt(st.deliveryRate)} | ${ms(st.p99Ms)}${st.firstP99Ms !== undefined ? ` (run again: the first run's was ${ms(st.firstP99Ms)})` : ''} | ${fmt(st.lost)} | ${st.valid ? 'yes' : 'INVALID'} | ${st.machineBusyPct ?? '–'}% | ${st.serverCpuPct}% | ${fmt(st.deliveriesPerCpuSecond)} | ${st.deliveriesPerWrite} |`,
          );
        }
      }
      const ratios = capacityRatios(ladders.filter((r) => !isReference(r)));
      if (ratios) out.push('', ratios);
    }
    out.push('', ...s.results.map((r) => `- ${r.verdict}`), '');
  }
  out.push(
    '## How to read this',
    '',
    '- **expected** counts, for every healthy and slow client the scenario planned, whether it connected, stayed or was closed, the messages sent into its room: a client the server closed or refused is owed them too, and what it did not get is lost. Churn clients come and go and are owed no fixed set. **lost** = expected − received; **told dropped** is what the server told those clients it dropped for them (v3 drop); **unexplained** = lost − told dropped, messages neither delivered by the end of the drain nor accounted for by the server.',
    '- **stalled**: healthy clients that saw a gap between deliveries far longer than the schedule explains, and the median of their total stalled time. A client that received nothing in the window was stalled for the whole window. No samples is "n/a", never 0.',
    '- **server**: BROKEN when the server exited, stopped accepting TCP connections, stopped relaying to every healthy client for 2 s or more while messages were sent, was not relaying between two fresh clients after the run, or closed or refused clients nobody asked it to. Slow readers it closed are its policy, not a fault.',
    '- **offered**: the share of the planned sends the senders made; a sender whose connection died sends nothing.',
    `- **generator**: a run is INVALID when a worker's schedule lag p99 exceeds ${GENERATOR_LIMITS.scheduleLagP99Ms} ms, its event-loop delay p99 ${GENERATOR_LIMITS.loopDelayP99Ms} ms, or its CPU ${GENERATOR_LIMITS.cpuPct}% of a core, or when the whole machine was more than ${GENERATOR_LIMITS.machineBusyPct}% busy during the measured window: then the generator, not the server, may have been the bottleneck.`,
    '',
  );
  return out.join('\n');
}
