// The page tells the truth about the room, works in every script, and never loses what you
// typed: one test per defect a new user found, each at desktop and phone width, in
// Debian's Chromium. Every test fails on any page error or console error, except the network
// errors of probing servers that are down (the version list asks every default port).
import { afterEach, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { ChatServer } from '../../../versions/host.ts';
import { startVersion } from '../../../versions/versions.ts';
import { startV4Node } from '../../../versions/v4/node.ts';
import { startRedisServer } from '../../../common/redis-server.ts';
import { openClient, type TestClient } from '../../helpers.ts';
import { useChromium } from '../../browser.ts';

/**
 * What a page probing ports where nothing listens may log, or one whose server the test stops while
 * it polls (the request in flight is reset): nothing else is allowed.
 */
const EXPECTED_NETWORK_ERRORS = [/ERR_CONNECTION_REFUSED/, /ERR_CONNECTION_RESET/, /^WebSocket connection to '.*' failed/];

const browser = useChromium();
const servers: ChatServer[] = [];
const clients: TestClient[] = [];
const errors: string[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  const unexpected = errors.splice(0).filter((e) => !EXPECTED_NETWORK_ERRORS.some((re) => re.test(e)));
  expect(unexpected, 'page and console errors').toEqual([]);
});

async function start(): Promise<ChatServer> {
  const s = await startVersion('v3', { port: 0 });
  servers.push(s);
  return s;
}

const WIDTHS = [
  ['desktop', 1280, 900],
  ['phone', 390, 844],
] as const;

