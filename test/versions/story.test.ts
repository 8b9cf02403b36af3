// Where the versions are meant to differ: each reproduces what its design gets wrong.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatServer } from '../../versions/host.ts';
import { CLOSE_CODES } from '../../versions/protocol.ts';
import { startVersion, type OneProcessVersion } from '../../versions/versions.ts';
import type { VersionOptions } from '../../versions/version-options.ts';
import { delay, eventually, metricValue, openClient, stats, type TestClient } from '../helpers.ts';

let server: ChatServer | null = null;
const clients: TestClient[] = [];

// One test client stands for a room's many senders here, so no per-connection rate limit: what
// these tests watch is how each version delivers a flood, not how it refuses one (fairness.test.ts).
async function start(version: OneProcessVersion, options: Partial<VersionOptions> = {}): Promise<ChatServer> {
  server = await startVersion(version, { ...options, port: 0, maxMsgsPerS: 0 });
  return server;
}

async function open(s: ChatServer, n: number): Promise<TestClient[]> {
  const opened = await Promise.all(Array.from({ length: n }, (_, i) => openClient(s, { name: `c${clients.length + i}` })));
  clients.push(...opened);
  return opened;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = null;
});

describe('dead sockets after churn', () => {
  it.each([
    ['v1', 20],
    ['v1.1', 0],
    ['v2', 0],
    ['v3', 0],
  ] as const)('%s: pool size exceeds open connections by %i after 20 clients leave', async (version, leaked) => {
    const s = await start(version);
    const [stay, ...leave] = await open(s, 21);
    await Promise.all(leave.map((c) => c.close()));
    await eventually(async () => (await stats(s)).connections === 1, 'one open connection');
    // Let the versions that prune (v2 takes a lock, v3 goes through its hub) finish doing so.
    await eventually(async () => (await stats(s)).poolSize <= 1 + leaked, 'pool settled');
    const st = await stats(s);
    expect(st.poolSize - st.connections).toBe(leaked);
    expect(await metricValue(s, 'chat_pool_size')).toBe(1 + leaked);
    // The room still works for the one who stayed.
    stay!.send({ type: 'chat', content: 'anyone?' });
    await stay!.waitFor(() => stay!.chats().length === 1, 'own echo');
  });
});

// One slow reader among healthy ones. Enough traffic to fill the slow reader's kernel buffers
// (about 4 MB on loopback here) several times over, so the server must decide what to do.
const MESSAGES = 1000;
const CONTENT = 'x'.repeat(16_000);

interface SlowReaderSetup {
  s: ChatServer;
  healthy: TestClient[];
  slow: TestClient;
}

/**
 * Starts `version` with three healthy clients and one that has stopped reading, and sends
 * MESSAGES chats. `paced` sends in steps the healthy clients have read, so that only the slow
 * reader is slow (the clients share this process with the server; an unpaced 16 MB burst can
 * leave a healthy one megabytes behind for a moment, and drop or kick would rightly hit it).
 */
async function slowReaderSetup(version: OneProcessVersion, options: Partial<VersionOptions>, paced: boolean): Promise<SlowReaderSetup> {
  const s = await start(version, options);
  const [slow, ...healthy] = await open(s, 4);
  slow!.pause();
  const STEP = 50;
  for (let i = 0; i < MESSAGES; i++) {
    healthy[0]!.send({ type: 'chat', content: `${i} ${CONTENT}` });
    if (paced && (i + 1) % STEP === 0) {
      for (const c of healthy) await c.waitFor(() => c.chats().length >= i + 1, `message ${i}`);
    }
  }
  return { s, healthy, slow: slow! };
}

const seqs = (c: TestClient): number[] => c.chats().map((m) => Number.parseInt(m.content, 10));
const inOrder = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

/** Waits until no healthy client has received anything for `quietMs`; returns their counts. */
async function settle(healthy: TestClient[], quietMs = 400): Promise<number[]> {
  let last = healthy.map((c) => c.chats().length);
  for (;;) {
    await delay(quietMs);
    const now = healthy.map((c) => c.chats().length);
    if (now.every((n, i) => n === last[i]) || now.every((n) => n === MESSAGES)) return now;
    last = now;
  }
}

