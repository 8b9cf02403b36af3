// @ts-check
// The charts of report.html (render-html.ts inlines this file after Chart.js). Every chart over
// time shares one axis, seconds since sending began, from 0 to the end of the drain, with the
// warm-up and the drain shaded, the stuck readers' window in red and injected faults as lines.

/**
 * @typedef {{ fromS: number, toS: number, label?: string }} Span
 * @typedef {{ label: string, atS: number, endS: number | null }} Fault
 * @typedef {{ endS: number, phases: Span[], stuck: Span | null, faults: Fault[] }} Timeline
 * @typedef {{ t: number, rssBytes: number, queueDepth: number, bufferedBytes: number }} Sample
 * @typedef {{ label: string, color: string, steps: Array<{ x: number, y: number, valid: boolean }> | null, spectrum: Array<[number, number]>,
 *   perSecond: number[], latencyOverTime: Array<{ t: number, p50Ms: number, p99Ms: number }>, samples: Sample[],
 *   lost: number, drops: number, stalled: number }} Result
 * @typedef {{ scenario: string, p99LimitMs: number, timeline: Timeline, results: Result[] }} ScenarioData
 */

/** @type {any} Chart.js's UMD build sets this global. */
const ChartJs = /** @type {any} */ (globalThis).Chart;
const dataElement = document.getElementById('report-data');
/** @type {ScenarioData[]} */
const DATA = JSON.parse(dataElement ? dataElement.textContent ?? '[]' : '[]');
/** @param {number} p a percentile: where it sits on a "nines" axis */
const nines = (p) => (p >= 100 ? 5.5 : Math.min(5.5, -Math.log10(1 - p / 100)));
/** @type {Record<number, string>} */
const NINES_LABELS = { 0: '0%', 1: '90%', 2: '99%', 3: '99.9%', 4: '99.99%', 5: '99.999%', 5.5: 'max' };

/** @param {number} v a tick on the "nines" axis */
const ninesLabel = (v) => NINES_LABELS[v] ?? '';

/** Shades the phases, the stuck window and the faults behind a time chart's lines. */
const phasesPlugin = {
  id: 'phases',
  /** @param {any} chart @param {unknown} _args @param {{ timeline?: Timeline }} options */
  beforeDatasetsDraw(chart, _args, options) {
    const tl = options.timeline;
    if (!tl) return;
    const { ctx, chartArea: area } = chart;
    const x = chart.scales.x;
    /** @param {number} fromS @param {number} toS @param {string} fill */
    const band = (fromS, toS, fill) => {
      const left = Math.max(area.left, x.getPixelForValue(fromS));
      const right = Math.min(area.right, x.getPixelForValue(toS));
      if (right <= left) return;
      ctx.fillStyle = fill;
      ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
    };
    ctx.save();
    const marked = [];
    for (const p of tl.phases) {
      if (p.label !== 'measured') band(p.fromS, p.toS, 'rgba(0, 0, 0, 0.07)');
      marked.push(p.label);
    }
    if (tl.stuck) {
      band(tl.stuck.fromS, tl.stuck.toS, 'rgba(214, 39, 40, 0.10)');
      marked.push('stuck readers');
    }
    for (const f of tl.faults) {
      if (f.endS !== null) band(f.atS, f.endS, 'rgba(255, 127, 14, 0.15)');
      const at = x.getPixelForValue(f.atS);
      ctx.strokeStyle = '#ff7f0e';
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(at, area.top);
      ctx.lineTo(at, area.bottom);
      ctx.stroke();
      ctx.fillStyle = '#b35900';
      ctx.fillText(f.label, Math.min(at + 3, area.right - 60), area.top + 10);
      marked.push(f.label);
    }
    ctx.restore();
    chart.canvas.dataset.phases = marked.join(', '); // what the chart marks, for tests and for anyone inspecting it
  },
};

/**
 * A chart over the run's time axis.
 * @param {string} id @param {Timeline} timeline @param {object[]} datasets @param {string} yTitle @param {boolean} [yLog]
 */
function timeChart(id, timeline, datasets, yTitle, yLog = false, legend = true) {
  const canvas = document.getElementById(id);
  if (!canvas) return;
  new ChartJs(canvas, {
    type: 'line',
    data: { datasets },
    plugins: [phasesPlugin],
    options: {
      animation: false,
      parsing: false,
      responsive: true,
      // The box (.plot) sets the height: a legend inside a 2:1 canvas left a strip for the plot.
      maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', min: 0, max: timeline.endS, title: { display: true, text: 'seconds since sending began' } },
        y: { type: yLog ? 'logarithmic' : 'linear', beginAtZero: !yLog, title: { display: true, text: yTitle } },
      },
      plugins: { legend: { display: legend, position: 'bottom', labels: { boxWidth: 12, font: { size: 11 } } }, phases: { timeline } },
    },
  });
}

