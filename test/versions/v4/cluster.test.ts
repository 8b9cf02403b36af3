// v4 in one test process: two or three nodes over a real redis-server (Debian's, on a free
// port), real sockets. Each test uses its own rooms, so they share one Redis.
import { describe, expect, it } from 'vitest';
import type { ChatServer } from '../../../versions/host.ts';
import type { ServerMessage } from '../../../versions/protocol.ts';
import { startV4Node, type V4Options } from '../../../versions/v4/node.ts';
import { startRedisServer } from '../../../common/redis-server.ts';
import { useV4Fixture } from './fixture.ts';
import { delay, eventually, metricValue, openClient, stats, type TestClient } from '../../helpers.ts';

type Chat = Extract<ServerMessage, { type: 'chat' }>;

const fixture = useV4Fixture();
const { servers, clients } = fixture;
let nodeCount = 0;

// A test client stands for a room's senders here (hundreds of messages at once): no per-connection rate limit.
async function node(options: Partial<V4Options> = {}): Promise<ChatServer> {
  const s = await startV4Node({ redis: fixture.redis.url, node: `t${++nodeCount}`, port: 0, heartbeatMs: 200, maxMsgsPerS: 0, ...options });
  servers.push(s);
  return s;
}

async function open(server: ChatServer, query: Parameters<typeof openClient>[1]): Promise<TestClient> {
  const c = await openClient(server, query);
  clients.push(c);
  return c;
}

/** Sends `n` chats from `c`, `label-1` … `label-n`. */
function sendMany(c: TestClient, label: string, n: number): void {
  for (let i = 1; i <= n; i++) c.send({ type: 'chat', content: `${label}-${i}` });
}

function seqs(c: TestClient): number[] {
  return c.chats().map((m) => (m as Chat).seq as number);
}

