// `npm run bench:connect`: what one connect costs in CPU, on each side. The server is a version in
// its own process, started as the harness starts it (its CPU from its own /api/stats); the
// generator is the harness's own Swarm in this process, connecting and waiting for `joined` as a
// stress run does. Where server and generator share the cores, the connect rate is bounded by the
// sum of the two, so this says which side to make cheaper. Versions alternate within each run, so
// a noisy neighbour falls on all of them alike. With --jwt each version is measured twice in every
// run, as it is and signing every client in (--auth jwt, HS256): what verifying a token before the
// upgrade costs a connect, as a ratio within one run.
import Table from 'cli-table3';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Swarm } from '../auto-client/swarm.ts';
import { planClients } from '../harness/plan.ts';
import { fetchStats } from '../harness/server-sampler.ts';
import { DEFAULT_VERSIONS, resolveScenario } from '../harness/scenarios.ts';
import { startServerProcess } from '../harness/server-process.ts';
import type { ServerStats } from '../versions/protocol.ts';
import { fmt } from '../common/helpers.ts';
import { signToken } from '../versions/auth.ts';
import { randomBytes } from 'node:crypto';

const CONNECTS_IN_FLIGHT = 1000;
const WARM_UP_CLIENTS = 1000;

interface Sample {
  connectsPerSecond: number;
  serverUs: number;
  generatorUs: number;
}

// Every bench declares its flags the same way (yargs, strict, --json); alike on purpose.
const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run bench:connect --')
  .options({
    versions: { type: 'string', array: true, default: ['v1', 'v3'], describe: `versions to measure: ${Object.keys(DEFAULT_VERSIONS).join(', ')}` },
    clients: { type: 'number', default: 9000, describe: 'clients per run, from 1,000 to 15,000 (this process holds a socket for each)' },
    runs: { type: 'number', default: 3, describe: 'runs per version; the table gives each and their median' },
    json: { type: 'boolean', default: false, describe: 'print the results as JSON on stdout' },
    jwt: { type: 'boolean', default: false, describe: 'measure each version also with --auth jwt (every client signed in with its own HS256 token), and give the ratio' },
  })
  .strict()
  .help()
  .parseAsync();
if (!(argv.clients >= 1000 && argv.clients <= 15_000)) throw new RangeError('--clients must be from 1,000 to 15,000');
if (!(Number.isInteger(argv.runs) && argv.runs >= 1 && argv.runs <= 10)) throw new RangeError('--runs must be an integer from 1 to 10');
for (const v of argv.versions) if (!DEFAULT_VERSIONS[v]) throw new RangeError(`--versions: unknown "${v}"`);
/** What is measured: each version, and with --jwt each signing its clients in ("v3 +jwt"). */
const labels = argv.versions.flatMap((v) => (argv.jwt ? [v, `${v} +jwt`] : [v]));

// A first round, not recorded, warms this process's JIT: otherwise the first version measured
// pays for compiling the generator's connect path.
await measure(labels[0] as string, WARM_UP_CLIENTS);
const samples = new Map<string, Sample[]>(labels.map((v) => [v, []]));
for (let run = 0; run < argv.runs; run++) {
  for (const version of labels) {
    const sample = await measure(version, argv.clients);
    samples.get(version)!.push(sample);
    process.stderr.write(`run ${run + 1} ${version}: ${Math.round(sample.connectsPerSecond)} connects/s, server ${sample.serverUs.toFixed(0)} µs, generator ${sample.generatorUs.toFixed(0)} µs per connect\n`);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const rows = [...samples].map(([version, ss]) => ({
  version,
  clients: argv.clients,
  runs: ss,
  connectsPerSecond: Math.round(median(ss.map((s) => s.connectsPerSecond))),
  serverUsPerConnect: Math.round(median(ss.map((s) => s.serverUs))),
  generatorUsPerConnect: Math.round(median(ss.map((s) => s.generatorUs))),
}));
// With --jwt: connects/s signed in ÷ as it is, run by run (the two measured back to back), and their median.
const ratios = argv.jwt
  ? argv.versions.map((v) => {
      const each = (samples.get(`${v} +jwt`) as Sample[]).map((s, i) => s.connectsPerSecond / (samples.get(v) as Sample[])[i]!.connectsPerSecond);
      return { version: v, runs: each.map((r) => Math.round(r * 100) / 100), median: Math.round(median(each) * 100) / 100 };
    })
  : [];
if (argv.json) process.stdout.write(JSON.stringify({ node: process.version, rows, ...(argv.jwt ? { jwtRatios: ratios } : {}) }) + '\n');
else {
  const table = new Table({ head: ['version', 'clients', 'connects/s', 'server CPU per connect', 'generator CPU per connect'] });
  const each = (ss: Sample[], f: (s: Sample) => number): string => ss.map((s) => fmt(Math.round(f(s)))).join(', ');
  for (const r of rows) {
    table.push([
      r.version,
      fmt(r.clients),
      `${fmt(r.connectsPerSecond)} (${each(r.runs, (s) => s.connectsPerSecond)})`,
      `${r.serverUsPerConnect} µs (${each(r.runs, (s) => s.serverUs)})`,
      `${r.generatorUsPerConnect} µs (${each(r.runs, (s) => s.generatorUs)})`,
    ]);
  }
  process.stderr.write(`one connect (TCP, upgrade, joined), CPU on each side; ${argv.runs === 1 ? 'one run' : `medians of ${argv.runs} runs, each run in brackets`}:\n${table.toString()}\n`);
  for (const r of ratios) process.stderr.write(`${r.version}: connects/s signed in (JWT checked before the upgrade) ÷ without, in the same run: ${r.median} (${r.runs.join(', ')})\n`);
}

async function measure(label: string, clients: number): Promise<Sample> {
  const [version, jwt] = label.split(' ') as [string, string | undefined];
  const secret = randomBytes(32).toString('base64url');
  const server = await startServerProcess([...(DEFAULT_VERSIONS[version] as string[]), ...(jwt ? ['--auth', 'jwt'] : [])], undefined, jwt ? { CHAT_JWT_SECRET: secret } : {});
  try {
    const stats = (): Promise<ServerStats> => fetchStats(`${server.info.url}api/stats`);
    const config = resolveScenario('connections', { clients, workers: 1 });
    const specs = planClients(config, [server.info.wsUrl]);
    // (signed before the clock starts: what is measured is the server checking them)
    if (jwt) for (const s of specs) s.authorization = `Bearer ${await signToken(secret, { sub: `c${s.id}` }, '1h')}`;
    const swarm = new Swarm({
      workerId: 1,
      epochNs: process.hrtime.bigint().toString(),
      clients: specs,
      ratePerSender: config.rate,
      poisson: false,
      burst: 1,
      seed: 1,
      sizeBytes: config.size,
      awaitJoined: true,
      stallThresholdUs: 1e6,
      behindUs: 1e6,
      churnPeriodMs: 0,
      connectConcurrency: CONNECTS_IN_FLIGHT,
      slowResumeUs: null,
    });
    try {
      const before = await stats();
      const cpu = process.cpuUsage();
      const started = performance.now();
      await swarm.connectAll();
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const after = await stats();
      const connected = swarm.connectedCount();
      if (connected !== clients) throw new Error(`${version}: ${connected} of ${clients} clients connected`);
      return {
        connectsPerSecond: connected / seconds,
        serverUs: (after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs) / connected,
        generatorUs: (used.user + used.system) / connected,
      };
    } finally {
      await swarm.close();
    }
  } finally {
    await server.stop();
  }
}
