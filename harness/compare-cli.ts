// `npm run compare -- A B`: two reports side by side (compare.ts). A and B are report folders or
// report.json files. The only module here that touches argv and exit codes.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { compareReports, renderComparison } from './compare.ts';
import type { StressReport } from './report-model.ts';

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run compare --')
  .usage('$0 <before> <after>\n\nSets two stress reports (folders or report.json files) side by side and marks which changes are larger than their run-to-run spread (run both with --repeat N).')
  .command('$0 <before> <after>', 'compare two reports')
  .positional('before', { type: 'string', demandOption: true })
  .positional('after', { type: 'string', demandOption: true })
  .options({ json: { type: 'boolean', default: false, describe: 'print the comparison as JSON on stdout' } })
  .strict()
  .help()
  .parseAsync();

async function load(path: string): Promise<StressReport> {
  const file = (await stat(path)).isDirectory() ? join(path, 'report.json') : path;
  return JSON.parse(await readFile(file, 'utf8')) as StressReport;
}

try {
  const [a, b] = await Promise.all([load(argv.before as string), load(argv.after as string)]);
  const rows = compareReports(a, b);
  if (rows.length === 0) throw new Error('the two reports share no scenario and version');
  if (argv.json) process.stdout.write(JSON.stringify(rows) + '\n');
  process.stderr.write(`${renderComparison(rows, { name: argv.before as string, report: a }, { name: argv.after as string, report: b })}\n`);
} catch (err) {
  process.stderr.write(`compare failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
