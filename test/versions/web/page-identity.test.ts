// The page and who is who, in Debian's Chromium: signing in, writing to someone privately, a
// message's links, and the name defects a new user found (Connect on your own server made you a
// guest; a refused name stayed in the box; on v4 another member's rename took members off your list).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ChatServer } from '../../../versions/host.ts';
import { startVersion } from '../../../versions/versions.ts';
import { startV4Node } from '../../../versions/v4/node.ts';
import { startRedisServer, type RedisServer } from '../../../common/redis-server.ts';
import { openClient, type TestClient } from '../../helpers.ts';
import { useChromium } from '../../browser.ts';

const EXPECTED_NETWORK_ERRORS = [/ERR_CONNECTION_REFUSED/, /ERR_CONNECTION_RESET/, /^WebSocket connection to '.*' failed/, /401 \(Unauthorized\)/];
const browser = useChromium();
const servers: ChatServer[] = [];
const clients: TestClient[] = [];
const errors: string[] = [];
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedisServer({ detached: true });
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  const unexpected = errors.splice(0).filter((e) => !EXPECTED_NETWORK_ERRORS.some((re) => re.test(e)));
  expect(unexpected, 'page and console errors').toEqual([]);
});

async function start(options: Parameters<typeof startVersion>[1] = {}): Promise<ChatServer> {
  const s = await startVersion('v3', { port: 0, ...options });
  servers.push(s);
  return s;
}

async function open(server: ChatServer, query: Parameters<typeof openClient>[1], headers: Record<string, string> = {}): Promise<TestClient> {
  const c = await openClient(server, query, headers);
  clients.push(c);
  return c;
}

async function newPage(server: ChatServer, connected = true): Promise<Page> {
  const context = await browser().newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(server.url);
  if (connected) await expect.poll(() => page.textContent('#state')).toMatch(/^connected to /);
  return page;
}

async function join(page: Page, name: string): Promise<void> {
  await page.fill('#name', name);
  await page.click('#join-button');
  await expect.poll(() => page.inputValue('#name')).toBe(name);
}

const members = (page: Page): Promise<string[]> => page.$$eval('#members li', (els) => els.map((e) => (e.textContent ?? '').trim()));
const directs = (page: Page): Promise<string[]> => page.$$eval('#directs li', (els) => els.map((e) => (e.querySelector('.from')?.textContent ?? '') + ': ' + (e.querySelector('.content')?.textContent ?? '')));

