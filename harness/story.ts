// What a run says in the fewest words: a headline per scenario (who won, by how much, what went
// wrong, and its checks ✔/✘), and, for a run that holds the versions and scenarios the article's
// story needs, the evolution table: each flaw, the version it hurts, this run's evidence, and the
// version that fixes it.
import { fmt } from '../common/helpers.ts';
import { capacityLeader } from './capacity-figures.ts';
import type { ScenarioReport, StressReport } from './report-model.ts';
import type { VersionResult } from './result.ts';
import { ceilingFractions, ceilingLine, isReference, V3_CEILING_TARGET } from './reference.ts';
import { thresholdLine } from './thresholds.ts';
import { behindClients, deadSockets, ms, stalledClients } from './verdict.ts';
import { hurtInWords, STORY_EXPECTATIONS, versionChecks, type Check, type RunMode } from './expectations.ts';

export type { Check } from './expectations.ts';

/** The scenario's checks, for every measurable version: in a story run, against what the story expects of it. */
export function scenarioChecks(s: ScenarioReport): Check[] {
  const checks: Check[] = [];
  const ceiling = ceilingFractions(s.results);
  const v3 = ceiling?.fractions.find((f) => f.label === 'v3');
  if (v3 && s.scenario === 'capacity') checks.push({ kind: 'ceiling', pass: v3.fraction >= V3_CEILING_TARGET, text: `v3 at ${V3_CEILING_TARGET}× the ceiling or more (${v3.fraction.toFixed(2)}×)` });
  for (const r of s.results) checks.push(...versionChecks(modeOf(s), s.scenario, r, behindMsOf(s), r.capacity !== undefined));
  return checks;
}

/** Reports written before modes were judged in strict mode. */
export const modeOf = (s: Pick<ScenarioReport, 'mode'>): RunMode => s.mode ?? 'strict';
/** Reports written before --behind-ms had its default. */
export const behindMsOf = (s: Pick<ScenarioReport, 'config'>): number => s.config.behindMs ?? 1000;

