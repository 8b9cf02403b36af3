// `npm run stress -- [flags]`: a thin shell over runStress. Progress and tables go to stderr;
// --json puts the whole report on stdout. The only module here that touches argv and exit codes.
import { relative } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { flagErrorLine } from '../common/cli-errors.ts';
import { EXIT_CODES } from './outcome.ts';
import { renderOutcome, renderStoryTerminal, renderTerminal } from './report.ts';
import type { Phase } from './run-target.ts';
import { DEFAULT_VERSIONS, FULL_SCENARIOS, SCENARIO_NAMES, type ScenarioConfig, type ScenarioName } from './scenarios.ts';
import { stopAllStarted } from './server-process.ts';
import { DEFAULT_STRESS_OPTIONS, runStress, versionsOf, type RunPosition } from './stress.ts';

const OPTIONS = {
    versions: { type: 'string', array: true, default: DEFAULT_STRESS_OPTIONS.versions, describe: `versions to compare: ${Object.keys(DEFAULT_VERSIONS).join(', ')}; one may carry server flags in quotes, e.g. "v3 --flush-pacing 0" (see npm run v3 -- --help)` },
    scenario: { type: 'string', array: true, choices: SCENARIO_NAMES, default: DEFAULT_STRESS_OPTIONS.scenarios, describe: 'scenarios to run' },
    clients: { type: 'number', describe: 'clients connected for the whole run' },
    senders: { type: 'number', describe: 'clients that send, spread over the rooms' },
    rate: { type: 'number', describe: 'messages per second per sender' },
    size: { type: 'number', describe: 'content size in bytes (32-16000)' },
    duration: { type: 'number', describe: 'measured window in seconds' },
    warmup: { type: 'number', describe: 'warm-up before the window, in seconds' },
    drain: { type: 'number', describe: 'seconds to wait for deliveries after senders stop' },
    slow: { type: 'number', describe: 'slow readers among the clients' },
    'slow-mode': { choices: ['stuck', 'throttle'] as const, describe: 'stuck: stop reading; throttle: read at --slow-rate bytes/s' },
    'slow-rate': { type: 'number', describe: 'bytes per second a throttled reader reads' },
    churn: { type: 'number', describe: 'extra clients that leave and come back' },
    rooms: { type: 'number', describe: 'rooms the clients are spread over' },
    burst: { type: 'number', describe: 'messages a sender sends at once (same average rate)' },
    poisson: { type: 'boolean', describe: 'Poisson arrivals instead of a fixed period' },
    workers: { type: 'number', describe: "worker processes for the clients (default: the scenario's, more until none holds over 12,500; at most 15,000 each)" },
    'p99-limit': { type: 'number', describe: 'capacity: p99 in ms a step must stay under to count (default 100)' },
    'behind-ms': { type: 'number', describe: 'a delivery this many ms later than it was due puts its receiver behind (default 1000)' },
    switchers: { type: 'number', describe: 'extra clients that switch rooms or rename once a second each and must get an answer every time (broker-outage: 10)' },
    'flood-rate': { type: 'number', describe: 'flood: frames per second the abusive client writes (default 20,000)' },
    tabs: { type: 'number', describe: 'direct: connections each user holds (default 2)' },
    'fan-in': { type: 'number', describe: 'direct: users who write to one user in a fan-in group (default 4; 0: pairs only)' },
    'auth-header': { type: 'string', describe: "direct on a --target: each user's Authorization header, {user} standing for the user: 'Bearer {user}', 'Bearer dev-{user}' (default: $CHAT_AUTH_HEADER)" },
    'jwt-secret': { type: 'string', describe: "direct on a --target: the HS256 secret the target verifies tokens with; the harness signs each user's token (default: $CHAT_JWT_SECRET; the harness's own servers get a secret of each run's)" },
    target: { type: 'string', describe: 'measure an external ws:// server on loopback that relays each {"type":"chat","content"} it gets to every client (see the README)' },
    repeat: { type: 'number', default: DEFAULT_STRESS_OPTIONS.repeat, describe: 'runs of each version per scenario, interleaved; each figure becomes the median with its min-max (1-20)' },
    threshold: { type: 'string', array: true, default: [] as string[], describe: 'pass/fail, repeatable: "v3 p99 < 100ms", "v3 lost == 0", "v3 p99 < v2 p99 / 10"; metrics p50 p90 p99 p99.9 max lost lost.healthy lost.slow unexplained dropped stalled delivered/s cpu rss' },
    out: { type: 'string', default: DEFAULT_STRESS_OPTIONS.outDir, describe: 'folder for report folders' },
    json: { type: 'boolean', default: false, describe: 'print the whole report as JSON on stdout' },
    full: { type: 'boolean', default: false, describe: 'the default run, then the story past one process: scale-out, node-kill and broker-outage on v4 over a private Redis (about 2 minutes more)' },
    wide: { type: 'boolean', default: false, describe: 'show every column of the tables (they fit 120 columns without it)' },
    seed: { type: 'number', default: DEFAULT_STRESS_OPTIONS.seed, describe: 'seed for schedules' },
} as const;

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run stress --')
  .usage(
    '$0 [flags]\n\nRuns each version through each scenario and writes reports/<timestamp>-<scenarios>/ (report.json, report.md, report.html).\nScenario flags override every chosen scenario\'s defaults.\n\n' +
      `The default run tells the story: each version is judged against what the story expects of it (v1 leaks in churn, v2 falls behind a slow reader, v3-block stalls, v3 holds). Naming --versions, a --target or a --threshold asks for strict checks: every version must hold.\n\n` +
      `Exit codes: ${EXIT_CODES.ok} the story held (strict: every check passed); ${EXIT_CODES.error} bad flags or the harness failed; ${EXIT_CODES.brokenServer} a server broke where it should hold (crashed, stopped accepting or relaying, closed or refused clients); ${EXIT_CODES.invalid} a run was INVALID (the machine or the generator may have been the bottleneck); ${EXIT_CODES.thresholdFailed} a --threshold failed; ${EXIT_CODES.storyNotReproduced} the story did not reproduce; ${EXIT_CODES.checkFailed} a strict check failed (healthy clients lost messages or fell behind, or the scenario did not take effect).`,
  )
  .options(OPTIONS)
  .strict()
  // --version would print the package's version and run nothing: it is too near --versions.
  .version(false)
  .fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`${flagErrorLine('npm run stress --', msg, [...Object.keys(OPTIONS), 'help'], { scenario: SCENARIO_NAMES, 'slow-mode': ['stuck', 'throttle'] })}\n`);
    process.exit(EXIT_CODES.error);
  })
  .help()
  .parseAsync();

