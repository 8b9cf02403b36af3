// The browser page in a real browser: Debian's Chromium driven by playwright-core.
import { mkdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ChatServer } from '../../../versions/host.ts';
import { startVersion } from '../../../versions/versions.ts';
import { startRedisServer } from '../../../common/redis-server.ts';
import { startV4Node } from '../../../versions/v4/node.ts';
import { openClient } from '../../helpers.ts';
import { useChromium } from '../../browser.ts';

const browser = useChromium();
const servers: ChatServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(version: 'v1' | 'v3'): Promise<ChatServer> {
  const s = await startVersion(version, { port: 0 });
  servers.push(s);
  return s;
}

/** A fresh browser context (its own storage) with the page open and joined. */
async function openPage(server: ChatServer, name: string, room = 'lobby'): Promise<Page> {
  const context = await browser().newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(server.url);
  await expect.poll(() => page.textContent('#state')).toMatch(/^connected to /);
  await join(page, name, room);
  return page;
}

async function join(page: Page, name: string, room: string): Promise<void> {
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join-button');
  await expect.poll(() => page.textContent('#current-room')).toBe(room);
  await expect.poll(() => page.inputValue('#name')).toBe(name);
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

const chatTexts = (page: Page): Promise<string[]> => page.$$eval('#messages li.chat .content', (els) => els.map((e) => e.textContent ?? ''));

describe('the browser page', () => {
  it('says which server it talks to: version, policy and limits', async () => {
    const v3 = await start('v3');
    const page = await openPage(v3, 'ann');
    expect(await page.textContent('#server-info')).toBe('v3 · on-full drop · queue 128 · frame 64 KiB · content 16 KiB');
    expect(await page.title()).toBe('chatroom-evolution');
    // every control has a label
    const unlabeled = await page.$$eval('input, select', (els) => els.filter((e) => !(e as HTMLInputElement).labels?.length).map((e) => e.id));
    expect(unlabeled).toEqual([]);
  });

  it('lets two pages chat in a room while a third, in another room, sees none of it', async () => {
    const v3 = await start('v3');
    const ann = await openPage(v3, 'ann', 'kitchen');
    const bob = await openPage(v3, 'bob', 'kitchen');
    const cat = await openPage(v3, 'cat', 'garden');
    await say(ann, 'hello bob');
    await say(bob, 'hi ann');
    for (const p of [ann, bob]) await expect.poll(() => chatTexts(p)).toEqual(['hello bob', 'hi ann']);
    await expect.poll(() => ann.textContent('#members')).toContain('bob');
    expect(await ann.textContent('#members')).toContain('ann (you)');
    // The sender sees its own round trip.
    await expect.poll(() => ann.textContent('#messages li.chat .rtt')).toMatch(/^\d+ ms round trip$/);
    await say(cat, 'anyone in the garden?');
    await expect.poll(() => chatTexts(cat)).toEqual(['anyone in the garden?']);
    expect((await chatTexts(ann)).slice(0, 2)).toEqual(['hello bob', 'hi ann']);
    await say(bob, 'v3 keeps flowing while v2 freezes: run `npm run stress` and watch the counters');
    await expect.poll(async () => Number((await ann.textContent('#stat-deliveries'))!.replace(/,/g, '')), { timeout: 5_000 }).toBeGreaterThanOrEqual(6);
    // A picture of the page mid-chat (docs/screenshot.png in the README is one of these).
    await mkdir('reports', { recursive: true });
    await ann.screenshot({ path: 'reports/page-screenshot.png', fullPage: true });
  });

  it('switches from the v3 that served it to v1 and chats there', async () => {
    const v3 = await start('v3');
    const v1 = await start('v1');
    const page = await openPage(v3, 'ann');
    await page.fill('#custom-address', `127.0.0.1:${v1.port}`);
    await page.click('#server-connect');
    await expect.poll(() => page.textContent('#server-info')).toMatch(/^v1 · naive pool/);
    const other = await openPage(v1, 'bob');
    await say(page, 'hello v1');
    await expect.poll(() => chatTexts(other)).toEqual(['hello v1']);
    await expect.poll(() => chatTexts(page)).toEqual(['hello v1']);
    expect(v1.counters.received).toBe(1);
    expect(v3.counters.received).toBe(0);
  });

  it('renders markup in a message as literal text and runs nothing', async () => {
    const v3 = await start('v3');
    const ann = await openPage(v3, 'ann');
    const bob = await openPage(v3, 'bob');
    const evil = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    await say(ann, evil);
    await expect.poll(() => chatTexts(bob)).toEqual([evil]);
    expect(await bob.$$('#messages img, #messages b')).toHaveLength(0);
    expect(await bob.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it("shows the server's error code, with the limit and the size, to the sender of an oversize message", async () => {
    // The page checks the limit itself (page.test.ts); a client that does not gets the server's answer.
    const v3 = await start('v3');
    const ann = await openPage(v3, 'ann');
    const bob = await openClient(v3, { name: 'bob' });
    bob.send({ type: 'chat', content: 'x'.repeat(20_000) });
    await bob.waitFor(() => bob.ofType('error').length === 1, 'the error');
    expect(bob.ofType('error')[0]).toMatchObject({ code: 'CONTENT_TOO_LARGE', message: '"content" is longer than the content limit: 20,000 of 16,384 characters' });
    await bob.close();
    expect(await ann.textContent('#state')).toMatch(/^connected/);
  });

  it('shows the live counters rising while a burst is sent', async () => {
    const v3 = await start('v3');
    const ann = await openPage(v3, 'ann');
    const read = async (): Promise<number> => Number((await ann.textContent('#stat-deliveries'))!.replace(/,/g, ''));
    await expect.poll(read).toBe(0);
    await expect.poll(() => ann.textContent('#stat-connections')).toBe('1');
    for (let i = 0; i < 20; i++) {
      await fetch(`${v3.url}api/send`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ room: 'lobby', content: `burst ${i}` }) });
    }
    await expect.poll(read, { timeout: 5_000 }).toBe(20);
    await expect.poll(() => chatTexts(ann)).toHaveLength(20);
    // A burst that arrives in one read goes out to each client in one write: v3 batches.
    const bob = await openClient(v3, { name: 'bob' });
    try {
      for (let i = 0; i < 200; i++) bob.send({ type: 'chat', content: `together ${i}` });
      await expect.poll(async () => Number(await ann.textContent('#stat-batch')), { timeout: 5_000 }).toBeGreaterThan(10);
    } finally {
      await bob.close();
    }
  });

  it('fits a phone: no horizontal scrolling at 390 px, and Enter still sends', async () => {
    const v3 = await start('v3');
    const context = await browser().newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await page.goto(v3.url);
    await expect.poll(() => page.textContent('#state')).toMatch(/^connected to /);
    await expect.poll(() => page.textContent('#server-select')).toContain('this server · up');
    await expect.poll(() => page.textContent('#server-details')).toContain('v3 · on-full drop');
    await say(page, 'hello from a phone');
    await expect.poll(() => chatTexts(page)).toEqual(['hello from a phone']);
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBe(0);
  });

  it('reconnects by itself after the server goes away and comes back', async () => {
    const v3 = await start('v3');
    const ann = await openPage(v3, 'ann');
    const port = v3.port;
    await v3.close();
    servers.splice(servers.indexOf(v3), 1);
    await expect.poll(() => ann.textContent('#state')).toMatch(/^disconnected from .*: server shutting down \(1001\) · retrying in \d+ s$/);
    servers.push(await startVersion('v3', { port }));
    await expect.poll(() => ann.textContent('#state'), { timeout: 15_000 }).toMatch(/^connected to /);
  });

  it('v4: says which node it is on, and after its node goes away resumes the room on another node with what it missed, once each', async () => {
    const redis = await startRedisServer({ detached: true });
    try {
      const n1 = await startV4Node({ redis: redis.url, node: 'w1', port: 0 });
      const n2 = await startV4Node({ redis: redis.url, node: 'w2', port: 0 });
      servers.push(n2);
      const listed = (await (await fetch(`${n1.url}api/nodes`)).json()) as { nodes: Array<{ node: string; url: string }> };
      expect(listed.nodes.sort((a, b) => a.node.localeCompare(b.node))).toEqual([
        { node: 'w1', url: n1.url },
        { node: 'w2', url: n2.url },
      ]);
      const ann = await openPage(n1, 'ann', 'v4room');
      expect(await ann.textContent('#server-info')).toContain('node w1');
      const bob = await openClient(n2, { room: 'v4room', name: 'bob' });
      for (const t of ['one', 'two']) bob.send({ type: 'chat', content: t });
      await expect.poll(() => chatTexts(ann)).toEqual(['one', 'two']);
      await n1.close();
      // Its node gone, the page fails over to w2 at once (it learnt w2 from /api/nodes), asking for what it missed.
      for (const t of ['three', 'four']) bob.send({ type: 'chat', content: t });
      await bob.waitFor(() => bob.chats().length === 4, 'four chats');
      await expect.poll(() => ann.textContent('#state'), { timeout: 10_000 }).toBe(`connected to ${new URL(n2.url).host}`);
      expect(await ann.textContent('#server-info')).toContain('node w2');
      // A new section, on w2: what it missed, replayed and marked, then the live stream.
      await expect.poll(() => chatTexts(ann), { timeout: 15_000 }).toEqual(['three', 'four']);
      expect(await ann.$$eval('#messages li.chat.replayed .content', (els) => els.map((e) => e.textContent))).toEqual(['three', 'four']);
      bob.send({ type: 'chat', content: 'five' });
      await expect.poll(() => chatTexts(ann)).toEqual(['three', 'four', 'five']);
      await bob.close();
    } finally {
      await Promise.all(servers.splice(0).map((s) => s.close()));
      await redis.stop();
    }
  });
});
