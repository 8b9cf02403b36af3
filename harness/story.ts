// What a run says in the fewest words: a headline per scenario (who won, by how much, what went
// wrong, and its checks ✔/✘), and, for a run that holds the versions and scenarios the article's
// story needs, the evolution table: each flaw, the version it hurts, this run's evidence, and the
// version that fixes it.
import { fmt } from '../common/helpers.ts';
import { capacityLeader } from './capacity.ts';
import type { ScenarioReport, StressReport } from './report.ts';
import type { VersionResult } from './result.ts';
import { ceilingFractions, ceilingLine, isReference, V3_CEILING_TARGET } from './reference.ts';
import { thresholdLine } from './thresholds.ts';
import { ms, stalledClients } from './verdict.ts';

export interface Check {
  pass: boolean;
  text: string;
}

/** The scenario's own targets, for every version: what a sound chat server owes its users here. */
export function scenarioChecks(s: ScenarioReport): Check[] {
  const checks: Check[] = [];
  const ceiling = ceilingFractions(s.results);
  const v3 = ceiling?.fractions.find((f) => f.label === 'v3');
  if (v3 && s.scenario === 'capacity') checks.push({ pass: v3.fraction >= V3_CEILING_TARGET, text: `v3 at ${V3_CEILING_TARGET}× the ceiling or more (${v3.fraction.toFixed(2)}×)` });
  for (const r of s.results) {
    checks.push({ pass: !r.health.broken, text: `${r.label}: the server held up${r.health.broken ? ` (${r.health.status})` : ''}` });
    if (!r.capacity) {
      const lost = r.accounting.byKind.healthy.lost;
      checks.push({ pass: lost === 0, text: `${r.label}: healthy clients lost nothing${lost > 0 ? ` (${fmt(lost)} lost)` : ''}` });
    }
    if (r.slowReaders) checks.push({ pass: r.slowReaders.pushedBack, text: `${r.label}: the slow readers pushed back (the scenario took effect)` });
  }
  return checks;
}

/** One or two sentences: the winner and the ratio, and the worst that happened to a version's users. */
export function headline(s: ScenarioReport): string {
  // The ceiling is the yardstick, not a contestant.
  const versions = s.results.filter((r) => !isReference(r));
  const lead = capacityLeader(versions);
  if (lead) {
    const ratio = lead.others.map((o) => `${o.ratio.toFixed(1)}× ${o.label}'s`).join(' and ');
    const against = ceilingLine(s.results);
    return `${lead.best.label} sustained ${fmt(lead.top)} deliveries/s${ratio ? `, ${ratio}` : ''}.${against ? ` ${against}.` : ''}`;
  }
  const measured = versions.filter((r) => r.latency.healthy.count > 0);
  const parts: string[] = [];
  if (measured.length >= 2) {
    const best = measured.reduce((a, b) => (b.latency.healthy.p99 < a.latency.healthy.p99 ? b : a));
    const worst = measured.reduce((a, b) => (b.latency.healthy.p99 > a.latency.healthy.p99 ? b : a));
    const ratio = worst.latency.healthy.p99 / Math.max(best.latency.healthy.p99, 0.001);
    parts.push(
      ratio >= 1.5
        ? `${best.label}'s healthy p99 (${ms(best.latency.healthy.p99)}) is ${ratio >= 10 ? Math.round(ratio) : ratio.toFixed(1)}× lower than ${worst.label}'s (${ms(worst.latency.healthy.p99)})`
        : `healthy p99 within ${ratio.toFixed(1)}× across versions (${measured.map((r) => `${r.label} ${ms(r.latency.healthy.p99)}`).join(', ')})`,
    );
  } else if (measured.length === 1) {
    parts.push(`${measured[0]!.label}'s healthy p99 is ${ms(measured[0]!.latency.healthy.p99)}`);
  }
  for (const r of s.results) parts.push(...worstOf(r));
  const against = ceilingLine(s.results);
  return `${parts.join('; ')}.${against ? ` ${against}.` : ''}`;
}

