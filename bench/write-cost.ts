// `npm run bench:writes`: what one socket write costs the writer, in CPU, on loopback: the reason
// v3 batches. A child process holds N sockets and reads everything; this process writes one
// buffer to each of them per pass, several passes, and divides its CPU time by the writes. The
// kernel's loopback delivery (the reader's TCP processing, its wake-up) runs inside the write, so
// it is counted where a server pays for it.
import { setTimeout as sleep } from 'node:timers/promises';
import { fork, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { fmt, localAddressOf } from '../common/helpers.ts';

const PASSES = 20;
/** Rest between passes, so the reader drains and every write finds an empty socket buffer. */
const REST_MS = 100;
const CONNECT_TIMEOUT_MS = 120_000;

if (process.argv[2] === '--reader') await reader(Number(process.argv[3]), Number(process.argv[4]));
else await main();

/** The child: connects `n` sockets from spread source addresses and reads (and drops) everything. */
async function reader(port: number, n: number): Promise<void> {
  const buf = Buffer.allocUnsafe(256 * 1024);
  const sockets: Socket[] = [];
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, n - i) }, (_, k) => {
        const j = i + k;
        return new Promise<void>((resolve, reject) => {
          const s = connect({ port, host: '127.0.0.1', localAddress: localAddressOf(j), onread: { buffer: buf, callback: () => true } });
          sockets.push(s);
          s.once('connect', () => resolve());
          s.once('error', reject);
        });
      }),
    );
  }
  process.send?.('ready');
  process.on('disconnect', () => process.exit(0));
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('npm run bench:writes --')
    .options({
      sockets: { type: 'number', array: true, default: [1000, 10_000], describe: 'socket counts to measure (each under 20,000: one process holds them)' },
      size: { type: 'number', array: true, default: [64, 2600, 7000], describe: 'bytes per write' },
      json: { type: 'boolean', default: false, describe: 'print the results as JSON on stdout' },
    })
    .strict()
    .help()
    .parseAsync();
  const results: Array<{ sockets: number; bytes: number; cpuUsPerWrite: number; wallUsPerWrite: number }> = [];
  for (const n of argv.sockets) {
    if (!(n >= 1 && n < 19_000)) throw new RangeError('--sockets must be from 1 to 18,999 (20,000 open files per process)');
    const accepted: Socket[] = [];
    const server = createServer((s) => {
      s.setNoDelay(true);
      s.on('error', () => {});
      accepted.push(s);
    });
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
    const port = (server.address() as { port: number }).port;
    let child: ChildProcess | null = null;
    try {
      child = fork(fileURLToPath(import.meta.url), ['--reader', String(port), String(n)], { execArgv: process.execArgv, stdio: 'inherit' });
      const ready = new Promise<void>((resolve, reject) => {
        child!.once('message', () => resolve());
        child!.once('exit', (code) => reject(new Error(`reader exited with ${code}`)));
        setTimeout(() => reject(new Error('reader did not connect in time')), CONNECT_TIMEOUT_MS).unref();
      });
      await ready;
      while (accepted.length < n) await sleep(10);
      for (const bytes of argv.size) {
        const payload = Buffer.alloc(bytes, 0x78);
        let cpuUs = 0;
        let wallUs = 0;
        for (let p = 0; p < PASSES; p++) {
          const cpu = process.cpuUsage();
          const t0 = performance.now();
          for (const s of accepted) s.write(payload);
          const used = process.cpuUsage(cpu);
          wallUs += (performance.now() - t0) * 1000;
          if (p > 0) cpuUs += used.user + used.system; // the first pass warms the JIT up
          await sleep(REST_MS);
        }
        results.push({ sockets: n, bytes, cpuUsPerWrite: round(cpuUs / ((PASSES - 1) * n)), wallUsPerWrite: round(wallUs / (PASSES * n)) });
      }
    } finally {
      child?.kill();
      for (const s of accepted) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  }
  if (argv.json) process.stdout.write(JSON.stringify({ node: process.version, passes: PASSES, results }) + '\n');
  else {
    const table = new Table({ head: ['sockets', 'bytes per write', 'CPU µs per write', 'wall µs per write'] });
    for (const r of results) table.push([fmt(r.sockets), fmt(r.bytes), r.cpuUsPerWrite, r.wallUsPerWrite]);
    process.stderr.write(`one socket.write per socket per pass, loopback, ${PASSES} passes:\n${table.toString()}\n`);
  }
}


function round(x: number): number {
  return Math.round(x * 100) / 100;
}
