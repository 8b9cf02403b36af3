// v4: who is who across nodes. A direct message goes over a Redis channel per user, which a node
// listens to while it holds a connection of that user; a signed-in user's tabs may sit on any node.
// A name is one member's in its room across every node, claimed in Redis.
import { describe, expect, it } from 'vitest';
import { signToken } from '../../../versions/auth.ts';
import type { ChatServer } from '../../../versions/host.ts';
import type { ServerMessage } from '../../../versions/protocol.ts';
import { startV4Node } from '../../../versions/v4/node.ts';
import { useV4Fixture } from './fixture.ts';
import { delay, eventually, openClient, type TestClient } from '../../helpers.ts';

type Direct = Extract<ServerMessage, { type: 'direct' }>;
const SECRET = 'one-secret-for-every-node-of-the-cluster';
const fixture = useV4Fixture();
const { servers, clients } = fixture;
let nodeCount = 0;

async function node(auth = true): Promise<ChatServer> {
  const s = await startV4Node({ redis: fixture.redis.url, node: `d${++nodeCount}`, port: 0, heartbeatMs: 200, ...(auth ? { auth: { mode: 'jwt', jwtSecret: SECRET } } : {}), apiKey: 'an-api-key-for-the-test' });
  servers.push(s);
  return s;
}

async function as(server: ChatServer, sub: string, room: string): Promise<TestClient> {
  const c = await openClient(server, { room }, { authorization: `Bearer ${await signToken(SECRET, { sub }, '1h')}` });
  clients.push(c);
  return c;
}

const directs = (c: TestClient): Direct[] => c.ofType('direct');

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

describe('v4: a name is one member\'s in its room across every node', () => {
  async function anon(server: ChatServer, query: Parameters<typeof openClient>[1]): Promise<TestClient> {
    const c = await openClient(server, query);
    clients.push(c);
    return c;
  }

  it('a name held on one node is refused on another, whatever its case; a rename to it too; it is free again once its holder leaves', async () => {
    const [n1, n2] = [await node(false), await node(false)];
    const ann = await anon(n1, { room: 'nm', name: 'ann' });
    const other = await anon(n2, { room: 'nm', name: 'ANN' });
    expect(other.ofType('joined')[0]!.name).toMatch(/^guest-d\d+-\d+$/);
    expect(other.ofType('error')[0]).toMatchObject({ code: 'NAME_TAKEN' });
    const bob = await anon(n2, { room: 'nm', name: 'bob' });
    bob.send({ type: 'join', room: 'nm', name: 'Ann' });
    await bob.waitFor(() => bob.ofType('error').length === 1, 'the refusal');
    expect(bob.ofType('error')[0]!.code).toBe('NAME_TAKEN');
    // the same name in another room is another name
    const elsewhere = await anon(n2, { room: 'nm2', name: 'ann' });
    expect(elsewhere.ofType('joined')[0]!.name).toBe('ann');
    // ann's rename lets go of "ann"; bob takes it, and ann's new name is hers
    await ann.join('nm', 'anna');
    await bob.join('nm', 'ann');
    expect(bob.ofType('joined').at(-1)!.name).toBe('ann');
    await ann.close();
    const third = await anon(n1, { room: 'nm', name: 'anna' });
    expect(third.ofType('joined')[0]!.name).toBe('anna');
  });

  it('a dead node\'s names are freed when it is reaped, and its members take theirs back at once with their claim', async () => {
    const [n1, n2] = [await node(false), await node(false)];
    const cat = await anon(n2, { room: 'dead', name: 'cat' });
    const dog = await anon(n2, { room: 'dead', name: 'dog' });
    const claim = cat.ofType('joined')[0]!.claim!;
    expect(claim).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    // n2 goes silent as if killed: its connections to Redis are cut for good, so it neither beats
    // nor lets go of anything; n1 reaps it after three missed beats.
    const redisOf = (n2.strategy as unknown as { backplane: { cmd: { disconnect(): void }; sub: { disconnect(): void } } }).backplane;
    redisOf.cmd.disconnect();
    redisOf.sub.disconnect();
    await delay(50);
    // cat shows its claim on n1 and is cat; a stranger asking for "dog" must wait for the reaper.
    const back = await anon(n1, { room: 'dead', name: 'cat', claim });
    expect(back.ofType('joined')[0]!.name).toBe('cat');
    expect(back.ofType('error')).toEqual([]);
    void dog;
    await eventually(async () => {
      const c = await openClient(n1, { room: 'dead', name: 'dog' });
      const name = c.ofType('joined')[0]!.name;
      await c.close();
      return name === 'dog';
    }, "the dead node's names freed by the reaper", 10_000);
  });
});