describe('v4 over Redis', () => {
  it("gives every member a room's messages once, in one seq order, whichever node sent them", async () => {
    const [n1, n2] = [await node(), await node()];
    const a = await open(n1, { room: 'order', name: 'ann' });
    const b = await open(n2, { room: 'order', name: 'bob' });
    sendMany(a, 'a', 100);
    sendMany(b, 'b', 100);
    for (const c of [a, b]) await c.waitFor(() => c.chats().length >= 200, '200 chats');
    await delay(100);
    for (const c of [a, b]) {
      expect(c.chats()).toHaveLength(200);
      expect(seqs(c)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(new Set(c.chats().map((m) => m.epoch)).size).toBe(1);
    }
    // Both saw the same order, and each sender's own messages in the order it sent them.
    expect(a.chats().map((m) => m.content)).toEqual(b.chats().map((m) => m.content));
    const fromA = a.chats().filter((m) => m.from === 'ann').map((m) => m.content);
    expect(fromA).toEqual(Array.from({ length: 100 }, (_, i) => `a-${i + 1}`));
    const s1 = await stats(n1);
    expect(s1.node).toBe('t1');
    expect(s1.backplane).toMatchObject({ state: 'up', published: 100 });
    expect(s1.backplane!.received).toBeGreaterThanOrEqual(200);
  });

  it('lists members and announces arrivals and departures across nodes', async () => {
    const [n1, n2] = [await node(), await node()];
    const a = await open(n1, { room: 'presence', name: 'ann' });
    const b = await open(n2, { room: 'presence', name: 'bob' });
    expect(b.ofType('joined')[0]!.members.sort()).toEqual(['ann', 'bob']);
    expect(b.ofType('joined')[0]!.server.node).toBe(n2.strategy.node);
    await a.waitFor(() => a.ofType('presence').some((p) => p.event === 'join' && p.name === 'bob' && p.members === 2), 'bob joined, on the other node');
    await b.close();
    await a.waitFor(() => a.ofType('presence').some((p) => p.event === 'leave' && p.name === 'bob' && p.members === 1), 'bob left');
  });

  it('POST /api/send on one node reaches the room on the others', async () => {
    const [n1, n2] = [await node(), await node()];
    const a = await open(n1, { room: 'http' });
    const res = await fetch(`${n2.url}api/send`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ room: 'http', content: 'hello from n2' }) });
    expect(res.status).toBe(202);
    await a.waitFor(() => a.chats().some((m) => m.content === 'hello from n2'), 'the HTTP message');
    expect(a.chats()[0]!.seq).toBe(1);
  });

  it('replays what a client missed when it comes back on another node, marked, in order, then goes on live', async () => {
    const [n1, n2] = [await node(), await node()];
    const sender = await open(n1, { room: 'resume', name: 'sender' });
    const c = await open(n1, { room: 'resume', name: 'carl' });
    sendMany(sender, 'm', 10);
    await c.waitFor(() => c.chats().length === 10, 'ten chats');
    const { seq: since, epoch } = c.chats().at(-1)!;
    await c.close();
    sendMany(sender, 'm-later', 15);
    await sender.waitFor(() => sender.chats().length === 25, 'the sender saw 25');
    const back = await open(n2, { room: 'resume', name: 'carl', since, epoch });
    await back.waitFor(() => back.chats().length >= 15, 'the 15 missed');
    sendMany(sender, 'live', 5);
    await back.waitFor(() => back.chats().length >= 20, '5 more live');
    await delay(100);
    expect(seqs(back)).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));
    expect(back.chats().slice(0, 15).every((m) => m.replayed === true)).toBe(true);
    expect(back.chats().slice(15).every((m) => m.replayed === undefined)).toBe(true);
    // joined first, then the replay
    expect(back.messages.findIndex((m) => m.type === 'joined')).toBeLessThan(back.messages.findIndex((m) => m.type === 'chat'));
    expect((await stats(n2)).backplane!.replayed).toBe(15);
  });

  it('says exactly what history no longer holds (gap), and what a stream reset lost (reset)', async () => {
    const n1 = await node({ history: 5 });
    const sender = await open(n1, { room: 'gap' });
    sendMany(sender, 'g', 12);
    await sender.waitFor(() => sender.chats().length === 12, '12 chats');
    const epoch = sender.chats()[0]!.epoch!;
    const late = await open(n1, { room: 'gap', since: 2, epoch });
    await late.waitFor(() => late.chats().length === 5, 'the 5 kept');
    expect(late.ofType('gap')).toEqual([{ type: 'gap', room: 'gap', epoch, from: 3, to: 7 }]);
    expect(seqs(late)).toEqual([8, 9, 10, 11, 12]);
    expect(late.messages.findIndex((m) => m.type === 'gap')).toBeLessThan(late.messages.findIndex((m) => m.type === 'chat'));

    const stranger = await open(n1, { room: 'gap', since: 100, epoch: 'an-old-epoch' });
    await stranger.waitFor(() => stranger.chats().length === 5, 'the stream from its start');
    expect(stranger.ofType('reset')).toEqual([{ type: 'reset', room: 'gap', epoch, was: 'an-old-epoch' }]);
    expect(stranger.ofType('gap')[0]).toMatchObject({ from: 1, to: 7 });
  });

  it('a join frame with since and epoch resumes too; a bad pair is refused with BAD_SINCE', async () => {
    const n1 = await node();
    const a = await open(n1, { room: 'joinframe' });
    sendMany(a, 'j', 3);
    await a.waitFor(() => a.chats().length === 3, '3 chats');
    const b = await open(n1, { room: 'lobby' });
    b.send({ type: 'join', room: 'joinframe', since: 1, epoch: a.chats()[0]!.epoch });
    await b.waitFor(() => b.chats().length === 2, 'seq 2 and 3');
    expect(seqs(b)).toEqual([2, 3]);
    b.send({ type: 'join', room: 'joinframe', since: -1, epoch: 'x' });
    await b.waitFor(() => b.ofType('error').some((e) => e.code === 'BAD_SINCE'), 'BAD_SINCE');
  });

  it('refuses sends with BACKPLANE_DOWN while Redis is down, then works again, and tells members their stream was reset', async () => {
    const [n1, n2] = [await node(), await node()];
    const a = await open(n1, { room: 'outage', name: 'ann' });
    const b = await open(n2, { room: 'outage', name: 'bob' });
    a.send({ type: 'chat', content: 'before' });
    await b.waitFor(() => b.chats().length === 1, 'before');
    const port = fixture.redis.port;
    await fixture.redis.stop(0);
    await eventually(async () => (await stats(n1)).backplane!.state === 'down', 'n1 sees Redis down');
    a.send({ type: 'chat', content: 'during' });
    await a.waitFor(() => a.ofType('error').some((e) => e.code === 'BACKPLANE_DOWN'), 'BACKPLANE_DOWN');
    const refused = await fetch(`${n2.url}api/send`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ room: 'outage', content: 'x' }) });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('BACKPLANE_DOWN');
    fixture.redis = await startRedisServer({ port, detached: true });
    await eventually(async () => (await stats(n1)).backplane!.state === 'up' && (await stats(n2)).backplane!.state === 'up', 'both nodes back', 15_000);
    await b.waitFor(() => b.ofType('reset').length === 1, 'a reset notice');
    a.send({ type: 'chat', content: 'after' });
    await b.waitFor(() => b.chats().some((m) => m.content === 'after'), 'after');
    const after = b.chats().find((m) => m.content === 'after')!;
    expect(after.seq).toBe(1);
    expect(after.epoch).not.toBe(b.chats()[0]!.epoch);
    expect(b.chats().some((m) => m.content === 'during')).toBe(false);
    expect((await stats(n1)).backplane!.reconnects).toBeGreaterThanOrEqual(1);
    expect(await metricValue(n1, 'chat_backplane_refused_total')).toBeGreaterThanOrEqual(1);
    // presence was registered again: both still listed
    const c = await open(n1, { room: 'outage', name: 'cat' });
    expect(c.ofType('joined')[0]!.members.sort()).toEqual(['ann', 'bob', 'cat']);
  });

  it('while Redis is paused, the backlog is counted and capped: sends past the cap are refused, the rest delivered', async () => {
    const n1 = await node({ maxInFlight: 50 });
    const a = await open(n1, { room: 'paused' });
    const probe = await open(n1, { room: 'paused' });
    const { Redis } = await import('ioredis');
    const admin = new Redis(fixture.redis.url);
    try {
      await admin.client('PAUSE', 1500, 'WRITE');
      sendMany(a, 'p', 200);
      await eventually(async () => (await metricValue(n1, 'chat_backplane_in_flight')) === 50, 'the backlog at its cap');
      await a.waitFor(() => a.ofType('error').filter((e) => e.code === 'BACKPLANE_DOWN').length === 150, '150 refused');
      await probe.waitFor(() => probe.chats().length === 50, 'the 50 taken, once Redis resumes', 10_000);
      expect(seqs(probe)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect((await stats(n1)).backplane!.inFlight).toBe(0);
    } finally {
      admin.disconnect();
    }
  });
});
