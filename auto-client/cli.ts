// `npm run client -- --url ws://127.0.0.1:8083/chatroom --room lobby --rate 5`: one measuring
// client. It joins, sends probes on a fixed schedule, and prints a live line each second and a
// summary on Ctrl-C (or after --duration). Latency of its own messages is a round trip; of
// other auto-clients' on this host, one-way (same monotonic clock).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createHistogram, recordUs, summarize, type Histogram } from './histogram.ts';
import { encodeProbe, nowUs, readProbe, type Probe } from './probe.ts';
import { closeCodeInWords, DEFAULT_ROOM, encodeClientFrame } from '../versions/protocol.ts';
import { SEEN, SeqTracker } from './delivery-meter.ts';
import { WireClient } from './wire-client.ts';
import { connectFailureLine, urlHint } from './connect-hint.ts';

/** A single client never runs longer than this, whatever --duration says. */
const MAX_DURATION_S = 3600;

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run client --')
  .options({
    url: { type: 'string', default: 'ws://127.0.0.1:8083/chatroom', describe: 'WebSocket URL of a chat server' },
    room: { type: 'string', default: DEFAULT_ROOM, describe: 'room to join' },
    name: { type: 'string', describe: 'display name (default auto-<id>)' },
    rate: { type: 'number', default: 5, describe: 'messages per second this client sends (0: listen only)' },
    size: { type: 'number', default: 64, describe: 'content size in bytes' },
    duration: { type: 'number', default: 0, describe: `stop after this many seconds (0: at Ctrl-C; at most ${MAX_DURATION_S})` },
    json: { type: 'boolean', default: false, describe: 'print the summary as JSON on stdout' },
  })
  .strict()
  .help()
  .parseAsync();

if (!(argv.rate >= 0)) throw new RangeError('--rate must be >= 0');
const epoch = 0n; // CLOCK_MONOTONIC itself: every auto-client on this host shares it
const id = Math.floor(Math.random() * 1e6);
const oneWay = createHistogram();
const roundTrip = createHistogram();
const seen = new Map<number, { tracker: SeqTracker; first: number; unique: number }>();
let received = 0;
let duplicates = 0;
let reordered = 0;
let other = 0;
const probe: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
/** On a terminal the live line rewrites itself; piped, it is one line a second. */
const tty = process.stderr.isTTY === true;
/** This client began the close (its --duration, Ctrl-C): the close that follows is not the server's doing. */
let closing = false;

const badUrl = urlHint(argv.url);
if (badUrl) {
  process.stderr.write(`${badUrl}\n`);
  process.exit(1);
}
const url = new URL(argv.url);
url.searchParams.set('room', argv.room);
url.searchParams.set('name', argv.name ?? `auto-${id}`);
const client = await WireClient.connect({
  url: url.toString(),
  onText(buf, start, end) {
    if (!readProbe(buf, start, end, probe)) {
      other++;
      return;
    }
    const now = nowUs(epoch);
    let s = seen.get(probe.sender);
    if (!s) seen.set(probe.sender, (s = { tracker: new SeqTracker(), first: probe.seq, unique: 0 }));
    const r = s.tracker.see(probe.seq);
    if (r === SEEN.DUPLICATE) return void duplicates++;
    if (r === SEEN.REORDERED) reordered++;
    s.unique++;
    received++;
    recordUs(probe.sender === id ? roundTrip : oneWay, now - probe.intendedUs);
  },
  onClose(code, reason) {
    if (closing) return;
    process.stderr.write(`${tty ? '\n' : ''}the server closed the connection: ${code} (${closeCodeInWords(code)})${reason ? `: ${reason}` : ''}\n`);
    finish(code === 1000 || code === 1001 ? 0 : 1, null);
  },
}).catch((err: Error) => {
  process.stderr.write(`${connectFailureLine(argv.url, err)}\n`);
  process.exit(1);
});
// The server may want a join frame (ours accept ?room=, an external relay may not care).
client.sendText(encodeClientFrame({ type: 'join', room: argv.room, ...(argv.name ? { name: argv.name } : {}) }));

function lost(): number {
  let n = 0;
  for (const s of seen.values()) n += s.tracker.highest - s.first + 1 - s.unique;
  return Math.max(0, n);
}

let seq = 0;
const started = nowUs(epoch);
let next = started;
const period = argv.rate > 0 ? 1e6 / argv.rate : Infinity;
const sender = setInterval(() => {
  const now = nowUs(epoch);
  while (next <= now) {
    client.sendText(encodeClientFrame({ type: 'chat', content: encodeProbe({ sender: id, seq: seq++, intendedUs: next, sentUs: now }, argv.size) }));
    next += period;
  }
}, 5);
if (period === Infinity) clearInterval(sender);

/** "p50 1.2 ms p99 3.4 ms", or "none" when nothing was measured: no samples is never 0 ms. */
function shortLatency(h: Histogram): string {
  const s = summarize(h);
  return s.count === 0 ? 'none' : `p50 ${s.p50} ms p99 ${s.p99} ms`;
}

const live = setInterval(() => {
  const line = `sent ${seq} · received ${received} from ${seen.size} sender(s) · lost ${lost()} · dup ${duplicates} · round trip ${shortLatency(roundTrip)} · one-way ${shortLatency(oneWay)}`;
  process.stderr.write(tty ? `\r${line}   ` : `${line}\n`);
}, 1000);

const limit = Math.min(argv.duration > 0 ? argv.duration : MAX_DURATION_S, MAX_DURATION_S);
const stopTimer = setTimeout(() => finish(0, `its --duration of ${limit} s was over`), limit * 1000);
process.on('SIGINT', () => finish(0, 'it was interrupted (SIGINT)'));
process.on('SIGTERM', () => finish(0, 'it was told to stop (SIGTERM)'));

/** "p50 1.2 ms, p99 3.4 ms, max 3.5 ms (n=40)", or "none". */
function latencyText(s: ReturnType<typeof summarize>): string {
  return s.count === 0 ? 'none' : `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms (n=${s.count})`;
}

let finished = false;
/** `why`: why this client closes, or null when the server closed first. */
function finish(code: number, why: string | null): void {
  if (finished) return;
  finished = true;
  clearInterval(sender);
  clearInterval(live);
  clearTimeout(stopTimer);
  const summary = {
    url: argv.url,
    room: argv.room,
    seconds: Math.round((nowUs(epoch) - started) / 1e5) / 10,
    sent: seq,
    received,
    senders: seen.size,
    lost: lost(),
    duplicates,
    reordered,
    otherFrames: other,
    oneWayMs: summarize(oneWay),
    roundTripMs: summarize(roundTrip),
  };
  if (argv.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else {
    if (tty) process.stderr.write('\n');
    if (why) process.stderr.write(`this client closed the connection: ${why}\n`);
    process.stderr.write(
      `sent ${summary.sent}, received ${summary.received} from ${summary.senders} sender(s), lost ${summary.lost}, duplicates ${duplicates}, reordered ${reordered}\n` +
        `round trip of its own messages: ${latencyText(summary.roundTripMs)}\n` +
        `one-way from other auto-clients on this host: ${latencyText(summary.oneWayMs)}\n`,
    );
  }
  closing = true;
  client.close();
  setTimeout(() => process.exit(code), 200);
}
