import { afterEach, describe, expect, it } from 'vitest';
import type { ChatServer } from '../../versions/host.ts';
import { startVersion } from '../../versions/versions.ts';
import { delay, runCli } from '../helpers.ts';

let server: ChatServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const client = (args: string[]): ReturnType<typeof runCli> => runCli('auto-client/cli.ts', args);

describe('npm run client', () => {
  it('joins, sends on its schedule, measures its own round trips and another client’s one-way latency', async () => {
    server = await startVersion('v3', { port: 0 });
    const [a, b] = await Promise.all([
      client(['--url', server.wsUrl, '--room', 'probe', '--rate', '10', '--duration', '2', '--json']),
      client(['--url', server.wsUrl, '--room', 'probe', '--rate', '10', '--duration', '2', '--json']),
    ]);
    for (const r of [a, b]) {
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as { sent: number; received: number; lost: number; duplicates: number; roundTripMs: { count: number }; oneWayMs: { count: number } };
      expect(s.sent).toBeGreaterThanOrEqual(15);
      expect(s.lost).toBe(0);
      expect(s.duplicates).toBe(0);
      expect(s.roundTripMs.count).toBeGreaterThanOrEqual(s.sent - 2); // the last ones may still be in flight at the stop
      expect(s.oneWayMs.count).toBeGreaterThan(0);
      // A percentile is never printed above the max it belongs to.
      for (const l of [s.roundTripMs, s.oneWayMs] as unknown as Array<{ p99: number; max: number }>) expect(l.p99).toBeLessThanOrEqual(l.max);
    }
  });

  it('piped, prints a line a second; says it closed the connection itself, and "none" for what it did not measure', async () => {
    server = await startVersion('v3', { port: 0 });
    const r = await client(['--url', server.wsUrl, '--rate', '0', '--duration', '2']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    expect(r.stderr).not.toContain('\r');
    expect(lines.filter((l) => l.startsWith('sent 0 · received 0 from 0 sender(s) · lost 0 · dup 0 · round trip none · one-way none')).length).toBeGreaterThanOrEqual(1);
    expect(lines).toContain('this client closed the connection: its --duration of 2 s was over');
    expect(r.stderr).not.toContain('the server closed');
    expect(lines).toContain('round trip of its own messages: none');
    expect(lines).toContain('one-way from other auto-clients on this host: none');
  });

  it('says when the server closed the connection, and why, in words', async () => {
    server = await startVersion('v3', { port: 0 });
    const s = server;
    const run = client(['--url', s.wsUrl, '--rate', '5', '--duration', '20']);
    await delay(1500);
    await s.close();
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n')).toContain('the server closed the connection: 1001 (server shutting down): server shutting down');
    expect(r.stderr).not.toContain('this client closed');
    expect(r.stderr).toMatch(/\nround trip of its own messages: p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms \(n=\d+\)\n/);
  });
});