describe('a slow reader', () => {
  it('v1: healthy clients keep receiving while the server buffers without bound for the slow one', async () => {
    const { s, healthy, slow } = await slowReaderSetup('v1', {}, false);
    for (const c of healthy) await c.waitFor(() => c.chats().length === MESSAGES, 'every message');
    const st = await stats(s);
    // What the kernel would not take sits in user space: megabytes, for one client.
    expect(st.bufferedBytes).toBeGreaterThan(4_000_000);
    expect(slow.chats().length).toBeLessThan(MESSAGES);
    slow.resume();
    await slow.waitFor(() => slow.chats().length === MESSAGES, 'the slow reader catching up', 20_000);
    expect(inOrder(seqs(slow))).toBe(true);
    expect(st.drops).toBe(0);
  });

  it.each([
    ['v2', 'v2', {}],
    ['v3 --on-full block', 'v3', { onFull: 'block' }],
  ] as const)('%s: healthy clients stall while it is stuck and catch up once it reads', async (_label, version, options) => {
    const { s, healthy, slow } = await slowReaderSetup(version, options, false);
    const stalled = await settle(healthy);
    for (const n of stalled) expect(n).toBeLessThan(MESSAGES);
    expect(slow.chats().length).toBeLessThan(MESSAGES);
    // v2 holds the lock and v3-block's hub waits: nothing new goes out to anyone, joins included.
    const late = openClient(s, { name: 'late' });
    await delay(200);
    const lateJoined = await Promise.race([late.then(() => true), delay(200).then(() => false)]);
    if (version === 'v2' || version === 'v3') expect(lateJoined).toBe(false);
    // v2's memory is not bounded: every broadcast after the stuck one waits for the lock, and its queue depth says so.
    if (version === 'v2') expect((await stats(s)).queueDepth).toBeGreaterThanOrEqual(MESSAGES - Math.max(...stalled) - 1);

    slow.resume();
    for (const c of [...healthy, slow]) await c.waitFor(() => c.chats().length === MESSAGES, 'every message', 20_000);
    for (const c of [...healthy, slow]) expect(seqs(c)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i));
    clients.push(await late);
    expect((await stats(s)).drops).toBe(0);
  });

  it('v3 --on-full drop: healthy clients receive every message; the slow one misses exactly what was counted as dropped', async () => {
    const { s, healthy, slow } = await slowReaderSetup('v3', { onFull: 'drop' }, true);
    for (const c of healthy) await c.waitFor(() => c.chats().length === MESSAGES, 'every message');
    for (const c of healthy) expect(inOrder(seqs(c))).toBe(true);
    const drops = (await stats(s)).drops;
    expect(drops).toBeGreaterThan(0);
    expect((await stats(s)).queueDepthMax).toBeLessThanOrEqual(128);

    slow.resume();
    await slow.waitFor(() => slow.ofType('dropped').length > 0 && slow.chats().length + drops === MESSAGES, 'catch-up and the dropped notice');
    expect(slow.chats().length + drops).toBe(MESSAGES);
    expect(slow.ofType('dropped').at(-1)!.total).toBe(drops);
    expect(inOrder(seqs(slow))).toBe(true);
    expect(await metricValue(s, 'chat_drops_total')).toBe(drops);
    for (const c of healthy) expect(c.ofType('dropped')).toHaveLength(0);
  });

  it('v3 --on-full kick: the slow reader is closed with 4008 and the healthy ones receive everything', async () => {
    const { s, healthy, slow } = await slowReaderSetup('v3', { onFull: 'kick' }, true);
    for (const c of healthy) await c.waitFor(() => c.chats().length === MESSAGES, 'every message');
    expect((await stats(s)).kicks).toBe(1);
    slow.resume();
    await slow.waitFor(() => slow.closed !== null, 'the kick');
    expect(slow.closed).toEqual({ code: CLOSE_CODES.SLOW_CONSUMER, reason: 'slow consumer: queue full' });
    expect(slow.chats().length).toBeLessThan(MESSAGES);
    expect(await metricValue(s, 'chat_kicks_total')).toBe(1);
  });
});

