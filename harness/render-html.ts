// One self-contained HTML page per run: works offline, Chart.js inlined from node_modules.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { clusterLine, recoveryLine } from './cluster-figures.ts';
import { capacityRatios } from './capacity.ts';
import { healthLine, renderOutcome, slowReaderCell, TABLE_HEAD, tableRow, type ScenarioReport, type StressReport } from './report.ts';
import { evolutionStory, headlineLines } from './story.ts';
import { thresholdLine } from './thresholds.ts';

export function loadChartLibrary(): string {
  const require = createRequire(import.meta.url);
  // chart.js exports no subpath for its UMD build; it sits beside the main entry in dist/.
  return readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
}

/** JSON safe to put inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function tableHtml(s: ScenarioReport): string {
  const head = TABLE_HEAD.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = s.results.map((r) => `<tr>${tableRow(r).map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

/** The evolution table at the top of the page, when the run holds any of the story. */
function storyHtml(report: StressReport): string {
  const rows = evolutionStory(report);
  if (!rows) return '';
  const body = rows
    .map((r) => `<tr><td>${r.evidence === null ? '·' : r.shown ? '✔' : '✘'}</td><td>${escapeHtml(r.flaw)}</td><td>${escapeHtml(r.hurts)}</td><td>${escapeHtml(r.evidence ?? 'not in this run')}</td><td>${escapeHtml(r.fixedBy)}</td></tr>`)
    .join('');
  return `<section><h2>The evolution, as this run measured it</h2><table class="story"><thead><tr><th></th><th>flaw</th><th>hurts</th><th>evidence from this run</th><th>fixed by</th></tr></thead><tbody>${body}</tbody></table></section>`;
}

function capacityLine(s: ScenarioReport): string {
  const ratios = capacityRatios(s.results.filter((r) => r.capacity));
  return ratios ? `<li>${escapeHtml(ratios)}</li>` : '';
}

