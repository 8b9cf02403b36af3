// report.html in Debian's Chromium, as a reader opens it: at 1280 and 390 px, with the real
// Chart.js and the real page script, no page or console error, no horizontal scroll, and the
// latency-over-time chart drawn with the run's phases marked on its time axis.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml } from '../../harness/render-html.ts';
import type { StressReport } from '../../harness/report-model.ts';
import { launchChromium } from '../browser.ts';

let browser: Browser;
let dir: string;
let file: string;

beforeAll(async () => {
  const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;
  dir = await mkdtemp(join(tmpdir(), 'report-page-'));
  file = join(dir, 'report.html');
  // (the fixture predates latency over time: give it a stall to draw, v2's seconds 2-4 late)
  fixture.scenarios[0]!.results.forEach((r, j) => {
    r.latencyOverTime = Array.from({ length: 8 }, (_, t) => ({ t, p50Ms: j === 0 && t >= 2 && t <= 4 ? 900 : 3, p99Ms: j === 0 && t >= 2 && t <= 4 ? 1300 : 8, count: 100 }));
  });
  await writeFile(file, renderHtml(fixture));
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

describe.each([
  ['desktop', 1280, 900],
  ['phone', 390, 844],
] as const)('report.html at %s width', (_label, width, height) => {
  it('loads without errors, does not scroll sideways, and draws latency over time with the phases marked', async () => {
    const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`file://${file}`);
    await expect.poll(() => page.getAttribute('#latency-0', 'data-phases')).toBe('warm-up, measured, drain, stuck readers');
    // p50 and p99 of each version, a point a second
    const points = await page.evaluate(() => (globalThis as unknown as { Chart: { getChart(c: Element): { data: { datasets: Array<{ label: string; data: unknown[] }> } } } }).Chart.getChart(document.getElementById('latency-0')!).data.datasets.map((d) => `${d.label}:${d.data.length}`));
    expect(points).toEqual(['v2 p50:8', 'v2 p99:8', 'v3 p50:8', 'v3 p99:8']);
    for (const id of ['rate-0', 'rss-0', 'queue-0', 'buffered-0']) expect(await page.getAttribute(`#${id}`, 'data-phases')).toBe('warm-up, measured, drain, stuck readers');
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    expect(await page.$$eval('canvas', (els) => els.every((c) => c.getAttribute('role') === 'img' && (c.getAttribute('aria-label') ?? '').startsWith('Chart: ')))).toBe(true);
    expect(errors).toEqual([]);
  });

  it('draws latency over time tall enough to read, its legend outside it, and no axis title clipped', async () => {
    const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
    await page.goto(`file://${file}`);
    await expect.poll(() => page.getAttribute('#latency-0', 'data-phases')).toBe('warm-up, measured, drain, stuck readers');
    const box = await page.$eval('#latency-0', (c) => c.getBoundingClientRect().height);
    expect(box).toBeGreaterThanOrEqual(width >= 1280 ? 240 : 200);
    // The legend is HTML beside the plot, one entry per version and the line styles: the plot keeps its height.
    expect(await page.$$eval('#latency-0 ~ .legend span, .wide .legend span', (els) => els.map((e) => e.textContent))).toEqual(['v2', 'v3', 'solid p50, dashed p99']);
    const fit = await page.evaluate(() => {
      type Scale = { height: number; width: number; options: { title: { text: string } } };
      const chart = (globalThis as unknown as { Chart: { getChart(c: Element): { ctx: CanvasRenderingContext2D; scales: Record<string, Scale>; options: { plugins: { legend: { display: boolean } } }; chartArea: { top: number; bottom: number } } } }).Chart.getChart(document.getElementById('latency-0')!);
      const y = chart.scales.y!;
      const x = chart.scales.x!;
      chart.ctx.font = '12px sans-serif';
      return {
        legendInside: chart.options.plugins.legend.display,
        plotHeight: chart.chartArea.bottom - chart.chartArea.top,
        // a vertical title is clipped when it is longer than the axis it stands beside
        yTitleFits: chart.ctx.measureText(y.options.title.text).width <= y.height,
        xTitleFits: chart.ctx.measureText(x.options.title.text).width <= x.width,
      };
    });
    expect(fit).toMatchObject({ legendInside: false, yTitleFits: true, xTitleFits: true });
    expect(fit.plotHeight).toBeGreaterThanOrEqual(150);
  });
});