/** The winner and the ratio, then the worst that happened to each measurable version's users, one finding a line. */
export function headlineFindings(s: ScenarioReport): string[] {
  // The ceiling is the yardstick, not a contestant; an INVALID run never speaks.
  const versions = s.results.filter((r) => !isReference(r) && r.valid);
  const lead = capacityLeader(versions);
  const against = ceilingLine(s.results.filter((r) => r.valid));
  if (lead) {
    const ratio = lead.others.map((o) => `${o.ratio.toFixed(1)}× ${o.label}'s`).join(' and ');
    return [`${lead.best.label} sustained ${fmt(lead.top)} deliveries/s${ratio ? `, ${ratio}` : ''}.${against ? ` ${against}.` : ''}`];
  }
  const measured = versions.filter((r) => r.latency.healthy.count > 0);
  const lines: string[] = [];
  // Versions that all kept up differ by noise, not design: the headline names who kept up and who
  // did not, never a winner among equals (that would flip between runs).
  const keptUp = measured.filter((r) => keptUpAll(r));
  const behind = measured.filter((r) => !keptUpAll(r));
  const p99 = (r: VersionResult): string => `${r.label} ${ms(r.latency.healthy.p99)}`;
  const byP99 = (xs: VersionResult[]): VersionResult[] => [...xs].sort((a, b) => a.latency.healthy.p99 - b.latency.healthy.p99);
  if (keptUp.length > 0 && behind.length === 0) {
    lines.push(
      keptUp.length === 1
        ? `${keptUp[0]!.label}'s healthy clients kept up (p99 ${ms(keptUp[0]!.latency.healthy.p99)}).`
        : `${keptUp.length === 2 ? 'Both versions\'' : `All ${keptUp.length} versions'`} healthy clients kept up: p99 ${byP99(keptUp).map(p99).join(', ')}.`,
    );
  } else if (keptUp.length > 0) {
    const worstKept = byP99(keptUp).at(-1)!;
    lines.push(`${names(keptUp.map((r) => r.label))} kept up (healthy p99 ${byP99(keptUp).map((r) => ms(r.latency.healthy.p99)).join(', ')}); ${names(behind.map((r) => r.label))} did not.`);
    for (const r of byP99(behind)) {
      const ratio = r.latency.healthy.p99 / Math.max(worstKept.latency.healthy.p99, 0.001);
      lines.push(`${r.label}'s healthy p99 is ${ms(r.latency.healthy.p99)}${ratio >= 1.5 ? `, ${ratio >= 10 ? Math.round(ratio) : ratio.toFixed(1)}× ${keptUp.length === 1 ? '' : 'the slowest that kept up, '}${worstKept.label}'s (${ms(worstKept.latency.healthy.p99)})` : ''}.`);
    }
  } else if (measured.length > 0) {
    lines.push(`No version kept up: healthy p99 ${byP99(measured).map(p99).join(', ')}.`);
  }
  for (const r of versions) lines.push(...worstOf(r));
  if (against) lines.push(`${against}.`);
  return lines;
}

/** One or two sentences: the winner and the ratio, and the worst that happened to a version's users. */
export function headline(s: ScenarioReport): string {
  return headlineFindings(s).join(' ');
}

/**
 * The server held up and every healthy client got every message, none more than --behind-ms late:
 * what the checks hold a version to. A gap of a few hundred ms is a stall, reported, but not a room
 * that failed to keep up (one that lasts makes the messages due in it late, and so behind).
 */
function keptUpAll(r: VersionResult): boolean {
  return !r.health.broken && (r.stalls.healthy.behind ?? 0) === 0 && r.accounting.byKind.healthy.lost <= 0;
}

/** "v1", "v1 and v3", "v1, v1.1 and v3". */
function names(labels: readonly string[]): string {
  return labels.length <= 1 ? (labels[0] ?? '') : `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
}

/** What went worst for one version's users, if anything did, one finding each. */
function worstOf(r: VersionResult): string[] {
  const out: string[] = [];
  if (r.health.broken) out.push(`${r.label} is BROKEN: ${r.health.findings[0] ?? r.health.status}.`);
  const h = r.stalls.healthy;
  if (h.stalled > 0) out.push(`${r.label} stalled ${stalledClients(h)}.`);
  if (h.behind > 0) out.push(`${r.label}: ${behindClients(h, r.latency.healthy.max)}.`);
  const leak = deadSockets(r);
  if (leak > 0 && r.churn.leaves > 0) out.push(`${r.label}'s pool holds ${fmt(leak)} dead sockets after ${fmt(r.churn.leaves)} leaves.`);
  if (r.accounting.byKind.healthy.lost > 0 && !r.health.broken) out.push(`${r.label}'s healthy clients lost ${fmt(r.accounting.byKind.healthy.lost)} deliveries.`);
  return out;
}

/** The headline's findings, the checks that failed (or that all passed), and what could not be measured: one line each. */
export function headlineLines(s: ScenarioReport): string[] {
  const checks = scenarioChecks(s);
  const failed = checks.filter((c) => !c.pass);
  const unmeasurable = s.results.filter((r) => !r.valid);
  const lines = [...headlineFindings(s)];
  lines.push(...failed.map((c) => `✘ ${c.text}`));
  const n = checks.length === 1 ? 'the 1 check' : `all ${checks.length} checks`;
  if (failed.length === 0 && checks.length > 0) lines.push(unmeasurable.length === 0 ? `✔ ${n} of this scenario` : `✔ ${n} of the versions it could measure`);
  for (const r of unmeasurable) lines.push(`not measurable: ${r.label}, ${r.invalidReasons[0] ?? 'the generator may have been the bottleneck'}`);
  lines.push(...s.thresholds.map(thresholdLine));
  return lines;
}

export interface StoryRow {
  flaw: string;
  hurts: string;
  /** What this run measured, in words; null when the run lacks the scenario or the versions. */
  evidence: string | null;
  /** The run showed the flaw where it should, and the fix where it should. */
  shown: boolean;
  /** False when a run the row rests on was INVALID: the row then says nothing either way. */
  measurable: boolean;
  fixedBy: string;
}

/** v3's default queue per client (versions/versions.ts): the bound its memory keeps. */
const V3_QUEUE = 128;

const scenarioOf = (report: Pick<StressReport, 'scenarios'>, scenario: string): ScenarioReport | undefined => report.scenarios.find((s) => s.scenario === scenario);
const find = (report: Pick<StressReport, 'scenarios'>, scenario: string, label: string): VersionResult | undefined => scenarioOf(report, scenario)?.results.find((r) => r.label === label);

/** A row from the results it rests on: absent when one is missing, silent when one was INVALID. */
function row(
  base: Pick<StoryRow, 'flaw' | 'hurts' | 'fixedBy'>,
  results: ReadonlyArray<VersionResult | undefined>,
  judge: () => { evidence: string; shown: boolean },
): StoryRow {
  if (results.some((r) => r === undefined)) return { ...base, evidence: null, shown: false, measurable: true };
  const invalid = (results as VersionResult[]).filter((r) => !r.valid);
  if (invalid.length > 0) return { ...base, evidence: `not measurable: ${invalid.map((r) => `${r.label} INVALID`).join(', ')}`, shown: false, measurable: false };
  return { ...base, ...judge(), measurable: true };
}

/** The story a flaw tells in a scenario, from its expectation: the version that shows it, against the one that fixes it. */
function expectedRow(report: Pick<StressReport, 'scenarios'>, scenario: string, label: string, fix: string, base: Pick<StoryRow, 'flaw' | 'hurts' | 'fixedBy'>): StoryRow {
  const flawed = find(report, scenario, label);
  const fixed = find(report, scenario, fix);
  const exp = STORY_EXPECTATIONS[scenario]![label]!;
  return row(base, [flawed, fixed], () => {
    const behindMs = behindMsOf(scenarioOf(report, scenario)!);
    const fixedChecks = versionChecks('strict', scenario, fixed!, behindMs, false).filter((c) => !c.pass && c.kind !== 'pushback');
    return {
      evidence: `${scenario}: ${flawed!.label}: ${exp.evidence(flawed!)}; ${fix}: ${fixedChecks.length === 0 ? hurtInWords(fixed!) : fixedChecks.map((c) => c.text.replace(`${fix}: `, '')).join(', ')}`,
      shown: exp.shown(flawed!, behindMs) && fixedChecks.length === 0,
    };
  });
}

/** The article's story, flaw by flaw, from this run's own figures; null when the run holds none of it. */
export function evolutionStory(report: Pick<StressReport, 'scenarios'>): StoryRow[] | null {
  const rows: StoryRow[] = [];
  {
    const v1 = find(report, 'churn', 'v1');
    const v11 = find(report, 'churn', 'v1.1');
    rows.push(
      row({ flaw: 'dead sockets never leave the pool', hurts: 'v1', fixedBy: 'v1.1 (prune on close)' }, [v1, v11], () => ({
        evidence: `churn: v1's pool holds ${fmt(deadSockets(v1!))} dead sockets after ${fmt(v1!.churn.leaves)} leaves; v1.1's ${fmt(deadSockets(v11!))}`,
        shown: v1!.server !== null && v11!.server !== null && STORY_EXPECTATIONS.churn!.v1!.shown(v1!, 0) && deadSockets(v11!) === 0,
      })),
    );
  }
  {
    // v1's busy event loop may miss a once-a-second reading: the larger of v1's and v1.1's peak.
    const pools = ['v1', 'v1.1'].map((l) => find(report, 'slow-consumer', l));
    const v3 = find(report, 'slow-consumer', 'v3');
    rows.push(
      row({ flaw: 'a slow reader makes the server buffer without bound', hurts: 'v1, v1.1', fixedBy: 'v3 (bounded per-client queues)' }, [...pools, v3], () => {
        const buffered = (pools as VersionResult[]).reduce((a, b) => ((b.server?.peakBufferedMB ?? 0) > (a.server?.peakBufferedMB ?? 0) ? b : a));
        const q3 = v3!.server?.peakQueueDepth ?? null;
        const bound = V3_QUEUE * (v3!.stalls.healthy.clients + (v3!.slowReaders?.readers ?? 0));
        return {
          evidence: `slow-consumer: ${buffered.label} buffered ${buffered.server?.peakBufferedMB ?? 0} MB in user space for its stuck readers; v3's queues held at most ${q3 === null ? 'n/a' : fmt(q3)} messages in all, ${V3_QUEUE} a client at most`,
          shown: buffered.server !== null && STORY_EXPECTATIONS['slow-consumer']!.v1!.shown(buffered, 0) && q3 !== null && q3 <= bound,
        };
      }),
    );
  }
  rows.push(expectedRow(report, 'slow-consumer', 'v2', 'v3', { flaw: 'the lock is held across a slow write: one slow reader holds the room back', hurts: 'v2', fixedBy: 'v3 (a hub and a writer per client)' }));
  rows.push(expectedRow(report, 'slow-consumer', 'v3-block', 'v3', { flaw: 'the hub waits on one full queue, and every room stalls', hurts: 'v3 --on-full block', fixedBy: 'v3 --on-full drop (v3.1)' }));
  {
    const v3 = find(report, 'slow-consumer', 'v3');
    rows.push(
      row({ flaw: 'what a slow reader cannot take is dropped: for it alone, counted and told', hurts: 'the slow readers, by design', fixedBy: '— (the policy: kick closes it instead)' }, [v3], () => {
        const a = v3!.accounting;
        return {
          evidence: `slow-consumer: v3 dropped ${fmt(a.serverDrops)}; the slow readers lost ${fmt(a.byKind.slow.lost)} (told of ${fmt(a.toldDropped)}), the healthy clients ${fmt(a.byKind.healthy.lost)}`,
          shown: a.byKind.healthy.lost === 0 && a.unexplained === 0,
        };
      }),
    );
  }
  {
    const v1 = find(report, 'baseline', 'v1');
    const v3 = find(report, 'baseline', 'v3');
    rows.push(
      row({ flaw: 'one socket write per message per client', hurts: 'v1, v1.1, v2', fixedBy: 'v3 (batched writes, one frame encoded once)' }, [v1, v3], () => {
        const w1 = v1!.server?.deliveriesPerWrite ?? null;
        const w3 = v3!.server?.deliveriesPerWrite ?? null;
        return {
          evidence:
            w1 !== null && w3 !== null
              ? `baseline: v1 ${w1} ${w1 === 1 ? 'delivery' : 'deliveries'} per write, ${fmt(v1!.server!.deliveriesPerCpuSecond)} per server CPU-second; v3 ${w3} and ${fmt(v3!.server!.deliveriesPerCpuSecond)}`
              : 'baseline: no server counters',
          shown: w1 !== null && w3 !== null && w3 > w1,
        };
      }),
    );
  }
  rows.push(...pastOneProcess(report));
  return rows.some((r) => r.evidence !== null) ? rows : null;
}

/** The story past one process (npm run stress -- --full): the broker hop's cost, a node's death survived, one Redis felt by every room. */
function pastOneProcess(report: Pick<StressReport, 'scenarios'>): StoryRow[] {
  const v3 = find(report, 'scale-out', 'v3');
  const clusters = ['v4 --nodes 2', 'v4 --nodes 4'].map((l) => find(report, 'scale-out', l));
  const perDelivery = (r: VersionResult): number | null => (r.server && r.server.deliveriesPerCpuSecond > 0 ? 1 / r.server.deliveriesPerCpuSecond : null);
  const hop = row({ flaw: 'every message makes a round trip to Redis before anyone sees it', hurts: 'v4', fixedBy: '— (the price of more than one process)' }, [v3, ...clusters], () => {
    const all = [v3!, ...(clusters as VersionResult[])];
    const behindMs = behindMsOf(scenarioOf(report, 'scale-out')!);
    const cost = (r: VersionResult): string => {
      const a = perDelivery(r);
      const b = perDelivery(v3!);
      return a !== null && b !== null ? `, ${(a / b).toFixed(2)}× v3's CPU per delivery` : '';
    };
    return {
      evidence: `scale-out, same load: v3 p99 ${ms(v3!.latency.healthy.p99)}; ${(clusters as VersionResult[]).map((r) => `${r.label} p99 ${ms(r.latency.healthy.p99)} (publish round trip p99 ${r.cluster?.publishRttP99Ms ?? 'n/a'} ms${cost(r)})`).join('; ')}`,
      // The cost is shown, not judged against a line: every version must carry the load and the clusters publish through Redis.
      shown: all.every((r) => versionChecks('strict', 'scale-out', r, behindMs, false).every((c) => c.pass)) && (clusters as VersionResult[]).every((r) => (r.cluster?.published ?? 0) > 0),
    };
  });
  const kill = find(report, 'node-kill', 'v4 --nodes 3');
  const outage = find(report, 'broker-outage', 'v4 --nodes 2');
  const hiccup = find(report, 'redis-kill', 'v4 --nodes 2');
  const pause = find(report, 'redis-pause', 'v4 --nodes 2');
  const oom = find(report, 'redis-oom', 'v4 --nodes 2');
  const judged = (scenario: string, r: VersionResult): { evidence: string; shown: boolean } => {
    const checks = versionChecks('story', scenario, r, behindMsOf(scenarioOf(report, scenario)!), false);
    const failed = checks.filter((c) => !c.pass);
    const a = r.accounting;
    return {
      evidence: `${scenario}: ${r.label} ${checks.find((c) => c.kind === 'flaw')?.text.replace(`${r.label} `, '') ?? ''}; healthy clients lost ${fmt(a.byKind.healthy.lost)}, ${fmt(a.duplicates)} duplicated, ${fmt(a.reordered)} reordered${failed.length > 0 ? `; ✘ ${failed.map((c) => c.text).join('; ')}` : ''}`,
      shown: failed.length === 0 && a.duplicates === 0,
    };
  };
  return [
    hop,
    row({ flaw: 'a node dies: its clients must come back elsewhere, missing nothing', hurts: 'v4 (one node)', fixedBy: 'v4 itself: since and epoch over the room\'s history in Redis' }, [kill], () => judged('node-kill', kill!)),
    row({ flaw: "Redis drops the nodes' connections, pauses, or runs out of memory: nothing lost, nothing twice, nobody taken out", hurts: 'v4 (a Redis hiccup)', fixedBy: 'v4 itself: an id on every send, resent when its fate is unknown; beats that wait out a pause; OOM refused, never accepted' }, [hiccup, pause, oom], () => {
      const parts = (
        [
          ['redis-kill', hiccup],
          ['redis-pause', pause],
          ['redis-oom', oom],
        ] as const
      ).map(([scenario, r]) => judged(scenario, r!));
      return { evidence: parts.map((p) => p.evidence).join(' | '), shown: parts.every((p) => p.shown) };
    }),
    row({ flaw: 'one Redis carries every room: while it is down, no room works', hurts: 'v4 (every room)', fixedBy: 'v5 (rooms sharded over a Redis Cluster with replicas), next' }, [outage], () => judged('broker-outage', outage!)),
  ];
}

/** ✔ shown, ✘ not shown, ? not measurable, · not in this run. */
export function rowMark(r: StoryRow): string {
  return r.evidence === null ? '·' : !r.measurable ? '?' : r.shown ? '✔' : '✘';
}

/**
 * The evolution table as lines of text, for a terminal: the flaw on one line, this run's evidence
 * on the next; the rows this run does not hold in one line at the end, so they do not bury the rest.
 */
export function storyLines(rows: readonly StoryRow[]): string[] {
  const absent = rows.filter((r) => r.evidence === null);
  return [
    'The evolution, as this run measured it:',
    ...rows.filter((r) => r.evidence !== null).flatMap((r) => [`${rowMark(r)} ${r.hurts}: ${r.flaw}. Fixed by ${r.fixedBy}.`, `    ${r.evidence}`]),
    ...(absent.length > 0 ? [`· not in this run: ${absent.map((r) => r.flaw).join('; ')} (npm run stress -- --full holds them all)`] : []),
  ];
}
