// What a stress run reports: the machine, each scenario's results and thresholds, and the run's
// outcome. Data only (and where the machine figures come from): the runner fills it, the judges
// (story.ts, outcome.ts) and the renderers (report.ts, render-html.ts) read it.
import { cpus, totalmem, type as osType, release } from 'node:os';
import type { RunMode } from './expectations.ts';
import type { VersionResult } from './result.ts';
import type { ScenarioConfig } from './scenarios.ts';
import type { ThresholdResult } from './thresholds.ts';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
}

export interface ScenarioReport {
  scenario: string;
  describe: string;
  config: ScenarioConfig;
  results: VersionResult[];
  /** Every --threshold whose versions ran in this scenario, passed or not. */
  thresholds: ThresholdResult[];
  /** How its versions were judged: against the story (the default run) or strictly; absent in older reports (strict). */
  mode?: RunMode;
}

/** The whole run's answer: an exit code (outcome.ts) and, for anything but 0, why, one line per reason. */
export interface RunOutcome {
  exitCode: number;
  reasons: string[];
  /** The reasons under their headings: broken servers, runs not measurable, thresholds, checks or story rows. */
  sections?: Array<{ heading: string; lines: string[] }>;
}

export interface StressReport {
  createdAt: string;
  command: string;
  machine: MachineInfo;
  seed: number;
  scenarios: ScenarioReport[];
  /** The exit code `npm run stress` gives for this run, and why. */
  outcome: RunOutcome;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${osType()} ${release()}`,
    node: process.version,
  };
}
