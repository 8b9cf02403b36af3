// Two reports side by side (npm run compare A B), in the spirit of benchstat: for each scenario and
// version both hold, each key figure before and after, its change, and whether the change is
// larger than the run-to-run spread (the two ranges of repeated runs do not overlap). Without
// repeats there is no spread, and the comparison says so instead of guessing.
import Table from 'cli-table3';
import { fmt } from '../common/helpers.ts';
import { REPEATED_FIGURES, type RepeatedFigure } from './repeats.ts';
import { METRICS } from './thresholds.ts';
import type { StressReport } from './report.ts';
import type { RepeatSpread, VersionResult } from './result.ts';
import { ms } from './verdict.ts';

export type Significance = 'beyond the spread' | 'within the spread' | 'no spread: run with --repeat';

export interface Comparison {
  scenario: string;
  version: string;
  figure: RepeatedFigure;
  before: number;
  after: number;
  /** (after − before) / before, or null from 0. */
  change: number | null;
  significance: Significance;
}

/** Each figure of one result: its median and range with repeats, the run's own value without. */
function figureOf(r: VersionResult, figure: RepeatedFigure): RepeatSpread | number | null {
  return r.repeats?.figures[figure] ?? METRICS[figure].read(r);
}

export function compareReports(a: StressReport, b: StressReport): Comparison[] {
  const out: Comparison[] = [];
  for (const sa of a.scenarios) {
    const sb = b.scenarios.find((s) => s.scenario === sa.scenario);
    if (!sb) continue;
    for (const ra of sa.results) {
      const rb = sb.results.find((r) => r.label === ra.label);
      if (!rb) continue;
      for (const figure of REPEATED_FIGURES) {
        const fa = figureOf(ra, figure);
        const fb = figureOf(rb, figure);
        if (fa === null || fb === null) continue;
        const before = typeof fa === 'number' ? fa : fa.median;
        const after = typeof fb === 'number' ? fb : fb.median;
        const significance: Significance =
          typeof fa === 'number' || typeof fb === 'number' ? 'no spread: run with --repeat' : fb.min > fa.max || fb.max < fa.min ? 'beyond the spread' : 'within the spread';
        out.push({ scenario: sa.scenario, version: ra.label, figure, before, after, change: before === 0 ? null : (after - before) / before, significance });
      }
    }
  }
  return out;
}

/** The comparison as a table for a terminal; changes beyond the spread are marked ✱. */
export function renderComparison(rows: readonly Comparison[], a: string, b: string): string {
  const table = new Table({ head: ['scenario', 'version', 'figure', a, b, 'change', ''], style: { head: [], border: [] } });
  const show = (figure: RepeatedFigure, x: number): string => {
    const unit = METRICS[figure].unit;
    return unit === 'ms' ? ms(x) : unit === '%' ? `${x.toFixed(1)}%` : fmt(Math.round(x));
  };
  for (const r of rows) {
    const change = r.change === null ? '–' : `${r.change >= 0 ? '+' : ''}${(r.change * 100).toFixed(1)}%`;
    table.push([r.scenario, r.version, r.figure, show(r.figure, r.before), show(r.figure, r.after), change, r.significance === 'beyond the spread' ? '✱ beyond the spread' : r.significance]);
  }
  const real = rows.filter((r) => r.significance === 'beyond the spread').length;
  return `${table.toString()}\n${real} change${real === 1 ? '' : 's'} beyond the run-to-run spread (✱); the others are within it, or the reports have no spread to judge by.`;
}
