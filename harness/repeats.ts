// Repeated runs (--repeat N): each version runs N times, interleaved with the others so that a
// slow minute of the machine falls on every version alike, and each key figure is reported as
// the median with its min-max. A figure near its line needs its spread; one run has none.
import type { RepeatSpread, VersionResult } from './result.ts';
import { METRICS, type MetricName } from './thresholds.ts';
import { verdict } from './verdict.ts';

/** The figures a repeated run gives as median and range; each is read as thresholds.ts's METRICS reads it. */
export const REPEATED_FIGURES = ['p50', 'p99', 'max', 'delivered/s', 'lost', 'stalled', 'cpu'] as const satisfies readonly MetricName[];
export type RepeatedFigure = (typeof REPEATED_FIGURES)[number];

export function spread(values: readonly number[]): RepeatSpread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted.at(-1) as number };
}

/**
 * One result for N runs of a version: the run whose healthy p99 is the median's stands for them
 * (its charts, its table), or in a capacity ladder the run whose sustained rate is the median's,
 * with every key figure's median, min-max and run-by-run values attached. The worst health
 * of any run is the result's (a crash in one run of three is a crash), and so is any INVALID.
 */
export function combineRepeats(runs: readonly VersionResult[], slowReaders: number): VersionResult {
  if (runs.length === 0) throw new RangeError('combineRepeats needs at least one run');
  if (runs.length === 1) return runs[0] as VersionResult;
  const ladder = runs.every((r) => r.capacity);
  const ordered = [...runs].sort(ladder ? (a, b) => a.deliveryRate - b.deliveryRate : (a, b) => a.latency.healthy.p99 - b.latency.healthy.p99);
  const representative = ordered[Math.floor((ordered.length - 1) / 2)] as VersionResult;
  const figures: Partial<Record<RepeatedFigure, RepeatSpread>> = {};
  for (const name of REPEATED_FIGURES) {
    const values = runs.map((r) => METRICS[name].read(r)).filter((v): v is number => v !== null);
    if (values.length === runs.length) figures[name] = { ...spread(values), runs: values };
  }
  const broken = runs.find((r) => r.health.broken);
  const invalid = runs.filter((r) => !r.valid);
  const result: VersionResult = {
    ...representative,
    health: broken?.health ?? representative.health,
    valid: invalid.length === 0,
    invalidReasons: invalid.flatMap((r) => r.invalidReasons),
    repeats: { n: runs.length, figures },
  };
  const p99 = figures.p99;
  result.verdict = `${verdict(result, slowReaders)} (the median of ${runs.length} runs${p99 ? `; p99 ${p99.min.toFixed(1)}-${p99.max.toFixed(1)} ms` : ''})`;
  return result;
}
