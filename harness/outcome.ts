// The whole run's answer, as an exit code a script or CI can gate on, and the reasons for it.
import { brokenAsExpected } from './expectations.ts';
import type { RunOutcome, StressReport } from './report-model.ts';
import { evolutionStory, modeOf, scenarioChecks } from './story.ts';
import { thresholdLine } from './thresholds.ts';

/** What `npm run stress` exits with: a script or CI can gate on it. The first that applies wins. */
export const EXIT_CODES = {
  ok: 0,
  /** Bad flags, or the harness itself failed. */
  error: 1,
  /** A server crashed, stopped accepting or relaying, or closed or refused clients nobody asked it to, where it should have held. */
  brokenServer: 2,
  /** A run could not be measured: the generator, not the server, may have been the bottleneck. */
  invalid: 3,
  /** A --threshold failed. */
  thresholdFailed: 4,
  /** A story run did not reproduce the story: a version did not show the flaw it should, or did not hold where it should. */
  storyNotReproduced: 5,
  /** A strict run's check failed: healthy clients lost messages or fell behind, or the scenario did not take effect. */
  checkFailed: 6,
} as const;

/** The exit code's words, as the run's last line says them. */
export const OUTCOME_WORDS: Record<number, string> = {
  [EXIT_CODES.brokenServer]: 'the run found a broken server',
  [EXIT_CODES.invalid]: 'a run could not be measured',
  [EXIT_CODES.thresholdFailed]: 'a threshold failed',
  [EXIT_CODES.storyNotReproduced]: 'the story did not reproduce',
  [EXIT_CODES.checkFailed]: 'a check failed',
};

/**
 * In a story run a version that breaks where the story says it may (v2, v3-block behind a slow
 * reader) is the story, not a failure; every other broken server is. An INVALID run is never
 * judged, and says so under its own heading.
 */
export function outcomeOf(report: Pick<StressReport, 'scenarios'>): RunOutcome {
  const broken: string[] = [];
  const invalid: string[] = [];
  const thresholds: string[] = [];
  const checks: string[] = [];
  let story = false;
  for (const s of report.scenarios) {
    const mode = modeOf(s);
    if (mode === 'story') story = true;
    for (const r of s.results) {
      if (r.health.broken && !brokenAsExpected(mode, s.scenario, r)) broken.push(`${r.label} in ${s.scenario}: ${r.health.findings.join('; ')}`);
      if (!r.valid) invalid.push(`${r.label} in ${s.scenario}: ${r.invalidReasons.join('; ')}`);
    }
    for (const t of s.thresholds) if (!t.pass) thresholds.push(`${s.scenario}: ${thresholdLine(t)}`);
    for (const c of scenarioChecks(s)) if (!c.pass && c.kind !== 'held') checks.push(`${s.scenario}: ${c.text}`);
  }
  if (story) for (const r of evolutionStory(report) ?? []) if (r.evidence !== null && r.measurable && !r.shown) checks.push(`${r.hurts}: ${r.flaw}: ${r.evidence}`);
  const failed = story ? EXIT_CODES.storyNotReproduced : EXIT_CODES.checkFailed;
  const exitCode =
    broken.length > 0 ? EXIT_CODES.brokenServer : invalid.length > 0 ? EXIT_CODES.invalid : thresholds.length > 0 ? EXIT_CODES.thresholdFailed : checks.length > 0 ? failed : EXIT_CODES.ok;
  const sections = [
    { heading: 'broken servers', lines: broken },
    { heading: 'not measurable (INVALID: the machine or the generator, not the server, may have been the bottleneck)', lines: invalid },
    { heading: 'thresholds that failed', lines: thresholds },
    { heading: story ? 'where the story did not reproduce' : 'checks that failed', lines: checks },
  ].filter((x) => x.lines.length > 0);
  return { exitCode, reasons: sections.flatMap((x) => x.lines), sections };
}
