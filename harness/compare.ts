// Two reports side by side (npm run compare A B), in the spirit of benchstat: for each scenario and
// version both hold, each key figure before and after, its change, and whether the change is
// larger than the run-to-run spread (the two ranges of repeated runs do not overlap). Without
// repeats there is no spread, and the comparison says so instead of guessing.
import Table from 'cli-table3';
import { fmt } from '../common/helpers.ts';
import { REPEATED_FIGURES, type RepeatedFigure } from './repeats.ts';
import { METRICS } from './thresholds.ts';
import type { StressReport } from './report-model.ts';
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
  /** What makes either run's figures suspect: "BROKEN before", "INVALID after". */
  marks: string[];
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
        const marks = [...markOf(ra, 'before'), ...markOf(rb, 'after')];
        out.push({ scenario: sa.scenario, version: ra.label, figure, before, after, change: before === 0 ? null : (after - before) / before, significance, marks });
      }
    }
  }
  return out;
}

function markOf(r: VersionResult, when: 'before' | 'after'): string[] {
  return [...(r.health.broken ? [`BROKEN ${when}`] : []), ...(r.valid ? [] : [`INVALID ${when}`])];
}

/** One report as the comparison names it: where it came from, and what it ran. */
export interface NamedReport {
  name: string;
  report: StressReport;
}

const show = (figure: RepeatedFigure, x: number): string => {
  const unit = METRICS[figure].unit;
  return unit === 'ms' ? ms(x) : unit === '%' ? `${x.toFixed(1)}%` : fmt(Math.round(x));
};
const changeOf = (r: Comparison): string => (r.change === null ? '–' : `${r.change >= 0 ? '+' : ''}${(r.change * 100).toFixed(1)}%`);

/** "reports/x (2026-12-02 12:00, `npm run stress …`, 3 runs each)" */
function describeReport(n: NamedReport): string {
  const runs = n.report.scenarios.flatMap((s) => s.results).find((r) => r.repeats)?.repeats?.n ?? 1;
  return `${n.name} (${n.report.createdAt.slice(0, 16).replace('T', ' ')}, \`${n.report.command}\`, ${runs === 1 ? 'one run' : `${runs} runs`} each)`;
}

/**
 * The answer first (which changes are beyond the run-to-run spread, or none), then the figures,
 * a table per scenario; BROKEN and INVALID runs are marked, and a missing spread is said once.
 */
export function renderComparison(rows: readonly Comparison[], before: NamedReport, after: NamedReport): string {
  const real = rows.filter((r) => r.significance === 'beyond the spread');
  const lines = [`before: ${describeReport(before)}`, `after:  ${describeReport(after)}`, ''];
  lines.push(real.length === 0 ? 'Changes beyond the run-to-run spread: none.' : `Changes beyond the run-to-run spread (${real.length}):`);
  for (const r of real) lines.push(`  ✱ ${r.scenario} · ${r.version} · ${r.figure}: ${show(r.figure, r.before)} → ${show(r.figure, r.after)} (${changeOf(r)})${r.marks.length > 0 ? ` [${r.marks.join(', ')}]` : ''}`);
  if (rows.some((r) => r.significance === 'no spread: run with --repeat')) lines.push('No spread to judge the rest by: a report ran each version once (run both with --repeat 3).');
  const marked = [...new Set(rows.flatMap((r) => r.marks.map((m) => `${r.scenario} · ${r.version}: ${m}`)))];
  if (marked.length > 0) lines.push('Runs whose figures do not stand for the server:', ...marked.map((m) => `  ${m}`));
  // Rows without rules between them: one table per scenario reads down its columns.
  const chars = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };
  for (const scenario of [...new Set(rows.map((r) => r.scenario))]) {
    const table = new Table({ head: ['version', 'figure', 'before', 'after', 'change', ''], chars, style: { head: [], border: [] } });
    for (const r of rows.filter((x) => x.scenario === scenario)) {
      const mark = r.significance === 'beyond the spread' ? '✱' : r.significance === 'within the spread' ? 'within the spread' : '';
      table.push([`${r.version}${r.marks.length > 0 ? ` (${r.marks.join(', ')})` : ''}`, r.figure, show(r.figure, r.before), show(r.figure, r.after), changeOf(r), mark]);
    }
    lines.push('', scenario, table.toString());
  }
  return lines.join('\n');
}
