// The capacity ladder: a fresh run per step, the rate stepped up until a step is not sustained;
// what broke it, the highest sustained, and the ladder's verdict, decided here and only here.
import { aggregate } from './aggregate.ts';
import { capacityBreak, capacityVerdict } from './capacity-figures.ts';
import type { CapacityStep, VersionResult } from './result.ts';
import { runTarget, type ProgressFn } from './run-target.ts';
import type { Target } from './plan.ts';
import { CAPACITY_LADDER, rateFor, type ScenarioConfig } from './scenarios.ts';

/**
 * Steps the rate up (CAPACITY_LADDER) until the server breaks, p99 passes config.p99LimitMs, a
 * delivery is lost, or a step cannot be measured (the generator or the whole machine past its
 * limits). Between the last sustained step and the one that was not, it then halves the interval
 * REFINE_STEPS times (1M held, 2M not: 1.5M, then 1.25M or 1.75M), so the rate sustained is known
 * to an eighth of the last 1-2-5 interval, not to a factor of 2 or 2.5: a fraction of the ceiling
 * means something only that fine. A server that broke is not asked again. The result shown is the
 * best sustained step's, with every step attached in the order run, and the health of the step
 * that broke the server if one did: a crash on the last step is never hidden behind the clean
 * health of the best.
 */
export async function runCapacity(target: Target, config: ScenarioConfig, seed: number, onProgress: ProgressFn): Promise<VersionResult> {
  const steps: CapacityStep[] = [];
  let best: VersionResult | null = null;
  let last: VersionResult | null = null;
  /** The highest target sustained, and the lowest not sustained (and why). */
  let held = 0;
  let broke: { at: number; why: string } | null = null;
  let ladder = 0;
  let refined = 0;
  /** Up the ladder until a step is not sustained, then halfway between held and broke, REFINE_STEPS times. */
  const next = (): number | null => {
    if (!broke) return CAPACITY_LADDER[ladder++] ?? null;
    if (refined++ >= REFINE_STEPS || held === 0 || last?.health.broken) return null; // a server that broke is not asked again
    const mid = refineTarget(held, broke.at);
    return mid > held && mid < broke.at ? mid : null;
  };
  for (let perSecond = next(); perSecond !== null; perSecond = next()) {
    const stepConfig = { ...config, rate: rateFor(config, perSecond) };
    const r = aggregate(await runTarget(target, stepConfig, seed, (label, phase, f) => onProgress(`${label}@${fmtShort(perSecond)}`, phase, f)));
    const step = capacityStep(r, perSecond);
    steps.push(step);
    last = r;
    const why = r.health.broken ? `the server broke: ${r.health.findings.join('; ')}` : capacityBreak(step, config.p99LimitMs, r.invalidReasons);
    if (why) broke = { at: perSecond, why };
    else {
      held = perSecond;
      if (!best || r.deliveryRate > best.deliveryRate) best = r;
    }
  }
  const result = { ...(best ?? (last as VersionResult)) };
  if (last?.health.broken) result.health = last.health;
  result.capacity = { steps, sustainedPerSecond: best?.deliveryRate ?? 0, brokeBy: broke?.why ?? null, ...(broke ? { brokeAtPerSecond: broke.at } : {}) };
  result.verdict = capacityVerdict(result.label, result.capacity);
  return result;
}

/** Halvings between the last sustained ladder step and the next (each one more run). */
export const REFINE_STEPS = 2;

/** The rate halfway between a sustained and an unsustained target, rounded to a thousand deliveries/s. */
export function refineTarget(held: number, notHeld: number): number {
  return Math.round((held + notHeld) / 2 / 1000) * 1000;
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

