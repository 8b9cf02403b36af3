// The stress library: runs scenarios × versions one after another (they share two cores, so
// never at once), aggregates, and writes report.json, report.md and report.html into one folder.
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { aggregate } from './aggregate.ts';
import { didYouMean } from '../common/cli-errors.ts';
import { connectFailureLine, urlHint } from '../auto-client/connect-hint.ts';
import { WireClient } from '../auto-client/wire-client.ts';
import { combineRepeats } from './repeats.ts';
import type { VersionResult } from './result.ts';
import { runCapacity } from './capacity.ts';
import { EXIT_CODES, outcomeOf } from './outcome.ts';
import type { RunMode } from './expectations.ts';
import type { Target } from './plan.ts';
import { renderHtml } from './render-html.ts';
import { renderMarkdown } from './report.ts';
import { machineInfo, type ScenarioReport, type StressReport } from './report-model.ts';
import { runTarget, targetSignIn, type Phase, type ProgressFn } from './run-target.ts';
import { REFERENCE } from './reference.ts';
import { DEFAULT_VERSIONS, SCENARIO_VERSIONS, SCENARIOS, resolveScenario, type ScenarioConfig, type ScenarioName } from './scenarios.ts';
import { evaluateThresholds, labelsOf, metricsOf, parseThreshold, SERVER_SIDE_METRICS, type Threshold } from './thresholds.ts';

export interface StressOptions {
  /** Labels from DEFAULT_VERSIONS. Default v1, v1.1, v2, v3-block, v3. Ignored with `target`. */
  versions: string[];
  /** Default baseline, slow-consumer, churn. */
  scenarios: ScenarioName[];
  /**
   * A scenario with versions of its own (SCENARIO_VERSIONS: scale-out compares v3 with v4
   * clusters; node-kill and broker-outage need a cluster) runs those instead of `versions`.
   * Default true; the CLI sets it false when --versions is given.
   */
  scenarioVersions: boolean;
  /** Overrides applied to every scenario's defaults. */
  overrides: Partial<ScenarioConfig>;
  /** ws:// URL of an external server relaying {token, content}; measured instead of the versions. */
  target?: string;
  /** Pass/fail criteria, e.g. "v3 p99 < 100ms", "v3 p99 < v2 p99 / 10" (thresholds.ts). */
  thresholds: string[];
  /** Runs of each version per scenario, interleaved; figures become medians with their range. Default 1. */
  repeat: number;
  /** Folder the run's folder goes into. Default 'reports'. */
  outDir: string;
  seed: number;
  /** The command line, recorded in the report. */
  command: string;
  /**
   * story: each version is judged against what the story expects of it (the default run: v2 must
   * fall behind, v3-block stall); strict: every version must hold. A --target run is always strict.
   */
  mode: RunMode;
}

export const DEFAULT_STRESS_OPTIONS: StressOptions = {
  // v3-block is v3 with the article's bug: slow-consumer shows its hub stalling every room.
  versions: ['v1', 'v1.1', 'v2', 'v3-block', 'v3'],
  scenarios: ['baseline', 'slow-consumer', 'churn'],
  scenarioVersions: true,
  overrides: {},
  thresholds: [],
  repeat: 1,
  outDir: 'reports',
  seed: 1,
  command: 'npm run stress',
  mode: 'strict',
};

/** Where a run stands in the whole: which scenario and run, and about how long is left. */
export interface RunPosition {
  scenario: string;
  /** 1-based, of `scenarios`. */
  scenarioIndex: number;
  scenarios: number;
  /** 1-based: this version's run within its scenario, of `runs` (versions × repeats). */
  runIndex: number;
  runs: number;
  /** Seconds since the stress run began, and an estimate of those left (null until it can tell). */
  elapsedS: number;
  leftS: number | null;
}

export interface StressHooks {
  onProgress?: (label: string, phase: Phase, fraction: number, where: RunPosition, detail?: string) => void;
  onScenario?: (s: ScenarioReport) => void;
}

