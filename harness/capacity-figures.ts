// What a capacity ladder's steps say, for the reports and the story: which step broke it and why,
// its verdict, and how far the versions' sustained rates lie apart. Pure functions of the results:
// the renderers read them without importing the runner (capacity.ts).
import { fmt } from '../common/helpers.ts';
import type { CapacityResult, CapacityStep, VersionResult } from './result.ts';

/** The ladder is refined until the interval between held and not held is at most this fraction of held… */
export const REFINE_RESOLUTION = 0.1;
/** …or this many halvings have run (each one more run; three or four take a 1-2-5 interval under 10%). */
export const MAX_REFINEMENTS = 5;

/**
 * The next rate to try once a step was not sustained: halfway between the highest held and the
 * lowest not held, or null when the interval is already within REFINE_RESOLUTION of held, the
 * halvings are spent, or nothing was held at all (the bottom of the ladder is the answer).
 */
export function nextRefinement(held: number, notHeld: number, refinedSoFar: number): number | null {
  if (held <= 0 || refinedSoFar >= MAX_REFINEMENTS || notHeld - held <= REFINE_RESOLUTION * held) return null;
  const mid = refineTarget(held, notHeld);
  return mid > held && mid < notHeld ? mid : null;
}

/** The rate halfway between a sustained and an unsustained target, rounded to a thousand deliveries/s. */
export function refineTarget(held: number, notHeld: number): number {
  return Math.round((held + notHeld) / 2 / 1000) * 1000;
}

/**
 * A step whose only fault is a p99 past the limit, in a measurable run that lost nothing, is run
 * once more before it counts as a break: near the fan-out's own floor (55-70 ms to 1,000 clients
 * here, against a 100 ms limit) one run's p99 turns on a few ms of the machine's noise, and a
 * ladder that ends at its first step on such a run says nothing of the server. A crash, a loss or
 * an unmeasurable run is never run again.
 */
export function isNoiseBreak(step: CapacityStep, p99LimitMs: number): boolean {
  return step.valid && step.lost === 0 && step.p99Ms > p99LimitMs && step.firstP99Ms === undefined;
}

/** The steps by target rate: the order of the rates, where the refinement ran them after the ladder. */
export function byTarget(steps: readonly CapacityStep[]): CapacityStep[] {
  return [...steps].sort((a, b) => a.targetPerSecond - b.targetPerSecond);
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
  const at = c.brokeAtPerSecond ?? c.steps.at(-1)?.targetPerSecond;
  return c.brokeBy && at !== undefined ? `${head}; at ${fmt(at)}/s: ${c.brokeBy}` : head;
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
