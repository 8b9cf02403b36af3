// The whole run's answer, as an exit code a script or CI can gate on, and the reasons for it.
import type { RunOutcome, StressReport } from './report.ts';
import { thresholdLine } from './thresholds.ts';

/** What `npm run stress` exits with: a script or CI can gate on it. The first that applies wins. */
export const EXIT_CODES = {
  ok: 0,
  /** Bad flags, or the harness itself failed. */
  error: 1,
  /** A server crashed, stopped accepting or relaying, or closed or refused clients nobody asked it to. */
  brokenServer: 2,
  /** A run could not be measured: the generator, not the server, may have been the bottleneck. */
  invalid: 3,
  /** A --threshold failed. */
  thresholdFailed: 4,
} as const;

export function outcomeOf(report: Pick<StressReport, 'scenarios'>): RunOutcome {
  const broken: string[] = [];
  const invalid: string[] = [];
  const failed: string[] = [];
  for (const s of report.scenarios) {
    for (const r of s.results) {
      if (r.health.broken) broken.push(`${r.label} in ${s.scenario}: ${r.health.findings.join('; ')}`);
      if (!r.valid) invalid.push(`${r.label} in ${s.scenario} is INVALID: ${r.invalidReasons.join('; ')}`);
    }
    for (const t of s.thresholds) if (!t.pass) failed.push(`${s.scenario}: ${thresholdLine(t)}`);
  }
  const exitCode = broken.length > 0 ? EXIT_CODES.brokenServer : invalid.length > 0 ? EXIT_CODES.invalid : failed.length > 0 ? EXIT_CODES.thresholdFailed : EXIT_CODES.ok;
  return { exitCode, reasons: [...broken, ...invalid, ...failed] };
}

