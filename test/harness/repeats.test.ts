// Repeated runs and the comparison of two reports: medians and ranges, the median run standing
// for the rest, the worst health kept, interleaving, and which changes pass the spread.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareReports, renderComparison } from '../../harness/compare.ts';
import { combineRepeats, spread } from '../../harness/repeats.ts';
import type { StressReport } from '../../harness/report-model.ts';
import type { VersionResult } from '../../harness/result.ts';
import { runStress } from '../../harness/stress.ts';
import { runCli } from '../helpers.ts';
import { readFile } from 'node:fs/promises';

const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;
const v3 = fixture.scenarios[0]!.results[1]!;
const withP99 = (p99: number, over: Partial<VersionResult> = {}): VersionResult => ({ ...structuredClone(v3), latency: { ...v3.latency, healthy: { ...v3.latency.healthy, p99 } }, ...over });

describe('spread', () => {
  it('is the median with the min and max', () => {
    expect(spread([9, 5, 7.4])).toEqual({ median: 7.4, min: 5, max: 9 });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
  });
});

describe('combineRepeats', () => {
  it("lets the median run stand for the rest, with each figure's median and range", () => {
    const r = combineRepeats([withP99(9), withP99(5), withP99(7.4)], 1);
    expect(r.latency.healthy.p99).toBe(7.4);
    expect(r.repeats).toMatchObject({ n: 3, figures: { p99: { median: 7.4, min: 5, max: 9 } } });
    expect(r.verdict).toMatch(/ \(the median of 3 runs; p99 5\.0-9\.0 ms\)$/);
  });

  it('lets the ladder with the median sustained rate stand for repeated capacity runs, and keeps each run\'s rate in order', () => {
    const ladder = (sustained: number, p99: number): VersionResult => withP99(p99, { deliveryRate: sustained + 1, capacity: { steps: [], sustainedPerSecond: sustained, brokeBy: null } });
    const r = combineRepeats([ladder(600_000, 90), ladder(400_000, 95), ladder(500_000, 60)], 1);
    expect(r.capacity!.sustainedPerSecond).toBe(500_000); // not the median p99's run (600,000)
    expect(r.repeats!.figures['delivered/s']).toEqual({ median: 500_000, min: 400_000, max: 600_000, runs: [600_000, 400_000, 500_000] });
  });

  it('keeps the worst health: a crash in one run of three is a crash', () => {
    const crashed = withP99(7.4, { health: { ...v3.health, broken: true, status: 'exited 2', findings: ['the server exited with code 2'] } });
    const r = combineRepeats([withP99(5), crashed, withP99(9)], 1);
    expect(r.health.broken).toBe(true);
    expect(r.verdict).toMatch(/^v3: BROKEN: the server exited with code 2/);
  });
});

describe('compareReports', () => {
  const repeated = (median: number, min: number, max: number): StressReport => {
    const rep = structuredClone(fixture);
    rep.scenarios[0]!.results[1]!.repeats = { n: 3, figures: { p99: { median, min, max } } };
    return rep;
  };

  it('marks a change beyond the run-to-run spread, one within it, and one it cannot judge', () => {
    const p99 = (a: StressReport, b: StressReport) => compareReports(a, b).find((c) => c.version === 'v3' && c.figure === 'p99')!;
    expect(p99(repeated(7.4, 7, 8), repeated(20, 18, 22))).toMatchObject({ before: 7.4, after: 20, significance: 'beyond the spread' });
    expect(p99(repeated(7.4, 7, 8), repeated(7.9, 7.5, 9))).toMatchObject({ significance: 'within the spread' });
    expect(p99(fixture, fixture)).toMatchObject({ change: 0, significance: 'no spread: run with --repeat' });
    const before = repeated(7.4, 7, 8);
    const after = repeated(20, 18, 22);
    after.scenarios[0]!.results[0]!.valid = false;
    const text = renderComparison(compareReports(before, after), { name: 'reports/a', report: before }, { name: 'reports/b', report: after }).split('\n');
    // The answer first, the figures after, a spread missing said once, the suspect runs named.
    expect(text.slice(0, 5)).toEqual([
      `before: reports/a (2026-12-02 12:00, \`${fixture.command}\`, 3 runs each)`,
      `after:  reports/b (2026-12-02 12:00, \`${fixture.command}\`, 3 runs each)`,
      '',
      'Changes beyond the run-to-run spread (1):',
      '  ✱ slow-consumer · v3 · p99: 7.4 ms → 20.0 ms (+170.3%)',
    ]);
    expect(text.filter((l) => l.startsWith('No spread'))).toHaveLength(1);
    expect(text).toContain('  slow-consumer · v2: INVALID after');
    expect(text.filter((l) => l.startsWith('├'))).toEqual([]); // no rule between rows
    expect(renderComparison(compareReports(before, before), { name: 'a', report: before }, { name: 'a', report: before })).toContain('Changes beyond the run-to-run spread: none.');
  });

  it('npm run compare sets two report files side by side', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'compare-'));
    try {
      await writeFile(join(dir, 'a.json'), JSON.stringify(repeated(7.4, 7, 8)));
      await writeFile(join(dir, 'b.json'), JSON.stringify(repeated(20, 18, 22)));
      const { code, stderr } = await runCli('harness/compare-cli.ts', [join(dir, 'a.json'), join(dir, 'b.json')]);
      expect(code, stderr).toBe(0);
      expect(stderr).toMatch(/│ v3 +│ p99 +│ 7\.4 ms +│ 20\.0 ms +│ \+170\.3% │ ✱ +│/);
      expect(stderr.split('\n')[0]).toBe(`before: ${join(dir, 'a.json')} (2026-12-02 12:00, \`${fixture.command}\`, 3 runs each)`);
      const missing = await runCli('harness/compare-cli.ts', [join(dir, 'a.json'), join(dir, 'none.json')]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('compare failed: ENOENT');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm run stress --repeat', () => {
  it('runs each version twice, interleaved, and reports the median with the spread', async () => {
    const out = await mkdtemp(join(tmpdir(), 'repeat-'));
    const starts: string[] = [];
    try {
      const { report } = await runStress(
        { versions: ['v1', 'v3'], scenarios: ['baseline'], overrides: { clients: 20, senders: 2, warmupS: 0, durationS: 1, drainS: 1, workers: 1 }, repeat: 2, outDir: out, command: 'test' },
        { onProgress: (label, phase) => void (phase === 'start' && starts.push(label)) },
      );
      expect(starts).toEqual(['v1 #1', 'v3 #1', 'v1 #2', 'v3 #2']);
      for (const r of report.scenarios[0]!.results) {
        expect(r.repeats?.n).toBe(2);
        const p99 = r.repeats!.figures.p99!;
        expect(p99.min).toBeLessThanOrEqual(p99.median);
        expect(p99.median).toBeLessThanOrEqual(p99.max);
        expect(r.verdict).toMatch(/\(the median of 2 runs; p99 [\d.]+-[\d.]+ ms\)$/);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
