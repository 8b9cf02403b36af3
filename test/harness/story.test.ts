// The headline and the evolution table, from a real run's results: what they say when the run
// shows the story, and what they say when it does not.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES, outcomeOf } from '../../harness/outcome.ts';
import { renderOutcome } from '../../harness/report.ts';
import type { ScenarioReport, StressReport } from '../../harness/report-model.ts';
import type { VersionResult } from '../../harness/result.ts';
import { evolutionStory, headlineLines, rowMark, storyLines } from '../../harness/story.ts';

const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;
const scenario = fixture.scenarios[0]!;

describe('the headline', () => {
  it('flags a scenario that did not take effect, by version', () => {
    const weak: ScenarioReport = structuredClone(scenario);
    for (const r of weak.results) r.slowReaders!.pushedBack = false;
    const failed = headlineLines(weak).filter((l) => l.startsWith('✘'));
    expect(failed).toContain('✘ v2: the slow readers did not push back (expected them to: the scenario did not take effect)');
    expect(failed).toContain('✘ v3: the slow readers did not push back (expected them to: the scenario did not take effect)');
  });

  it('names a broken server and healthy losses', () => {
    const bad: ScenarioReport = structuredClone(scenario);
    const v3 = bad.results[1]!;
    v3.health = { ...v3.health, broken: true, status: 'exited 2', findings: ['the server exited with code 2 0.4 s after sending began'] };
    v3.accounting.byKind.healthy.lost = 12;
    expect(headlineLines(bad)).toContain('v3 is BROKEN: the server exited with code 2 0.4 s after sending began.');
    expect(headlineLines(bad).filter((l) => l.startsWith('✘'))).toEqual([
      '✘ v2: all 39 healthy clients fell more than 1.0 s behind, up to 1.31 s (expected none)',
      '✘ v3: the server broke: exited 2 (expected it to hold)',
      '✘ v3: healthy clients lost 12 (expected 0)',
    ]);
  });
});

describe('the evolution table', () => {
  it('marks a flaw ✘ when the run does not show it, and · when the run does not hold it', () => {
    const rows = evolutionStory(fixture)!;
    expect(rows.map(rowMark)).toEqual(['·', '·', '✔', '·', '✔', '·', '·', '·', '·', '·']);
    const unstalled: StressReport = structuredClone(fixture);
    Object.assign(unstalled.scenarios[0]!.results[0]!.stalls.healthy, { stalled: 0, behind: 0, affected: 0, affectedMsMedian: 0 });
    expect(evolutionStory(unstalled)![2]!.shown).toBe(false);
  });

  it('prints the rows the run holds, two lines each, and the rest in one line at the end', () => {
    const lines = storyLines(evolutionStory(fixture)!);
    expect(lines).toHaveLength(1 + 2 * 2 + 1);
    expect(lines[1]).toBe('✔ v2: the lock is held across a slow write: one slow reader holds the room back. Fixed by v3 (a hub and a writer per client).');
    expect(lines.at(-1)).toMatch(/^· not in this run: dead sockets never leave the pool; a slow reader makes the server buffer without bound; .* \(npm run stress -- --full holds them all\)$/);
  });

  it('is absent from a run that holds none of the story', () => {
    const other: StressReport = structuredClone(fixture);
    other.scenarios[0]!.scenario = 'rooms';
    expect(evolutionStory(other)).toBeNull();
  });
});

/** The fixture's slow-consumer run as a story run: v2's room must fall behind its slow reader, v3 must hold. */
function storyRun(change: (v2: VersionResult, v3: VersionResult) => void = () => {}): StressReport {
  const r: StressReport = structuredClone(fixture);
  const s = r.scenarios[0]!;
  s.mode = 'story';
  change(s.results[0]!, s.results[1]!);
  return { ...r, outcome: outcomeOf(r) };
}