// (in the environment, where the run that signs tokens reads it: never in a report)
if (argv['jwt-secret'] !== undefined) process.env.CHAT_JWT_SECRET = argv['jwt-secret'];
if (argv['auth-header'] !== undefined) process.env.CHAT_AUTH_HEADER = argv['auth-header'];

const overrides: Partial<ScenarioConfig> = {
  clients: argv.clients,
  senders: argv.senders,
  rate: argv.rate,
  size: argv.size,
  durationS: argv.duration,
  warmupS: argv.warmup,
  drainS: argv.drain,
  slow: argv.slow,
  slowMode: argv['slow-mode'],
  slowBytesPerSec: argv['slow-rate'],
  churnClients: argv.churn,
  rooms: argv.rooms,
  burst: argv.burst,
  poisson: argv.poisson,
  workers: argv.workers,
  p99LimitMs: argv['p99-limit'],
  behindMs: argv['behind-ms'],
  tabs: argv.tabs,
  floodRate: argv['flood-rate'],
  switchers: argv.switchers,
  fanIn: argv['fan-in'],
};

const tty = process.stderr.isTTY === true;
let lastLine = '';
/** "1:05", "12 s": minutes and seconds as a person plans by. */
const clock = (s: number): string => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
const about = (s: number): string => (s >= 90 ? `about ${Math.round(s / 60)} min left` : `about ${Math.max(5, Math.round(s / 5) * 5)} s left`);
/** Piped, a phase that goes on (a long connect) says how far it has got at most this often. */
const PIPED_DETAIL_EVERY_MS = 10_000;
let lastDetailAt = 0;
function progress(label: string, phase: Phase, fraction: number, where: RunPosition, detail?: string): void {
  const place = `${where.scenario} (${where.scenarioIndex}/${where.scenarios}) · ${label} (${where.runIndex}/${where.runs})`;
  if (tty) {
    const left = where.leftS === null ? '' : ` · ${about(where.leftS)}`;
    const done = detail ? ` ${detail}` : phase === 'measure' || phase === 'warmup' ? ` ${Math.round(fraction * 100)}%` : '';
    const line = `${place} · ${phase}${done}${left}`;
    process.stderr.write(`\r  ${line.slice(0, 110).padEnd(110)}`);
  } else {
    // Piped: one line per phase, with the time since the run began (and a long phase's progress every 10 s).
    const line = `${place}: ${phase}`;
    const now = Date.now();
    if (line !== lastLine) {
      process.stderr.write(`  ${clock(where.elapsedS)} ${line}\n`);
      lastDetailAt = now;
    } else if (detail && now - lastDetailAt >= PIPED_DETAIL_EVERY_MS) {
      process.stderr.write(`  ${clock(where.elapsedS)} ${line}: ${detail}\n`);
      lastDetailAt = now;
    }
    lastLine = line;
  }
}

