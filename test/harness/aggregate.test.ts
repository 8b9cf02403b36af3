// The numbers the harness derives, from inputs whose answer is known.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { rssSlopeKB } from '../../harness/aggregate.ts';
import { capacityBreak, capacityRatios, isNoiseBreak, MAX_REFINEMENTS, nextRefinement } from '../../harness/capacity-figures.ts';
import type { CapacityStep, VersionResult } from '../../harness/result.ts';
import { verdict } from '../../harness/verdict.ts';
import type { StressReport } from '../../harness/report-model.ts';

describe('rssSlopeKB', () => {
  it('is what one more connection costs, past the server\'s one-off growth at the start of the ramp', () => {
    // 40 MB of one-off growth in the first thousand connections, then 3 KB per connection.
    const samples = [0, 500, 1000, 5000, 10_000, 15_000, 20_000].map((n) => ({ connections: n, rssBytes: 90e6 + Math.min(n, 1000) * 40_000 + n * 3000 }));
    expect(rssSlopeKB(samples)).toBe(3);
  });

  it('says nothing from too few samples or too few connections', () => {
    expect(rssSlopeKB([{ connections: 20_000, rssBytes: 1e8 }, { connections: 19_000, rssBytes: 9e7 }])).toBeNull();
    expect(rssSlopeKB([100, 200, 300, 400].map((n) => ({ connections: n, rssBytes: n * 1000 })))).toBeNull();
  });
});

const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;

describe('verdict of a connections run', () => {
  const base = fixture.scenarios[0]!.results.find((r) => r.label === 'v3')!;
  const run = (server: Partial<NonNullable<VersionResult['server']>>): VersionResult => ({
    ...base,
    accounting: { ...base.accounting, receivers: 19_899 },
    stalls: { ...base.stalls, healthy: { clients: 19_899, stalled: 0, stalledMsMedian: 0, stalledMsMax: 0, behind: 0, behindMsMedian: 0, behindMsMax: 0, affected: 0, affectedMsMedian: 0 } },
    generator: { ...base.generator, connectsPerSecond: 4_123 },
    server: { ...base.server!, connections: 19_900, rssPerIdleConnectionKB: 5.41, rssPerConnectionKB: 6.12, rssPerAddedConnectionKB: 4.9, ...server },
  });

  it('gives the RSS per connection while idle first, then after the traffic and per added connection', () => {
    expect(verdict(run({}), 0)).toMatch(/^v3: 19,899 healthy clients never stalled/);
    expect(verdict(run({}), 0)).toContain('19,900 connections at 5.41 KB of server RSS each while idle (6.12 KB after the traffic; 4.9 KB per added connection), opened at 4,123/s');
  });

  it('says only what it has: a report without the idle reading, a ramp too short for a slope', () => {
    expect(verdict(run({ rssPerIdleConnectionKB: null }), 0)).toContain('19,900 connections at 6.12 KB of server RSS each (4.9 KB per added connection), opened at 4,123/s');
    expect(verdict(run({ rssPerIdleConnectionKB: null, rssPerAddedConnectionKB: null }), 0)).toContain('19,900 connections at 6.12 KB of server RSS each, opened at');
  });
});

describe('verdict wording', () => {
  const base = fixture.scenarios[0]!.results.find((r) => r.label === 'v3')!;
  const withHealthy = (latency: Partial<VersionResult['latency']['healthy']>): VersionResult => ({
    ...base,
    accounting: { ...base.accounting, lost: 0 },
    latency: { ...base.latency, healthy: { ...base.latency.healthy, ...latency } },
  });

  it('prints a latency of a second or more in seconds, as the tables do', () => {
    expect(verdict(withHealthy({ p99: 5595.1 }), 1)).toMatch(/^v3: 39 healthy clients never stalled or fell behind, p99 5\.60 s/);
  });

  it('prints no samples as n/a, never as 0 ms', () => {
    expect(verdict(withHealthy({ count: 0, p99: 0 }), 1)).toMatch(/^v3: 39 healthy clients never stalled or fell behind, p99 n\/a/);
  });

  it('leads with BROKEN and the findings for a broken server', () => {
    const broken: VersionResult = { ...base, health: { ...base.health, broken: true, findings: ['the server exited with code 2 1.5 s after sending began: panic: x'] } };
    expect(verdict(broken, 1)).toMatch(/^v3: BROKEN: the server exited with code 2 1\.5 s after sending began: panic: x; /);
  });
});