/** Seconds a run takes beyond its warm-up, window and drain: start, connects, the after-run check, stop. */
const RUN_OVERHEAD_S = 6;
/** Runs a capacity ladder takes, for the estimate: the 1-2-5 steps and two halvings. */
const CAPACITY_STEPS_ESTIMATE = 9;

/** A run's planned seconds, for the time-left estimate. */
function plannedSeconds(c: ScenarioConfig): number {
  return (c.warmupS + c.durationS + c.drainS + RUN_OVERHEAD_S) * (c.scenario === 'capacity' ? CAPACITY_STEPS_ESTIMATE : 1);
}

/** The reference broadcaster's script: what the machine can do, to measure versions against. */
const CEILING_SCRIPT = 'versions/ceiling.ts';

export function resolveTargets(options: StressOptions): Target[] {
  if (options.target) {
    const hint = urlHint(options.target);
    if (hint) throw new RangeError(`target: ${hint}`);
    const url = new URL(options.target);
    if (url.protocol !== 'ws:') throw new RangeError('target must be a ws:// URL');
    if (!/^(127(\.\d{1,3}){3}|localhost|\[::1\])$/.test(url.hostname)) throw new RangeError('target must be on loopback (127.0.0.0/8, localhost, [::1]): load goes nowhere else');
    return [{ label: 'external', url: options.target }];
  }
  return options.versions.map((label) => {
    // A label may carry server flags after the version: "v3 --flush-pacing 0", "v3-kick --queue 32".
    const [name = '', ...flags] = label.trim().split(/\s+/);
    // The machine's ceiling is a reference broadcaster, not a chat version: its own script.
    if (name === REFERENCE) return { label: [name, ...flags].join(' '), args: flags, script: CEILING_SCRIPT };
    const args = DEFAULT_VERSIONS[name];
    if (!args) throw new RangeError(`versions: unknown "${name}"${((near) => (near ? ` (did you mean ${near}?)` : ''))(didYouMean(name, [...Object.keys(DEFAULT_VERSIONS), REFERENCE]))}; known: ${Object.keys(DEFAULT_VERSIONS).join(', ')}, and ${REFERENCE} (the machine's, for reference) (each may be followed by server flags, e.g. "v3 --queue 32")`);
    if (flags.length > 0 && !flags[0]?.startsWith('--')) throw new RangeError(`versions: "${label}": after the version come server flags (--name value), not "${flags[0]}"`);
    return { label: [name, ...flags].join(' '), args: [...args, ...flags] };
  });
}

/** The versions each scenario runs: its own (SCENARIO_VERSIONS) unless told otherwise, else the run's. */
export function versionsOf(scenario: ScenarioName, options: Pick<StressOptions, 'versions' | 'scenarioVersions'>): string[] {
  return (options.scenarioVersions ? SCENARIO_VERSIONS[scenario] : undefined) ?? options.versions;
}