// Ctrl-C or a kill ends the run, not the servers and workers it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the servers and workers this run started\n`);
    void stopAllStarted().finally(() => process.exit(130));
  });
}

try {
  // --full: the default run, then the story past one process (each of those scenarios runs its own versions).
  const scenarios = argv.full ? [...new Set([...(argv.scenario as ScenarioName[]), ...FULL_SCENARIOS])] : (argv.scenario as ScenarioName[]);
  const given = (flag: string): boolean => process.argv.slice(2).some((a) => a === flag || a.startsWith(`${flag}=`));
  const versionsGiven = given('--versions');
  const versions = argv.versions.flatMap((v) => v.split(','));
  // Scenarios that run the run's versions, then each that runs versions of its own (versionsOf, stress.ts).
  const byVersions = new Map<string, string[]>();
  for (const sc of scenarios) {
    const vs = versionsOf(sc, { versions, scenarioVersions: !versionsGiven }).join(', ');
    byVersions.set(vs, [...(byVersions.get(vs) ?? []), sc]);
  }
  const what = argv.target ? `${scenarios.join(', ')} × external target` : [...byVersions].map(([vs, scs]) => `${scs.join(', ')} × ${vs}`).join('; ');
  process.stderr.write(`chatroom-evolution stress: ${what}\n`);
  const { report, dir } = await runStress(
    {
      versions,
      scenarios,
      scenarioVersions: !versionsGiven,
      overrides,
      outDir: argv.out,
      seed: argv.seed,
      thresholds: argv.threshold,
      repeat: argv.repeat,
      // The default run tells the story; naming versions, a target or a threshold asks for strict checks.
      mode: versionsGiven || given('--threshold') || argv.target !== undefined ? 'strict' : 'story',
      command: ['npm run stress', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
      ...(argv.target ? { target: argv.target } : {}),
    },
    {
      onProgress: progress,
      onScenario: (s) => {
        if (tty) process.stderr.write('\r' + ' '.repeat(114) + '\r');
        process.stderr.write(`\n${renderTerminal(s, tty, argv.wide)}\n\n`);
      },
    },
  );
  process.stderr.write(`report: ${relative(process.cwd(), dir)}/report.html (also report.md, report.json; ${argv.out}/latest points here)\n`);
  if (argv.json) process.stdout.write(JSON.stringify(report) + '\n');
  const story = renderStoryTerminal(report);
  if (story) process.stderr.write(`${story}\n\n`);
  process.stderr.write(`${renderOutcome(report)}\n`);
  process.exitCode = report.outcome.exitCode;
} catch (err) {
  process.stderr.write(`\nstress failed: ${(err as Error).message}\n`);
  process.exitCode = EXIT_CODES.error;
}
