// The harness against servers that break, run through the real CLI as a user would: each report
// names the failure in words, nobody is filtered out of the accounting, no line says a broken
// server's clients never stalled, and the exit code says what was found.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregate } from '../../harness/aggregate.ts';
import { runCapacity } from '../../harness/capacity.ts';
import { EXIT_CODES } from '../../harness/outcome.ts';
import type { StressReport } from '../../harness/report-model.ts';
import type { VersionResult } from '../../harness/result.ts';
import { runTarget } from '../../harness/run-target.ts';
import { resolveScenario } from '../../harness/scenarios.ts';
import { startServerProcess } from '../../harness/server-process.ts';
import { runCli } from '../helpers.ts';

const SERVER = 'test/misbehaving/server.ts';
const SMALL = ['--clients', '50', '--senders', '5', '--rate', '10', '--warmup', '1', '--duration', '3', '--drain', '1', '--workers', '1'];

let out: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'misbehaving-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

/** Starts a misbehaving server, points `npm run stress -- --target` at it, and stops the server. */
async function stressAgainst(kind: string[], flags: string[]): Promise<{ code: number | null; stderr: string; r: VersionResult }> {
  const server = await startServerProcess(kind, SERVER);
  try {
    const { code, stdout, stderr } = await runCli('harness/cli.ts', ['--target', server.info.wsUrl, ...flags, '--out', out, '--json']);
    const report = JSON.parse(stdout) as StressReport;
    return { code, stderr, r: report.scenarios[0]!.results[0]! };
  } finally {
    await server.stop();
  }
}

