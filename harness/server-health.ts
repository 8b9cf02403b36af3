// What became of the server under test, watched from outside as any user could: whether it still
// accepts a TCP connection (probed every second during the run), and, after the drain, whether it
// still relays (two fresh clients: one sends, the other must receive). A spawned version's exit,
// code or signal and last lines, comes from server-process.ts; the report puts them together.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeProbe, readProbe, type Probe } from '../auto-client/probe.ts';
import { round } from '../common/helpers.ts';
import { encodeClientFrame } from '../versions/protocol.ts';
import { WireClient } from '../auto-client/wire-client.ts';

/** One TCP connect a second tells when a server stopped accepting, to about a second. */
export const LIVENESS_INTERVAL_MS = 1000;
/** A TCP connect not answered within this is a failed probe. */
const LIVENESS_TIMEOUT_MS = 2000;
/** How long the relay check waits for its message to come round. */
export const RELAY_CHECK_TIMEOUT_MS = 5000;
/** Between the relay check's sends: a server that registers a client late still gets a fair chance. */
const RELAY_CHECK_RESEND_MS = 500;
/** The sender id the relay check's probes carry (the swarm's clients and HTTP pushes use others). */
export const RELAY_CHECK_SENDER_ID = 2_000_000;

/** TCP connects to the server during the run, `t` in seconds since sending began. */
export interface LivenessTrace {
  probes: number;
  failures: number;
  /** When the probes began failing for good: the first failure after the last success (null: the last probe succeeded). */
  unreachableFromS: number | null;
  /** The last failure's error, e.g. "connect ECONNREFUSED 127.0.0.1:8080". */
  lastError: string | null;
}

/** After the drain: does the server still take a connection and relay a message between two fresh clients? */
export interface RelayCheck {
  accepting: boolean;
  relaying: boolean;
  /** In words: what was tried and what happened. */
  detail: string;
}

/** Probes `host:port` with a TCP connect every LIVENESS_INTERVAL_MS until stopped. */
export class LivenessProbe {
  private readonly results: Array<{ t: number; ok: boolean; error: string | null }> = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    /** Seconds on the harness's run clock. */
    private readonly now: () => number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.probe(), LIVENESS_INTERVAL_MS);
  }

  /** Stops probing, waits for the probes in flight, and dates them from `originS` (when sending began). */
  async stop(originS: number): Promise<LivenessTrace> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < 50 && this.inFlight > 0; i++) await sleep(50);
    return traceOf(this.results.map((r) => ({ ...r, t: r.t - originS })));
  }

  private probe(): void {
    const t = this.now();
    this.inFlight++;
    const socket = connect({ host: this.host, port: this.port });
    const done = (error: string | null): void => {
      if (!socket.destroyed) socket.destroy();
      this.results.push({ t, ok: error === null, error });
      this.inFlight--;
    };
    socket.setTimeout(LIVENESS_TIMEOUT_MS, () => done(`no answer to a TCP connect in ${LIVENESS_TIMEOUT_MS} ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (err) => done(err.message));
  }
}

export function traceOf(results: ReadonlyArray<{ t: number; ok: boolean; error: string | null }>): LivenessTrace {
  const sorted = [...results].sort((a, b) => a.t - b.t);
  let lastOk = -1;
  sorted.forEach((r, i) => {
    if (r.ok) lastOk = i;
  });
  const firstBad = sorted[lastOk + 1];
  const failures = sorted.filter((r) => !r.ok);
  return {
    probes: sorted.length,
    failures: failures.length,
    unreachableFromS: firstBad ? round(firstBad.t, 1) : null,
    lastError: failures.at(-1)?.error ?? null,
  };
}

/**
 * Two fresh clients join `room`; one sends a probe every RELAY_CHECK_RESEND_MS until the other
 * receives one or `timeoutMs` pass. The sends go as the swarm's do ({"type":"chat","content"}).
 */
/** `authFor`: a server that signs users in (--auth) gets each fresh client's Authorization header from it. */
export async function checkRelay(wsUrl: string, room: string, epochNs: bigint, timeoutMs = RELAY_CHECK_TIMEOUT_MS, senderUrl = wsUrl, authFor?: (name: string) => Promise<string>): Promise<RelayCheck> {
  const url = (name: string, base = wsUrl): string => {
    const u = new URL(base);
    u.searchParams.set('room', room);
    u.searchParams.set('name', name);
    return u.toString();
  };
  let received = false;
  let greeted = 0;
  const probe: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
  const clients: WireClient[] = [];
  try {
    let receiver: WireClient;
    let sender: WireClient;
    try {
      const auth = async (name: string): Promise<{ authorization?: string }> => (authFor ? { authorization: await authFor(name) } : {});
      receiver = await WireClient.connect({
        ...(await auth('relay-check-in')),
        url: url('relay-check-in'),
        onText: (buf, start, end) => {
          if (readProbe(buf, start, end, probe) && probe.sender === RELAY_CHECK_SENDER_ID) received = true;
          else greeted++;
        },
      });
      clients.push(receiver);
      sender = await WireClient.connect({ ...(await auth('relay-check-out')), url: url('relay-check-out', senderUrl), onText: () => {} });
      clients.push(sender);
    } catch (err) {
      return { accepting: false, relaying: false, detail: `a fresh client could not connect: ${(err as Error).message}` };
    }
    // Our servers greet a client once it is in the room; a server that does not gets a moment instead.
    for (let i = 0; i < 10 && greeted === 0; i++) await sleep(30);
    const deadline = Date.now() + timeoutMs;
    for (let seq = 0; !received && Date.now() < deadline; seq++) {
      if (!sender.isOpen || !receiver.isOpen) {
        return { accepting: true, relaying: false, detail: `the server closed a fresh client (${sender.closeCode ?? receiver.closeCode}) before a message came round` };
      }
      const t = Number(process.hrtime.bigint() - epochNs) / 1000;
      sender.sendText(encodeClientFrame({ type: 'chat', content: encodeProbe({ sender: RELAY_CHECK_SENDER_ID, seq, intendedUs: t, sentUs: t }, 64) }));
      for (let waited = 0; !received && waited < RELAY_CHECK_RESEND_MS; waited += 20) await sleep(20);
    }
    return received
      ? { accepting: true, relaying: true, detail: 'two fresh clients connected and a message came round' }
      : { accepting: true, relaying: false, detail: `two fresh clients connected, but nothing sent came round in ${timeoutMs / 1000} s` };
  } finally {
    for (const c of clients) c.destroy();
  }
}