/** What went worst for one version's users, if anything did. */
function worstOf(r: VersionResult): string[] {
  const out: string[] = [];
  if (r.health.broken) out.push(`${r.label} is BROKEN: ${r.health.findings[0] ?? r.health.status}`);
  const h = r.stalls.healthy;
  if (h.stalled > 0) out.push(`${r.label} stalled ${stalledClients(h)}`);
  const leak = r.server ? r.server.poolSize - r.server.connections : 0;
  if (leak > 0) out.push(`${r.label}'s pool holds ${fmt(leak)} dead sockets`);
  if (r.accounting.byKind.healthy.lost > 0 && !r.health.broken) out.push(`${r.label}'s healthy clients lost ${fmt(r.accounting.byKind.healthy.lost)}`);
  return out;
}

/** The headline and the checks, as lines for a terminal or a list. */
export function headlineLines(s: ScenarioReport): string[] {
  const checks = scenarioChecks(s);
  const failed = checks.filter((c) => !c.pass);
  return [
    headline(s),
    failed.length === 0 ? `✔ all ${checks.length} checks of this scenario` : failed.map((c) => `✘ ${c.text}`).join('\n'),
    ...s.thresholds.map(thresholdLine),
  ];
}

export interface StoryRow {
  flaw: string;
  hurts: string;
  /** What this run measured, in words; null when the run lacks the scenario or the versions. */
  evidence: string | null;
  /** The run showed the flaw where it should, and the fix where it should. */
  shown: boolean;
  fixedBy: string;
}

/** v3's default queue per client (versions/versions.ts): the bound its memory keeps. */
const V3_QUEUE = 128;

const find = (report: Pick<StressReport, 'scenarios'>, scenario: string, label: string): VersionResult | undefined =>
  report.scenarios.find((s) => s.scenario === scenario)?.results.find((r) => r.label === label);

