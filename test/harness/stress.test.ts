// A real stress run, small: real server processes, real worker processes, real sockets.
// It asserts the story the report tells, and that the accounting holds exactly.
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VersionResult } from '../../harness/result.ts';
import type { StressReport } from '../../harness/report-model.ts';
import { DEFAULT_STRESS_OPTIONS, resolveTargets, runStress } from '../../harness/stress.ts';

let out: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'stress-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

const byLabel = (results: VersionResult[], label: string): VersionResult => {
  const r = results.find((x) => x.label === label);
  if (!r) throw new Error(`no result for ${label}`);
  return r;
};

function expectExactAccounting(r: VersionResult): void {
  const a = r.accounting;
  expect(a.expected).toBeGreaterThan(0);
  expect(a.received + a.lost).toBe(a.expected);
  expect(a.duplicates).toBe(0);
  expect(a.reordered).toBe(0);
}

describe('--versions', () => {
  const targets = (...versions: string[]) => resolveTargets({ ...DEFAULT_STRESS_OPTIONS, versions });
  it('names a version, or a version and the server flags it runs with', () => {
    expect(targets('v1.1', 'v3-kick  --queue 32', ' v3 --flush-pacing 0 ')).toEqual([
      { label: 'v1.1', args: ['v1', '--prune'] },
      { label: 'v3-kick --queue 32', args: ['v3', '--on-full', 'kick', '--queue', '32'] },
      { label: 'v3 --flush-pacing 0', args: ['v3', '--flush-pacing', '0'] },
    ]);
  });
  it('refuses an unknown version, and words after it that are not flags', () => {
    expect(() => targets('v5')).toThrow('versions: unknown "v5"; known: v1, v1.1, v2, v3, v3-block, v3-kick, v4');
    expect(() => targets('v33')).toThrow('versions: unknown "v33" (did you mean v3?); known: v1,');
    expect(() => targets('v3 fast')).toThrow('versions: "v3 fast": after the version come server flags (--name value), not "fast"');
  });
});

