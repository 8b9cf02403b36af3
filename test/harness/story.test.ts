// The headline and the evolution table, from a real run's results: what they say when the run
// shows the story, and what they say when it does not.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { ScenarioReport, StressReport } from '../../harness/report.ts';
import { evolutionStory, headlineLines } from '../../harness/story.ts';

const fixture = JSON.parse(await readFile(new URL('./fixtures/slow-consumer-report.json', import.meta.url), 'utf8')) as StressReport;
const scenario = fixture.scenarios[0]!;

describe('the headline', () => {
  it('flags a scenario that did not take effect, by version', () => {
    const weak: ScenarioReport = structuredClone(scenario);
    for (const r of weak.results) r.slowReaders!.pushedBack = false;
    expect(headlineLines(weak)[1]).toBe('✘ v2: the slow readers pushed back (the scenario took effect)\n✘ v3: the slow readers pushed back (the scenario took effect)');
  });

  it('names a broken server and healthy losses', () => {
    const bad: ScenarioReport = structuredClone(scenario);
    const v3 = bad.results[1]!;
    v3.health = { ...v3.health, broken: true, status: 'exited 2', findings: ['the server exited with code 2 0.4 s after sending began'] };
    v3.accounting.byKind.healthy.lost = 12;
    expect(headlineLines(bad)[0]).toContain('v3 is BROKEN: the server exited with code 2 0.4 s after sending began');
    expect(headlineLines(bad)[1]).toBe('✘ v3: the server held up (exited 2)\n✘ v3: healthy clients lost nothing (12 lost)');
  });
});

describe('the evolution table', () => {
  it('marks a flaw ✘ when the run does not show it, and · when the run does not hold it', () => {
    const rows = evolutionStory(fixture)!;
    expect(rows.map((r) => (r.evidence === null ? '·' : r.shown ? '✔' : '✘'))).toEqual(['·', '·', '✔', '·', '✔', '·']);
    const unstalled: StressReport = structuredClone(fixture);
    unstalled.scenarios[0]!.results[0]!.stalls.healthy.stalled = 0;
    expect(evolutionStory(unstalled)![2]!.shown).toBe(false);
  });

  it('is absent from a run that holds none of the story', () => {
    const other: StressReport = structuredClone(fixture);
    other.scenarios[0]!.scenario = 'rooms';
    expect(evolutionStory(other)).toBeNull();
  });
});
