// One contract, every version: what a chat user and the article's own client can count on,
// whatever the architecture behind it.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../common/redis-server.ts';
import { startRedisCluster, type RedisCluster } from '../../common/redis-cluster.ts';
import { WebSocket } from 'ws';
import type { ChatServer } from '../../versions/host.ts';
import { CLOSE_CODES, ERROR_CODES, type ErrorCode } from '../../versions/protocol.ts';
import { startVersion, type VersionName } from '../../versions/versions.ts';
import type { VersionOptions } from '../../versions/version-options.ts';
import { eventually, metricValue, openClient, stats, type TestClient } from '../helpers.ts';

const CONFIGS: Array<[label: string, version: VersionName, options: Partial<VersionOptions>]> = [
  ['v1', 'v1', {}],
  ['v1.1', 'v1.1', {}],
  ['v2', 'v2', {}],
  ['v3 block', 'v3', { onFull: 'block' }],
  ['v3 drop', 'v3', { onFull: 'drop' }],
  ['v3 kick', 'v3', { onFull: 'kick' }],
  ['v4 (one node over Redis)', 'v4', {}],
  ['v5 (one node over a Redis Cluster)', 'v5', {}],
];

// v4 keeps its rooms in Redis: one redis-server for this file, emptied before each v4 test; v5,
// in a Redis Cluster of 3 masters and 3 replicas, its masters emptied before each v5 test.
let redis: RedisServer | null = null;
let cluster: RedisCluster | null = null;
afterAll(async () => {
  await redis?.stop();
  await cluster?.stop();
});

async function startAny(version: VersionName, options: Partial<VersionOptions>): Promise<ChatServer> {
  if (version === 'v5') {
    cluster ??= await startRedisCluster({ detached: true });
    for (const m of cluster.members) {
      const admin = new Redis(m.port, '127.0.0.1');
      if ((await admin.role())[0] === 'master') await admin.flushall();
      admin.disconnect();
    }
    return startVersion('v5', { ...options, redisCluster: cluster.seeds.split(','), node: 'c1', port: 0 });
  }
  if (version !== 'v4') return startVersion(version, { ...options, port: 0 });
  redis ??= await startRedisServer({ detached: true });
  const admin = new Redis(redis.url);
  await admin.flushall();
  admin.disconnect();
  return startVersion('v4', { ...options, redis: redis.url, node: 'c1', port: 0 });
}