describe('a story run', () => {
  it('exits 0 when each version did what the story says, a broken v2 included', () => {
    const run = storyRun((v2) => {
      v2.health = { ...v2.health, broken: true, status: 'stopped relaying', findings: ['the server stopped relaying to every healthy client at 1.0 s for 2.5 s'] };
      Object.assign(v2.stalls.healthy, { behind: 39, behindMsMedian: 2600, affected: 39, affectedMsMedian: 2600 });
    });
    expect(run.outcome).toMatchObject({ exitCode: EXIT_CODES.ok, reasons: [] });
    expect(headlineLines(run.scenarios[0]!)).toContain('✔ all 6 checks of this scenario');
    expect(renderOutcome(run)).toBe('exit 0: the story held: every version did what the story says, every run was measurable');
  });

  it('says where the story did not reproduce, with the fact against the expectation, and exits 5', () => {
    const run = storyRun((v2) => Object.assign(v2.stalls.healthy, { stalled: 0, stalledMsMedian: 0, behind: 0, behindMsMedian: 0, affected: 0, affectedMsMedian: 0 }));
    expect(run.outcome.exitCode).toBe(EXIT_CODES.storyNotReproduced);
    expect(headlineLines(run.scenarios[0]!)).toContain('✘ v2: its 39 healthy clients kept up (p99 1.30 s) (the story expects it falls behind its slow readers (the lock waits on their writes))');
    expect(renderOutcome(run).split('\n').slice(0, 2)).toEqual(['exit 5: the story did not reproduce', '  where the story did not reproduce:']);
  });

  it('exits 2 when a version the story expects to hold breaks', () => {
    const run = storyRun((_, v3) => (v3.health = { ...v3.health, broken: true, status: 'exited 2', findings: ['the server exited with code 2'] }));
    expect(run.outcome.exitCode).toBe(EXIT_CODES.brokenServer);
    expect(run.outcome.sections![0]).toEqual({ heading: 'broken servers', lines: ['v3 in slow-consumer: the server exited with code 2'] });
  });

  it('holds every version to the same checks in a strict run, and exits 6 when healthy clients fell behind', () => {
    const r: StressReport = structuredClone(fixture);
    Object.assign(r.scenarios[0]!.results[0]!.stalls.healthy, { behind: 39, behindMsMedian: 2600, affected: 39, affectedMsMedian: 2600 });
    expect(outcomeOf(r)).toMatchObject({ exitCode: EXIT_CODES.checkFailed, reasons: ['slow-consumer: v2: all 39 healthy clients fell more than 1.0 s behind, up to 1.31 s (expected none)'] });
  });
});