describe('the page and who is who', () => {
  it('11. signs in on a --auth dev server: asked first, then signed in under the name, which a join cannot change', async () => {
    const s = await start({ auth: { mode: 'dev' } });
    const page = await newPage(s, false);
    await expect.poll(() => page.textContent('#state')).toMatch(/asks you to sign in/);
    expect(await page.isVisible('#signin-form')).toBe(true);
    await page.fill('#signin', 'zoë');
    await page.click('#signin-button');
    await expect.poll(() => page.textContent('#state')).toMatch(/^connected to /);
    await expect.poll(() => page.inputValue('#name')).toBe('zoë');
    expect(await page.$eval('#name', (e) => (e as HTMLInputElement).readOnly)).toBe(true);
    expect(await page.textContent('#signin-note')).toBe('signed in as zoë');
    // Another tab of zoë's comes and goes: zoë stays on the list (a name counts its holders).
    const tab = await open(s, { room: 'lobby' }, { authorization: `Bearer ${await fetchDevToken(s, 'zoë')}` });
    await expect.poll(() => members(page)).toEqual(['zoë (you)']);
    await tab.close();
    await page.waitForTimeout(200);
    expect(await members(page)).toEqual(['zoë (you)']);
  });

  it('12. writes to a member privately from the members list: both pages show it apart from the room, a third page never sees it', async () => {
    const s = await start();
    const [ann, bob, cat] = [await newPage(s), await newPage(s), await newPage(s)];
    await join(ann, 'ann');
    await join(bob, 'bob');
    await join(cat, 'cat');
    await expect.poll(() => members(ann)).toEqual(['ann (you)', 'bob', 'cat']);
    expect(await ann.isVisible('#signin-form')).toBe(false); // (this server signs nobody in)
    await ann.click('#members li:has-text("bob") button.dm');
    await expect.poll(() => ann.textContent('#direct-to')).toMatch(/private to bob/);
    await ann.fill('#text', 'psst, bob');
    await ann.press('#text', 'Enter');
    await expect.poll(() => directs(bob)).toEqual(['ann → you: psst, bob']);
    await expect.poll(() => directs(ann)).toEqual(['you → bob: psst, bob']);
    await expect.poll(() => ann.textContent('#directs li .rtt')).toMatch(/^\d+ ms round trip$/);
    // bob answers with reply
    await bob.click('#directs li button.reply');
    await bob.fill('#text', 'hi ann');
    await bob.press('#text', 'Enter');
    await expect.poll(() => directs(ann)).toEqual(['you → bob: psst, bob', 'bob → you: hi ann']);
    await cat.waitForTimeout(200);
    expect(await directs(cat)).toEqual([]);
    for (const p of [ann, bob, cat]) expect(await p.$$eval('#messages li.chat', (els) => els.length)).toBe(0);
    // Back to the room: the next message is a chat.
    await ann.click('#direct-cancel');
    await ann.fill('#text', 'hello all');
    await ann.press('#text', 'Enter');
    await expect.poll(() => cat.$$eval('#messages li.chat .content', (els) => els.map((e) => e.textContent))).toEqual(['hello all']);
  });

  it("13. shows a message's media as links that open nothing until clicked, and only http(s) ones; a right-to-left sender reads as the sender", async () => {
    const s = await start();
    const page = await newPage(s);
    await join(page, 'ann');
    const bob = await open(s, { name: 'بوب' });
    bob.send({ type: 'direct', to: 'ann', content: 'look', media: 'image', url: 'https://example.org/cat.png', pic: 'https://example.org/cat-small.png', memo: 'a cat' });
    await expect.poll(() => directs(page)).toEqual(['بوب → you: look']);
    // the name in a <bdi> of its own: right-to-left, it must not turn "→ you" around it
    expect(await page.$$eval('#directs li .from bdi', (els) => els.map((e) => e.textContent))).toEqual(['بوب']);
    const links = await page.$$eval('#directs a.media', (els) => els.map((a) => [a.textContent, a.getAttribute('href'), a.getAttribute('target'), a.getAttribute('rel')]));
    expect(links).toEqual([
      ['image: example.org', 'https://example.org/cat.png', '_blank', 'noopener noreferrer nofollow'],
      ['preview', 'https://example.org/cat-small.png', '_blank', 'noopener noreferrer nofollow'],
    ]);
    expect(await page.textContent('#directs .memo')).toBe('a cat');
    expect(await page.$$('#directs img, #messages img')).toHaveLength(0);
  });

  it('14. Connect on the server you are on keeps your name; a refused name goes back to yours in the box, with why beside it', async () => {
    const s = await start();
    const page = await newPage(s);
    await join(page, 'ann');
    const bob = await open(s, { name: 'bob' });
    await page.selectOption('#server-select', `127.0.0.1:${s.port}`);
    await page.click('#server-connect');
    await page.waitForTimeout(300);
    expect(await page.inputValue('#name')).toBe('ann');
    expect(await page.evaluate(() => localStorage.getItem('chatroom-evolution.name'))).toBe('ann');
    await expect.poll(() => members(page)).toEqual(['ann (you)', 'bob']);
    expect(s.counters.received).toBe(0);
    // a taken name: refused, and the box holds ann again, the reason beside it
    await page.fill('#name', 'BOB');
    await page.click('#join-button');
    await expect.poll(() => page.textContent('#name-problem')).toMatch(/another member of the room has that name/);
    expect(await page.inputValue('#name')).toBe('ann');
    // Join again sends ann, not the refused name: no second refusal.
    await page.click('#join-button');
    await page.waitForTimeout(300);
    expect(await page.$$eval('#messages li.error', (els) => els.length)).toBe(1);
    void bob;
  });

  it('15. on v4, a name taken on another node is refused to a rename there, and nobody drops off your list', async () => {
    const node = async (name: string): Promise<ChatServer> => {
      const s = await startV4Node({ redis: redis.url, node: name, port: 0, heartbeatMs: 200 });
      servers.push(s);
      return s;
    };
    const [n1, n2] = [await node('pg1'), await node('pg2')];
    const page = await newPage(n1);
    await join(page, 'ann');
    const bob = await open(n2, { name: 'bob' });
    await expect.poll(() => members(page)).toEqual(['ann (you)', 'bob']);
    bob.send({ type: 'join', room: 'lobby', name: 'ANN' });
    await bob.waitFor(() => bob.ofType('error').some((e) => e.code === 'NAME_TAKEN'), 'NAME_TAKEN on the other node');
    await page.waitForTimeout(200);
    expect(await members(page)).toEqual(['ann (you)', 'bob']);
    await bob.join('lobby', 'carl');
    await expect.poll(() => members(page)).toEqual(['ann (you)', 'carl']);
  });
});

async function fetchDevToken(s: ChatServer, name: string): Promise<string> {
  const res = await fetch(`${s.url}api/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
  return ((await res.json()) as { token: string }).token;
}
