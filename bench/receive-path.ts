// `npm run bench:receive`: how many frames per second the generator's receive path handles on
// one core, sockets aside: v3's own chat frames (versions/protocol.ts frames them) go through
// FrameParser and DeliveryMeter for every receiver, as a worker's reads would hand them over.
// Reads hold 1 to 64 frames (v3 writes what a client's queue holds in one write), or are cut
// at arbitrary points as 64 KiB reads of a long backlog are.
import Table from 'cli-table3';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DeliveryMeter, meteredClient, type MeteredClient } from '../auto-client/delivery-meter.ts';
import { FrameParser } from '../auto-client/frame-parser.ts';
import { encodeProbe } from '../auto-client/probe.ts';
import { fmt, rng } from '../common/helpers.ts';
import { READ_BUFFER_BYTES } from '../auto-client/wire-client.ts';
import { encodeServerMessage, frameText } from '../versions/protocol.ts';

// Every bench declares its flags the same way (yargs, strict, --json); alike on purpose.
const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run bench:receive --')
  .options({
    clients: { type: 'number', default: 1000, describe: 'receivers, each with its own parser and sequence trackers' },
    senders: { type: 'number', default: 20, describe: 'senders whose messages every receiver gets' },
    size: { type: 'number', default: 64, describe: 'content size in bytes (the capacity scenario sends 64)' },
    frames: { type: 'number', default: 4_000_000, describe: 'frames per case' },
    json: { type: 'boolean', default: false, describe: 'print the results as JSON on stdout' },
  })
  .strict()
  .help()
  .parseAsync();

interface Case {
  name: string;
  framesPerRead: number;
  /** Cut the stream at random points instead of at frame boundaries. */
  cut: boolean;
}

const CASES: Case[] = [
  { name: '1 frame per read', framesPerRead: 1, cut: false },
  { name: '4 frames per read', framesPerRead: 4, cut: false },
  { name: '16 frames per read', framesPerRead: 16, cut: false },
  { name: '64 frames per read', framesPerRead: 64, cut: false },
  { name: '~16 frames per read, cut mid-frame', framesPerRead: 16, cut: true },
];

interface Result {
  case: string;
  frames: number;
  framesPerSecond: number;
  nsPerFrame: number;
  /** CPU time / wall time: 100 means the one core was busy throughout. */
  cpuPct: number;
}

/** The stream every receiver reads: each sender's messages in turn, sequence numbers rising. */
function buildStream(messages: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < messages; i++) {
    const sender = i % argv.senders;
    const seq = Math.floor(i / argv.senders);
    const content = encodeProbe({ sender, seq, intendedUs: 1_000_000 + i * 50, sentUs: 1_000_100 + i * 50 }, argv.size);
    frames.push(frameText(encodeServerMessage({ type: 'chat', room: 'lobby', from: `c${sender}`, content, ts: 1_763_900_000_000 + i })));
  }
  return Buffer.concat(frames);
}

/** Where each read ends in the stream. */
function readEnds(stream: Buffer, c: Case, frameBytes: number): number[] {
  const ends: number[] = [];
  const random = rng(c.framesPerRead);
  const mean = Math.round(frameBytes * c.framesPerRead);
  for (let at = 0; at < stream.length; ) {
    at = Math.min(stream.length, at + (c.cut ? 1 + Math.floor(random() * 2 * mean) : mean));
    ends.push(at);
  }
  return ends;
}

function run(c: Case): Result {
  const messagesPerClient = Math.max(c.framesPerRead, Math.ceil(argv.frames / argv.clients));
  const stream = buildStream(messagesPerClient);
  const frameBytes = stream.length / messagesPerClient;
  const ends = readEnds(stream, c, frameBytes);
  const read = Buffer.allocUnsafe(READ_BUFFER_BYTES); // one reused read buffer, as the wire client has
  const meter = new DeliveryMeter(process.hrtime.bigint(), 250_000);
  meter.start({ sendStartUs: 0, measureStartUs: 0, measureEndUs: Number.MAX_SAFE_INTEGER });
  const clients: MeteredClient[] = [];
  const parsers: FrameParser[] = [];
  let control = 0;
  for (let i = 0; i < argv.clients; i++) {
    const client = meteredClient(i, 'lobby', 'healthy');
    clients.push(client);
    parsers.push(
      new FrameParser({
        onText: (buf, start, end) => {
          if (!meter.onText(client, buf, start, end)) control++;
        },
        onPing: () => {},
        onClose: () => {},
        onProtocolError: (reason) => {
          throw new Error(reason);
        },
      }),
    );
  }
  const cpu = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  // Fan-out order: every receiver gets read k before any gets read k + 1, as a server's turn delivers.
  let from = 0;
  for (const end of ends) {
    stream.copy(read, 0, from, end);
    for (let i = 0; i < parsers.length; i++) {
      meter.beginChunk();
      (parsers[i] as FrameParser).feed(read, 0, end - from);
    }
    from = end;
  }
  const wallNs = Number(process.hrtime.bigint() - t0);
  const used = process.cpuUsage(cpu);
  const frames = messagesPerClient * argv.clients;
  const received = clients.reduce((n, x) => n + x.report.received, 0);
  if (received !== frames || control !== 0) throw new Error(`${c.name}: ${received} of ${frames} frames measured, ${control} not probes`);
  return {
    case: c.name,
    frames,
    framesPerSecond: Math.round(frames / (wallNs / 1e9)),
    nsPerFrame: Math.round((wallNs / frames) * 10) / 10,
    cpuPct: Math.round(((used.user + used.system) * 1000 / wallNs) * 1000) / 10,
  };
}

run({ name: 'warm-up', framesPerRead: 8, cut: true }); // let the JIT settle before anything counts
const results = CASES.map(run);
if (argv.json) process.stdout.write(JSON.stringify({ clients: argv.clients, senders: argv.senders, size: argv.size, node: process.version, results }) + '\n');
else {
  const table = new Table({ head: ['reads', 'frames', 'frames/s on one core', 'ns per frame', 'CPU'] });
  for (const r of results) table.push([r.case, fmt(r.frames), fmt(r.framesPerSecond), r.nsPerFrame, `${r.cpuPct}%`]);
  process.stderr.write(`receive path: FrameParser + DeliveryMeter, ${argv.clients} receivers × ${argv.senders} senders, ${argv.size} B content\n${table.toString()}\n`);
}