describe('an INVALID run', () => {
  const invalid = (): StressReport =>
    storyRun((v2, v3) => {
      Object.assign(v2.stalls.healthy, { behind: 39, behindMsMedian: 2600, affected: 39, affectedMsMedian: 2600 });
      v3.valid = false;
      v3.invalidReasons = ['the machine was 97.1% busy (> 95%): server and generator competed for the cores'];
    });

  it('names no winner and has no checks: it says "not measurable", never "✔ all checks"', () => {
    const lines = headlineLines(invalid().scenarios[0]!);
    expect(lines.join('\n')).not.toMatch(/v3 kept up|v3's|of this scenario/);
    expect(lines).toContain('not measurable: v3, the machine was 97.1% busy (> 95%): server and generator competed for the cores');
    expect(lines).toContain('✔ all 2 checks of the versions it could measure');
  });

  it('leaves the story rows resting on it unjudged, and exits 3 under its own heading', () => {
    const run = invalid();
    const rows = evolutionStory(run)!;
    expect(rows.map(rowMark)).toEqual(['·', '·', '?', '·', '?', '·', '·', '·', '·', '·']);
    expect(rows[2]!.evidence).toBe('not measurable: v3 INVALID');
    expect(run.outcome.exitCode).toBe(EXIT_CODES.invalid);
    expect(run.outcome.sections!.map((x) => x.heading)).toEqual(['not measurable (INVALID: the machine or the generator, not the server, may have been the bottleneck)']);
  });
});

describe('the story past one process (--full)', () => {
  /** A story run holding one v4 scenario, from the fixture's v3 result: its clients lost nothing. */
  const v4Run = (scenario: 'node-kill' | 'broker-outage', label: string, change: (r: VersionResult) => void): StressReport => {
    const r: StressReport = structuredClone(fixture);
    const s = r.scenarios[0]!;
    const v = s.results[1]!;
    Object.assign(v, { label, slowReaders: null, recovery: null, cluster: null });
    Object.assign(v.accounting.byKind.healthy, { lost: 0 });
    // Resuming costs lateness, never loss: the replayed messages arrive late.
    Object.assign(v.stalls.healthy, { behind: 12, behindMsMedian: 1400, affected: 12, affectedMsMedian: 1400 });
    change(v);
    Object.assign(s, { scenario, mode: 'story', results: [v] });
    return { ...r, outcome: outcomeOf(r) };
  };
  const recovery = { faults: [], letGo: 100, resumed: 100, reconnectMsP50: 324, reconnectMsMax: 900, replayed: 412, gapMissed: 0, resets: 0, refused: 0, refusedButDelivered: 0, uncertain: 0, resent: 0, uncertainArrived: 0, lostWithNode: 0 };

  it('a node killed: ✔ when every client let go came back with nothing lost, late replays excused', () => {
    const run = v4Run('node-kill', 'v4 --nodes 3', (v) => (v.recovery = recovery));
    const row = evolutionStory(run)!.find((x) => x.hurts === 'v4 (one node)')!;
    expect(rowMark(row)).toBe('✔');
    expect(row.evidence).toBe('node-kill: v4 --nodes 3 loses a node, and its clients resume on another: 100 of 100 clients let go came back (reconnect p50 324 ms), 412 messages replayed, as the story expects; healthy clients lost 0, 0 duplicated, 0 reordered');
    expect(run.outcome.exitCode).toBe(EXIT_CODES.ok);
  });

  it('a node killed: ✘ when a client did not come back, or one lost a message', () => {
    const stranded = v4Run('node-kill', 'v4 --nodes 3', (v) => (v.recovery = { ...recovery, resumed: 97 }));
    expect(rowMark(evolutionStory(stranded)!.find((x) => x.hurts === 'v4 (one node)')!)).toBe('✘');
    expect(stranded.outcome.exitCode).toBe(EXIT_CODES.storyNotReproduced);
    const lossy = v4Run('node-kill', 'v4 --nodes 3', (v) => {
      v.recovery = recovery;
      v.accounting.byKind.healthy.lost = 3;
    });
    expect(evolutionStory(lossy)!.find((x) => x.hurts === 'v4 (one node)')!.evidence).toContain('✘ v4 --nodes 3: healthy clients lost 3 (expected 0)');
  });

  it('a refused send that arrives anyway, or a resend delivered twice, is ✘: a send is done once or refused', () => {
    const lied = v4Run('node-kill', 'v4 --nodes 3', (v) => (v.recovery = { ...recovery, refusedButDelivered: 2 }));
    const row = evolutionStory(lied)!.find((x) => x.hurts === 'v4 (one node)')!;
    expect(rowMark(row)).toBe('✘');
    expect(row.evidence).toContain('2 refused sends delivered anyway, 0 duplicates (expected 0 and 0)');
    const twice = v4Run('node-kill', 'v4 --nodes 3', (v) => {
      v.recovery = { ...recovery, uncertain: 4, resent: 5, uncertainArrived: 4 };
      v.accounting.duplicates = 1;
    });
    expect(rowMark(evolutionStory(twice)!.find((x) => x.hurts === 'v4 (one node)')!)).toBe('✘');
  });

  it('Redis down: ✔ when sends were refused and told, never silently lost', () => {
    const run = v4Run('broker-outage', 'v4 --nodes 2', (v) => (v.cluster = { nodes: [], redisCpuPct: null, publishRttP99Ms: 2, published: 900, refused: 229, replayed: 0, gaps: 0, resets: 2, reconnects: 2, outageS: 4 }));
    const row = evolutionStory(run)!.find((x) => x.hurts === 'v4 (every room)')!;
    expect(rowMark(row)).toBe('✔');
    expect(row.evidence).toMatch(/^broker-outage: v4 --nodes 2 stops every room while its one Redis is down: 229 sends refused \(BACKPLANE_DOWN\) while Redis was down/);
    expect(row.fixedBy).toBe('v5 (rooms sharded over a Redis Cluster with replicas), next');
  });
});