export function renderHtml(report: StressReport, chartLibrary: string = loadChartLibrary()): string {
  const data = report.scenarios.map((s) => ({
    scenario: s.scenario,
    p99LimitMs: s.config.p99LimitMs,
    results: s.results.map((r) => ({
      steps: r.capacity?.steps.map((st) => ({ x: st.deliveryRate, y: st.p99Ms, valid: st.valid })) ?? null,
      label: r.label,
      spectrum: r.spectrum.healthy,
      slowSpectrum: r.spectrum.slow,
      perSecond: r.deliveriesPerSecond,
      samples: r.samples,
      lost: r.accounting.lost,
      drops: r.accounting.serverDrops,
      stalled: r.stalls.healthy.stalled,
      stalledS: r.stalls.healthy.stalledMsMedian / 1000,
    })),
  }));
  const m = report.machine;
  const sections = report.scenarios
    .map(
      (s, i) => `
<section>
  <h2>${escapeHtml(s.scenario)}</h2>
  <p>${escapeHtml(s.describe)}</p>
  <p class="headline"><b>${escapeHtml(headlineLines(s)[0] ?? '')}</b></p>
  <ul class="checks">${(headlineLines(s)[1] ?? '').split('\n').map((l) => `<li${l.startsWith('✘') ? ' class="invalid"' : ''}>${escapeHtml(l)}</li>`).join('')}</ul>
  ${tableHtml(s)}
  <ul class="verdicts">${s.results.map((r) => `<li${r.valid && !r.health.broken ? '' : ' class="invalid"'}>${escapeHtml(r.verdict)}</li>`).join('')}${capacityLine(s)}</ul>
  ${s.thresholds.length > 0 ? `<ul class="thresholds">${s.thresholds.map((t) => `<li${t.pass ? '' : ' class="invalid"'}>${escapeHtml(thresholdLine(t))}</li>`).join('')}</ul>` : ''}
  <h3>Server health</h3>
  <ul class="health">${s.results.map((r) => `<li${r.health.broken ? ' class="invalid"' : ''}><b>${escapeHtml(r.label)}</b>: ${escapeHtml(healthLine(r))}</li>`).join('')}</ul>
  ${s.results.some((r) => r.recovery) ? `<h3>The fault, and how clients came back</h3><ul class="recovery">${s.results.map((r) => (r.recovery ? `<li><b>${escapeHtml(r.label)}</b>: ${escapeHtml(recoveryLine(r.recovery))}</li>` : '')).join('')}</ul>` : ''}
  ${s.results.some((r) => r.cluster) ? `<h3>Clusters (v4)</h3><ul class="cluster">${s.results.map((r) => (r.cluster ? `<li><b>${escapeHtml(r.label)}</b>: ${escapeHtml(clusterLine(r.cluster))}</li>` : '')).join('')}</ul>` : ''}
  ${
    s.results.some((r) => r.slowReaders)
      ? `<h3>Did the slow readers push back?</h3><ul>${s.results.map((r) => `<li${r.slowReaders && !r.slowReaders.pushedBack ? ' class="invalid"' : ''}><b>${escapeHtml(r.label)}</b>: ${escapeHtml(slowReaderCell(r))}</li>`).join('')}</ul>`
      : ''
  }
  <div class="charts">${
    s.results.some((r) => r.capacity)
      ? `\n    <figure><figcaption>Capacity: p99 of each step by deliveries per second (log-log; hollow: not measurable; dashed: the limit)</figcaption><canvas id="capacity-${i}"></canvas></figure>`
      : ''
  }
    <figure><figcaption>Latency percentile spectrum, healthy receivers (ms, log)</figcaption><canvas id="spectrum-${i}"></canvas></figure>
    <figure><figcaption>Deliveries per second, seen by clients</figcaption><canvas id="rate-${i}"></canvas></figure>
    <figure><figcaption>Server RSS (MB)</figcaption><canvas id="rss-${i}"></canvas></figure>
    <figure><figcaption>Queued: v3 queue depth (messages) and socket buffers (KB)</figcaption><canvas id="queue-${i}"></canvas></figure>
    <figure><figcaption>Lost, dropped, and healthy clients stalled</figcaption><canvas id="loss-${i}"></canvas></figure>
  </div>
</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatroom-evolution stress report ${escapeHtml(report.createdAt)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 75rem; padding: 1rem; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.4rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; }
figure { margin: 0; } figcaption { font-size: 0.85rem; color: #555; }
.invalid { color: #b00; }
pre.outcome { white-space: pre-wrap; }
</style>
</head>
<body>
<h1>chatroom-evolution stress report</h1>
<p>${escapeHtml(report.createdAt)} · <code>${escapeHtml(report.command)}</code> · seed ${report.seed}<br>
Machine: ${m.cpus} × ${escapeHtml(m.cpuModel)}, ${m.memoryGiB} GiB, ${escapeHtml(m.os)}, Node ${escapeHtml(m.node)}; the server and the generator share it.</p>
<pre class="outcome${report.outcome.exitCode === 0 ? '' : ' invalid'}">${escapeHtml(renderOutcome(report))}</pre>
${storyHtml(report)}
${sections}
<script>${chartLibrary}</script>
<script>
const DATA = ${scriptJson(data)};
const COLORS = ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
const nines = (p) => p >= 100 ? 5.5 : Math.min(5.5, -Math.log10(1 - p / 100));
const ninesLabel = (x) => ({0: '0%', 1: '90%', 2: '99%', 3: '99.9%', 4: '99.99%', 5: '99.999%', 5.5: 'max'})[x] ?? '';
function line(id, datasets, xTitle, yLog, xTicks) {
  new Chart(document.getElementById(id), {
    type: 'line',
    data: { datasets },
    options: {
      animation: false, parsing: false, responsive: true,
      scales: {
        x: { type: 'linear', title: { display: true, text: xTitle }, ...(xTicks ? { ticks: { stepSize: 1, callback: xTicks } } : {}) },
        y: { type: yLog ? 'logarithmic' : 'linear', beginAtZero: !yLog },
      },
      plugins: { legend: { position: 'bottom' } },
    },
  });
}
DATA.forEach((s, i) => {
  const color = (j) => COLORS[j % COLORS.length];
  if (document.getElementById('capacity-' + i)) {
    const ladders = s.results.map((r, j) => ({ label: r.label, borderColor: color(j), backgroundColor: color(j), showLine: true,
      pointStyle: (ctx) => (ctx.raw && ctx.raw.valid === false ? 'crossRot' : 'circle'), pointRadius: 4, data: r.steps ?? [] }));
    const xs = s.results.flatMap((r) => (r.steps ?? []).map((p) => p.x)).filter((x) => x > 0);
    const limit = { label: 'p99 limit', borderColor: '#777', borderDash: [6, 4], pointRadius: 0,
      data: xs.length ? [{ x: Math.min(...xs), y: s.p99LimitMs }, { x: Math.max(...xs), y: s.p99LimitMs }] : [] };
    new Chart(document.getElementById('capacity-' + i), {
      type: 'scatter',
      data: { datasets: [...ladders, { ...limit, showLine: true }] },
      options: { animation: false, parsing: false, scales: {
        x: { type: 'logarithmic', title: { display: true, text: 'deliveries per second' } },
        y: { type: 'logarithmic', title: { display: true, text: 'p99 ms' } } }, plugins: { legend: { position: 'bottom' } } },
    });
  }
  line('spectrum-' + i, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 2,
    data: r.spectrum.map(([p, ms]) => ({ x: nines(p), y: Math.max(ms, 0.01) })) })), 'percentile', true, ninesLabel);
  line('rate-' + i, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 0,
    data: r.perSecond.map((n, t) => ({ x: t, y: n })) })), 'seconds since sending began', false);
  line('rss-' + i, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 0,
    data: r.samples.map((x) => ({ x: x.t, y: x.rssBytes / 1e6 })) })), 'seconds', false);
  line('queue-' + i, s.results.flatMap((r, j) => [
    { label: r.label + ' queue', borderColor: color(j), pointRadius: 0, data: r.samples.map((x) => ({ x: x.t, y: x.queueDepth })) },
    { label: r.label + ' buffered KB', borderColor: color(j), borderDash: [4, 4], pointRadius: 0, data: r.samples.map((x) => ({ x: x.t, y: x.bufferedBytes / 1000 })) },
  ]), 'seconds', false);
  new Chart(document.getElementById('loss-' + i), {
    type: 'bar',
    data: { labels: s.results.map((r) => r.label), datasets: [
      { label: 'lost deliveries', backgroundColor: '#d62728', data: s.results.map((r) => r.lost) },
      { label: 'dropped by server', backgroundColor: '#ff7f0e', data: s.results.map((r) => r.drops) },
      { label: 'healthy clients stalled', backgroundColor: '#1f77b4', data: s.results.map((r) => r.stalled) },
    ] },
    options: { animation: false, plugins: { legend: { position: 'bottom' } } },
  });
});
</script>
</body>
</html>
`;
}
