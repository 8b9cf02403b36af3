// One self-contained HTML page per run: works offline, Chart.js inlined from node_modules.
// Its text is report.md, rendered (so the page says everything the Markdown says, in the same
// words), with each scenario's charts after its section. The charts' script is a real file,
// report-page.js, type-checked with the rest; its data travels as JSON.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Marked } from 'marked';
import { byTarget } from './capacity-figures.ts';
import { renderMarkdown } from './report.ts';
import type { ScenarioReport, StressReport } from './report-model.ts';
import { slowResumeUs } from './scenarios.ts';

export function loadChartLibrary(): string {
  const require = createRequire(import.meta.url);
  // chart.js exports no subpath for its UMD build; it sits beside the main entry in dist/.
  return readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
}

const PAGE_SCRIPT = fileURLToPath(new URL('./report-page.js', import.meta.url));

/** JSON safe to put inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

// A report quotes what servers said (a crash's stderr): never as HTML. Tables scroll inside their
// own box, so a phone-width page does not.
const markdown = new Marked({
  gfm: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
  },
});

function toHtml(md: string): string {
  return (markdown.parse(md) as string)
    .replace(/<table>/g, '<div class="scroll"><table>')
    .replace(/<\/table>/g, '</table></div>')
    // Figures line up on the right; prose (verdicts, evidence) reads from the left.
    .replace(/<td>(?=[\d–-]|n\/a)/g, '<td class="n">');
}

/** Each version's color, in the charts (report-page.js reads it from the data) and in the HTML legend. */
const COLORS = ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];

/** What the charts of one scenario show, for report-page.js (its types are declared there). */
function chartData(s: ScenarioReport): unknown {
  const c = s.config;
  const end = c.warmupS + c.durationS + c.drainS;
  const faults = s.results.flatMap((r) => (r.recovery?.faults ?? []).map((f) => ({ label: `${r.label}: ${f.kind}`, atS: f.atS, endS: f.endS })));
  return {
    scenario: s.scenario,
    p99LimitMs: c.p99LimitMs,
    timeline: {
      endS: end,
      phases: [
        { label: 'warm-up', fromS: 0, toS: c.warmupS },
        { label: 'measured', fromS: c.warmupS, toS: c.warmupS + c.durationS },
        { label: 'drain', fromS: c.warmupS + c.durationS, toS: end },
      ],
      stuck: c.slow > 0 && c.slowMode === 'stuck' ? { fromS: 0, toS: slowResumeUs(c) / 1e6 } : null,
      faults,
    },
    results: s.results.map((r, j) => ({
      label: r.label,
      color: COLORS[j % COLORS.length],
      steps: r.capacity ? byTarget(r.capacity.steps).map((st) => ({ x: st.deliveryRate, y: st.p99Ms, valid: st.valid })) : null,
      spectrum: r.spectrum.healthy,
      perSecond: r.deliveriesPerSecond,
      latencyOverTime: r.latencyOverTime ?? [],
      samples: r.samples,
      lost: r.accounting.lost,
      drops: r.accounting.serverDrops,
      stalled: r.stalls.healthy.stalled,
    })),
  };
}

