// v5 in one test process: nodes over a real Redis Cluster of 3 masters and 3 replicas (Debian's
// redis-server, started by the test as `npm run v5` starts it). Rooms land on different shards by
// their hash tag; a master is killed under load and its replica takes over. The failover test is
// last: it leaves the cluster with a promoted replica, which the later tests would not notice, but
// the earlier ones would find a shard without a replica.
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from '../../../common/redis-cluster.ts';
import type { ChatServer } from '../../../versions/host.ts';
import type { ServerMessage } from '../../../versions/protocol.ts';
import { startV4Node, type V4Options } from '../../../versions/v4/node.ts';
import { delay, eventually, openClient, stats, type TestClient } from '../../helpers.ts';

type Chat = Extract<ServerMessage, { type: 'chat' }>;

let cluster: RedisCluster;
let admin: Cluster;
const servers: ChatServer[] = [];
const clients: TestClient[] = [];
let nodeCount = 0;

beforeAll(async () => {
  cluster = await startRedisCluster({ detached: true, nodeTimeoutMs: 1_000 });
  admin = new Cluster(seeds());
  admin.on('error', () => {}); // (a member killed by a test: the client finds the others)
  await new Promise((ready) => admin.once('ready', ready));
}, 60_000);
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
});

const seeds = (): Array<{ host: string; port: number }> => cluster.members.map((m) => ({ host: '127.0.0.1', port: m.port }));

async function node(options: Partial<V4Options> = {}): Promise<ChatServer> {
  // (test clients stand for a room's senders: no per-connection rate limit)
  const s = await startV4Node({ redisCluster: cluster.seeds.split(','), node: `c${++nodeCount}`, port: 0, heartbeatMs: 200, maxMsgsPerS: 0, ...options });
  servers.push(s);
  return s;
}

async function open(server: ChatServer, query: Parameters<typeof openClient>[1]): Promise<TestClient> {
  const c = await openClient(server, query);
  clients.push(c);
  return c;
}

/** The port of the master that serves `room`'s keys now (CLUSTER SLOTS, asked of a live member). */
async function masterOf(room: string): Promise<number> {
  const slot = Number(await admin.cluster('KEYSLOT', `ce:{${room}}:log`));
  const slots = (await admin.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, string]]>;
  const range = slots.find(([from, to]) => slot >= from && slot <= to);
  return range![2][1];
}

/** Rooms named `<prefix>N`, one on each master. */
async function oneRoomPerShard(prefix: string): Promise<string[]> {
  const byMaster = new Map<number, string>();
  for (let i = 0; byMaster.size < 3 && i < 200; i++) {
    const room = `${prefix}${i}`;
    const master = await masterOf(room);
    if (!byMaster.has(master)) byMaster.set(master, room);
  }
  return [...byMaster.values()];
}

const seqs = (c: TestClient, room?: string): number[] => c.chats().filter((m) => room === undefined || m.room === room).map((m) => (m as Chat).seq as number);
const errorsOf = (c: TestClient): Array<Record<string, unknown>> => c.ofType('error') as unknown as Array<Record<string, unknown>>;

