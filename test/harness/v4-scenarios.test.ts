// v4's scenarios through the real CLI, as a user runs them: a cluster of node processes over a
// real redis-server, faults injected mid-window. Each asserts what the report says happened:
// who was let go and came back, what was replayed or refused, and that nothing was lost.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../harness/outcome.ts';
import type { StressReport } from '../../harness/report-model.ts';
import { runCli } from '../helpers.ts';

let out: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'v4-scenarios-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

async function stress(flags: string[]): Promise<{ code: number | null; stderr: string; report: StressReport }> {
  const { code, stdout, stderr } = await runCli('harness/cli.ts', [...flags, '--out', out, '--json']);
  return { code, stderr, report: JSON.parse(stdout) as StressReport };
}

describe('v4 scenarios', () => {
  it('node-kill: the killed node\'s clients resume elsewhere with what they missed replayed; nothing lost, nothing twice, exit 0', async () => {
    const { code, stderr, report } = await stress(['--scenario', 'node-kill', '--clients', '90', '--senders', '6', '--duration', '4', '--drain', '2']);
    const r = report.scenarios[0]!.results[0]!;
    expect(r.label).toBe('v4 --nodes 3');
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(r.recovery!.faults.map((f) => f.kind)).toEqual(['node-kill']);
    // a third of the clients were on the killed node; every one came back
    expect(r.recovery!.letGo).toBe(30);
    expect(r.recovery!.resumed).toBe(30);
    expect(r.recovery!.replayed).toBeGreaterThan(0);
    // What the dying node took and never published is counted apart, and can only be what its 2
    // senders (10 msg/s each) sent in the last second before it died; everything else arrives.
    expect(r.recovery!.lostWithNode).toBeLessThanOrEqual(20);
    expect(r.accounting.lost).toBe(0);
    expect(r.accounting.duplicates).toBe(0);
    expect(r.accounting.reordered).toBe(0);
    expect(r.health.closed.byFault).toBe(30);
    expect(r.health.broken).toBe(false);
    expect(stderr).toMatch(/killed with SIGKILL at [\d.]+ s\. 30 of 30 clients let go got a connection back/);
  });

  it('broker-outage: sends during the outage are refused and owed to nobody, connections, switches and renames answered at once; every node comes back; nothing else lost, exit 0', async () => {
    const { code, stderr, report } = await stress(['--scenario', 'broker-outage', '--clients', '60', '--senders', '6', '--duration', '6', '--drain', '3']);
    const r = report.scenarios[0]!.results[0]!;
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(r.recovery!.faults.map((f) => f.kind)).toEqual(['broker-outage']);
    expect(r.recovery!.refused).toBeGreaterThan(0);
    expect(r.recovery!.resets).toBeGreaterThanOrEqual(60); // every member told its stream was reset (Redis restarted empty), churners then in the room too
    expect(r.health.closed.refusedInOutage).toBeGreaterThan(0); // churners coming during the outage: answered at once with 1013, never left waiting
    expect(r.health.broken).toBe(false);
    expect(r.accounting.lost).toBe(0);
    expect(r.cluster!.nodes).toHaveLength(2);
    expect(r.cluster!.reconnects).toBe(2);
    expect(r.health.notes.join(' ')).toMatch(/while the scenario held Redis down, as designed/);
    // 10 switchers ask once a second each, through the outage: refused then, joined otherwise, never left hanging.
    expect(r.switches!.unanswered).toBe(0);
    expect(r.switches!.refused).toBeGreaterThan(0);
    expect(r.switches!.joined).toBeGreaterThan(0);
    expect(r.switches!.joined + r.switches!.refused).toBe(r.switches!.asked);
    expect(r.switches!.slowestMs).toBeLessThanOrEqual(5_000); // ENTRY_TIMEOUT_MS: a join, switch or rename is answered within 5 s
  });

  it('redis-kill: Redis closes the nodes\' connections under load; every send lands once or is refused, none refused is delivered, exit 0', async () => {
    const { code, stderr, report } = await stress(['--scenario', 'redis-kill', '--clients', '40', '--duration', '6', '--drain', '3']);
    const r = report.scenarios[0]!.results[0]!;
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(r.recovery!.faults.map((f) => f.kind)).toEqual(['redis-kill']);
    expect(r.cluster!.reconnects).toBeGreaterThanOrEqual(2);
    expect(r.recovery!.refusedButDelivered).toBe(0);
    expect(r.accounting.duplicates).toBe(0);
    expect(r.accounting.lost).toBe(0);
    // An uncertain send may have gone through before its first resend was due (only the answer was
    // lost), so resends can be fewer than uncertain sends; what must hold is that every one arrived.
    expect(r.recovery!.uncertainArrived).toBe(r.recovery!.uncertain);
  });

  it('direct: signed-in users with tabs on different nodes write privately; every message reaches its users\' connections only, exit 0', async () => {
    // (v3 signs users in and routes them in test/harness/misbehaving.test.ts, as a --target)
    const { code, stderr, report } = await stress(['--scenario', 'direct', '--versions', 'v4 --nodes 3', '--clients', '60', '--tabs', '3', '--warmup', '1', '--duration', '2', '--drain', '2']);
    expect(code, stderr).toBe(EXIT_CODES.ok);
    for (const r of report.scenarios[0]!.results) {
      expect(r.accounting.leaked, r.label).toBe(0);
      expect(r.accounting.lost, r.label).toBe(0);
      expect(r.accounting.duplicates, r.label).toBe(0);
      expect(r.accounting.received, r.label).toBe(r.accounting.expected);
      expect(r.accounting.expected, r.label).toBeGreaterThan(0);
    }
    expect(stderr).toMatch(/v4 --nodes 3: 60 healthy clients never stalled or fell behind, p99 [\d.]+ ms\s+no direct message reached anyone but its recipient and its sender/);
  });

  it('redis-oom: while Redis is out of memory every send is refused, none accepted and lost, exit 0', async () => {
    const { code, stderr, report } = await stress(['--scenario', 'redis-oom', '--clients', '40', '--senders', '4', '--duration', '5', '--drain', '3']);
    const r = report.scenarios[0]!.results[0]!;
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(r.recovery!.faults.map((f) => f.kind)).toEqual(['redis-oom']);
    expect(r.recovery!.refused).toBeGreaterThan(0);
    expect(r.recovery!.refusedButDelivered).toBe(0);
    expect(r.accounting.lost).toBe(0);
  });

  it('scale-out: v3 against v4 on 2 and 4 nodes in one run, with each node\'s deliveries and Redis\'s CPU', async () => {
    const { code, stderr, report } = await stress(['--scenario', 'scale-out', '--clients', '120', '--senders', '6', '--rate', '10', '--warmup', '1', '--duration', '2', '--drain', '1']);
    const results = report.scenarios[0]!.results;
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(results.map((r) => r.label)).toEqual(['v3', 'v4 --nodes 2', 'v4 --nodes 4']);
    expect(results[0]!.cluster).toBeNull();
    for (const [r, nodes] of [[results[1]!, 2], [results[2]!, 4]] as const) {
      expect(r.accounting.lost).toBe(0);
      expect(r.cluster!.nodes.map((n) => n.node)).toEqual(Array.from({ length: nodes }, (_, i) => `n${i + 1}`));
      // clients are spread evenly, so each node makes its share of the deliveries
      for (const n of r.cluster!.nodes) expect(n.connections).toBe(120 / nodes);
      expect(r.cluster!.nodes.reduce((a, n) => a + n.deliveries, 0)).toBeGreaterThan(0);
      expect(r.cluster!.redisCpuPct).not.toBeNull();
    }
    expect(stderr).toMatch(/v4 --nodes 4: 4 nodes, deliveries by node: n1 [\d,]+ \(25%/);
  });
});
