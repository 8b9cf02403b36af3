// The flood scenario's abusive client, in a process of its own so it burns no worker's CPU and
// skews no measuring client: `flooder.ts <ws url> <room> <frames/s> <seconds>`. It joins its own
// room and writes tiny chats on a 1 ms tick at the rate given, reading and discarding what comes
// back, until the time is up or the server closes it; then prints one JSON line: what it wrote,
// and when and how the server closed it.
import { encodeClientFrame } from '../versions/protocol.ts';
import { WireClient } from '../auto-client/wire-client.ts';

const [url, room, rateText, secondsText] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
if (!url || !room || !(rate > 0) || !(seconds > 0)) {
  process.stderr.write('usage: flooder.ts <ws url> <room> <frames/s> <seconds>\n');
  process.exit(1);
}
const u = new URL(url);
u.searchParams.set('room', room);
u.searchParams.set('name', 'flooder');
const started = performance.now();
/** The server's close, if it closed the flooder before the time was up (its own close at the end is not one). */
let closed: { code: number; atS: number } | null = null;
let stopping = false;
const client = await WireClient.connect({
  url: u.toString(),
  onText: () => {},
  onClose: (code) => {
    if (!stopping) closed ??= { code, atS: Math.round(performance.now() - started) / 1000 };
  },
});
const frame = encodeClientFrame({ type: 'chat', content: 'x' });
let sent = 0;
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= seconds || !client.isOpen) return resolve();
    // as many as the rate owes by now: a tick late sends the difference at once
    for (const due = Math.floor(elapsed * rate); sent < due && client.isOpen; sent++) client.sendText(frame);
    setTimeout(tick, 1);
  };
  tick();
});
stopping = true;
client.close();
await new Promise((r) => setTimeout(r, 200));
client.destroy();
process.stdout.write(`${JSON.stringify({ sent, seconds: Math.round(performance.now() - started) / 1000, closed })}\n`);
