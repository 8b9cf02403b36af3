// The capacity ladder: a fresh run per step, the rate stepped up until a step is not sustained;
// what broke it, the highest sustained, and the ladder's verdict, decided here and only here.
import { fmt } from '../common/helpers.ts';
import { aggregate } from './aggregate.ts';
import type { CapacityResult, CapacityStep, VersionResult } from './result.ts';
import { runTarget, type ProgressFn } from './run-target.ts';
import type { Target } from './plan.ts';
import { CAPACITY_LADDER, rateFor, type ScenarioConfig } from './scenarios.ts';

/**
 * Steps the rate up (CAPACITY_LADDER) until the server breaks, p99 passes config.p99LimitMs, a
 * delivery is lost, or a step cannot be measured (the generator or the whole machine past its
 * limits). The result shown is the last sustained step's, with every step attached, and the
 * health of the step that broke the server if one did: a crash on the last step is never hidden
 * behind the clean health of the best.
 */
export async function runCapacity(target: Target, config: ScenarioConfig, seed: number, onProgress: ProgressFn): Promise<VersionResult> {
  const steps: CapacityStep[] = [];
  let best: VersionResult | null = null;
  let last: VersionResult | null = null;
  let brokeBy: string | null = null;
  for (const perSecond of CAPACITY_LADDER) {
    const stepConfig = { ...config, rate: rateFor(config, perSecond) };
    const r = aggregate(await runTarget(target, stepConfig, seed, (label, phase, f) => onProgress(`${label}@${fmtShort(perSecond)}`, phase, f)));
    const step = capacityStep(r, perSecond);
    steps.push(step);
    last = r;
    brokeBy = r.health.broken ? `the server broke: ${r.health.findings.join('; ')}` : capacityBreak(step, config.p99LimitMs, r.invalidReasons);
    if (brokeBy) break;
    best = r;
  }
  const result = { ...(best ?? (last as VersionResult)) };
  if (last?.health.broken) result.health = last.health;
  result.capacity = { steps, sustainedPerSecond: best?.deliveryRate ?? 0, brokeBy };
  result.verdict = capacityVerdict(result.label, result.capacity);
  return result;
}

function fmtShort(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
}

export function capacityStep(r: VersionResult, targetPerSecond: number): CapacityStep {
  return {
    targetPerSecond,
    deliveryRate: r.deliveryRate,
    p99Ms: r.latency.healthy.p99,
    lost: r.accounting.lost,
    valid: r.valid,
    serverCpuPct: r.server?.cpuPctMean ?? 0,
    deliveriesPerCpuSecond: r.server?.deliveriesPerCpuSecond ?? 0,
    deliveriesPerWrite: r.server?.deliveriesPerWrite ?? 0,
    machineBusyPct: r.generator.machineBusyPct,
  };
}

/** Why a capacity step does not count as sustained, or null if it does. */
export function capacityBreak(step: CapacityStep, p99LimitMs: number, reasons: string[]): string | null {
  if (!step.valid) return `not measurable: ${reasons[0] ?? 'invalid'}`;
  if (step.lost > 0) return `${fmt(step.lost)} deliveries lost`;
  if (step.p99Ms > p99LimitMs) return `p99 ${step.p99Ms.toFixed(0)} ms > ${p99LimitMs} ms`;
  return null;
}

export function capacityVerdict(label: string, c: CapacityResult): string {
  const best = c.steps.find((s) => s.deliveryRate === c.sustainedPerSecond && c.sustainedPerSecond > 0);
  const head = best
    ? `${label}: sustained ${fmt(best.deliveryRate)} deliveries/s (p99 ${best.p99Ms.toFixed(1)} ms, ${fmt(best.deliveriesPerCpuSecond)} per server CPU-second, ${best.deliveriesPerWrite} per socket write)`
    : `${label}: sustained no step`;
  const last = c.steps.at(-1);
  return c.brokeBy && last ? `${head}; at ${fmt(last.targetPerSecond)}/s: ${c.brokeBy}` : head;
}

/** "v3 sustained 24.5× v1 and 31.0× v2 (one run)": how far the versions' sustained rates lie apart. */
export function capacityRatios(results: VersionResult[]): string | null {
  const lead = capacityLeader(results);
  if (!lead || lead.top === 0 || lead.others.length === 0) return null;
  return `${lead.best.label} sustained ${lead.others.map((o) => `${o.ratio.toFixed(1)}× ${o.label}`).join(' and ')} (one run)`;
}

/** The ladder that sustained the most, its rate, and how many times each other one that sustained a step it is. */
export function capacityLeader(results: readonly VersionResult[]): { best: VersionResult; top: number; others: Array<{ label: string; ratio: number }> } | null {
  const ladders = results.filter((r) => r.capacity);
  if (ladders.length === 0) return null;
  const sustained = (r: VersionResult): number => r.capacity?.sustainedPerSecond ?? 0;
  const best = ladders.reduce((a, b) => (sustained(b) > sustained(a) ? b : a));
  const top = sustained(best);
  const others = ladders.filter((r) => r !== best && sustained(r) > 0).map((r) => ({ label: r.label, ratio: top / sustained(r) }));
  return { best, top, others };
}