describe.each(WIDTHS)('the page at %s width', (_label, width, height) => {
  async function newPage(server: ChatServer, query = ''): Promise<Page> {
    const context = await browser().newContext({ viewport: { width, height } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(server.url + query);
    await expect.poll(() => page.textContent('#state')).toMatch(/^connected to /);
    await expect.poll(() => page.inputValue('#name')).not.toBe(''); // set by the server's joined
    return page;
  }

  async function join(page: Page, name: string, room = 'lobby'): Promise<void> {
    await page.fill('#name', name);
    await page.fill('#room', room);
    await page.click('#join-button');
    await expect.poll(() => page.inputValue('#name')).toBe(name);
    await expect.poll(() => page.textContent('#current-room')).toBe(room);
  }

  const lines = (page: Page, cls = ''): Promise<string[]> => page.$$eval(`#messages li${cls}`, (els) => els.map((e) => (e.textContent ?? '').trim()));
  const members = (page: Page): Promise<string[]> => page.$$eval('#members li', (els) => els.map((e) => (e.textContent ?? '').trim()));

  it('1. a rename reaches every page with a notice; a taken name is refused; a reload keeps yours', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    await join(a, 'ann');
    const b = await newPage(v3);
    const guest = await b.inputValue('#name');
    await expect.poll(() => members(a)).toContain(guest);
    await join(b, 'bob');
    await expect.poll(() => members(a)).toEqual(['ann (you)', 'bob']);
    await expect.poll(() => lines(a, '.system')).toContain(`${guest} is now bob in lobby`);
    await expect.poll(() => lines(b, '.system')).toContain(`you are now bob in lobby (you were ${guest})`);
    const c = await openClient(v3, { name: 'cat' });
    clients.push(c);
    c.send({ type: 'join', room: 'lobby', name: 'BOB' });
    await c.waitFor(() => c.ofType('error').some((e) => e.code === 'NAME_TAKEN'), 'NAME_TAKEN');
    await b.reload();
    await expect.poll(() => b.inputValue('#name')).toBe('bob');
    await expect.poll(() => lines(b, '.system')).toContain('you joined lobby as bob (3 here)');
  });

  it('2. name, message and round trip are isolated from each other in right-to-left and mixed scripts', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    await join(a, 'بوب');
    const texts = ['هذا نص عربي with English 12 words', 'שלום world 42', 'emoji 👩‍💻 and ✓'];
    for (const t of texts) {
      await a.fill('#text', t);
      await a.press('#text', 'Enter');
    }
    await expect.poll(() => a.$$eval('#messages li.chat .content', (els) => els.map((e) => e.textContent))).toEqual(texts);
    // Every part of a chat line is its own <bdi>: a right-to-left name cannot pull the text or the "12 ms" into its run.
    const parts = await a.$$eval('#messages li.chat', (els) => els.map((li) => Array.from(li.children).map((c) => `${c.tagName}.${c.className}`)));
    for (const p of parts) expect(p).toEqual(['BDI.meta', 'BDI.from', 'BDI.content', 'BDI.rtt']);
    expect(await a.$$eval('#messages li.chat .from', (els) => els.map((e) => e.textContent))).toEqual(['بوب', 'بوب', 'بوب']);
    expect(await a.getAttribute('#text', 'dir')).toBe('auto');
  });

  it('3. your own arrival reads as yours; every notice names the room', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    const name = await a.inputValue('#name');
    const first = await lines(a, '.system');
    expect(first[0]).toMatch(new RegExp(`^you joined lobby as ${name} \\(\\d+ here\\)$`));
    expect(first.some((l) => l.includes(`${name} joined`))).toBe(false);
    const b = await newPage(v3);
    const bName = await b.inputValue('#name');
    await expect.poll(() => lines(a, '.system')).toContain(`${bName} joined lobby (2 here)`);
    await join(b, bName, 'dev');
    await expect.poll(() => lines(a, '.system')).toContain(`${bName} left lobby (1 here)`);
    await expect.poll(() => lines(b, '.system')).toEqual(['you left lobby', `you joined dev as ${bName} (1 here)`]);
  });

  it('4. a room or server switch starts a new section: old messages never show under the new heading', async () => {
    const v3 = await start();
    const v1 = await startVersion('v1', { port: 0 });
    servers.push(v1);
    const a = await newPage(v3);
    await a.fill('#text', 'in lobby');
    await a.press('#text', 'Enter');
    await expect.poll(() => lines(a, '.chat')).toHaveLength(1);
    await join(a, await a.inputValue('#name'), 'dev');
    await expect.poll(() => lines(a, '.divider')).toEqual([`dev on v3 · 127.0.0.1:${v3.port}`]);
    expect(await lines(a, '.chat')).toEqual([]);
    await a.fill('#custom-address', `127.0.0.1:${v1.port}`);
    await a.click('#server-connect');
    await expect.poll(() => lines(a, '.divider')).toEqual([`dev on v1 · 127.0.0.1:${v1.port}`]);
    expect(await a.textContent('#current-room')).toBe('dev');
  });

  it('5. a message over the limit is not sent and stays in the box, with the limit and its length', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    const text = 'x'.repeat(20_480);
    await a.fill('#text', text);
    await a.press('#text', 'Enter');
    await expect.poll(() => a.textContent('#send-problem')).toBe('20,480 of 16,384 characters: too long to send');
    expect(await a.inputValue('#text')).toBe(text);
    expect(v3.counters.received).toBe(0);
    expect(v3.counters.badInput.size).toBe(0);
    // a send that fails (not connected) keeps the text too
    await v3.close();
    servers.splice(0);
    await expect.poll(() => a.textContent('#state')).toMatch(/^disconnected/);
    await a.fill('#text', 'hello');
    await a.press('#text', 'Enter');
    expect(await a.inputValue('#text')).toBe('hello');
  });

  it('6. a disconnect is one line, and one status with a live countdown and a retry button; codes in words', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    const port = v3.port;
    await v3.close();
    servers.splice(0);
    await expect.poll(() => a.textContent('#state')).toMatch(/^disconnected from 127\.0\.0\.1:\d+: server shutting down \(1001\) · retrying in \d+ s$/);
    expect(await a.isVisible('#retry-now')).toBe(true);
    // several retries later: still one line in the list
    await a.waitForTimeout(3_500);
    expect((await lines(a, '.system')).filter((l) => l.startsWith('disconnected'))).toEqual([`disconnected from 127.0.0.1:${port}: server shutting down (1001)`]);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      seen.add((await a.textContent('#state')) ?? '');
      await a.waitForTimeout(300);
    }
    expect(seen.size).toBeGreaterThan(1); // it counts down
    servers.push(await startVersion('v3', { port }));
    await a.click('#retry-now');
    await expect.poll(() => a.textContent('#state'), { timeout: 5_000 }).toMatch(/^connected to /);
    expect(await a.isVisible('#retry-now')).toBe(false);
  });

  it('7. while not connected, counters, members and the server line are marked stale', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    const stale = (): Promise<boolean[]> => a.$$eval('#live, #members-panel, #server-info', (els) => els.map((e) => e.classList.contains('stale')));
    await expect.poll(stale).toEqual([false, false, false]);
    expect(await a.isVisible('#stale-note')).toBe(false);
    await a.fill('#custom-address', '127.0.0.1:9');
    await a.click('#server-connect');
    await expect.poll(stale).toEqual([true, true, true]);
    expect(await a.isVisible('#stale-note')).toBe(true);
    await a.fill('#custom-address', `127.0.0.1:${v3.port}`);
    await a.click('#server-connect');
    await expect.poll(stale).toEqual([false, false, false]);
  });

  it('8. browsing the version list with the keyboard connects nowhere; Connect does', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    const before = await a.textContent('#state');
    await a.focus('#server-select');
    await a.keyboard.press('ArrowDown');
    await a.keyboard.press('ArrowDown');
    await a.waitForTimeout(300);
    expect(await a.textContent('#state')).toBe(before);
    expect(await a.$$eval('#server-select option', (els) => els.map((e) => e.textContent))).toContainEqual(expect.stringMatching(/^v3 · (up|down|…)$/));
    await a.selectOption('#server-select', `127.0.0.1:${v3.port}`);
    await a.click('#server-connect');
    await expect.poll(() => a.textContent('#state')).toBe(`connected to 127.0.0.1:${v3.port}`);
  });

  it('9. inputs at 3:1 contrast, a log that does not announce every message, ranges on the sparklines, "–" when idle, a favicon', async () => {
    const v3 = await start();
    const a = await newPage(v3);
    const ratio = await a.$eval('#text', (el) => {
      const lum = (rgb: string): number => {
        const [r, g, b] = (rgb.match(/\d+/g) ?? []).slice(0, 3).map((v) => {
          const c = Number(v) / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
      };
      const border = lum(getComputedStyle(el).borderTopColor);
      const bg = lum(getComputedStyle(document.body).backgroundColor === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : getComputedStyle(document.body).backgroundColor);
      return (Math.max(border, bg) + 0.05) / (Math.min(border, bg) + 0.05);
    });
    expect(ratio).toBeGreaterThanOrEqual(3);
    expect(await a.getAttribute('#messages', 'role')).toBe('log');
    expect(await a.getAttribute('#messages', 'aria-live')).toBe('off');
    expect(await a.getAttribute('#announcer', 'aria-live')).toBe('polite');
    await expect.poll(() => a.textContent('#chart-connections-range'), { timeout: 5_000 }).toMatch(/^1–1 over \d+ s$/);
    await expect.poll(() => a.textContent('#stat-batch')).toBe('–');
    const icon = await a.evaluate(async () => (await fetch((document.querySelector('link[rel=icon]') as HTMLLinkElement).href)).status);
    expect(icon).toBe(200);
  });
});

