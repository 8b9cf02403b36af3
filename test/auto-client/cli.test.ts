import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/server-process.ts';
import type { ChatServer } from '../../versions/host.ts';
import { startVersion } from '../../versions/versions.ts';

let server: ChatServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

function client(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'auto-client/cli.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

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
