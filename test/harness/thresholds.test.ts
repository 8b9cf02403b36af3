// Pass/fail criteria: how they are written, and what they say against a real run's results.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { StressReport } from '../../harness/report-model.ts';
import { evaluateThresholds, parseThreshold, thresholdLine } from '../../harness/thresholds.ts';

const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;
const results = fixture.scenarios[0]!.results; // v2 p99 1,301.5 ms, v3 p99 7.4 ms, v3 lost 129 (all the slow reader's)

describe('parseThreshold', () => {
  it('reads a version, a metric, an operator and a number with its unit', () => {
    expect(parseThreshold('v3 p99 < 100ms')).toEqual({ expression: 'v3 p99 < 100ms', label: 'v3', metric: 'p99', op: '<', rhs: { value: 100 } });
    expect(parseThreshold(' v3 --queue 32  p99.9 <= 1.5s ')).toMatchObject({ label: 'v3 --queue 32', metric: 'p99.9', op: '<=', rhs: { value: 1500 } });
    expect(parseThreshold('v3 lost.healthy == 0')).toMatchObject({ metric: 'lost.healthy', op: '==', rhs: { value: 0 } });
  });

  it('reads a ratio to another version of the same run', () => {
    expect(parseThreshold('v3 p99 < v2 p99 / 10')).toMatchObject({ label: 'v3', metric: 'p99', rhs: { label: 'v2', metric: 'p99', scale: 0.1 } });
    expect(parseThreshold('v3 delivered/s >= v1 delivered/s * 10')).toMatchObject({ rhs: { label: 'v1', metric: 'delivered/s', scale: 10 } });
  });

  it('refuses what it cannot read, naming the form, the metrics and the unit', () => {
    expect(() => parseThreshold('v3 fast')).toThrow(/threshold "v3 fast": expected "<version> <metric> <op> <number>\[ms\|s\]".*metric one of p50, p90, p99/);
    expect(() => parseThreshold('v3 lost < 5ms')).toThrow('threshold "v3 lost < 5ms": lost is in a plain count, not ms');
    expect(() => parseThreshold('v3 p99 < v2 lost')).toThrow('p99 and lost are not in the same unit');
    expect(() => parseThreshold('v3 p99 < v2 p99 / 0')).toThrow('division by zero');
  });
});

describe('evaluateThresholds', () => {
  it('says ✔ or ✘ with what was measured, ratios included', () => {
    const checked = evaluateThresholds(
      ['v3 p99 < 100ms', 'v3 lost == 0', 'v3 lost.healthy == 0', 'v3 p99 < v2 p99 / 10', 'v2 p99 < v3 p99'].map(parseThreshold),
      'slow-consumer',
      results,
    );
    expect(checked.map(thresholdLine)).toEqual([
      '✔ v3 p99 < 100ms (7.4 ms)',
      '✘ v3 lost == 0 (129)',
      '✔ v3 lost.healthy == 0 (0)',
      '✔ v3 p99 < v2 p99 / 10 (7.4 ms against 130.2 ms (v2 p99 1,301.5 ms / 10))',
      '✘ v2 p99 < v3 p99 (1,301.5 ms against 7.4 ms (v3 p99 7.4 ms))',
    ]);
  });

  it('skips a threshold whose versions did not run in the scenario, and fails one on nothing measured', () => {
    expect(evaluateThresholds([parseThreshold('v1 p99 < 100ms'), parseThreshold('v3 p99 < v1 p99')], 'slow-consumer', results)).toEqual([]);
    const silent = structuredClone(results[1]!);
    silent.latency.healthy.count = 0;
    expect(evaluateThresholds([parseThreshold('v3 p99 < 100ms')], 's', [silent])).toEqual([{ expression: 'v3 p99 < 100ms', scenario: 's', pass: false, actual: 'no p99 was measured' }]);
  });
});
