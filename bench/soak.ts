// `npm run bench:soak`: connect/join/move/chat/leave cycles against each version, and what each
// server keeps afterwards (soak-cycles.ts). v1's pool keeps every dead socket: its story.
import Table from 'cli-table3';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { fmt } from '../common/helpers.ts';
import type { OneProcessVersion as OneProcessVersion } from '../versions/versions.ts';
import { soak, type SoakResult } from './soak-cycles.ts';

const VERSIONS: OneProcessVersion[] = ['v1', 'v1.1', 'v2', 'v3'];

// Every bench declares its flags the same way (yargs, strict, --json); alike on purpose.
const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run bench:soak --')
  .options({
    versions: { type: 'string', array: true, choices: VERSIONS, default: VERSIONS, describe: 'versions to soak' },
    cycles: { type: 'number', default: 10_000, describe: 'client lives per version, from 100 to 1,000,000' },
    json: { type: 'boolean', default: false, describe: 'print the results as JSON on stdout' },
  })
  .strict()
  .help()
  .parseAsync();
if (!(Number.isInteger(argv.cycles) && argv.cycles >= 100 && argv.cycles <= 1_000_000)) throw new RangeError('--cycles must be an integer from 100 to 1,000,000');

const results: SoakResult[] = [];
for (const v of argv.versions as OneProcessVersion[]) {
  process.stderr.write(`  ${v}: ${fmt(argv.cycles)} cycles\n`);
  results.push(await soak(v, argv.cycles));
}
if (argv.json) process.stdout.write(JSON.stringify(results) + '\n');
const mb = (b: number): string => (b / 1e6).toFixed(2);
const table = new Table({ head: ['version', 'cycles', 'seconds', 'pool before → after', 'rooms', 'heap MB after full GCs', 'heap per cycle', 'RSS MB'] });
for (const r of results) {
  table.push([
    r.version,
    fmt(r.cycles),
    r.seconds.toFixed(1),
    `${fmt(r.before.poolSize)} → ${fmt(r.after.poolSize)}`,
    `${r.before.rooms} → ${r.after.rooms}`,
    `${mb(r.before.heapUsedBytes)} → ${mb(r.after.heapUsedBytes)}`,
    `${Math.round((r.after.heapUsedBytes - r.before.heapUsedBytes) / r.cycles)} B`,
    `${(r.before.rssBytes / 1e6).toFixed(1)} → ${(r.after.rssBytes / 1e6).toFixed(1)}`,
  ]);
}
process.stderr.write(`${table.toString()}\n`);