describe('v5 over a Redis Cluster', () => {
  it('rooms on three shards: each room one seq order across two nodes, its keys and its channel on its own master', async () => {
    const rooms = await oneRoomPerShard('x');
    expect(new Set(await Promise.all(rooms.map(masterOf))).size).toBe(3);
    const [n1, n2] = [await node(), await node()];
    const pairs = await Promise.all(rooms.map(async (room) => [await open(n1, { room, name: 'ann' }), await open(n2, { room, name: 'bob' })] as const));
    for (const [a, b] of pairs) {
      for (let i = 1; i <= 40; i++) {
        a.send({ type: 'chat', content: `a-${i}` });
        b.send({ type: 'chat', content: `b-${i}` });
      }
    }
    for (const [a, b] of pairs) for (const c of [a, b]) await c.waitFor(() => c.chats().length >= 80, '80 chats');
    await delay(100);
    for (const [a, b] of pairs) {
      for (const c of [a, b]) expect(seqs(c)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
      expect(a.chats().map((m) => m.content)).toEqual(b.chats().map((m) => m.content));
    }
    // Each room's stream is on its own master, not on the others.
    for (const room of rooms) {
      const owner = new Redis(await masterOf(room), '127.0.0.1');
      try {
        expect(await owner.xlen(`ce:{${room}}:log`)).toBe(80);
      } finally {
        owner.disconnect();
      }
    }
    const s1 = await stats(n1);
    expect(s1.version).toBe('v5');
    expect(s1.backplane).toMatchObject({ state: 'up', published: 120 });
  });

  it('a client that comes back with since and epoch is replayed what it missed, from its room\'s shard', async () => {
    const [n1, n2] = [await node(), await node()];
    const [room] = await oneRoomPerShard('since');
    const a = await open(n1, { room: room!, name: 'ann' });
    const b = await open(n2, { room: room!, name: 'bob' });
    for (let i = 1; i <= 5; i++) a.send({ type: 'chat', content: `m-${i}` });
    await b.waitFor(() => b.chats().length === 5, '5 chats');
    const last = b.chats().at(-1) as Chat;
    await b.close();
    for (let i = 6; i <= 12; i++) a.send({ type: 'chat', content: `m-${i}` });
    await a.waitFor(() => a.chats().length === 12, '12 chats');
    const back = await open(n2, { room: room!, name: 'bob', since: last.seq, epoch: last.epoch });
    await back.waitFor(() => back.chats().length === 7, 'the 7 it missed');
    expect(seqs(back)).toEqual([6, 7, 8, 9, 10, 11, 12]);
    expect(back.chats().every((m) => m.replayed === true)).toBe(true);
  });

  it("a node that stops leaves rooms on every shard; a name is one member's across nodes", async () => {
    const rooms = await oneRoomPerShard('dead');
    const [n1, n2] = [await node(), await node({ heartbeatMs: 200 })];
    for (const room of rooms) await open(n2, { room, name: 'gone' });
    for (const room of rooms) {
      const probe = await open(n1, { room, name: 'stay' });
      expect(probe.ofType('joined')[0]!.members.sort()).toEqual(['gone', 'stay']);
      // A name is one member's across nodes, on the room's shard.
      const twin = await openClient(n1, { room, name: 'gone' }, {}, false);
      clients.push(twin);
      await twin.waitFor(() => twin.ofType('error').length > 0 || twin.closed !== null, 'a refusal');
      expect(JSON.stringify(twin.messages)).toMatch(/NAME_TAKEN/);
      await twin.close();
    }
    // n2 stops beating without a word (its beats and its leaves cut off): the others reap it.
    const gone = servers.indexOf(n2);
    servers.splice(gone, 1);
    const owners = await Promise.all(rooms.map(masterOf));
    await n2.close(); // (a close says goodbye; the reap is tested with a silent node below)
    await eventually(async () => {
      for (const room of rooms) {
        const probe = await openClient(n1, { room, name: 'probe' });
        const members = probe.ofType('joined')[0]!.members.sort();
        await probe.close();
        if (JSON.stringify(members) !== JSON.stringify(['probe', 'stay'])) return false;
      }
      return true;
    }, "n2's members out of every room", 10_000);
    expect(new Set(owners).size).toBe(3);
  });

  it('a node that dies without a word is reaped: its members leave rooms on every shard', async () => {
    const rooms = await oneRoomPerShard('reap');
    const n1 = await node();
    // A node's presence, written as a node that then died would have left it: members on three
    // shards, the rooms on its list, its last beat long ago.
    const ghost = 'ghost1';
    const c = new Cluster(seeds());
    try {
      for (const room of rooms) {
        await c.hset(`ce:{${room}}:members`, `${ghost}:1`, 'ghost');
        await c.sadd(`ce:node:${ghost}:rooms`, room);
      }
      await c.zadd('ce:nodes', 1, ghost);
      const listed = await open(n1, { room: rooms[0]!, name: 'seer' });
      expect(listed.ofType('joined')[0]!.members.sort()).toEqual(['ghost', 'seer']);
      await eventually(async () => {
        for (const room of rooms) if ((await c.hlen(`ce:{${room}}:members`)) !== (room === rooms[0] ? 1 : 0)) return false;
        return (await c.exists(`ce:node:${ghost}:rooms`)) === 0 && (await c.zscore('ce:nodes', ghost)) === null;
      }, 'the ghost reaped from three shards', 10_000);
      await listed.waitFor(() => listed.messages.some((m) => m.type === 'presence' && JSON.stringify(m).includes('ghost')), "the ghost's leave told");
    } finally {
      c.disconnect();
    }
  });

  it("a master killed under load (--ack replica): its rooms refuse sends with a code, then resume; no acknowledged send is lost; other shards' rooms go on", async () => {
    const [hit, calm] = await oneRoomPerShard('fail');
    const [n1, n2] = [await node({ ack: 'replica' }), await node({ ack: 'replica' })];
    const sender = await open(n1, { room: hit!, name: 'ann' });
    const reader = await open(n2, { room: hit!, name: 'bob' });
    const calmSender = await open(n1, { room: calm!, name: 'cal' });
    const calmReader = await open(n2, { room: calm!, name: 'cy' });
    const TOTAL = 400;
    const masterPort = await masterOf(hit!);
    const master = cluster.members.find((m) => m.port === masterPort)!;
    let killedAt = -1;
    for (let i = 1; i <= TOTAL; i++) {
      sender.send({ type: 'chat', content: `h-${i}`, id: `h-${i}` });
      calmSender.send({ type: 'chat', content: `c-${i}`, id: `c-${i}` });
      if (i === 100) {
        process.kill(master.server.child.pid!, 'SIGKILL');
        killedAt = i;
      }
      await delay(10);
    }
    expect(killedAt).toBe(100);
    // The calm room lost nothing and refused nothing.
    await calmReader.waitFor(() => calmReader.chats().length === TOTAL, `${TOTAL} calm chats`, 15_000);
    expect(errorsOf(calmSender)).toEqual([]);
    expect(seqs(calmReader)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    // The hit room: some sends refused with a code while its shard failed over, then sends went through again.
    await eventually(() => sender.chats().length + errorsOf(sender).length >= TOTAL, 'every send answered', 20_000);
    const refusedCodes = new Set(errorsOf(sender).map((e) => e.code));
    expect(errorsOf(sender).length).toBeGreaterThan(0);
    expect([...refusedCodes].every((code) => code === 'BACKPLANE_DOWN' || code === 'SEND_UNKNOWN')).toBe(true);
    expect(sender.chats().some((m) => Number(String(m.id).slice(2)) > 300)).toBe(true); // resumed after the failover
    // Every send acknowledged to its sender (its echo) reached the reader, once, in seq order.
    await delay(500);
    const acknowledged = sender.chats().map((m) => m.id as string);
    const read = new Set(reader.chats().map((m) => m.id as string));
    expect(acknowledged.filter((id) => !read.has(id))).toEqual([]);
    const readSeqs = seqs(reader);
    expect(readSeqs).toEqual([...readSeqs].sort((x, y) => x - y));
    expect(new Set(readSeqs).size).toBe(readSeqs.length);
    // The replica took over: the slot's master is another port now.
    expect(await masterOf(hit!)).not.toBe(masterPort);
  }, 60_000);
});
