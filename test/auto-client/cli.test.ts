import { afterEach, describe, expect, it } from 'vitest';
import type { ChatServer } from '../../versions/host.ts';
import { startVersion } from '../../versions/versions.ts';
import { runCli } from '../helpers.ts';

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
    }
  });
});