DATA.forEach((s, i) => {
  const tl = s.timeline;
  /** Each version's color, as the page's HTML legend shows it. @param {number} j */
  const color = (j) => s.results[j]?.color ?? '#777';
  const capacity = document.getElementById(`capacity-${i}`);
  if (capacity) {
    const ladders = s.results.map((r, j) => ({
      label: r.label, borderColor: color(j), backgroundColor: color(j), showLine: true, pointRadius: 4,
      /** @param {any} ctx */
      pointStyle: (ctx) => (ctx.raw && ctx.raw.valid === false ? 'crossRot' : 'circle'),
      data: r.steps ?? [],
    }));
    const xs = s.results.flatMap((r) => (r.steps ?? []).map((p) => p.x)).filter((x) => x > 0);
    const limit = { label: 'p99 limit', borderColor: '#777', borderDash: [6, 4], pointRadius: 0, showLine: true,
      data: xs.length ? [{ x: Math.min(...xs), y: s.p99LimitMs }, { x: Math.max(...xs), y: s.p99LimitMs }] : [] };
    new ChartJs(capacity, {
      type: 'scatter',
      data: { datasets: [...ladders, limit] },
      options: { animation: false, parsing: false, maintainAspectRatio: false, scales: {
        x: { type: 'logarithmic', title: { display: true, text: 'deliveries per second' } },
        y: { type: 'logarithmic', title: { display: true, text: 'p99, ms' } } }, plugins: { legend: { position: 'bottom' } } },
    });
  }
  timeChart(`latency-${i}`, tl, s.results.flatMap((r, j) => [
    { label: `${r.label} p50`, borderColor: color(j), pointRadius: 0, data: r.latencyOverTime.map((p) => ({ x: p.t + 0.5, y: Math.max(p.p50Ms, 0.01) })) },
    { label: `${r.label} p99`, borderColor: color(j), borderDash: [5, 4], pointRadius: 0, data: r.latencyOverTime.map((p) => ({ x: p.t + 0.5, y: Math.max(p.p99Ms, 0.01) })) },
  ]), 'ms (log)', true, false);
  timeChart(`rate-${i}`, tl, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 0,
    data: r.perSecond.map((n, t) => ({ x: t + 0.5, y: n })) })), 'deliveries per second');
  timeChart(`rss-${i}`, tl, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 0,
    data: r.samples.map((x) => ({ x: x.t, y: x.rssBytes / 1e6 })) })), 'RSS, MB');
  timeChart(`queue-${i}`, tl, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 0,
    data: r.samples.map((x) => ({ x: x.t, y: x.queueDepth })) })), 'messages queued');
  timeChart(`buffered-${i}`, tl, s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 0,
    data: r.samples.map((x) => ({ x: x.t, y: x.bufferedBytes / 1000 })) })), 'socket buffers, KB');
  const spectrum = document.getElementById(`spectrum-${i}`);
  if (spectrum) {
    new ChartJs(spectrum, {
      type: 'line',
      data: { datasets: s.results.map((r, j) => ({ label: r.label, borderColor: color(j), pointRadius: 2,
        data: r.spectrum.map(([p, ms]) => ({ x: nines(p), y: Math.max(ms, 0.01) })) })) },
      options: { animation: false, parsing: false, responsive: true, maintainAspectRatio: false, scales: {
        x: { type: 'linear', title: { display: true, text: 'percentile' }, ticks: { stepSize: 1, callback: ninesLabel } },
        y: { type: 'logarithmic', title: { display: true, text: 'latency, ms (log)' } } }, plugins: { legend: { position: 'bottom' } } },
    });
  }
  const loss = document.getElementById(`loss-${i}`);
  if (loss) {
    new ChartJs(loss, {
      type: 'bar',
      data: { labels: s.results.map((r) => r.label), datasets: [
        { label: 'lost deliveries', backgroundColor: '#d62728', data: s.results.map((r) => r.lost) },
        { label: 'dropped by the server', backgroundColor: '#ff7f0e', data: s.results.map((r) => r.drops) },
        { label: 'healthy clients stalled', backgroundColor: '#1f77b4', data: s.results.map((r) => r.stalled) },
      ] },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { type: 'logarithmic', title: { display: true, text: 'count (log)' } } }, plugins: { legend: { position: 'bottom' } } },
    });
  }
});