describe('npm run stress -- --target, against servers that break', () => {
  it('a server that crashes: unreachable, every client closed and stalled, senders lost, exit 2', async () => {
    const { code, stderr, r } = await stressAgainst(['crash', '--after', '50'], ['--scenario', 'baseline', ...SMALL]);
    expect(code, stderr).toBe(EXIT_CODES.brokenServer);
    expect(r.health.broken).toBe(true);
    expect(r.health.findings[0]).toMatch(/^unreachable from [\d.]+ s: it accepted no TCP connection after that \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/);
    expect(r.health.closed).toMatchObject({ healthy: 50, codes: { '1006': 50 } });
    expect(r.health.afterRun).toMatchObject({ accepting: false, relaying: false });
    // Nobody is filtered out: all 50 are counted, all 50 stalled, and the senders' silence is said.
    expect(r.accounting.receivers).toBe(50);
    expect(r.stalls.healthy).toMatchObject({ clients: 50, stalled: 50 });
    expect(r.offered.sendersLost).toBe(5);
    expect(r.verdict).toMatch(/^external: BROKEN: unreachable from .*; stalls hit all 50 healthy clients for [\d.]+ s \(median\);.*offered only \d+% of the planned load \(\d+ of \d+ sends\): 5 of 5 senders lost their connection$/);
    expect(r.valid).toBe(true); // the server's failure is not put on the generator
    expect(stderr).not.toContain('never stalled');
    expect(stderr).toContain('exit 2: the run found a broken server');
  });

  it('a relay that sends a direct message to everyone: each leak counted against the bystanders and the other users, exit 6', async () => {
    const { code, stderr, r } = await stressAgainst(['rate-cap', '--after', '100000'], ['--scenario', 'direct', '--clients', '40', '--tabs', '2', '--fan-in', '3', '--rate', '5', '--warmup', '1', '--duration', '2', '--drain', '1', '--workers', '1']);
    expect(code, stderr).toBe(EXIT_CODES.checkFailed);
    // 20 users: 2 stand by, 4 pairs, 2 groups of 3 writing to one; 14 senders. Every connection got
    // every sender's message, and was owed those of its own conversation only.
    const sent = r.offered.sent;
    expect(r.offered.senders).toBe(14);
    expect(r.accounting.lost).toBe(0);
    expect(r.accounting.leaked).toBe(40 * sent - r.accounting.expected);
    expect(r.accounting.leaked).toBeGreaterThan(30 * sent);
    expect(stderr).toMatch(/external: [\d,]+ DIRECT MESSAGES LEAKED to connections that were neither their recipient's nor their sender's \(expected 0\)/);
  });

  it('a --target that signs users in: --jwt-secret signs each user\'s token and nothing leaks, exit 0; without it, the run stops at once and says what to give, exit 1', async () => {
    const secret = 'a-target-secret-of-at-least-32-bytes';
    const server = await startServerProcess(['v3', '--auth', 'jwt'], undefined, { CHAT_JWT_SECRET: secret });
    try {
      const flags = ['--target', server.info.wsUrl, '--scenario', 'direct', '--clients', '40', '--warmup', '1', '--duration', '2', '--drain', '1', '--workers', '1', '--out', out, '--json'];
      const signed = await runCli('harness/cli.ts', [...flags, '--jwt-secret', secret]);
      const r = (JSON.parse(signed.stdout) as StressReport).scenarios[0]!.results[0]!;
      expect(signed.code, signed.stderr).toBe(EXIT_CODES.ok);
      expect(r.accounting).toMatchObject({ leaked: 0, lost: 0 });
      expect(r.accounting.expected).toBeGreaterThan(0);
      const unsigned = await runCli('harness/cli.ts', flags);
      expect(unsigned.code).toBe(EXIT_CODES.error);
      expect(unsigned.stderr).toMatch(/asks its clients to sign in \(401\): give the harness the server's HS256 secret \(--jwt-secret\)/);
    } finally {
      await server.stop();
    }
  });

  it('a relay that answers a room switch or a rename with nothing: every request counted as never answered, exit 6', async () => {
    const { code, stderr, r } = await stressAgainst(['rate-cap', '--after', '100000'], ['--scenario', 'baseline', ...SMALL, '--switchers', '3']);
    expect(code, stderr).toBe(EXIT_CODES.checkFailed);
    expect(r.switches!.asked).toBeGreaterThanOrEqual(3);
    expect(r.switches).toMatchObject({ joined: 0, refused: 0 });
    expect(r.switches!.unanswered).toBe(3); // one request each, waiting for good: a switcher asks again only once answered
    expect(stderr).toMatch(/external: \d+ room switches and renames asked: 0 joined, 0 refused with an error, 3 never answered.*\(expected every one answered\)/);
  });

  it('a server that deadlocks when its first client leaves: stopped relaying, still not relaying after the run, exit 2', async () => {
    const { code, stderr, r } = await stressAgainst(['deadlock'], ['--scenario', 'churn', '--clients', '40', '--senders', '4', '--churn', '5', '--warmup', '1', '--duration', '3', '--drain', '1', '--workers', '1']);
    expect(code, stderr).toBe(EXIT_CODES.brokenServer);
    expect(r.health.findings).toEqual([expect.stringMatching(/^the server stopped relaying at [\d.]+ s and was still not relaying after the run \(deadlock\?\)$/)]);
    expect(r.health.relayOutage).toMatchObject({ neverResumed: true });
    expect(r.health.afterRun).toMatchObject({ accepting: true, relaying: false });
    expect(r.stalls.healthy).toMatchObject({ clients: 40, stalled: 40 });
    expect(r.accounting.byKind.healthy.lost).toBeGreaterThan(0);
    expect(stderr).not.toContain('never stalled');
  });

  it('a server that closes clients at random: which, with what code, what they lost, exit 2', async () => {
    const { code, stderr, r } = await stressAgainst(['random-close', '--after', '40'], ['--scenario', 'baseline', ...SMALL]);
    expect(code, stderr).toBe(EXIT_CODES.brokenServer);
    const closed = r.health.closed.healthy;
    expect(closed).toBeGreaterThan(0);
    expect(closed).toBeLessThan(50);
    expect(r.health.closed.codes).toEqual({ '1011': closed });
    expect(r.health.findings).toEqual([expect.stringMatching(new RegExp(`^the server closed ${closed} clients nobody asked it to \\(1011 server error ×${closed}\\), the first [\\d.]+ s after sending began$`))]);
    // The closed clients, and only they, stalled and lost what was sent after they were let go.
    expect(r.stalls.healthy.stalled).toBe(closed);
    expect(r.accounting.byKind.healthy.lost).toBeGreaterThan(0);
    expect(r.accounting.receivers).toBe(50);
  });

  it('a server that joins queued messages into one frame, one per line: every message counted, nothing lost, exit 0', async () => {
    const { code, stderr, r } = await stressAgainst(['newline-join'], ['--scenario', 'baseline', ...SMALL]); // baseline sends in bursts of 5
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(r.accounting.lost).toBe(0);
    expect(r.accounting.received).toBe(r.accounting.expected);
    expect(r.generator.framesReceived).toBeLessThan(r.accounting.received / 2); // frames really were joined
    expect(r.health).toMatchObject({ broken: false, status: 'ok', unparsed: { count: 0 } });
  });

  it('a server that blocks everyone behind a slow reader: stopped relaying while it was stuck, every healthy client stalled, exit 2', async () => {
    const { code, stderr, r } = await stressAgainst(['block-on-slow'], [
      '--scenario', 'slow-consumer', '--clients', '40', '--senders', '4', '--rate', '50', '--size', '16000', '--slow', '1', '--warmup', '1', '--duration', '6', '--drain', '2', '--workers', '1',
    ]);
    expect(code, stderr).toBe(EXIT_CODES.brokenServer);
    expect(r.health.findings).toEqual([expect.stringMatching(/^the server stopped relaying to every healthy client at [\d.]+ s for [\d.]+ s while messages were being sent$/)]);
    expect(r.health.relayOutage?.neverResumed).toBe(false);
    expect(r.stalls.healthy).toMatchObject({ clients: 39, stalled: 39 });
    expect(r.verdict).toContain('one slow reader stalled all 39 healthy clients');
    expect(r.slowReaders).toMatchObject({ readers: 1, pushedBack: true });
    expect(stderr).not.toContain('never stalled');
  });

  it('a server that sends frames the generator cannot read: counted with samples, not a fault, exit 0', async () => {
    const { code, stderr, r } = await stressAgainst(['chatter'], ['--scenario', 'baseline', ...SMALL]);
    expect(code, stderr).toBe(EXIT_CODES.ok);
    expect(r.health.unparsed.count).toBe(100); // a text line and a binary frame for each of 50 clients
    expect(r.health.unparsed.samples).toHaveLength(3);
    for (const sample of r.health.unparsed.samples) expect(['welcome! be nice', '<a binary frame of 2 bytes>']).toContain(sample);
    expect(r.verdict).toMatch(/; 100 frames the generator could not read \(neither a probe nor JSON\), e\.g\. "(welcome! be nice|<a binary frame of 2 bytes>)"$/);
    expect(r.accounting.lost).toBe(0);
  });
});

describe('npm run stress -- --target, telling the truth about a server it did not start', () => {
  it('a server that drops most messages at ingress: no push-back, no slow reader blamed, the loss said, exit 6', async () => {
    const { code, stderr, r } = await stressAgainst(['ingress-drop', '--after', '5'], [
      '--scenario', 'slow-consumer', '--clients', '20', '--senders', '4', '--rate', '25', '--size', '16000', '--slow', '1', '--warmup', '1', '--duration', '6', '--drain', '2', '--workers', '1',
    ]);
    expect(code, stderr).toBe(EXIT_CODES.checkFailed);
    // The slow reader was owed only what the server relayed, far less than loopback holds for it.
    expect(r.slowReaders).toMatchObject({ readers: 1, pushedBack: false });
    expect(r.accounting.relayedShare).toBeLessThan(0.2);
    expect(r.verdict).toMatch(/no client got more than \d+% of the messages sent into its room by the end of the drain: the server dropped the rest at ingress/);
    expect(r.verdict).not.toMatch(/slow readers? stalled/);
    expect(stderr).toContain('✘ external: the slow readers did not push back (expected them to: the scenario did not take effect)');
    expect(stderr).toMatch(/✘ external: healthy clients lost [\d,]+ \(expected 0\)/);
    expect(stderr).toContain('exit 6: a check failed');
  });

  it('a server that takes the scenario\'s messages for too big: 1009 in words, and the scenario said not to have run', async () => {
    const { code, stderr, r } = await stressAgainst(['max-payload', '--after', '512'], ['--scenario', 'baseline', ...SMALL, '--size', '4096']);
    expect(code, stderr).toBe(EXIT_CODES.brokenServer);
    expect(r.health.closed.codes['1009']).toBe(5); // the five senders, at their first message
    expect(r.health.findings).toContain("the server took the scenario's 4,096 B messages for too big (1009): the scenario never ran as planned; try a --size under the server's limit (e.g. --size 256)");
    expect(r.health.findings[0]).toMatch(/nobody asked it to \(1009 message too big ×5\)/);
  });

  it('a room that stops for 3 s of a burst run: every healthy client fell behind, exit 6, not "held up"', async () => {
    const { code, stderr, r } = await stressAgainst(['stall-once', '--after', '3000'], [
      '--scenario', 'burst', '--clients', '50', '--senders', '5', '--rate', '10', '--burst', '10', '--warmup', '1', '--duration', '8', '--drain', '2', '--workers', '1',
    ]);
    expect(code, stderr).toBe(EXIT_CODES.checkFailed);
    expect(r.stalls.healthy).toMatchObject({ clients: 50, behind: 50 });
    expect(r.latency.healthy.max).toBeGreaterThan(2000);
    expect(stderr).toMatch(/✘ external: all 50 healthy clients fell more than 1\.0 s behind, up to [\d.]+ s \(expected none\)/);
  });

  it('refuses, before the run, a threshold on a figure a --target server is not asked for', async () => {
    const { code, stderr } = await runCli('harness/cli.ts', ['--target', 'ws://127.0.0.1:9/chatroom', '--threshold', 'external cpu < 90']);
    expect(code).toBe(EXIT_CODES.error);
    expect(stderr).toContain('stress failed: threshold "external cpu < 90": cpu comes from the server\'s own counters, which a --target server is not asked for; this run cannot have it');
  });
});

describe('a spawned server that crashes', () => {
  it("is reported with its exit code and the line of its stderr that says why", async () => {
    const config = resolveScenario('baseline', { clients: 30, senders: 3, rate: 10, burst: 1, warmupS: 1, durationS: 3, drainS: 1, workers: 1 });
    const run = await runTarget({ label: 'crasher', args: ['crash', '--after', '30'], script: SERVER }, config, 1, () => {});
    const r = aggregate(run);
    expect(r.health.exit).toMatchObject({ code: 2, signal: null });
    expect(r.health.findings[0]).toMatch(/^the server exited with code 2 [\d.]+ s after sending began: panic: concurrent write to websocket connection$/);
    expect(r.health.status).toBe('exited 2');
    expect(r.verdict).toMatch(/^crasher: BROKEN: the server exited with code 2 /);
  });
});

describe('a capacity ladder whose server crashes on a later step', () => {
  it('reports the crash and its words, not the clean health of the step it sustained', async () => {
    // Each step starts a fresh server: the first step sends ~1,300 messages, the second ~2,600.
    const config = resolveScenario('capacity', { clients: 20, senders: 2, warmupS: 1, durationS: 2, drainS: 1, workers: 1 });
    const r = await runCapacity({ label: 'crasher', args: ['crash', '--after', '2000'], script: SERVER }, config, 1, () => {});
    expect(r.capacity!.steps.map((st) => st.targetPerSecond)).toEqual([10_000, 20_000]);
    expect(r.capacity!.brokeBy).toMatch(/^the server broke: the server exited with code 2 [\d.]+ s after sending began: panic: concurrent write to websocket connection/);
    expect(r.health).toMatchObject({ broken: true, status: 'exited 2' });
    expect(r.verdict).toMatch(/; at 20,000\/s: the server broke: the server exited with code 2 /);
  }, 60_000);
});

describe('a capacity ladder whose server holds up to a known rate', () => {
  it('halves the interval between the last step it held and the first it did not, until it is within 10%', async () => {
    // 20 clients: a step of 20,000 deliveries/s is 1,000 messages/s. The relay holds 1,600 a second
    // (32,000 deliveries/s) and holds everything past that for 300 ms (p99 > 100 ms).
    const config = resolveScenario('capacity', { clients: 20, senders: 2, warmupS: 1, durationS: 2, drainS: 1, workers: 1 });
    const r = await runCapacity({ label: 'capped', args: ['rate-cap', '--after', '1600'], script: SERVER }, config, 1, () => {});
    const cap = r.capacity!;
    const targets = cap.steps.map((st) => st.targetPerSecond);
    // 10k and 20k held, 50k not; then 35k (not held) and 28k (held); then halvings between them,
    // each inside the interval left, until held and not held are within 10% of held.
    expect(targets.slice(0, 5)).toEqual([10_000, 20_000, 50_000, 35_000, 28_000]);
    for (const t of targets.slice(5)) expect(t > 28_000 && t < 35_000).toBe(true);
    const held = Math.max(...cap.steps.filter((st) => st.targetPerSecond < cap.brokeAtPerSecond!).map((st) => st.targetPerSecond));
    expect(cap.brokeAtPerSecond! - held).toBeLessThanOrEqual(0.1 * held);
    expect(cap.sustainedPerSecond).toBeGreaterThan(26_000);
    expect(cap.brokeAtPerSecond).toBeGreaterThanOrEqual(30_000);
    expect(cap.brokeBy).toMatch(/^p99 \d+ ms > 100 ms$/);
    // A step whose p99 passed the limit ran twice before it counted: 50k's both runs were over.
    expect(cap.steps.find((st) => st.targetPerSecond === 50_000)!.firstP99Ms).toBeGreaterThan(100);
    expect(cap.steps.find((st) => st.targetPerSecond === 20_000)!.firstP99Ms).toBeUndefined();
    expect(r.verdict).toMatch(/^capped: sustained (2[6-9]|3[0-3]),\d{3} deliveries\/s .*; at 3[0-5],\d{3}\/s: p99 \d+ ms > 100 ms$/);
  }, 120_000);
});

describe('--threshold', () => {
  it('prints ✔/✘ for each and exits 4 when one fails on a server that held up', async () => {
    const { code, stderr, stdout } = await runCli('harness/cli.ts', [
      '--versions', 'v3', '--scenario', 'baseline', '--clients', '20', '--senders', '2', '--warmup', '0', '--duration', '1', '--drain', '1', '--workers', '1', '--out', out, '--json',
      '--threshold', 'v3 lost == 0', '--threshold', 'v3 p99 < 1ms', '--threshold', 'v3 delivered/s > 1000000',
    ]);
    expect(code, stderr).toBe(EXIT_CODES.thresholdFailed);
    const lines = stderr.split('\n');
    expect(lines).toContain('  ✔ v3 lost == 0 (0)');
    expect(lines.find((l) => l.startsWith('  ✘ v3 delivered/s > 1000000 ('))).toMatch(/^ {2}✘ v3 delivered\/s > 1000000 \([\d,]+\/s\)$/);
    expect(lines).toContain('exit 4: a threshold failed');
    const report = JSON.parse(stdout) as StressReport;
    expect(report.outcome.exitCode).toBe(4);
    expect(report.scenarios[0]!.thresholds.map((t) => t.pass)).toEqual([true, expect.any(Boolean), false]);
  });

  it('refuses one that names a version this run does not measure, before running anything', async () => {
    const { code, stderr } = await runCli('harness/cli.ts', ['--versions', 'v3', '--threshold', 'v2 p99 < 5ms', '--out', out]);
    expect(code).toBe(EXIT_CODES.error);
    expect(stderr).toContain('stress failed: threshold "v2 p99 < 5ms" names "v2", which this run does not measure (it measures v3)');
  });
});
