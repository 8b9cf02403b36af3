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

/**
 * HDR's bucket layout for these settings (unit 1 µs, 3 significant digits): 2048 sub-buckets per
 * bucket, of which buckets above the first use the top half. Counting into it needs only integer
 * operations, where hdr-histogram-js's recordValue takes a log2, a floor and a pow per value:
 * on the generator's receive path (two values per frame, millions of frames a second) that was
 * a large share of a worker's CPU.
 */
const SUB_BUCKET_HALF_MAGNITUDE = 10;
const SUB_BUCKET_HALF = 1 << SUB_BUCKET_HALF_MAGNITUDE;
/** (buckets needed to cover HIGHEST_US + 1) × SUB_BUCKET_HALF: HDR's own counts array length. */
const COUNTS_LENGTH = (Math.ceil(Math.log2(HIGHEST_US / (2 * SUB_BUCKET_HALF))) + 2) * SUB_BUCKET_HALF;

function bucketIndexOf(v: number): number {
  const bucket = 31 - Math.clz32(v) - SUB_BUCKET_HALF_MAGNITUDE; // floor(log2 v) − 10; v < 2^31
  const b = bucket > 0 ? bucket : 0;
  return (b << SUB_BUCKET_HALF_MAGNITUDE) + (v >>> b);
}

function valueOfIndex(index: number): number {
  let bucket = (index >>> SUB_BUCKET_HALF_MAGNITUDE) - 1;
  let sub = (index & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
  if (bucket < 0) {
    sub -= SUB_BUCKET_HALF;
    bucket = 0;
  }
  return sub * 2 ** bucket;
}

/**
 * Records latencies on a hot path into exactly the buckets an HDR histogram of these settings
 * uses, and becomes one (same counts, same exact min and max) when the run is over.
 */
export class LatencyRecorder {
  private readonly counts = new Uint32Array(COUNTS_LENGTH);
  count = 0;
  private min = HIGHEST_US;
  private max = 0;

  /** Microseconds, clamped into the trackable range like recordUs. */
  record(us: number): void {
    const v = us < LOWEST_US ? LOWEST_US : us > HIGHEST_US ? HIGHEST_US : Math.round(us);
    (this.counts[bucketIndexOf(v)] as number)++;
    this.count++;
    if (v > this.max) this.max = v;
    if (v < this.min) this.min = v;
  }

  toHistogram(): Histogram {
    const h = createHistogram();
    if (this.count === 0) return h;
    const counts = Uint32Array.from(this.counts);
    // The exact extremes go in as themselves, so max and min are not rounded to their bucket.
    const extremes = this.min === this.max && this.count === 1 ? [this.min] : [this.min, this.max];
    for (const v of extremes) (counts[bucketIndexOf(v)] as number)--;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i] as number;
      if (n > 0) h.recordValueWithCount(valueOfIndex(i), n);
    }
    for (const v of extremes) h.recordValue(v);
    return h;
  }

  encode(): string {
    return encodeHistogram(this.toHistogram());
  }
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
  // A percentile is its bucket's upper edge, which can lie above the exact max recorded: never show one above it.
  const at = (p: number): number => ms(Math.min(h.getValueAtPercentile(p), h.maxValue));
  return {
    count: h.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

/** Percentile spectrum for charts: [percentile, ms] at 1 - 10^-k steps, up to the max. */
export function spectrum(h: Histogram): Array<[number, number]> {
  if (h.totalCount === 0) return [];
  const points: Array<[number, number]> = [];
  for (const p of [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]) {
    points.push([p, Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000]);
  }
  return points;
}
