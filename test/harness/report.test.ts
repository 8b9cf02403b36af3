// Renderers against a fixture result, and the stress CLI's output line by line.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderHtml } from '../../harness/render-html.ts';
import { renderMarkdown, renderTerminal } from '../../harness/report.ts';
import type { StressReport } from '../../harness/report-model.ts';
import { ROOT } from '../../harness/server-process.ts';
import { alive, delay, runCli } from '../helpers.ts';

/**
 * PIDs of running processes under `root` (its children, theirs, …) whose command line matches
 * (Linux /proc). Only its own tree: a server someone started by hand is none of this test's business.
 */
async function descendantsMatching(root: number, pattern: RegExp): Promise<number[]> {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!Number.isInteger(ppid)) continue;
    parent.set(Number(name), ppid);
    cmd.set(Number(name), (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' '));
  }
  const under = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) if (p === root) return true;
    return false;
  };
  return [...cmd.keys()].filter((pid) => under(pid) && pattern.test(cmd.get(pid)!));
}


const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;
const scenario = fixture.scenarios[0]!;

describe('renderTerminal', () => {
  it('prints the scenario, a row per version and a verdict per version', () => {
    const lines = renderTerminal(scenario).split('\n');
    expect(lines[0]).toBe(`slow-consumer: ${scenario.describe}`);
    // The headline first: who won, by how much, what went wrong; then the scenario's checks.
    // The headline first, one finding a line: who won, by how much, what went wrong; then the scenario's checks.
    expect(lines.slice(1, 7)).toEqual([
      '  v3 kept up (healthy p99 7.4 ms); v2 did not.',
      "  v2's healthy p99 is 1.30 s, 176× v3's (7.4 ms).",
      '  v2 stalled all 39 healthy clients for 1.3 s.',
      '  v2: all 39 healthy clients fell behind for 0.3 s (median), up to 1.31 s late.',
      // A strict run (this one named its versions): v2's lateness is a failed check, the fact against the expectation.
      '  ✘ v2: all 39 healthy clients fell more than 1.0 s behind, up to 1.31 s (expected none)',
      'latency: healthy receivers, one-way, from the intended send time (coordinated-omission corrected)',
    ]);
    // Compact by default: it fits 120 columns, and the detail is in the lines under it.
    expect(lines.find((l) => l.startsWith('│ version'))).toMatch(/│ version │ server │ p50 +│ p99 +│ deliv\.\/s │ lost │ dropped │ stalled +│ behind +│ generator │/);
    for (const l of lines.filter((x) => /^[┌│├└]/.test(x))) expect(l.length, l).toBeLessThanOrEqual(120);
    const cells = (row: string): string[] => row.split('│').map((c) => c.trim()).slice(1, -1);
    expect(cells(lines.find((l) => l.startsWith('│ v2 '))!)).toEqual(['v2', 'ok', '44.7 ms', '1.30 s', '8,027', '0', '0', 'all 1.3 s', 'all 0.3 s', 'ok']);
    expect(cells(lines.find((l) => l.startsWith('│ v3 '))!)).toEqual(['v3', 'ok', '2.2 ms', '7.4 ms', '7,995', '129', '129', '0/39', '0/39', 'ok']);
    expect(lines.slice(-4)).toEqual([
      '  v2: one slow reader stalled all 39 healthy clients for 1.3 s (median)',
      '    all 39 healthy clients fell behind for 0.3 s (median), up to 1.31 s late, p99 1.30 s',
      '  v3: 39 healthy clients never stalled or fell behind, p99 7.4 ms',
      '    129 deliveries lost, all for the slow reader; healthy clients lost 0 (each dropped by the server and told)',
    ]);
    // --wide: every column, as report.md has them.
    const wide = renderTerminal(scenario, false, true).split('\n');
    expect(cells(wide.find((l) => l.startsWith('│ v2 '))!)).toEqual(['v2', 'ok', '44.7 ms', '1.12 s', '1.30 s', '1.31 s', '1.31 s', '8,027', '0', '0', '39/39 1.3 s', '39/39 0.3 s', '26.8%', '133 MB', 'ok (lag p99 3 ms)']);
  });

  it('prints every threshold checked, ✔ or ✘, with the headline', () => {
    const withThresholds = { ...scenario, thresholds: [
      { expression: 'v3 p99 < 100ms', scenario: 'slow-consumer', pass: true, actual: '7.4 ms' },
      { expression: 'v3 p99 < v2 p99 / 1000', scenario: 'slow-consumer', pass: false, actual: '7.4 ms against 1.3 ms (v2 p99 1,300 ms / 1000)' },
    ] };
    const lines = renderTerminal(withThresholds).split('\n');
    const at = lines.indexOf('  ✔ v3 p99 < 100ms (7.4 ms)');
    expect(lines.slice(at, at + 3)).toEqual(['  ✔ v3 p99 < 100ms (7.4 ms)', '  ✘ v3 p99 < v2 p99 / 1000 (7.4 ms against 1.3 ms (v2 p99 1,300 ms / 1000))', 'latency: healthy receivers, one-way, from the intended send time (coordinated-omission corrected)']);
  });
});

