// `node --import tsx scripts/story-runs.ts [--medians] REPORT…`: one row per default run (report
// folders or report.json files): its exit code, each evolution row's mark, which versions kept up
// in each scenario, and each row's evidence against its line, for docs/results.md's table of runs.
// --medians: the README's headline table instead, each figure's median over the runs and its range.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StressReport } from '../harness/report-model.ts';
import type { VersionResult } from '../harness/result.ts';
import { fmt } from '../common/helpers.ts';
import { evolutionStory, rowMark } from '../harness/story.ts';

async function load(path: string): Promise<StressReport> {
  const file = (await stat(path)).isDirectory() ? join(path, 'report.json') : path;
  return JSON.parse(await readFile(file, 'utf8')) as StressReport;
}

const find = (r: StressReport, scenario: string, label: string): VersionResult | undefined => r.scenarios.find((s) => s.scenario === scenario)?.results.find((x) => x.label === label);
const keptUp = (r: StressReport, scenario: string): string => {
  const s = r.scenarios.find((x) => x.scenario === scenario);
  if (!s) return '–';
  const ok = s.results.filter((x) => x.valid && !x.health.broken && x.stalls.healthy.behind === 0 && x.accounting.byKind.healthy.lost <= 0).map((x) => x.label);
  const invalid = s.results.filter((x) => !x.valid).map((x) => `${x.label} INVALID`);
  return [ok.length === s.results.length ? 'all' : ok.join(', ') || 'none', ...invalid].join('; ');
};
const s1 = (ms: number | undefined): string => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

const medians = process.argv[2] === '--medians';
const paths = process.argv.slice(medians ? 3 : 2);

if (medians) {
  const reports = await Promise.all(paths.map(load));
  const spread = (xs: number[], show: (x: number) => string): string => {
    const v = [...xs].sort((a, b) => a - b);
    const mid = v[Math.floor(v.length / 2)]!;
    const [lo, hi] = [show(v[0]!), show(v.at(-1)!)];
    return lo === hi ? show(mid) : `${show(mid)} (${lo} to ${hi})`;
  };
  const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`);
  const each = (scenario: string, label: string, read: (r: VersionResult) => number, show: (x: number) => string): string => {
    const xs = reports.map((r) => find(r, scenario, label)).filter((r): r is VersionResult => r !== undefined && r.valid).map(read);
    return xs.length > 0 ? spread(xs, show) : '–';
  };
  const versions = ['v1', 'v1.1', 'v2', 'v3-block', 'v3'];
  const figures: Array<[string, string, (r: VersionResult) => number, (x: number) => string]> = [
    ['slow-consumer: healthy p99', 'slow-consumer', (r) => r.latency.healthy.p99, ms],
    ['slow-consumer: healthy clients stalled or behind, median time', 'slow-consumer', (r) => r.stalls.healthy.affectedMsMedian, (x) => (x === 0 ? 'none' : `${(x / 1000).toFixed(1)} s`)],
    ['slow-consumer: buffered for the stuck readers (MB)', 'slow-consumer', (r) => r.server?.peakBufferedMB ?? 0, (x) => x.toFixed(1)],
    ['slow-consumer: dropped, all for the stuck readers', 'slow-consumer', (r) => r.accounting.serverDrops, (x) => fmt(Math.round(x))],
    ['churn: dead sockets in the pool', 'churn', (r) => (r.server ? r.server.poolSize - r.server.connections : 0), (x) => fmt(Math.round(x))],
    ['baseline: healthy p99', 'baseline', (r) => r.latency.healthy.p99, ms],
    ['baseline: deliveries per socket write', 'baseline', (r) => r.server?.deliveriesPerWrite ?? 0, (x) => x.toFixed(1)],
  ];
  const lines = [`| ${['figure', ...versions].join(' | ')} |`, `|${['', ...versions].map(() => '---').join('|')}|`];
  for (const [name, scenario, read, show] of figures) lines.push(`| ${name} | ${versions.map((v) => each(scenario, v, read, show)).join(' | ')} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

const head = ['run', 'exit', 'story rows', 'kept up: baseline', 'kept up: slow-consumer', 'v1 buffered', 'v2 stalled or behind (median)', 'v3-block stalled or behind (median)', 'v3 healthy p99, slow-consumer', 'deliveries per write v3 / v1', 'v1 dead sockets'];
const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
for (const [i, path] of paths.entries()) {
  const r = await load(path);
  const rows = evolutionStory(r) ?? [];
  const v1b = Math.max(find(r, 'slow-consumer', 'v1')?.server?.peakBufferedMB ?? 0, find(r, 'slow-consumer', 'v1.1')?.server?.peakBufferedMB ?? 0);
  const w1 = find(r, 'baseline', 'v1')?.server?.deliveriesPerWrite;
  const w3 = find(r, 'baseline', 'v3')?.server?.deliveriesPerWrite;
  const leak = find(r, 'churn', 'v1')?.server;
  lines.push(
    `| ${i + 1} | ${r.outcome.exitCode} | ${rows.filter((x) => x.evidence !== null).map(rowMark).join('')} | ${keptUp(r, 'baseline')} | ${keptUp(r, 'slow-consumer')} | ${v1b} MB | ${s1(find(r, 'slow-consumer', 'v2')?.stalls.healthy.affectedMsMedian)} | ${s1(find(r, 'slow-consumer', 'v3-block')?.stalls.healthy.affectedMsMedian)} | ${find(r, 'slow-consumer', 'v3')?.latency.healthy.p99.toFixed(1) ?? '–'} ms | ${w1 && w3 ? `${w3} / ${w1}` : '–'} | ${leak ? leak.poolSize - leak.connections : '–'} |`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
