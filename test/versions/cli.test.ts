import { describe, expect, it } from 'vitest';
import { startServerProcess } from '../../harness/server-process.ts';
import { resolveVersionOptions } from '../../versions/version-options.ts';
import { resolveHostOptions } from '../../versions/host.ts';
import { openClient } from '../helpers.ts';

describe('npm run v1|v2|v3', () => {
  it.each([
    [['v1'], 'v1', 'v1 · naive pool'],
    [['v1', '--prune'], 'v1.1', 'v1.1 · naive pool, pruned on close'],
    [['v2', '--hold-ms', '5'], 'v2', 'v2 · mutex pool · hold 5 ms'],
    [['v3', '--on-full', 'kick', '--queue', '64'], 'v3', 'v3 · on-full kick · queue 64'],
  ])('%j prints one LISTENING line, serves, and exits 0 on SIGTERM after closing clients with 1001', async (args, version, describe) => {
    const server = await startServerProcess(args);
    try {
      expect(server.info).toMatchObject({ version, describe });
      expect(server.info.wsUrl).toBe(`ws://127.0.0.1:${server.info.port}/chatroom`);
      expect(server.output).toContain(`  page:      http://127.0.0.1:${server.info.port}/`);
      const page = await fetch(server.info.url);
      expect(await page.text()).toContain('<title>chatroom-evolution</title>');
      const client = await openClient(server.info.wsUrl);
      const code = await server.stop();
      await client.waitFor(() => client.closed !== null, 'close');
      expect(client.closed!.code).toBe(1001);
      expect(code).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('refuses a bad flag with a message naming it, and exits non-zero', async () => {
    await expect(startServerProcess(['v3', '--on-full', 'explode'])).rejects.toThrow(/on-full/);
  });
});

describe('options', () => {
  it('throw at once, naming the option', () => {
    expect(() => resolveVersionOptions({ queue: 0 })).toThrow(new RangeError('options.queue must be an integer >= 1'));
    expect(() => resolveVersionOptions({ holdMs: -1 })).toThrow(/options.holdMs/);
    expect(() => resolveVersionOptions({ onFull: 'nope' as 'drop' })).toThrow(/options.onFull must be one of block, drop, kick/);
    expect(() => resolveHostOptions({ port: 70000 })).toThrow(/options.port/);
    expect(() => resolveHostOptions({ limits: { maxFrameBytes: 10, maxContentChars: 5 } })).toThrow(/maxFrameBytes/);
  });
});