describe('npm run stress, small', () => {
  it('slow-consumer: v2 stalls every healthy client, v3-drop stalls none and drops exactly what it counts', async () => {
    // 16 KB messages at 200/s fill a stuck reader's ~4 MB of kernel buffers in about 1.3 s.
    const { report, dir } = await runStress({
      versions: ['v2', 'v3'],
      scenarios: ['slow-consumer'],
      overrides: { clients: 40, senders: 4, rate: 50, size: 16_000, slow: 1, warmupS: 1, durationS: 4, drainS: 3, workers: 1 },
      outDir: out,
      command: 'test',
    });
    const [s] = report.scenarios;
    const v2 = byLabel(s!.results, 'v2');
    const v3 = byLabel(s!.results, 'v3');
    for (const r of [v2, v3]) {
      expect(r.valid, r.invalidReasons.join('; ')).toBe(true);
      expectExactAccounting(r);
      expect(r.accounting.receivers).toBe(40);
    }
    // v2: the lock held on the stuck reader's write stops the room.
    expect(v2.stalls.healthy.stalled).toBe(39);
    expect(v2.stalls.healthy.stalledMsMedian).toBeGreaterThan(500);
    expect(v2.accounting.serverDrops).toBe(0);
    // A stall of 2 s or more is also an outage, which makes the server BROKEN; either way the slow reader is named.
    expect(v2.verdict).toMatch(/^v2: (BROKEN: the server stopped relaying to every healthy client at [\d.]+ s for [\d.]+ s while messages were being sent; )?one slow reader stalled all 39 healthy clients for \d+\.\d s/);
    expect(v2.health.broken).toBe(v2.health.relayOutage !== null);
    expect(v3.health).toMatchObject({ broken: false, findings: [] });
    for (const r of [v2, v3]) expect(r.slowReaders).toMatchObject({ readers: 1, pushedBack: true });
    // v3 (drop): healthy clients never stall; the slow reader loses exactly what was dropped and told.
    expect(v3.stalls.healthy.stalled).toBe(0);
    expect(v3.accounting.serverDrops).toBeGreaterThan(0);
    expect(v3.accounting.lost).toBe(v3.accounting.serverDrops);
    expect(v3.accounting.toldDropped).toBe(v3.accounting.serverDrops);
    expect(v3.accounting.unexplained).toBe(0);
    expect(v3.latency.healthy.count).toBeGreaterThan(0);

    const json = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as StressReport;
    expect(json.scenarios[0]!.results.map((r) => r.label)).toEqual(['v2', 'v3']);
    const md = await readFile(join(dir, 'report.md'), 'utf8');
    expect(md).toContain('## slow-consumer');
    expect(md).toContain(`- ${v2.verdict}`);
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    expect(html).toMatch(/<canvas id="spectrum-0" role="img" aria-label="Chart: /);
    expect(html).toMatch(/<canvas id="latency-0" role="img" aria-label="Chart: /);
    // the latency over time of a real run: a point for each second a message was due
    const data = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!) as Array<{ results: Array<{ latencyOverTime: Array<{ t: number }> }> }>;
    expect(data[0]!.results[1]!.latencyOverTime.map((p) => p.t)).toEqual([0, 1, 2, 3, 4]);
    expect(html).not.toMatch(/<script[^>]+src=/); // self-contained
    expect(await readlink(join(out, 'latest'))).toBe(dir.split('/').at(-1));
  });

  it("churn: v1's pool grows with every leave while v1.1, v2 and v3 stay flat", async () => {
    const { report } = await runStress({
      versions: ['v1', 'v1.1', 'v2', 'v3'],
      scenarios: ['churn'],
      overrides: { clients: 30, senders: 2, rate: 10, churnClients: 10, churnPeriodMs: 1000, warmupS: 1, durationS: 3, drainS: 1, workers: 1 },
      outDir: out,
      command: 'test',
    });
    const results = report.scenarios[0]!.results;
    for (const r of results) {
      expect(r.valid, r.invalidReasons.join('; ')).toBe(true);
      expectExactAccounting(r);
      expect(r.accounting.lost).toBe(0);
      expect(r.churn.leaves).toBeGreaterThan(5);
    }
    const v1 = byLabel(results, 'v1');
    expect(v1.server!.poolSize - v1.server!.connections).toBe(v1.churn.leaves);
    expect(v1.verdict).toContain(`pool holds ${v1.churn.leaves} dead sockets after ${v1.churn.leaves} leaves`);
    for (const label of ['v1.1', 'v2', 'v3']) {
      const r = byLabel(results, label);
      expect(r.server!.poolSize).toBe(r.server!.connections);
    }
  });

  it('http-push: autocannon POSTs /api/send and every client receives every accepted message', async () => {
    const { report } = await runStress({
      versions: ['v3'],
      scenarios: ['http-push'],
      overrides: { clients: 20, httpRate: 100, warmupS: 1, durationS: 2, drainS: 1, workers: 1 },
      outDir: out,
      command: 'test',
    });
    const r = report.scenarios[0]!.results[0]!;
    expect(r.valid, r.invalidReasons.join('; ')).toBe(true);
    expect(r.http!.ok).toBeGreaterThan(200);
    expect(r.http!.non2xx).toBe(0);
    expectExactAccounting(r);
    expect(r.accounting.lost).toBe(0);
    // Every accepted request reached all 20 clients (one more may have been accepted as autocannon stopped).
    expect(r.accounting.expected).toBeGreaterThanOrEqual(r.http!.ok * 20);
    expect(r.accounting.expected).toBeLessThanOrEqual((r.http!.ok + 1) * 20);
    expect(r.stalls.healthy.stalled).toBe(0);
    expect(r.verdict).toMatch(/POST \/api\/send answered in p99 [\d.]+ ms \(autocannon, [\d,]+ accepted of 300 due/);
  });
});

describe('flood: one client writes as fast as it is let beside honest ones', () => {
  it('v3 closes the flooder with 1008 after its burst; v1 takes every frame and never closes it; both say the honest p99 before and during', async () => {
    const { report } = await runStress({ ...DEFAULT_STRESS_OPTIONS, versions: ['v1', 'v3'], scenarios: ['flood'], overrides: { clients: 60, rooms: 3, senders: 6, warmupS: 1, durationS: 2, drainS: 1, floodRate: 5_000 }, outDir: out, mode: 'strict' });
    const [v1, v3] = [byLabel(report.scenarios[0]!.results, 'v1'), byLabel(report.scenarios[0]!.results, 'v3')];
    for (const r of [v1, v3]) {
      expect(r.flood!.atS).toBeGreaterThanOrEqual(1.9); // halfway through the 2 s window, after 1 s of warm-up
      expect(r.flood!.quietP99Ms).toBeGreaterThan(0);
      expect(r.flood!.floodedP99Ms).toBeGreaterThan(0);
      expect(r.recovery ?? null).toBeNull(); // a flood is not a fault clients recover from
      expect(r.accounting.byKind.healthy.lost).toBe(0);
    }
    expect(v3.flood).toMatchObject({ closedCode: 1008 });
    expect(v3.flood!.sent).toBeLessThan(1_000); // the burst (50) and what passed before its close
    expect(v1.flood!.closedCode).toBeNull();
    expect(v1.flood!.sent).toBeGreaterThan(2_500); // 5,000/s for about 1 s, all taken
    expect(v3.verdict).toMatch(/healthy p99 [\d.]+ ms before the flood, [\d.]+ ms during it \([\d.]+×\); the flooder was closed with 1008/);
  });
});