describe('renderMarkdown', () => {
  it('writes the machine, the configuration, both tables and the verdicts', () => {
    const md = renderMarkdown(fixture).split('\n');
    expect(md[0]).toBe('# chatroom-evolution stress report');
    expect(md).toContain(`2026-12-02T12:00:00.000Z · \`${fixture.command}\` · seed 1`);
    expect(md).toContain('Machine: 2 × Test CPU, 24 GiB, Linux 6.1, Node v20.20.2. Server and generator share it.');
    expect(md).toContain('40 clients, 4 senders × 50 msg/s, 16000 B, 1 room, 1 slow (stuck); warm-up 1 s, measured 4 s, drain 3 s, 1 worker.');
    expect(md).toContain('| v2 | ok | 44.7 ms | 1.12 s | 1.30 s | 1.31 s | 1.31 s | 8,027 | 0 | 0 | 39/39 1.3 s | 39/39 0.3 s | 26.8% | 133 MB | ok (lag p99 3 ms) |');
    // expected, received, lost, lost by healthy clients, by slow ones, told dropped, unexplained, kicked, offered
    expect(md.find((l) => l.startsWith('| v3 | 7.4 ms |'))).toMatch(/\| 36,360 \| 36,231 \| 129 \| 0 \| 129 \| 129 \| 0 \| 0 \| 100% \|/);
    expect(md).toContain('- v3: 39 healthy clients never stalled or fell behind, p99 7.4 ms; 129 deliveries lost, all for the slow reader; healthy clients lost 0 (each dropped by the server and told)');
    expect(md).toContain('**v3 kept up (healthy p99 7.4 ms); v2 did not.**');
    expect(md).toContain("- v2's healthy p99 is 1.30 s, 176× v3's (7.4 ms).");
    expect(md).toContain('- v2 stalled all 39 healthy clients for 1.3 s.');
    expect(md).toContain('- ✘ v2: all 39 healthy clients fell more than 1.0 s behind, up to 1.31 s (expected none)');
    // The evolution table opens the report; this run holds only the slow-consumer rows of it.
    expect(md).toContain('## The evolution, as this run measured it');
    expect(md).toContain('| ✔ | the lock is held across a slow write: one slow reader holds the room back | v2 | slow-consumer: v2: all 39 healthy clients stalled for 1.3 s, all 39 fell behind for 0.3 s, up to 1.31 s late; v3: its 39 healthy clients kept up (p99 7.4 ms) | v3 (a hub and a writer per client) |');
    expect(md).toContain('| · | dead sockets never leave the pool | v1 | not in this run | v1.1 (prune on close) |');
    expect(md.find((l) => l.startsWith('- **v3**: held up;'))).toMatch(/held up; \d+ of \d+ TCP probes answered; relayed between two fresh clients after the run$/);
    expect(md.find((l) => l.startsWith('- **v2**: yes:'))).toMatch(/^- \*\*v2\*\*: yes: [\d.]+ MB behind at resume, loopback holds [\d.]+ MB/);
    expect(md.find((l) => l.startsWith('- **v3**: yes:'))).toMatch(/; server queued up to \d+ messages, .*dropped 129 messages$/);
  });
});