describe.each(CONFIGS)('%s speaks the protocol', (_label, version, options) => {
  let server: ChatServer;
  const clients: TestClient[] = [];
  const open = async (query: { room?: string; name?: string } = {}): Promise<TestClient> => {
    const c = await openClient(server, query);
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    server = await startAny(version, options);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server.close();
  });

  it('greets a new connection with joined: room lobby, its name, the server it talks to', async () => {
    const ann = await open({ name: 'ann' });
    const joined = ann.ofType('joined')[0]!;
    expect(joined).toMatchObject({ room: 'lobby', name: 'ann', members: ['ann'] });
    expect(joined.server.version).toBe(version);
    expect(joined.server.limits).toEqual({ maxFrameBytes: 65536, maxContentChars: 16384 });
  });

  it('broadcasts a chat to everyone in the room, sender included, in order', async () => {
    const [ann, bob] = [await open({ name: 'ann' }), await open({ name: 'bob' })];
    for (let i = 0; i < 5; i++) ann.send({ type: 'chat', content: `m${i}` });
    for (const c of [ann, bob]) await c.waitFor(() => c.chats().length === 5, '5 chats');
    for (const c of [ann, bob]) {
      expect(c.chats().map((m) => m.content)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      expect(c.chats()[0]).toMatchObject({ type: 'chat', room: 'lobby', from: 'ann' });
    }
  });

  it('announces a rename to the room, after which the new name is taken (NAME_TAKEN) and the old one free', async () => {
    const ann = await open({ name: 'ann' });
    const bob = await open({ name: 'bob' });
    await ann.waitFor(() => ann.ofType('presence').some((p) => p.event === 'join' && p.name === 'bob'), 'bob joined');
    // a newcomer's first word from the server is where it is; its own arrival, if announced, comes after
    const own = bob.messages.findIndex((m) => m.type === 'presence' && m.name === 'bob');
    expect(bob.messages[0]!.type).toBe('joined');
    expect(own === -1 || own > 0).toBe(true);
    await bob.join('lobby', 'robert');
    await ann.waitFor(() => ann.ofType('presence').some((p) => p.event === 'rename'), 'the rename');
    expect(ann.ofType('presence').find((p) => p.event === 'rename')).toMatchObject({ room: 'lobby', event: 'rename', name: 'robert', from: 'bob', members: 2 });
    expect(bob.ofType('joined').at(-1)).toMatchObject({ name: 'robert' });
    ann.send({ type: 'join', room: 'lobby', name: 'ROBERT' });
    await ann.waitFor(() => ann.ofType('error').some((e) => e.code === 'NAME_TAKEN'), 'NAME_TAKEN');
    await ann.join('lobby', 'bob');
    expect(ann.ofType('joined').at(-1)).toMatchObject({ name: 'bob' });
  });

  it('keeps rooms apart, and a client that switches rooms hears only its new room', async () => {
    const ann = await open({ name: 'ann' });
    const bob = await open({ name: 'bob' });
    const cat = await open({ name: 'cat', room: 'kitchen' });
    ann.send({ type: 'chat', content: 'lobby-1' });
    cat.send({ type: 'chat', content: 'kitchen-1' });
    await bob.waitFor(() => bob.chats().length === 1, 'lobby-1');
    await cat.waitFor(() => cat.chats().length === 1, 'kitchen-1');
    expect(bob.chats().map((m) => m.content)).toEqual(['lobby-1']);
    expect(cat.chats().map((m) => m.content)).toEqual(['kitchen-1']);

    await bob.join('kitchen');
    expect(bob.ofType('joined').at(-1)).toMatchObject({ room: 'kitchen', members: expect.arrayContaining(['bob', 'cat']) });
    ann.send({ type: 'chat', content: 'lobby-2' });
    cat.send({ type: 'chat', content: 'kitchen-2' });
    await bob.waitFor(() => bob.chats().length === 2, 'kitchen-2');
    await ann.waitFor(() => ann.chats().length === 2, 'lobby-2');
    expect(bob.chats().map((m) => m.content)).toEqual(['lobby-1', 'kitchen-2']);
    expect(bob.chats()[1]!.room).toBe('kitchen');
    expect(ann.chats().map((m) => m.content)).toEqual(['lobby-1', 'lobby-2']);
  });

  it("accepts the article's {token, content} frame as a chat in the sender's room", async () => {
    const ann = await open();
    const bob = await open();
    ann.send({ token: 'abc', content: 'hello from Go' });
    await bob.waitFor(() => bob.chats().length === 1, 'the chat');
    expect(bob.chats()[0]).toMatchObject({ room: 'lobby', content: 'hello from Go' });
  });

  it('relays content verbatim, markup and unicode included', async () => {
    const ann = await open();
    const text = '<img src=x onerror=alert(1)> "quoted" \\ 你好 🎉';
    ann.send({ type: 'chat', content: text });
    await ann.waitFor(() => ann.chats().length === 1, 'the echo');
    expect(ann.chats()[0]!.content).toBe(text);
  });

  it('fans POST /api/send out into a room and answers bad bodies with a 4xx code', async () => {
    const ann = await open({ room: 'news' });
    const post = (body: string): Promise<Response> => fetch(`${server.url}api/send`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const res = await post(JSON.stringify({ room: 'news', content: 'breaking', from: 'desk' }));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ ok: true, room: 'news', members: 1 });
    await ann.waitFor(() => ann.chats().length === 1, 'the pushed chat');
    // The name an HTTP sender claims is marked as coming over HTTP: it cannot pose as a member.
    expect(ann.chats()[0]).toMatchObject({ room: 'news', from: 'http:desk', content: 'breaking' });

    const bad: Array<[string, number, string]> = [
      ['not json', 400, 'BAD_JSON'],
      ['[1]', 400, 'BAD_FRAME'],
      ['{"room":"a b","content":"x"}', 400, 'BAD_ROOM'],
      ['{"room":"news","content":""}', 400, 'EMPTY_CONTENT'],
      ['{"room":"news","content":5}', 400, 'BAD_FIELD'],
      ['{"room":"news","content":"x","from":""}', 400, 'BAD_NAME'],
      [JSON.stringify({ room: 'news', content: 'x'.repeat(16385) }), 400, 'CONTENT_TOO_LARGE'],
      [JSON.stringify({ room: 'news', content: 'x'.repeat(70_000) }), 413, 'FRAME_TOO_LARGE'],
    ];
    for (const [body, status, code] of bad) {
      const r = await post(body);
      expect([r.status, ((await r.json()) as { error: { code: string } }).error.code]).toEqual([status, code]);
    }
    expect((await fetch(`${server.url}api/send`)).status).toBe(405);
    expect(ann.chats()).toHaveLength(1);
  });

  it('answers every bad frame with its code, counts it, and keeps the connection and the room working', async () => {
    const ann = await open();
    const bob = await open();
    const cases: Array<[frame: string | Buffer, code: ErrorCode]> = [
      ['not json', 'BAD_JSON'],
      ['[1,2]', 'BAD_FRAME'],
      ['"text"', 'BAD_FRAME'],
      ['{"type":"dance"}', 'UNKNOWN_TYPE'],
      ['{"type":7}', 'BAD_FIELD'],
      ['{"type":"chat","content":42}', 'BAD_FIELD'],
      ['{"type":"chat","content":""}', 'EMPTY_CONTENT'],
      [JSON.stringify({ type: 'chat', content: 'x'.repeat(16385) }), 'CONTENT_TOO_LARGE'],
      ['{"type":"join","room":"no spaces"}', 'BAD_ROOM'],
      ['{"type":"join","room":"lobby","name":"bell\\u0007"}', 'BAD_NAME'],
      [Buffer.from([1, 2, 3]), 'BINARY_FRAME'],
    ];
    for (const [frame, code] of cases) {
      const before = ann.ofType('error').length;
      ann.ws.send(frame);
      await ann.waitFor(() => ann.ofType('error').length > before, `error ${code}`);
      expect(ann.ofType('error').at(-1)!.code).toBe(code);
    }
    ann.send({ type: 'chat', content: 'still here' });
    await bob.waitFor(() => bob.chats().length === 1, 'a chat after the bad input');
    expect(bob.chats()[0]!.content).toBe('still here');
    expect(bob.ofType('error')).toHaveLength(0);
    expect(await metricValue(server, 'chat_bad_input_total', 'code="BAD_FIELD"')).toBe(2);
    expect(await metricValue(server, 'chat_bad_input_total', 'code="BINARY_FRAME"')).toBe(1);
    expect((await stats(server)).badInput).toMatchObject({ BAD_JSON: 1, BAD_FRAME: 2, UNKNOWN_TYPE: 1, BAD_ROOM: 1, BAD_NAME: 1 });
  });

  it('closes an oversized frame with 1009 and leaves everyone else connected', async () => {
    const ann = await open();
    const bob = await open();
    ann.ws.send(JSON.stringify({ type: 'chat', content: 'x'.repeat(70_000) }));
    await ann.waitFor(() => ann.closed !== null, 'the close');
    expect(ann.closed!.code).toBe(CLOSE_CODES.MESSAGE_TOO_BIG);
    await eventually(async () => (await stats(server)).badInput.FRAME_TOO_LARGE === 1, 'FRAME_TOO_LARGE counted');
    const cat = await open();
    cat.send({ type: 'chat', content: 'after' });
    await bob.waitFor(() => bob.chats().length === 1, 'a chat after the oversized frame');
    expect(bob.closed).toBeNull();
  });

  it('moves the /metrics counters: connections, received, deliveries', async () => {
    const ann = await open();
    const bob = await open();
    ann.send({ type: 'chat', content: 'one' });
    ann.send({ type: 'chat', content: 'two' });
    await bob.waitFor(() => bob.chats().length === 2, 'two chats');
    await ann.waitFor(() => ann.chats().length === 2, 'two echoes');
    expect(await metricValue(server, 'chat_connections_open')).toBe(2);
    expect(await metricValue(server, 'chat_messages_received_total')).toBe(2);
    expect(await metricValue(server, 'chat_deliveries_total')).toBe(4);
    expect(await metricValue(server, 'chat_drops_total')).toBe(0);
    const text = await (await fetch(`${server.url}metrics`)).text();
    expect(text).toContain('nodejs_eventloop_lag_p99_seconds');
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('refuses foreign browser origins and accepts its own', async () => {
    const attempt = (origin: string): Promise<number> =>
      new Promise((resolve) => {
        const ws = new WebSocket(server.wsUrl, { origin });
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => {});
      });
    expect(await attempt('http://evil.example')).toBe(403);
    expect(await attempt('http://127.0.0.1:8081')).toBe(101);
    expect(await attempt('http://localhost:5173')).toBe(101);
  });

  it('shuts down gracefully: every client gets 1001', async () => {
    const ann = await open();
    const bob = await open();
    await server.close();
    for (const c of [ann, bob]) await c.waitFor(() => c.closed !== null, 'close');
    expect([ann.closed!.code, bob.closed!.code]).toEqual([1001, 1001]);
  });
});

describe('error texts', () => {
  it('are written once: no doubled word, no double space, no text that ends in a space', () => {
    for (const [code, text] of Object.entries(ERROR_CODES)) {
      expect(text, code).not.toMatch(/ {2}|\s$/);
      expect(text, code).not.toMatch(/\b(\w+)\s+\1\b/i);
    }
  });
});