describe('the page on v4', () => {
  it('10. while Redis is down, the status says sends are refused and a refused message goes back in the box; once back, it says connected', async () => {
    let redis = await startRedisServer({ detached: true });
    const node = await startV4Node({ redis: redis.url, port: 0, node: 'page' });
    servers.push(node);
    try {
      const context = await browser().newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      await page.goto(node.url);
      await expect.poll(() => page.textContent('#state')).toMatch(/^connected to /);
      const port = redis.port;
      await redis.stop(0);
      await expect.poll(async () => ((await (await fetch(`${node.url}api/stats`)).json()) as { backplane: { state: string } }).backplane.state).toBe('down');
      await page.fill('#text', 'during');
      await page.press('#text', 'Enter');
      await expect.poll(() => page.textContent('#state')).toMatch(/^connected to .*, but sends are refused: the server cannot reach Redis$/);
      expect(await page.getAttribute('#state', 'class')).toContain('degraded');
      await expect.poll(() => page.inputValue('#text')).toBe('during');
      redis = await startRedisServer({ port, detached: true });
      await expect.poll(async () => ((await (await fetch(`${node.url}api/stats`)).json()) as { backplane: { state: string } }).backplane.state, { timeout: 15_000 }).toBe('up');
      await page.press('#text', 'Enter');
      await expect.poll(() => page.textContent('#state')).toMatch(/^connected to [^,]+$/);
      await context.close();
    } finally {
      await redis.stop(0);
    }
  });
});