const step = (over: Partial<CapacityStep>): CapacityStep => ({
  targetPerSecond: 100_000,
  deliveryRate: 100_000,
  p99Ms: 50,
  lost: 0,
  valid: true,
  serverCpuPct: 50,
  deliveriesPerCpuSecond: 200_000,
  deliveriesPerWrite: 10,
  machineBusyPct: 60,
  ...over,
});

describe('nextRefinement', () => {
  /** The refinements a server that holds exactly `cap` deliveries/s gets after the 1-2-5 ladder. */
  const refinements = (held: number, notHeld: number, cap: number): number[] => {
    const tried: number[] = [];
    for (let next = nextRefinement(held, notHeld, 0); next !== null; next = nextRefinement(held, notHeld, tried.length)) {
      tried.push(next);
      if (next <= cap) held = next;
      else notHeld = next;
    }
    return tried;
  };

  it('halves until the interval is within 10% of the rate held', () => {
    // 500k held, 1M not, the server's true limit 700k: 750k ✘, 625k ✔, 688k ✔; 688-750k is within 10% of 688k.
    expect(refinements(500_000, 1_000_000, 700_000)).toEqual([750_000, 625_000, 688_000]);
    // 500k held, 1M not, limit 550k: 750k ✘, 625k ✘, 563k ✘, 532k ✔; 532-563k is within 10%.
    expect(refinements(500_000, 1_000_000, 550_000)).toEqual([750_000, 625_000, 563_000, 532_000]);
  });

  it('asks nothing when the interval is already fine, nothing was held, or the halvings are spent', () => {
    expect(nextRefinement(100_000, 105_000, 0)).toBeNull();
    expect(nextRefinement(0, 10_000, 0)).toBeNull();
    expect(nextRefinement(10_000, 1_000_000, MAX_REFINEMENTS)).toBeNull();
    // 10k held, 1M not (a ladder with a hole): five halvings, no more.
    expect(refinements(10_000, 1_000_000, 12_000)).toHaveLength(MAX_REFINEMENTS);
  });

  it('never asks a rate outside the interval, whatever the rounding', () => {
    expect(nextRefinement(10_000, 11_000, 0)).toBeNull();
    expect(nextRefinement(20_000, 21_500, 0)).toBeNull();
  });
});

describe('isNoiseBreak', () => {
  const step: CapacityStep = { targetPerSecond: 10_000, deliveryRate: 10_000, p99Ms: 111, lost: 0, valid: true, serverCpuPct: 20, deliveriesPerCpuSecond: 50_000, deliveriesPerWrite: 3, machineBusyPct: 40 };
  it('runs a step again when p99 alone passed the limit, once', () => {
    expect(isNoiseBreak(step, 100)).toBe(true);
    expect(isNoiseBreak({ ...step, firstP99Ms: 105 }, 100)).toBe(false); // already the second run
  });
  it('never runs again a step that held, lost messages or could not be measured', () => {
    expect(isNoiseBreak({ ...step, p99Ms: 90 }, 100)).toBe(false);
    expect(isNoiseBreak({ ...step, lost: 3 }, 100)).toBe(false);
    expect(isNoiseBreak({ ...step, valid: false }, 100)).toBe(false);
  });
});

describe('capacityBreak', () => {
  it('counts a step that keeps p99 under the limit, loses nothing and was measurable', () => {
    expect(capacityBreak(step({}), 100, [])).toBeNull();
  });

  it('names what broke a step, in that order: measurability, loss, then latency', () => {
    expect(capacityBreak(step({ valid: false, lost: 5, p99Ms: 500 }), 100, ['the machine was 97% busy'])).toBe('not measurable: the machine was 97% busy');
    expect(capacityBreak(step({ lost: 1234, p99Ms: 500 }), 100, [])).toBe('1,234 deliveries lost');
    expect(capacityBreak(step({ p99Ms: 140.3 }), 100, [])).toBe('p99 140 ms > 100 ms');
  });
});

describe('capacityRatios', () => {
  const ladder = (label: string, sustainedPerSecond: number): VersionResult => ({ label, capacity: { steps: [], sustainedPerSecond, brokeBy: null } }) as unknown as VersionResult;

  it('sets the best sustained rate against every other version that sustained a step', () => {
    expect(capacityRatios([ladder('v1', 20_000), ladder('v2', 25_000), ladder('v3', 500_000)])).toBe('v3 sustained 25.0× v1 and 20.0× v2 (one run)');
  });

  it('leaves out versions that sustained no step, and says nothing with fewer than two', () => {
    expect(capacityRatios([ladder('v1', 0), ladder('v3', 500_000)])).toBeNull();
  });
});
