// One client must not take the server from the others: a per-connection rate limit on the versions
// with a hub (v3, v4), a flood closed with 1008, and a heartbeat that only an answer to its own ping
// satisfies. v1 and v2 reproduce servers without any of it.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatServer } from '../../versions/host.ts';
import { startVersion, type OneProcessVersion } from '../../versions/versions.ts';
import { closeCodeIn, delay, eventually, metricValue, openClient, rawFrame, rawUpgrade, type TestClient } from '../helpers.ts';

const servers: ChatServer[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(version: OneProcessVersion, options: Parameters<typeof startVersion>[1] = {}): Promise<ChatServer> {
  const s = await startVersion(version, { port: 0, ...options });
  servers.push(s);
  return s;
}

async function open(s: ChatServer, room: string, name: string): Promise<TestClient> {
  const c = await openClient(s, { room, name });
  clients.push(c);
  return c;
}

describe('a per-connection rate limit (v3, v4)', () => {
  it('v3 takes a burst, drops what passes it, says RATE_LIMITED once, and counts every dropped frame', async () => {
    const s = await start('v3', { maxMsgsPerS: 50, burst: 100 });
    const eager = await open(s, 'r', 'eager');
    const reader = await open(s, 'r', 'reader');
    expect(eager.ofType('joined')[0]!.server.rate).toEqual({ msgsPerS: 50, burst: 100 });
    for (let i = 1; i <= 300; i++) eager.send({ type: 'chat', content: `m-${i}` });
    await reader.waitFor(() => reader.chats().length >= 100, 'the burst');
    await delay(300);
    const got = reader.chats().length;
    expect(got).toBeGreaterThanOrEqual(100);
    expect(got).toBeLessThan(150); // the burst, and what 50/s refilled meanwhile
    expect(eager.ofType('error').filter((e) => e.code === 'RATE_LIMITED')).toHaveLength(1);
    expect(await metricValue(s, 'chat_limit_refusals_total', 'limit="rate"')).toBe(300 - got);
    expect(eager.closed).toBeNull(); // over its rate, not flooding: still connected
  });

  it('v3 closes a flood with 1008, and a member of another room goes on untouched', async () => {
    const s = await start('v3', { maxMsgsPerS: 50, burst: 20 });
    const flooder = await open(s, 'flood', 'flooder');
    const a = await open(s, 'quiet', 'a');
    const b = await open(s, 'quiet', 'b');
    for (let i = 0; i < 5000 && flooder.closed === null; i++) flooder.send({ type: 'chat', content: 'x' });
    await flooder.waitFor(() => flooder.closed !== null, 'the flooder closed');
    expect(flooder.closed!.code).toBe(1008);
    expect(await metricValue(s, 'chat_limit_refusals_total', 'limit="flood"')).toBe(1);
    for (let i = 1; i <= 10; i++) a.send({ type: 'chat', content: `q-${i}` });
    await b.waitFor(() => b.chats().length === 10, 'the quiet room');
  });

  it('v1 has no limit (its story has none): 300 frames at once are all relayed', async () => {
    const s = await start('v1');
    const eager = await open(s, 'r', 'eager');
    const reader = await open(s, 'r', 'reader');
    expect(eager.ofType('joined')[0]!.server.rate).toBeUndefined();
    for (let i = 1; i <= 300; i++) eager.send({ type: 'chat', content: `m-${i}` });
    await reader.waitFor(() => reader.chats().length === 300, 'all 300');
  });

  it('v3 closes a client that keeps sending at many times its rate, not only one that floods at once', async () => {
    // 50/s and 10 at once: a client at 1,000 frames/s gets one through each time a token comes
    // back, so its drops are never 30 in a row; within a second they are far past 30.
    const s = await start('v3', { maxMsgsPerS: 50, burst: 10 });
    const steady = await open(s, 'r', 'steady');
    const other = await open(s, 'calm', 'other');
    const timer = setInterval(() => {
      for (let i = 0; i < 10 && steady.closed === null; i++) steady.send({ type: 'chat', content: 'x' });
    }, 10);
    try {
      await steady.waitFor(() => steady.closed !== null, 'the close', 5_000);
    } finally {
      clearInterval(timer);
    }
    expect(steady.closed!.code).toBe(1008);
    expect(await metricValue(s, 'chat_limit_refusals_total', 'limit="flood"')).toBe(1);
    other.send({ type: 'chat', content: 'still here' });
    await other.waitFor(() => other.chats().length === 1, 'the other room goes on');
  });

  it('joins are limited too: a burst of five, then about one a second', async () => {
    const s = await start('v3');
    const c = await open(s, 'a', 'hopper');
    for (let i = 0; i < 20; i++) c.send({ type: 'join', room: i % 2 === 0 ? 'b' : 'a' });
    await delay(500);
    expect(c.ofType('joined').length).toBeLessThanOrEqual(1 + 5 + 1);
    expect(c.ofType('error').some((e) => e.code === 'RATE_LIMITED')).toBe(true);
  });
});

describe('the heartbeat', () => {
  it('a peer that sends pongs nobody asked for, and never answers a ping, is dropped all the same', async () => {
    const s = await start('v3', { pingIntervalMs: 100 });
    const { socket, received } = await rawUpgrade(s, '?name=faker');
    const fake = setInterval(() => socket.write(rawFrame(0xa, '')), 20); // empty pongs, never the ping's payload
    try {
      await eventually(() => socket.destroyed || socket.readableEnded, 'the faker cut off', 5_000);
      expect(received.length).toBeGreaterThan(0); // it was let in, and pinged
    } finally {
      clearInterval(fake);
      socket.destroy();
    }
  });
});

describe('frames that end', () => {
  it('a frame that has not ended within the frame timeout closes the socket with 1008; a slow one that ends in time does not', async () => {
    const s = await start('v1', { frameTimeoutMs: 400 });
    const stuck = await rawUpgrade(s, '?name=stuck');
    const slow = await rawUpgrade(s, '?name=slow');
    try {
      const frame = rawFrame(0x1, JSON.stringify({ type: 'chat', content: 'x'.repeat(100) }));
      stuck.socket.write(frame.subarray(0, 20)); // and never the rest
      // The slow one: the same frame a few bytes at a time, whole within 300 ms.
      for (let i = 0; i < frame.length; i += 20) {
        slow.socket.write(frame.subarray(i, i + 20));
        await delay(40);
      }
      await eventually(() => closeCodeIn(stuck.received) !== null, 'the stuck one closed', 5_000);
      expect(closeCodeIn(stuck.received)).toBe(1008);
      await delay(600);
      expect(closeCodeIn(slow.received)).toBeNull();
      expect(await metricValue(s, 'chat_limit_refusals_total', 'limit="frame_timeout"')).toBe(1);
    } finally {
      stuck.socket.destroy();
      slow.socket.destroy();
    }
  });
});