describe('renderHtml', () => {
  it('is one self-contained page saying everything report.md says, with a chart set per scenario', () => {
    const html = renderHtml(fixture, '/* chart library */', '/* page script */');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<script>/* chart library */</script>');
    expect(html).toContain('<script>/* page script */</script>');
    expect(html).not.toMatch(/<script[^>]+src=/);
    // every section of report.md, in the same words
    const md = renderMarkdown(fixture);
    const headings = md.split('\n').filter((l) => /^#{1,3} /.test(l));
    expect(headings).toContain('## How to read this');
    for (const h of headings) expect(html).toContain(`>${h.replace(/^#+ /, '').replace(/'/g, '&#39;')}</h`);
    expect(html).toContain('<th>p99 uncorrected</th>'); // the second table
    expect(html).toContain('<td class="n">39/39 1.3 s</td>'); // figures on the right
    expect(html).toMatch(/<td>slow-consumer: v2: all 39 healthy clients stalled/); // prose on the left
    expect(html).toContain('<strong>v3 kept up (healthy p99 7.4 ms); v2 did not.</strong>');
    // charts with accessible names, on one time axis
    for (const id of ['latency-0', 'rate-0', 'rss-0', 'queue-0', 'buffered-0', 'spectrum-0', 'loss-0']) expect(html).toMatch(new RegExp(`<canvas id="${id}" role="img" aria-label="Chart: [^"]+">`));
    expect(html).toContain('seconds since sending began (warm-up 0-1 s, measured to 5 s, drain to 8 s)');
    const data = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!) as Array<{ timeline: unknown; results: Array<{ latencyOverTime: unknown[] }> }>;
    expect(data[0]!.timeline).toMatchObject({ endS: 8, phases: [{ label: 'warm-up', fromS: 0, toS: 1 }, { label: 'measured' }, { label: 'drain', toS: 8 }], stuck: { fromS: 0 } });
    // a report quoting something hostile shows it as text
    const evil = structuredClone(fixture);
    evil.scenarios[0]!.results[0]!.label = '</script><img src=x onerror=alert(1)>';
    const page = renderHtml(evil, '', '');
    expect(page).not.toContain('</script><img');
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('says "nothing lost" in words instead of an empty loss chart', () => {
    const clean = structuredClone(fixture);
    for (const r of clean.scenarios[0]!.results) {
      r.accounting.lost = 0;
      r.accounting.serverDrops = 0;
      r.stalls.healthy.stalled = 0;
    }
    const html = renderHtml(clean, '', '');
    expect(html).not.toContain('id="loss-0"');
    expect(html).toContain('Nothing lost, nothing dropped, and no healthy client stalled, in any version.');
    // Queue and buffer charts with nothing to show are sentences too.
    for (const r of clean.scenarios[0]!.results) for (const x of r.samples) Object.assign(x, { queueDepth: 0, bufferedBytes: 0 });
    const quiet = renderHtml(clean, '', '');
    expect(quiet).not.toContain('id="queue-0"');
    expect(quiet).toContain('<p class="none">No version queued a message in the server.</p>');
    expect(quiet).toContain('<p class="none">No version held a kilobyte in its socket buffers.</p>');
  });
});

describe('npm run stress (the CLI)', () => {
  it('prints progress and the table on stderr, the report on stdout with --json, and exits 0', async () => {
    const out = await mkdtemp(join(tmpdir(), 'stress-cli-'));
    try {
      const args = ['--versions', 'v3', '--scenario', 'baseline', '--clients', '20', '--senders', '2', '--warmup', '0', '--duration', '1', '--drain', '1', '--workers', '1', '--out', out, '--json'];
      const { code, stdout, stderr } = await runCli('harness/cli.ts', args);
      expect(code, stderr).toBe(0);
      const lines = stderr.split('\n');
      expect(lines[0]).toBe('chatroom-evolution stress: baseline × v3');
      // No warm-up asked for, and the measure phase is not repeated off a terminal.
      // One line per phase with the time since the run began; the measure phase too, off a terminal.
      expect(lines.slice(1, 6).map((l) => l.replace(/^ {2}\d+:\d\d /, '  m:ss '))).toEqual(
        ['start', 'connect', 'measure', 'drain', 'stop'].map((phase) => `  m:ss baseline (1/1) · v3 (1/1): ${phase}`),
      );
      expect(lines).toContain(`baseline: everyone reads; 2 senders × 2 msg/s in bursts of 5 into one room of 20`);
      expect(lines.some((l) => /^│ v3 +│ ok +│ [\d.]+ ms/.test(l))).toBe(true);
      expect(lines.find((l) => l.startsWith('  v3: '))).toMatch(/^ {2}v3: 20 healthy clients never stalled or fell behind, p99 [\d.]+ ms$/);
      expect(lines.find((l) => l.startsWith('report: '))).toMatch(/^report: .*-baseline\/report\.html \(also report\.md, report\.json; .* points here\)$/);
      expect(lines).toContain('exit 0: every server held up, every check passed, every run was measurable');
      const report = JSON.parse(stdout) as StressReport;
      expect(report.scenarios[0]!.config.clients).toBe(20);
      expect(report.scenarios[0]!.results[0]!.accounting.lost).toBe(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('stops the server and the workers it started when interrupted, and exits 130', async () => {
    const out = await mkdtemp(join(tmpdir(), 'stress-sigint-'));
    const args = ['--versions', 'v3', '--scenario', 'baseline', '--clients', '20', '--senders', '2', '--warmup', '20', '--duration', '20', '--workers', '1', '--out', out];
    const child = spawn(process.execPath, ['--import', 'tsx', 'harness/cli.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 200 && !stderr.includes('v3 (1/1): warmup'); i++) await delay(50);
      expect(stderr).toContain('v3 (1/1): warmup');
      const started = await descendantsMatching(child.pid!, /versions\/cli\.ts v3 |auto-client\/swarm-worker\.ts/);
      expect(started.length).toBeGreaterThanOrEqual(2); // the server (under tsx) and a worker
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(stderr).toContain('SIGINT: stopping the servers and workers this run started');
      expect(started.filter(alive)).toEqual([]);
    } finally {
      // Even when an assertion failed first: SIGINT lets the CLI stop what it started; SIGKILL would orphan its server.
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await Promise.race([exited, delay(10_000)]);
      }
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(out, { recursive: true, force: true });
    }
  });

  it('refuses a target off loopback and a bad scenario size with a clear message and exit 1', async () => {
    const run = async (args: string[]): Promise<[number | null, string]> => {
      const r = await runCli('harness/cli.ts', args);
      return [r.code, r.stderr];
    };
    const [c1, e1] = await run(['--target', 'ws://10.0.0.1:80/chatroom']);
    expect(c1).toBe(1);
    expect(e1).toContain('stress failed: target must be on loopback');
    const [c2, e2] = await run(['--size', '99999']);
    expect(c2).toBe(1);
    expect(e2).toContain('stress failed: size must be an integer from 32 to 16000');
  });
});