describe('v2 --hold-ms', () => {
  it('sleeps under the lock, so a join waits behind a broadcast', async () => {
    const s = await start('v2', { holdMs: 300 });
    const [ann] = await open(s, 1);
    ann!.send({ type: 'chat', content: 'slow news' });
    await delay(50); // the broadcast now holds the lock
    const joinedAt = openClient(s, { name: 'late' }).then((c) => {
      clients.push(c);
      return c;
    });
    const late = await joinedAt;
    // The join waited for the broadcast: by the time it got in, the chat was already out.
    expect(ann!.chats().map((m) => m.content)).toEqual(['slow news']);
    expect(late.chats()).toHaveLength(0);
  });
});

describe('v3 heartbeat', () => {
  it('drops a peer that stops answering pings', async () => {
    server = await startVersion('v3', { port: 0, pingIntervalMs: 100 });
    const [ok, dead] = await open(server, 2);
    // A peer that no longer answers: ws answers pings automatically, so we stop reading instead.
    dead!.pause();
    await eventually(async () => (await stats(server!)).connections === 1, 'the dead peer dropped', 5_000);
    expect(ok!.closed).toBeNull();
  });
});

describe('v3 batching', () => {
  const BURST = 400;

  /** Two senders burst BURST chats each into a room of 12; resolves once everyone has them all. */
  async function burst(s: ChatServer): Promise<TestClient[]> {
    const room = await open(s, 12);
    for (let i = 0; i < BURST; i++) for (const sender of room.slice(0, 2)) sender.send({ type: 'chat', content: `m${i}` });
    for (const c of room) await c.waitFor(() => c.chats().length === 2 * BURST, 'the whole burst');
    return room;
  }

  it.each(['v1', 'v2'] as const)('%s writes to a socket once per frame', async (version) => {
    const s = await start(version);
    await burst(s);
    const st = await stats(s);
    expect(st.deliveries).toBe(12 * 2 * BURST);
    expect(st.writes).toBe(st.deliveries + st.controlFrames);
  });

  it('v3 writes what a client has queued in one write: a burst takes far fewer writes than frames', async () => {
    const s = await start('v3');
    await burst(s);
    const st = await stats(s);
    expect(st.deliveries).toBe(12 * 2 * BURST);
    expect(st.writes).toBeLessThan(st.deliveries / 10);
    expect(await metricValue(s, 'chat_socket_writes_total')).toBe(st.writes);
  });

  it('v3 movers get one room, then the other, in order and with nothing lost, while both rooms burst', async () => {
    const s = await start('v3');
    const inA = await open(s, 5);
    const movers = await open(s, 3);
    const inB = await open(s, 4);
    await Promise.all(inB.map((c) => c.join('b')));
    const [senderA, senderB] = [inA[0]!, inB[0]!];
    const ROUNDS = 20;
    const PER_ROUND = 25;
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < PER_ROUND; i++) {
        senderA.send({ type: 'chat', content: `a:${r * PER_ROUND + i}` });
        senderB.send({ type: 'chat', content: `b:${r * PER_ROUND + i}` });
      }
      // Each mover switches rooms in a different round, between two bursts still in flight.
      const mover = r % 5 === 0 ? movers[r / 5 - 1] : undefined;
      mover?.send({ type: 'join', room: 'b' });
      await delay(1);
    }
    const total = ROUNDS * PER_ROUND;
    const all = (room: string): string[] => Array.from({ length: total }, (_, i) => `${room}:${i}`);
    for (const c of inA) await c.waitFor(() => c.chats().length === total, 'all of room a');
    for (const c of inB) await c.waitFor(() => c.chats().length === total, 'all of room b');
    for (const c of inA) expect(c.chats().map((m) => m.content)).toEqual(all('a'));
    for (const c of inB) expect(c.chats().map((m) => m.content)).toEqual(all('b'));
    for (const m of movers) {
      await m.waitFor(() => m.chats().at(-1)?.content === `b:${total - 1}`, 'the last of room b');
      const got = m.chats().map((x) => x.content);
      const firstB = got.findIndex((x) => x.startsWith('b:'));
      const fromA = got.slice(0, firstB);
      const fromB = got.slice(firstB);
      // Room a from its first message to the move, then room b from the move to its last: no gap, no mix.
      expect(fromA).toEqual(all('a').slice(0, fromA.length));
      expect(fromB).toEqual(all('b').slice(total - fromB.length));
      expect(fromA.length).toBeGreaterThan(0);
    }
  });
});