export async function runStress(partial: Partial<StressOptions>, hooks: StressHooks = {}): Promise<{ report: StressReport; dir: string }> {
  const options: StressOptions = { ...DEFAULT_STRESS_OPTIONS, ...partial };
  // Validate everything before running anything.
  const configs = options.scenarios.map((name) => resolveScenario(name, options.overrides));
  const targetsOf = configs.map((c) => resolveTargets({ ...options, versions: versionsOf(c.scenario, options) }));
  const thresholds = resolveThresholds(options.thresholds, targetsOf.flat(), options.target !== undefined);
  if (!Number.isInteger(options.repeat) || options.repeat < 1 || options.repeat > 20) throw new RangeError('repeat must be an integer from 1 to 20');
  if (options.target) await preflight(options.target);
  const report: StressReport = {
    createdAt: new Date().toISOString(),
    command: options.command,
    machine: machineInfo(),
    seed: options.seed,
    scenarios: [],
    outcome: { exitCode: EXIT_CODES.ok, reasons: [] },
  };
  const onProgress = hooks.onProgress ?? (() => {});
  const startedMs = Date.now();
  // The estimate of time left: the planned seconds of the runs to come, scaled by how the plan has fared so far.
  let plannedLeftS = configs.reduce((sum, c, ci) => sum + plannedSeconds(c) * targetsOf[ci]!.length * options.repeat, 0);
  let plannedDoneS = 0;
  for (const [ci, config] of configs.entries()) {
    const targets = targetsOf[ci]!;
    // Interleaved (v1, v2, v3, v1, v2, v3, …): a slow minute of the machine falls on every version alike.
    const runs: VersionResult[][] = targets.map(() => []);
    for (let rep = 0; rep < options.repeat; rep++) {
      for (const [i, target] of targets.entries()) {
        const runStartedS = (Date.now() - startedMs) / 1000;
        const where = (fraction: number): RunPosition => {
          const elapsedS = (Date.now() - startedMs) / 1000;
          const pace = plannedDoneS > 0 ? runStartedS / plannedDoneS : 1;
          return {
            scenario: config.scenario,
            scenarioIndex: ci + 1,
            scenarios: configs.length,
            runIndex: rep * targets.length + i + 1,
            runs: targets.length * options.repeat,
            elapsedS,
            leftS: Math.max(0, (plannedLeftS - plannedSeconds(config) * fraction) * pace),
          };
        };
        const progress: ProgressFn = (label, phase, f, detail) => onProgress(options.repeat > 1 ? `${label} #${rep + 1}` : label, phase, f, where(f), detail);
        runs[i]!.push(config.scenario === 'capacity' ? await runCapacity(target, config, options.seed, progress) : aggregate(await runTarget(target, config, options.seed, progress)));
        plannedLeftS -= plannedSeconds(config);
        plannedDoneS += plannedSeconds(config);
      }
    }
    const results = runs.map((rs) => combineRepeats(rs, config.slow));
    const s: ScenarioReport = {
      scenario: config.scenario,
      describe: SCENARIOS[config.scenario].describe(config),
      config,
      results,
      thresholds: evaluateThresholds(thresholds, config.scenario, results),
      mode: options.target ? 'strict' : options.mode,
    };
    report.scenarios.push(s);
    hooks.onScenario?.(s);
  }
  report.outcome = outcomeOf(report);
  const dir = await writeReport(report, options.outDir);
  return { report, dir };
}

/** One connect to a target before the run: a target that does not answer fails in a second, not after the whole scenario. */
async function preflight(target: string): Promise<void> {
  const signIn = targetSignIn();
  const client = await WireClient.connect({ url: target, onText: () => {}, ...(signIn ? { authorization: await signIn('preflight') } : {}) }).catch((err: Error) => {
    throw new Error(`target: ${connectFailureLine(target, err)}`);
  });
  client.close();
}

/** Parses every threshold and checks that the versions it names are in this run. */
function resolveThresholds(expressions: readonly string[], targets: readonly Target[], external: boolean): Threshold[] {
  const labels = new Set(targets.map((t) => t.label));
  return expressions.map((e) => {
    const t = parseThreshold(e);
    const unknowable = external ? metricsOf(t).filter((m) => SERVER_SIDE_METRICS.has(m)) : [];
    if (unknowable.length > 0) {
      throw new RangeError(`threshold "${e}": ${unknowable.join(' and ')} come${unknowable.length === 1 ? 's' : ''} from the server's own counters, which a --target server is not asked for; this run cannot have ${unknowable.length === 1 ? 'it' : 'them'} (the clients' figures can: p50 p99 max lost stalled delivered/s …)`);
    }
    for (const label of labelsOf(t)) {
      if (!labels.has(label)) throw new RangeError(`threshold "${e}" names "${label}", which this run does not measure (it measures ${[...labels].join(', ')})`);
    }
    return t;
  });
}

export async function writeReport(report: StressReport, outDir: string): Promise<string> {
  const stamp = report.createdAt.replace(/[:.]/g, '-');
  const name = `${stamp}-${report.scenarios.map((s) => s.scenario).join('+')}`;
  const dir = resolve(outDir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'report.json'), JSON.stringify(report, null, 1));
  await writeFile(join(dir, 'report.md'), renderMarkdown(report));
  await writeFile(join(dir, 'report.html'), renderHtml(report));
  const latest = resolve(outDir, 'latest');
  await rm(latest, { force: true, recursive: false }).catch(() => {});
  await symlink(name, latest);
  return dir;
}
