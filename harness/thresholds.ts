// Pass/fail criteria a script can gate on, in the spirit of k6's `thresholds` and Artillery's
// `ensure`: "v3 p99 < 100ms", "v3 lost == 0", and ratios between versions of the same run,
// "v3 p99 < v2 p99 / 10", which hold on a noisy machine where absolute figures wander.
// A threshold is checked in every scenario in which its versions ran.
import { fmt, round } from '../common/helpers.ts';
import type { VersionResult } from './result.ts';

/**
 * Every figure a threshold, a repeated run or a comparison can name, its unit, and how it is read
 * off a result (null: not measured). Latencies are the healthy receivers', in ms.
 */
export const METRICS = {
  p50: { unit: 'ms', read: (r: VersionResult) => latency(r, 'p50') },
  p90: { unit: 'ms', read: (r: VersionResult) => latency(r, 'p90') },
  p99: { unit: 'ms', read: (r: VersionResult) => latency(r, 'p99') },
  'p99.9': { unit: 'ms', read: (r: VersionResult) => latency(r, 'p999') },
  max: { unit: 'ms', read: (r: VersionResult) => latency(r, 'max') },
  lost: { unit: '', read: (r: VersionResult) => r.accounting.lost },
  'lost.healthy': { unit: '', read: (r: VersionResult) => r.accounting.byKind.healthy.lost },
  'lost.slow': { unit: '', read: (r: VersionResult) => r.accounting.byKind.slow.lost },
  unexplained: { unit: '', read: (r: VersionResult) => r.accounting.unexplained },
  dropped: { unit: '', read: (r: VersionResult) => r.accounting.serverDrops },
  stalled: { unit: '', read: (r: VersionResult) => r.stalls.healthy.stalled },
  'delivered/s': { unit: '/s', read: (r: VersionResult) => (r.capacity ? r.capacity.sustainedPerSecond : r.deliveryRate) }, // a ladder: the rate it sustained
  cpu: { unit: '%', read: (r: VersionResult) => r.server?.cpuPctMean ?? null },
  rss: { unit: 'MB', read: (r: VersionResult) => r.server?.peakRssMB ?? null },
} as const satisfies Record<string, { unit: string; read: (r: VersionResult) => number | null }>;

export type MetricName = keyof typeof METRICS;

/** Figures read from the server's own counters (/api/stats): a server the harness did not start is not asked for them. */
export const SERVER_SIDE_METRICS: ReadonlySet<MetricName> = new Set<MetricName>(['dropped', 'cpu', 'rss']);

/** The metrics a threshold names, on either side. */
export function metricsOf(t: Threshold): MetricName[] {
  return 'label' in t.rhs ? [t.metric, t.rhs.metric] : [t.metric];
}
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

const OPS = {
  '<': (a: number, b: number) => a < b,
  '<=': (a: number, b: number) => a <= b,
  '>': (a: number, b: number) => a > b,
  '>=': (a: number, b: number) => a >= b,
  '==': (a: number, b: number) => a === b,
  '!=': (a: number, b: number) => a !== b,
} as const;
type Op = keyof typeof OPS;

export interface Threshold {
  /** As written. */
  expression: string;
  label: string;
  metric: MetricName;
  op: Op;
  /** A number, or another version's metric scaled: "v2 p99 / 10". */
  rhs: { value: number } | { label: string; metric: MetricName; scale: number };
}

export interface ThresholdResult {
  expression: string;
  scenario: string;
  pass: boolean;
  /** What was compared, in words: "7.3 ms", "25.1 ms against 2.5 ms (v2 p99 24.6 ms / 10)". */
  actual: string;
}

