// The machine's ceiling beside the chat versions: a yardstick, never a contestant. Fractions from
// hand-made results whose answer is known, then one real run of the reference broadcaster.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../harness/outcome.ts';
import { ceilingFractions, ceilingLine } from '../../harness/reference.ts';
import type { StressReport } from '../../harness/report-model.ts';
import type { VersionResult } from '../../harness/result.ts';
import { startServerProcess } from '../../harness/server-process.ts';
import { WebSocket } from 'ws';
import { eventually, runCli } from '../helpers.ts';

function result(label: string, o: { sustained?: number; perCpu: number }): VersionResult {
  return {
    label,
    server: { deliveriesPerCpuSecond: o.perCpu },
    ...(o.sustained !== undefined ? { capacity: { steps: [], sustainedPerSecond: o.sustained, brokeBy: null } } : {}),
  } as unknown as VersionResult;
}

describe('each version as a fraction of the ceiling', () => {
  it('capacity: the rate sustained', () => {
    const c = ceilingFractions([result('ceiling', { sustained: 2_000_000, perCpu: 1 }), result('v3', { sustained: 1_000_000, perCpu: 1 }), result('v1', { sustained: 20_000, perCpu: 1 })])!;
    expect(c.fractions).toEqual([
      { label: 'v3', fraction: 0.5, basis: 'sustained 1,000,000 of 2,000,000 deliveries/s' },
      { label: 'v1', fraction: 0.01, basis: 'sustained 20,000 of 2,000,000 deliveries/s' },
    ]);
  });

  it('repeated ladders: the median of run-by-run fractions, each run against the ceiling run beside it', () => {
    const repeated = (label: string, runs: number[]): VersionResult => {
      const sorted = [...runs].sort((a, b) => a - b);
      const r = result(label, { sustained: sorted[1]!, perCpu: 1 });
      return { ...r, repeats: { n: runs.length, figures: { 'delivered/s': { median: sorted[1]!, min: sorted[0]!, max: sorted[2]!, runs } } } };
    };
    // Run by run 1.0, 0.8 and 0.5: the slow third run of v3 does not drag the figure to the ratio of medians.
    const c = ceilingFractions([repeated('ceiling', [600_000, 500_000, 800_000]), repeated('v3', [600_000, 400_000, 400_000])])!;
    expect(c.fractions).toEqual([{ label: 'v3', fraction: 0.8, basis: 'sustained 400,000 of 600,000 deliveries/s, medians of 3 runs; run by run 0.50-1.00×' }]);
  });

  it('any other scenario: deliveries per CPU-second, the load being the same for all', () => {
    const line = ceilingLine([result('v3', { perCpu: 90_000 }), result('ceiling --port 0', { perCpu: 100_000 })]);
    expect(line).toBe("Against this run's ceiling (the reference broadcaster, not a version): v3 0.90× (90,000 of 100,000 deliveries per CPU-second)");
    expect(ceilingLine([result('v3', { perCpu: 1 })])).toBeNull();
  });

  it('a real run: the ceiling relays, loses nothing, and is not ranked with the versions', async () => {
    const out = await mkdtemp(join(tmpdir(), 'ceiling-'));
    try {
      const { code, stdout, stderr } = await runCli('harness/cli.ts', ['--versions', 'ceiling', 'v3', '--scenario', 'baseline', '--clients', '60', '--senders', '3', '--warmup', '1', '--duration', '2', '--drain', '1', '--workers', '1', '--out', out, '--json']);
      expect(code, stderr).toBe(EXIT_CODES.ok);
      const s = (JSON.parse(stdout) as StressReport).scenarios[0]!;
      const ceiling = s.results.find((r) => r.label === 'ceiling')!;
      expect(ceiling.describe).toMatch(/^ceiling · a reference broadcaster/);
      expect(ceiling.accounting.lost).toBe(0);
      expect(ceiling.accounting.received).toBeGreaterThan(0);
      expect(stderr).toMatch(/Against this run's ceiling \(the reference broadcaster, not a version\): v3 [\d.]+× \([\d,]+ of [\d,]+ deliveries per CPU-second\)/);
      expect(stderr).not.toMatch(/ceiling's healthy p99 .* lower than/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('delivers a chat frame in the envelope a chat version sends, to every client, and relays anything else as it came', async () => {
    const server = await startServerProcess([], 'versions/ceiling.ts');
    const clients: WebSocket[] = [];
    try {
      // The ceiling sends no `joined`: plain sockets, each keeping the text of what it receives.
      const open = async (name: string): Promise<string[]> => {
        const ws = new WebSocket(`${server.info.wsUrl}?name=${name}&room=lobby`, { perMessageDeflate: false });
        clients.push(ws);
        const got: string[] = [];
        ws.on('message', (d: Buffer) => got.push(d.toString('utf8')));
        await once(ws, 'open');
        return got;
      };
      const ann = await open('ann');
      const bob = await open('bob');
      await eventually(async () => ((await (await fetch(`${server.info.url}api/stats`)).json()) as { connections: number }).connections === 2, 'both connected');
      clients[0]!.send(JSON.stringify({ type: 'chat', content: 'hello' }));
      clients[0]!.send('{"type":"other"}');
      for (const got of [ann, bob]) {
        await eventually(() => got.length === 2, 'two frames');
        const chat = JSON.parse(got[0]!) as Record<string, unknown>;
        expect(chat).toMatchObject({ type: 'chat', room: 'lobby', from: 'ann', content: 'hello' });
        expect(Object.keys(chat)).toEqual(['type', 'room', 'from', 'content', 'ts']); // v3's keys, in v3's order
        expect(got[1]).toBe('{"type":"other"}');
      }
    } finally {
      for (const ws of clients) ws.terminate();
      await server.stop();
    }
  });
});
