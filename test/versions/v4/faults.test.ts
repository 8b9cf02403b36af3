// v4 as a user starts it, `npm run v4` (versions/cli.ts v4): node processes and a private
// redis-server, in their own process group. A node is killed with SIGKILL under traffic; its
// clients come back on another node with since and epoch and lose nothing; nobody else loses
// anything; the dead node's members leave every list.
import { chmodSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, stopProcessGroup, VERSIONS_CLI } from '../../../harness/server-process.ts';
import { parseListening, type Listening, type ServerMessage } from '../../../versions/protocol.ts';
import { REDIS_MISSING } from '../../../common/redis-server.ts';
import { alive, delay, eventually, openClient, type TestClient } from '../../helpers.ts';
import type { ChildProcess } from 'node:child_process';

type Chat = Extract<ServerMessage, { type: 'chat' }>;

const started: ChildProcess[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(started.splice(0).map((c) => stopProcessGroup(c)));
});

async function startCluster(nodes: number): Promise<{ child: ChildProcess; listening: Listening[]; output: string[] }> {
  // (bob stands for a room's senders: 300 messages in a second, past one connection's rate limit)
  const child = spawnTs(VERSIONS_CLI, ['v4', '--nodes', String(nodes), '--port', '0', '--max-msgs-per-s', '0']);
  started.push(child);
  const listening: Listening[] = [];
  const output: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output.push(line);
    const l = parseListening(line);
    if (l) listening.push(l);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  await eventually(() => listening.length === nodes, `${nodes} LISTENING lines`, 30_000);
  return { child, listening, output };
}


const open = async (url: string, query: Parameters<typeof openClient>[1]): Promise<TestClient> => {
  const c = await openClient(url, query);
  clients.push(c);
  return c;
};

describe('npm run v4', () => {
  it('prints one LISTENING line per node, each on its own port and process, and SIGTERM stops every node and the private Redis', async () => {
    const { child, listening, output } = await startCluster(2);
    expect(listening.map((l) => l.node)).toEqual(['n1', 'n2']);
    expect(new Set(listening.map((l) => l.port)).size).toBe(2);
    expect(listening.every((l) => l.version === 'v4' && l.pid !== child.pid)).toBe(true);
    const redisPid = Number(/private redis-server on \S+ \(pid (\d+)/.exec(output.join('\n'))?.[1]);
    expect(alive(redisPid)).toBe(true);
    await stopProcessGroup(child);
    await eventually(() => listening.every((l) => !alive(l.pid)) && !alive(redisPid), 'every node and Redis gone', 10_000);
  });

  it('a node killed with SIGKILL: its clients resume on another node and lose nothing; the others lose nothing; its members leave the lists', async () => {
    const { listening, output } = await startCluster(3);
    const [n1, n2, n3] = listening as [Listening, Listening, Listening];
    const ann = await open(n1.wsUrl, { room: 'kill', name: 'ann' });
    const bob = await open(n2.wsUrl, { room: 'kill', name: 'bob' });
    const cat = await open(n3.wsUrl, { room: 'kill', name: 'cat' });
    const TOTAL = 300;
    // Bob sends 300 messages, 3 ms apart; n3 dies a third of the way in.
    const sending = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        bob.send({ type: 'chat', content: `m-${i}` });
        await delay(3);
      }
    })();
    await cat.waitFor(() => cat.chats().length >= 100, 'a third of the messages');
    process.kill(n3.pid, 'SIGKILL');
    await cat.waitFor(() => cat.closed !== null, 'the connection to n3 lost');
    expect(cat.closed!.code).toBe(1006);
    const last = cat.chats().at(-1) as Chat;
    // Its name is its own at once on n1, though n3 is not reaped yet: it shows the claim n3 gave it.
    const back = await open(n1.wsUrl, { room: 'kill', name: 'cat', since: last.seq, epoch: last.epoch, claim: cat.ofType('joined')[0]!.claim! });
    expect(back.ofType('joined')[0]!.name).toBe('cat');
    expect(back.ofType('error')).toEqual([]);
    await sending;
    for (const c of [ann, bob]) await c.waitFor(() => c.chats().length === TOTAL, `${TOTAL} chats`);
    await back.waitFor(() => cat.chats().length + back.chats().length === TOTAL, 'the rest of the messages, on n1');
    await delay(200);
    const seqs = (c: TestClient): number[] => c.chats().map((m) => m.seq as number);
    const all = Array.from({ length: TOTAL }, (_, i) => i + 1);
    expect(seqs(ann)).toEqual(all);
    expect(seqs(bob)).toEqual(all);
    expect([...seqs(cat), ...seqs(back)]).toEqual(all);
    expect(back.chats().some((m) => m.replayed === true)).toBe(true);
    // n3's "cat" is reaped (3 missed beats): one "cat" is listed, the one on n1.
    await eventually(async () => {
      const probe = await openClient(n2.wsUrl, { room: 'kill', name: 'dan' });
      const members = probe.ofType('joined')[0]!.members.sort();
      await probe.close();
      return JSON.stringify(members) === JSON.stringify(['ann', 'bob', 'cat', 'dan']);
    }, "the dead node's members out of the list", 10_000);
    expect(output.join('\n')).toMatch(/node n3 \(pid \d+\) exited \(SIGKILL\); the other nodes go on/);
  });

  it('a dead node is started again on its port after a backoff; a dead private Redis is started again and members are told their streams were reset', async () => {
    const { listening, output } = await startCluster(2);
    const [n1, n2] = listening as [Listening, Listening];
    const ann = await open(n1.wsUrl, { room: 'restart', name: 'ann' });
    ann.send({ type: 'chat', content: 'before' });
    await ann.waitFor(() => ann.chats().length === 1, 'before');
    process.kill(n2.pid, 'SIGKILL');
    await eventually(() => output.some((l) => l.includes(`node n2 listens again on ${n2.url}`)), 'n2 back on its port', 15_000);
    expect(output.join('\n')).toMatch(/node n2 \(pid \d+\) exited \(SIGKILL\); the other nodes go on; starting it again in 1 s/);
    const bob = await open(n2.wsUrl, { room: 'restart', name: 'bob' });
    expect(bob.ofType('joined')[0]!.members.sort()).toEqual(['ann', 'bob']);
    const redisPid = Number(/private redis-server on \S+ \(pid (\d+)/.exec(output.join('\n'))?.[1]);
    process.kill(redisPid, 'SIGKILL');
    await eventually(() => output.some((l) => /private redis-server back on/.test(l)), 'Redis back', 15_000);
    expect(output.join('\n')).toMatch(/private redis-server \(pid \d+\) exited \(SIGKILL\); starting it again on port \d+, empty/);
    await ann.waitFor(() => ann.ofType('reset').length === 1, 'a reset notice', 15_000);
    ann.send({ type: 'chat', content: 'after' });
    await bob.waitFor(() => bob.chats().some((m) => m.content === 'after'), 'after, across nodes');
    expect(bob.chats().find((m) => m.content === 'after')!.seq).toBe(1);
  });

  it('without redis-server installed, says which package to install', async () => {
    // A PATH with node and nothing else.
    const bin = mkdtempSync(join(tmpdir(), 'no-redis-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    chmodSync(bin, 0o755);
    const child = spawnTs(VERSIONS_CLI, ['v4', '--port', '0'], { PATH: bin });
    started.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(stderr).toContain(REDIS_MISSING);
  });
});
