// The capacity ladder: a fresh run per step, the rate stepped up until a step is not sustained;
// what broke it, the highest sustained, and the ladder's verdict, decided here and only here.
import { aggregate } from './aggregate.ts';
import { capacityBreak, capacityVerdict, isNoiseBreak, nextRefinement } from './capacity-figures.ts';
import type { CapacityStep, VersionResult } from './result.ts';
import { runTarget, type ProgressFn } from './run-target.ts';
import type { Target } from './plan.ts';
import { CAPACITY_LADDER, rateFor, type ScenarioConfig } from './scenarios.ts';

/**
 * Steps the rate up (CAPACITY_LADDER) until the server breaks, p99 passes config.p99LimitMs, a
 * delivery is lost, or a step cannot be measured (the generator or the whole machine past its
 * limits). Between the last sustained step and the one that was not, it then halves the interval
 * until it is within REFINE_RESOLUTION of the rate held (1M held, 2M not: 1.5M, 1.25M or 1.75M, …
 * three or four halvings), so the rate sustained is known to 10%, not to a factor of 2 or 2.5: a fraction
 * of the ceiling means something only that fine. A step whose p99 alone passed the limit is run
 * once more before it counts (isNoiseBreak). A server that broke is not asked again. The result shown is the
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
  /** Up the ladder until a step is not sustained, then halfway between held and broke until the interval is fine enough. */
  const next = (): number | null => {
    if (!broke) return CAPACITY_LADDER[ladder++] ?? null;
    if (last?.health.broken) return null; // a server that broke is not asked again
    return nextRefinement(held, broke.at, refined++);
  };
  const run = async (perSecond: number, again: boolean): Promise<{ r: VersionResult; step: CapacityStep }> => {
    const stepConfig = { ...config, rate: rateFor(config, perSecond) };
    const name = `${fmtShort(perSecond)}${again ? ' again' : ''}`;
    const r = aggregate(await runTarget(target, stepConfig, seed, (label, phase, f, detail) => onProgress(`${label}@${name}`, phase, f, detail)));
    return { r, step: capacityStep(r, perSecond) };
  };
  for (let perSecond = next(); perSecond !== null; perSecond = next()) {
    let { r, step } = await run(perSecond, false);
    if (!r.health.broken && isNoiseBreak(step, config.p99LimitMs)) {
      const firstP99Ms = step.p99Ms;
      ({ r, step } = await run(perSecond, true));
      step.firstP99Ms = firstP99Ms;
    }
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

