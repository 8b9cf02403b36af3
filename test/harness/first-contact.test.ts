// What a newcomer sees on the first wrong step: one line naming the mistake and the fix, never a
// stack trace or fifty lines of help, and never a whole scenario run against nothing.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { didYouMean, flagErrorLine } from '../../common/cli-errors.ts';
import type { ChatServer } from '../../versions/host.ts';
import { startVersion } from '../../versions/versions.ts';
import { runCli } from '../helpers.ts';

/** A loopback port nothing listens on: one the kernel just gave out and took back. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

let server: ChatServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

describe('did you mean', () => {
  it('finds the flag or value meant by a typo or a prefix, and nothing for a stranger', () => {
    expect(didYouMean('version', ['versions', 'scenario', 'seed'])).toBe('versions');
    expect(didYouMean('baselin', ['baseline', 'burst', 'churn'])).toBe('baseline');
    expect(didYouMean('slow', ['baseline', 'slow-consumer'])).toBe('slow-consumer');
    expect(didYouMean('zzz', ['baseline', 'churn'])).toBeNull();
  });

  it("rewords yargs' messages into one line each", () => {
    expect(flagErrorLine('npm run stress --', 'Unknown argument: version', ['versions', 'seed'], {})).toBe('unknown flag --version: did you mean --versions?\n(npm run stress -- --help lists every flag)');
    expect(flagErrorLine('x', 'Invalid values:\n  Argument: scenario, Given: "churm", Choices: "baseline", "churn"', [], { scenario: ['baseline', 'churn'] })).toBe(
      '--scenario churm: did you mean churn? (one of baseline, churn)',
    );
  });
});

describe('npm run stress, first contact', () => {
  it('takes --version for the typo it is, and a scenario misspelt, in a line or two, exit 1', async () => {
    const v = await runCli('harness/cli.ts', ['--version', 'v3']);
    expect(v.code).toBe(1);
    expect(v.stderr.trim().split('\n')).toEqual(['unknown flag --version: did you mean --versions?', '(npm run stress -- --help lists every flag)']);
    const s = await runCli('harness/cli.ts', ['--scenario', 'baselin']);
    expect(s.code).toBe(1);
    expect(s.stderr.trim()).toMatch(/^--scenario baselin: did you mean baseline\? \(one of baseline, slow-consumer, churn, /);
  });

  it('connects once to a --target before the run and fails fast, with the URL and a hint', async () => {
    const port = await deadPort();
    const dead = await runCli('harness/cli.ts', ['--target', `ws://127.0.0.1:${port}/chatroom`, '--scenario', 'baseline']);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toContain(`stress failed: target: nothing listens at 127.0.0.1:${port}: is the server running?`);
    expect(dead.stderr).not.toContain('  external start');
    const page = await runCli('harness/cli.ts', ['--target', `http://127.0.0.1:${port}/`]);
    expect(page.stderr).toContain(`stress failed: target: http://127.0.0.1:${port}/ is the page; its WebSocket is ws://127.0.0.1:${port}/chatroom`);
  });
});

describe('npm run client, first contact', () => {
  it('says nothing listens, in one line, when nothing does', async () => {
    const port = await deadPort();
    const r = await runCli('auto-client/cli.ts', ['--url', `ws://127.0.0.1:${port}/chatroom`, '--duration', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`nothing listens at 127.0.0.1:${port}: is the server running? (npm run v3 starts one; it prints its URL)`);
  });

  it('given the page URL the server prints first, points to its WebSocket', async () => {
    server = await startVersion('v3', { port: 0 });
    const r = await runCli('auto-client/cli.ts', ['--url', server.url, '--duration', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`${server.url} is the page; its WebSocket is ${server.wsUrl}`);
    // A ws:// URL to the page's path is answered by the page, not the WebSocket.
    const wrongPath = server.wsUrl.replace('/chatroom', '/');
    const w = await runCli('auto-client/cli.ts', ['--url', wrongPath, '--duration', '1']);
    expect(w.code).toBe(1);
    expect(w.stderr.trim()).toMatch(new RegExp(`^${wrongPath.replace(/[.]/g, '\\.')} is not the WebSocket \\(HTTP/1\\.1 \\d{3}[^)]*\\); try ${server.wsUrl.replace(/[.]/g, '\\.')}$`));
  });
});