/** The article's story, flaw by flaw, from this run's own figures; null when the run holds none of it. */
export function evolutionStory(report: Pick<StressReport, 'scenarios'>): StoryRow[] | null {
  const leak = (r: VersionResult | undefined): number | null => (r?.server ? r.server.poolSize - r.server.connections : null);
  const rows: StoryRow[] = [];
  {
    const v1 = find(report, 'churn', 'v1');
    const v11 = find(report, 'churn', 'v1.1');
    const l1 = leak(v1);
    const l11 = leak(v11);
    rows.push({
      flaw: 'dead sockets never leave the pool',
      hurts: 'v1',
      evidence: l1 !== null && l11 !== null ? `churn: v1's pool holds ${fmt(l1)} dead sockets after ${fmt(v1!.churn.leaves)} leaves; v1.1's ${fmt(l11)}` : null,
      shown: l1 !== null && l11 !== null && l1 > 0 && l11 === 0,
      fixedBy: 'v1.1 (prune on close)',
    });
  }
  {
    // v1's busy event loop often misses the once-a-second reading: the larger of v1's and v1.1's peak.
    const pools = ['v1', 'v1.1'].map((l) => find(report, 'slow-consumer', l)).filter((r): r is VersionResult => r?.server != null);
    const buffered = pools.length > 0 ? pools.reduce((a, b) => (b.server!.peakBufferedMB > a.server!.peakBufferedMB ? b : a)) : null;
    const v3 = find(report, 'slow-consumer', 'v3');
    const q3 = v3?.server?.peakQueueDepth ?? null;
    const bound = V3_QUEUE * (v3?.stalls.healthy.clients ?? 0) + V3_QUEUE * (v3?.slowReaders?.readers ?? 0);
    rows.push({
      flaw: 'a slow reader makes the server buffer without bound',
      hurts: 'v1, v1.1',
      evidence:
        buffered && q3 !== null
          ? `slow-consumer: ${buffered.label} buffered ${buffered.server!.peakBufferedMB} MB in user space for its stuck readers; v3's queues held at most ${fmt(q3)} messages in all, ${V3_QUEUE} a client at most`
          : null,
      shown: !!buffered && buffered.server!.peakBufferedMB >= 1 && q3 !== null && q3 <= bound,
      fixedBy: 'v3 (bounded per-client queues)',
    });
  }
  const stallOf = (r: VersionResult | undefined): string => (r ? `${r.label} stalled ${fmt(r.stalls.healthy.stalled)} of ${fmt(r.stalls.healthy.clients)} healthy clients for ${(r.stalls.healthy.stalledMsMedian / 1000).toFixed(1)} s` : '');
  {
    const v2 = find(report, 'slow-consumer', 'v2');
    const v3 = find(report, 'slow-consumer', 'v3');
    rows.push({
      flaw: 'the lock is held across a slow write: one slow reader stalls the room',
      hurts: 'v2',
      evidence: v2 && v3 ? `slow-consumer: ${stallOf(v2)} (p99 ${ms(v2.latency.healthy.p99)}); v3 stalled ${fmt(v3.stalls.healthy.stalled)} (p99 ${ms(v3.latency.healthy.p99)})` : null,
      shown: !!v2 && !!v3 && v2.stalls.healthy.stalled > 0 && v3.stalls.healthy.stalled === 0,
      fixedBy: 'v3 (a hub and a writer per client)',
    });
  }
  {
    const block = find(report, 'slow-consumer', 'v3-block');
    const v3 = find(report, 'slow-consumer', 'v3');
    rows.push({
      flaw: 'the hub waits on one full queue, and every room stalls',
      hurts: 'v3 --on-full block',
      evidence: block && v3 ? `slow-consumer: ${stallOf(block)}; v3 (drop) stalled ${fmt(v3.stalls.healthy.stalled)}` : null,
      shown: !!block && !!v3 && block.stalls.healthy.stalled > 0 && v3.stalls.healthy.stalled === 0,
      fixedBy: 'v3 --on-full drop (v3.1)',
    });
  }
  {
    const v3 = find(report, 'slow-consumer', 'v3');
    const a = v3?.accounting;
    rows.push({
      flaw: 'what a slow reader cannot take is dropped: for it alone, counted and told',
      hurts: 'the slow readers, by design',
      evidence: a ? `slow-consumer: v3 dropped ${fmt(a.serverDrops)}; the slow readers lost ${fmt(a.byKind.slow.lost)} (told of ${fmt(a.toldDropped)}), the healthy clients ${fmt(a.byKind.healthy.lost)}` : null,
      shown: !!a && a.byKind.healthy.lost === 0 && a.unexplained === 0,
      fixedBy: '— (the policy: kick closes it instead)',
    });
  }
  {
    const v1 = find(report, 'baseline', 'v1');
    const v3 = find(report, 'baseline', 'v3');
    const w1 = v1?.server?.deliveriesPerWrite ?? null;
    const w3 = v3?.server?.deliveriesPerWrite ?? null;
    rows.push({
      flaw: 'one socket write per message per client',
      hurts: 'v1, v1.1, v2',
      evidence:
        w1 !== null && w3 !== null && v1?.server && v3?.server
          ? `baseline: v1 ${w1} deliveries per write, ${fmt(v1.server.deliveriesPerCpuSecond)} per server CPU-second; v3 ${w3} and ${fmt(v3.server.deliveriesPerCpuSecond)}`
          : null,
      shown: w1 !== null && w3 !== null && w3 > w1,
      fixedBy: 'v3 (batched writes, one frame encoded once)',
    });
  }
  return rows.some((r) => r.evidence !== null) ? rows : null;
}

/** The evolution table as lines of text, for a terminal. */
export function storyLines(rows: readonly StoryRow[]): string[] {
  return [
    'The evolution, as this run measured it:',
    ...rows.map((r) => `${r.evidence === null ? '·' : r.shown ? '✔' : '✘'} ${r.hurts}: ${r.flaw}. ${r.evidence ?? 'not in this run'}. Fixed by ${r.fixedBy}.`),
  ];
}
