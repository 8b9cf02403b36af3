// v4: who is who across nodes. A direct message goes over a Redis channel per user, which a node
// listens to while it holds a connection of that user; a signed-in user's tabs may sit on any node.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../versions/auth.ts';
import type { ChatServer } from '../../versions/host.ts';
import type { ServerMessage } from '../../versions/protocol.ts';
import { startV4Node } from '../../versions/v4/node.ts';
import { startRedisServer, type RedisServer } from '../../common/redis-server.ts';
import { delay, openClient, type TestClient } from '../helpers.ts';

type Direct = Extract<ServerMessage, { type: 'direct' }>;
const SECRET = 'one-secret-for-every-node-of-the-cluster';
let redis: RedisServer;
const servers: ChatServer[] = [];
const clients: TestClient[] = [];
let nodeCount = 0;

async function node(): Promise<ChatServer> {
  const s = await startV4Node({ redis: redis.url, node: `d${++nodeCount}`, port: 0, heartbeatMs: 200, auth: { mode: 'jwt', jwtSecret: SECRET }, apiKey: 'an-api-key-for-the-test' });
  servers.push(s);
  return s;
}

async function as(server: ChatServer, sub: string, room: string): Promise<TestClient> {
  const c = await openClient(server, { room }, { authorization: `Bearer ${await signToken(SECRET, { sub }, '1h')}` });
  clients.push(c);
  return c;
}

const directs = (c: TestClient): Direct[] => c.ofType('direct');

beforeAll(async () => {
  redis = await startRedisServer({ detached: true });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await redis?.stop();
});

describe('v4: direct messages across nodes', () => {
  it('a message from node 1 reaches all three connections of a user spread over nodes 2 and 3, the sender, and nobody else', async () => {
    const [n1, n2, n3] = [await node(), await node(), await node()];
    const ann = await as(n1, 'ann', 'lobby');
    const bob = [await as(n2, 'bob', 'lobby'), await as(n2, 'bob', 'kitchen'), await as(n3, 'bob', 'lobby')];
    const others = [await as(n1, 'cy', 'lobby'), await as(n2, 'dee', 'lobby'), await as(n3, 'eve', 'lobby'), await as(n3, 'eve', 'kitchen')];
    ann.send({ type: 'direct', to: 'bob', content: 'for bob only', id: 'x1' });
    for (const c of [...bob, ann]) await c.waitFor(() => directs(c).length === 1, 'the direct message');
    for (const c of [...bob, ann]) expect(directs(c)[0]).toMatchObject({ from: 'ann', to: 'bob', content: 'for bob only', id: 'x1' });
    // bob answers from node 3: ann and every tab of bob's see it (his own sends, on his other devices).
    bob[2]!.send({ type: 'direct', to: 'ann', content: 'got it' });
    for (const c of [...bob, ann]) await c.waitFor(() => directs(c).length === 2, 'the answer');
    await delay(300);
    for (const c of others) expect(directs(c)).toEqual([]);
    for (const c of [...bob, ann]) expect(directs(c)).toHaveLength(2);
  });

  it('says USER_OFFLINE for a user on no node, and stops reaching a node once the user has left it', async () => {
    const [n1, n2] = [await node(), await node()];
    const ann = await as(n1, 'ann', 'r');
    const bob = await as(n2, 'bob', 'r');
    ann.send({ type: 'direct', to: 'nobody', content: 'hello?', id: 'q1' });
    await ann.waitFor(() => ann.ofType('error').length === 1, 'USER_OFFLINE');
    expect(ann.ofType('error')[0]).toMatchObject({ code: 'USER_OFFLINE', id: 'q1' });
    await bob.close();
    await delay(200);
    ann.send({ type: 'direct', to: 'bob', content: 'still there?', id: 'q2' });
    await ann.waitFor(() => ann.ofType('error').length === 2, 'USER_OFFLINE once bob left');
    expect(ann.ofType('error')[1]).toMatchObject({ code: 'USER_OFFLINE', id: 'q2' });
  });

  it('POST /api/send with "to" on one node pushes to the user on another', async () => {
    const [n1, n2] = [await node(), await node()];
    const bob = await as(n2, 'bob', 'r');
    const res = await fetch(`${n1.url}api/send`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer an-api-key-for-the-test' }, body: JSON.stringify({ to: 'bob', content: 'pushed' }) });
    expect(res.status).toBe(202);
    await bob.waitFor(() => directs(bob).length === 1, 'the push');
    expect(directs(bob)[0]).toMatchObject({ from: 'http', content: 'pushed' });
    const offline = await fetch(`${n1.url}api/send`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer an-api-key-for-the-test' }, body: JSON.stringify({ to: 'zed', content: 'x' }) });
    expect(offline.status).toBe(404);
  });
});
