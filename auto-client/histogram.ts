// The one place histograms are built: fixed settings, so every worker's histogram can be merged
// with every other's. Values are microseconds. Workers ship them encoded; the parent decodes,
// merges, and computes percentiles last.
import * as hdr from 'hdr-histogram-js';

/** Lowest and highest recordable latency, in microseconds (1 µs .. 10 min). */
const LOWEST_US = 1;
const HIGHEST_US = 600_000_000;
const SIGNIFICANT_DIGITS = 3;

export type Histogram = hdr.Histogram;

export function createHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    bitBucketSize: 32,
    useWebAssembly: false,
  });
}

/** Records a value in microseconds, clamped into the trackable range (a late value is never lost). */
export function recordUs(h: Histogram, us: number): void {
  h.recordValue(us < LOWEST_US ? LOWEST_US : us > HIGHEST_US ? HIGHEST_US : Math.round(us));
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}

export function mergeEncoded(encoded: readonly string[]): Histogram {
  const total = createHistogram();
  for (const e of encoded) total.add(decodeHistogram(e));
  return total;
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summarize(h: Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

/** Percentile spectrum for charts: [percentile, ms] at 1 - 10^-k steps, up to the max. */
export function spectrum(h: Histogram): Array<[number, number]> {
  if (h.totalCount === 0) return [];
  const points: Array<[number, number]> = [];
  for (const p of [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]) {
    points.push([p, h.getValueAtPercentile(p) / 1000]);
  }
  return points;
}