const metricPattern = METRIC_NAMES.map((m) => m.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|');
const WHOLE = new RegExp(`^\\s*(.+?)\\s+(${metricPattern})\\s*(<=|>=|==|!=|<|>)\\s*(.+?)\\s*$`);
const NUMBER = /^(-?\d+(?:\.\d+)?)\s*(ms|s|%|MB|\/s)?$/;
const OTHER = new RegExp(`^(.+?)\\s+(${metricPattern})(?:\\s*([*/])\\s*(\\d+(?:\\.\\d+)?))?$`);

/** Parses one threshold; throws a RangeError that shows the expected form. */
export function parseThreshold(expression: string): Threshold {
  const form = `expected "<version> <metric> <op> <number>[ms|s]" or "<version> <metric> <op> <version> <metric> [* or / <number>]", metric one of ${METRIC_NAMES.join(', ')}, op one of ${Object.keys(OPS).join(' ')}`;
  const m = WHOLE.exec(expression);
  if (!m) throw new RangeError(`threshold "${expression}": ${form}`);
  const [, label = '', metric, op, rhsText = ''] = m;
  const base = { expression: expression.trim(), label: label.trim(), metric: metric as MetricName, op: op as Op };
  const n = NUMBER.exec(rhsText);
  if (n) {
    const unit = n[2] ?? '';
    const expected = METRICS[base.metric].unit;
    if (unit !== '' && unit !== expected && !(expected === 'ms' && unit === 's')) throw new RangeError(`threshold "${expression}": ${base.metric} is in ${expected || 'a plain count'}, not ${unit}`);
    return { ...base, rhs: { value: Number(n[1]) * (unit === 's' && expected === 'ms' ? 1000 : 1) } };
  }
  const o = OTHER.exec(rhsText);
  if (!o) throw new RangeError(`threshold "${expression}": ${form}`);
  const [, otherLabel = '', otherMetric, sign, factor] = o;
  if (METRICS[otherMetric as MetricName].unit !== METRICS[base.metric].unit) throw new RangeError(`threshold "${expression}": ${base.metric} and ${otherMetric} are not in the same unit`);
  const k = factor === undefined ? 1 : Number(factor);
  if (sign === '/' && k === 0) throw new RangeError(`threshold "${expression}": division by zero`);
  return { ...base, rhs: { label: otherLabel.trim(), metric: otherMetric as MetricName, scale: sign === '/' ? 1 / k : k } };
}

/** The versions a threshold needs in a scenario. */
export function labelsOf(t: Threshold): string[] {
  return 'value' in t.rhs ? [t.label] : [t.label, t.rhs.label];
}

/** Checks every threshold whose versions all ran in this scenario. */
export function evaluateThresholds(thresholds: readonly Threshold[], scenario: string, results: readonly VersionResult[]): ThresholdResult[] {
  const byLabel = new Map(results.map((r) => [r.label, r]));
  const out: ThresholdResult[] = [];
  for (const t of thresholds) {
    const left = byLabel.get(t.label);
    if (!left) continue;
    const a = METRICS[t.metric].read(left);
    const unit = METRICS[t.metric].unit;
    if ('value' in t.rhs) {
      if (a === null) out.push({ expression: t.expression, scenario, pass: false, actual: `no ${t.metric} was measured` });
      else out.push({ expression: t.expression, scenario, pass: OPS[t.op](a, t.rhs.value), actual: show(a, unit) });
      continue;
    }
    const right = byLabel.get(t.rhs.label);
    if (!right) continue;
    const b = METRICS[t.rhs.metric].read(right);
    if (a === null || b === null) {
      out.push({ expression: t.expression, scenario, pass: false, actual: `no ${a === null ? `${t.label} ${t.metric}` : `${t.rhs.label} ${t.rhs.metric}`} was measured` });
      continue;
    }
    const bound = b * t.rhs.scale;
    const scaled = t.rhs.scale === 1 ? '' : t.rhs.scale < 1 ? ` / ${round(1 / t.rhs.scale, 1)}` : ` × ${round(t.rhs.scale, 1)}`;
    out.push({ expression: t.expression, scenario, pass: OPS[t.op](a, bound), actual: `${show(a, unit)} against ${show(bound, unit)} (${t.rhs.label} ${t.rhs.metric} ${show(b, unit)}${scaled})` });
  }
  return out;
}

/** "✔ v3 p99 < 100ms (7.3 ms)". */
export function thresholdLine(r: ThresholdResult): string {
  return `${r.pass ? '✔' : '✘'} ${r.expression} (${r.actual})`;
}

/** A latency, or null when there were no samples: a threshold on nothing measured fails. */
function latency(r: VersionResult, p: 'p50' | 'p90' | 'p99' | 'p999' | 'max'): number | null {
  const l = r.latency.healthy;
  return l.count > 0 ? l[p] : null;
}

function show(x: number, unit: string): string {
  const v = fmt(Number.isInteger(x) ? x : round(x, 1));
  return unit === '' ? v : unit === '/s' || unit === '%' ? `${v}${unit}` : `${v} ${unit}`;
}