function chartsHtml(s: ScenarioReport, i: number): string {
  const nothingWrong = s.results.every((r) => r.accounting.lost === 0 && r.accounting.serverDrops === 0 && r.stalls.healthy.stalled === 0);
  const t = s.config;
  const axis = `x: seconds since sending began (warm-up 0-${t.warmupS} s, measured to ${t.warmupS + t.durationS} s, drain to ${t.warmupS + t.durationS + t.drainS} s)`;
  const figure = (id: string, caption: string, label: string, extra = ''): string =>
    `<figure${id === 'latency' ? ' class="wide"' : ''}><figcaption>${escapeHtml(caption)}</figcaption><div class="plot"><canvas id="${id}-${i}" role="img" aria-label="${escapeHtml(label)}"></canvas></div>${extra}</figure>`;
  // A chart with nothing to show is a sentence.
  const none = (sentence: string): string => `<p class="none">${escapeHtml(sentence)}</p>`;
  const anyQueued = s.results.some((r) => r.samples.some((x) => x.queueDepth > 0));
  const anyBuffered = s.results.some((r) => r.samples.some((x) => x.bufferedBytes >= 1000));
  const legend = `<p class="legend">${s.results.map((r, j) => `<span><i style="background:${COLORS[j % COLORS.length]}"></i>${escapeHtml(r.label)}</span>`).join('')}<span>solid p50, dashed p99</span></p>`;
  return `<div class="charts">
  ${s.results.some((r) => r.capacity) ? figure('capacity', 'Capacity: p99 of each step by deliveries per second (log-log; crossed: not measurable; dashed: the limit)', `Chart: p99 latency in ms against deliveries per second for each capacity step of ${s.results.map((r) => r.label).join(', ')}`) : ''}
  ${figure('latency', 'Latency over time: healthy receivers, ms (log), by when each message was due; shaded: warm-up and drain; red: stuck readers; lines: faults', `Chart: healthy receivers' p50 and p99 latency in milliseconds for each second of the run, per version. ${axis}`, legend)}
  ${figure('rate', 'Deliveries per second, seen by clients', `Chart: deliveries per second seen by clients, per version. ${axis}`)}
  ${figure('rss', 'Server RSS, MB', `Chart: the server's resident memory in megabytes, per version. ${axis}`)}
  ${anyQueued ? figure('queue', 'Messages queued in the server (v3 queues; v2 broadcasts waiting for the lock)', `Chart: messages queued in the server, per version. ${axis}`) : none('No version queued a message in the server.')}
  ${anyBuffered ? figure('buffered', 'Bytes waiting in the server\'s socket buffers, KB', `Chart: kilobytes waiting in user-space socket send buffers, per version. ${axis}`) : none('No version held a kilobyte in its socket buffers.')}
  ${figure('spectrum', 'Latency percentile spectrum, healthy receivers, ms (log)', 'Chart: healthy receivers\' latency in milliseconds at each percentile from 0 to the maximum, per version')}
  ${nothingWrong ? '<p class="nothing-lost">Nothing lost, nothing dropped, and no healthy client stalled, in any version.</p>' : figure('loss', 'Lost deliveries, deliveries dropped by the server, and healthy clients stalled (counts)', `Chart: lost deliveries, dropped deliveries and stalled healthy clients, per version`)}
</div>`;
}

export function renderHtml(report: StressReport, chartLibrary: string = loadChartLibrary(), pageScript: string = readFileSync(PAGE_SCRIPT, 'utf8')): string {
  // report.md, cut where each `## ` section begins; a scenario's charts follow its section.
  const md = renderMarkdown(report);
  const chunks = md.split(/\n(?=## )/);
  const scenarioIndex = new Map(report.scenarios.map((s, i) => [s.scenario, i]));
  const body = chunks
    .map((chunk) => {
      const heading = /^## (.+)$/m.exec(chunk)?.[1];
      const i = heading === undefined ? undefined : scenarioIndex.get(heading as ScenarioReport['scenario']);
      return i === undefined ? `<section>${toHtml(chunk)}</section>` : `<section>${toHtml(chunk)}${chartsHtml(report.scenarios[i] as ScenarioReport, i)}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chatroom-evolution stress report ${escapeHtml(report.createdAt)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 75rem; padding: 1rem; color: #222; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.4rem; text-align: left; overflow-wrap: normal; }
td.n { text-align: right; }
pre { white-space: pre-wrap; }
code { overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(22rem, 100%), 1fr)); gap: 1rem; }
figure { margin: 0; min-width: 0; } figcaption { font-size: 0.85rem; color: #555; }
figure.wide { grid-column: 1 / -1; }
.plot { position: relative; height: 16rem; } figure.wide .plot { height: 20rem; }
.legend { font-size: 0.8rem; margin: 0.2rem 0; display: flex; flex-wrap: wrap; gap: 0.2rem 0.8rem; }
.legend i { display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.3rem; vertical-align: -0.1rem; }
.none { color: #555; font-size: 0.9rem; }
.nothing-lost { color: #1b7f3b; }
</style>
</head>
<body>
${body}
<script type="application/json" id="report-data">${scriptJson(report.scenarios.map(chartData))}</script>
<script>${chartLibrary}</script>
<script>${pageScript}</script>
</body>
</html>
`;
}
