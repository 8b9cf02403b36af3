// What a receiver measures, frame by frame: one-way latency from the intended send time (and,
// beside it, from the actual send time), lost / duplicate / reordered deliveries per sender,
// deliveries per second, stalls (gaps between deliveries) and time behind (deliveries that keep
// coming, but later than a bound after they were due). Kept apart from the sockets so the receive path can be
// benchmarked alone (bench/receive-path.ts); it runs for every frame the generator reads.
import { LatencyRecorder } from './histogram.ts';
import { nowUs, readProbe, type Probe } from './probe.ts';

export type ClientKind = 'healthy' | 'slow' | 'churn';

/** Times are µs since the run epoch (CLOCK_MONOTONIC). */
export interface MeterTiming {
  /** Senders start here; deliveries per second count from here. */
  sendStartUs: number;
  /** Latency is recorded for messages intended from here... */
  measureStartUs: number;
  /** ...to here, where senders stop. */
  measureEndUs: number;
}

export interface ClientReport {
  id: number;
  room: string;
  kind: ClientKind;
  /** Unique messages received (all phases). */
  received: number;
  duplicates: number;
  reordered: number;
  stalls: number;
  stalledMs: number;
  /**
   * Time in the window this client was behind: holding a message of the window more than the
   * meter's `behindUs` after it was due. A room that keeps receiving, ever later, never stalls but
   * is behind; the union of [due + behind, arrival) over its late messages, in ms.
   */
  behindMs: number;
  /** Connected from before sending started until the end of the drain. */
  stayed: boolean;
  closeCode: number | null;
  /**
   * The server closed or reset this client's connection while the swarm still wanted it (not a
   * churn client's own leave, not the end of the run): the close code (1006 for a reset) and when,
   * in µs since the epoch.
   */
  closedByServer: { code: number; atUs: number } | null;
  /** What the server told this client it dropped for it (v3 drop). */
  droppedByServer: number;
  /** A stuck or throttled reader: unique messages it had read when its slow period ended (null: not slow). */
  receivedBeforeResume: number | null;
  /** With a resume plan (v4 faults): how this client came back after the server let it go. */
  recovery: RecoveryReport | null;
  /** direct: whose sends it is owed (client ids), what it got from anyone else (leaks, must be 0), and, a sender, how many it sent. */
  peers?: number[];
  leaked?: number;
  sent?: number;
}

/** What one client went through to resume a room's stream (v4). */
export interface RecoveryReport {
  /** Connections it got back after losing one, and how long each took (ms, from the close to `joined`). */
  reconnects: number;
  reconnectMs: number[];
  /** Chat messages the server replayed to it, and seqs it said were lost (gap) or streams reset. */
  replayed: number;
  gapMissed: number;
  resets: number;
  /** Its sends the server refused (BACKPLANE_DOWN) and never said it was unsure of: not done, so owed to nobody. */
  refused: number;
  /** Of those, how many reached it anyway: a server that says "not done" and does it. Must be 0. */
  refusedButDelivered: number;
  /** Its sends the server could not answer for (SEND_UNKNOWN), and the resends, with the same id, it made for them. */
  uncertain: number;
  resent: number;
  /** Of its uncertain sends, how many it saw come back (with or without a resend). */
  uncertainArrived: number;
  /** Its sends its node took and died with before publishing (sendsLostWithNode): owed to nobody, reported. */
  lostWithNode: number;
}

/** One receiver, as the meter sees it. */
export interface MeteredClient {
  readonly kind: ClientKind;
  readonly report: ClientReport;
  /** Which sequence numbers arrived, per sender id. */
  readonly seen: Map<number, SeqTracker>;
  /** When the last probe arrived (µs since the epoch; 0: none yet). */
  lastArrivalUs: number;
  /** Where the time counted as behind ends so far (µs since the epoch): late messages overlap. */
  behindUntilUs: number;
}

export function meteredClient(id: number, room: string, kind: ClientKind): MeteredClient {
  return {
    kind,
    seen: new Map(),
    lastArrivalUs: 0,
    behindUntilUs: 0,
    report: { id, room, kind, received: 0, duplicates: 0, reordered: 0, stalls: 0, stalledMs: 0, behindMs: 0, stayed: false, closeCode: null, closedByServer: null, droppedByServer: 0, receivedBeforeResume: null, recovery: null },
  };
}

/** What SeqTracker.see() found a sequence number to be. */
export const SEEN = {
  /** Not seen before, and above every number seen so far. */
  IN_ORDER: 0,
  /** Not seen before, but below a number already seen: it overtook nothing, something overtook it. */
  REORDERED: 1,
  DUPLICATE: 2,
} as const;
export type Seen = (typeof SEEN)[keyof typeof SEEN];

/** Which sequence numbers of one sender a receiver has seen. */
export class SeqTracker {
  bits = new Uint8Array(64);
  highest = -1;

  /** How many seqs it has seen. */
  count(): number {
    let n = 0;
    for (const byte of this.bits) for (let b = byte; b !== 0; b &= b - 1) n++;
    return n;
  }

  has(seq: number): boolean {
    return (((this.bits[seq >> 3] ?? 0) >> (seq & 7)) & 1) === 1;
  }

  see(seq: number): Seen {
    const byte = seq >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    const bit = 1 << (seq & 7);
    if ((this.bits[byte] as number) & bit) return SEEN.DUPLICATE;
    this.bits[byte] = (this.bits[byte] as number) | bit;
    if (seq < this.highest) return SEEN.REORDERED;
    this.highest = seq;
    return SEEN.IN_ORDER;
  }
}

/** Width of one step of the healthy-delivery timeline: fine enough to date when relaying stopped. */
export const TIMELINE_STEP_MS = 100;

const NEWLINE = 0x0a;
/** The longest run a scenario allows (warm-up + measured + drain): per-second latency stops there. */
const MAX_RUN_SECONDS = 600;

export class DeliveryMeter {
  readonly latency: Record<ClientKind, { corrected: LatencyRecorder; uncorrected: LatencyRecorder }> = {
    healthy: { corrected: new LatencyRecorder(), uncorrected: new LatencyRecorder() },
    slow: { corrected: new LatencyRecorder(), uncorrected: new LatencyRecorder() },
    churn: { corrected: new LatencyRecorder(), uncorrected: new LatencyRecorder() },
  };
  /** Probes received per second since sendStart. */
  readonly perSecond: number[] = [];
  /**
   * Healthy receivers' corrected latency by the second each message was due to be sent (since
   * sendStart, every phase): a stall shows as the seconds whose messages arrived late.
   */
  readonly healthyBySecond: LatencyRecorder[] = [];
  /** Probes healthy receivers got per TIMELINE_STEP_MS since sendStart: shows when relaying stopped. */
  readonly healthyTimeline: number[] = [];
  /** Frames that carried at least one probe, in every phase. */
  framesReceived = 0;
  private readonly probe: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
  private timing: MeterTiming | null = null;
  /** The clock read for the chunk being parsed (−1: not read yet): frames of one read arrived together. */
  private chunkNowUs = -1;

  constructor(
    private readonly epoch: bigint,
    /** A gap between deliveries longer than this, at a receiver, is a stall. */
    private readonly stallThresholdUs: number,
    /** Content size the senders pad probes to: where a message's content ends, so the next one in the frame can be found. */
    private readonly contentBytes = 0,
    /** A message of the window delivered more than this after it was due puts its receiver behind. */
    private readonly behindUs = Infinity,
  ) {}

  /** From now on deliveries count. */
  start(timing: MeterTiming): void {
    this.timing = timing;
  }

  stop(): void {
    this.timing = null;
  }

  /** A new read: its frames share one clock reading, taken when the first probe needs it. */
  beginChunk(): void {
    this.chunkNowUs = -1;
  }

  /**
   * Measures one text frame; false when it carries no probe (a control frame, for the caller).
   * A server may join several queued messages into one frame, one per line (gorilla's chat example
   * does): JSON text holds no raw newline, so a newline after a message's content starts the next.
   */
  onText(c: MeteredClient, buf: Buffer, start: number, end: number): boolean {
    const p = this.probe;
    if (!readProbe(buf, start, end, p)) return false;
    this.framesReceived++;
    let from = start;
    for (;;) {
      this.count(c, p);
      // Skip the content's padding in one step when it lies within the frame, then look for a newline.
      const headEnd = from + (p.headEnd as number);
      const contentEnd = from + (p.at as number) + Math.max(this.contentBytes, (p.headEnd as number) - (p.at as number));
      let i = contentEnd <= end ? contentEnd : headEnd;
      while (i < end && buf[i] !== NEWLINE) i++;
      from = i + 1;
      if (from >= end || !readProbe(buf, from, end, p)) return true;
    }
  }

  private count(c: MeteredClient, p: Probe): void {
    const t = this.timing;
    if (t === null) return;
    const now = this.chunkNowUs >= 0 ? this.chunkNowUs : (this.chunkNowUs = nowUs(this.epoch));
    let tracker = c.seen.get(p.sender);
    if (tracker === undefined) c.seen.set(p.sender, (tracker = new SeqTracker()));
    const seen = tracker.see(p.seq);
    const r = c.report;
    if (seen === SEEN.DUPLICATE) {
      r.duplicates++;
      return;
    }
    if (seen === SEEN.REORDERED) r.reordered++;
    r.received++;
    const sinceStartUs = now - t.sendStartUs;
    if (sinceStartUs >= 0) {
      const second = Math.floor(sinceStartUs / 1e6);
      this.perSecond[second] = (this.perSecond[second] ?? 0) + 1;
      if (c.kind === 'healthy') {
        const step = Math.floor(sinceStartUs / (TIMELINE_STEP_MS * 1000));
        this.healthyTimeline[step] = (this.healthyTimeline[step] ?? 0) + 1;
      }
    }
    if (c.kind === 'healthy' && p.intendedUs >= t.sendStartUs) {
      const second = Math.floor((p.intendedUs - t.sendStartUs) / 1e6);
      // (a run lasts at most 600 s; a probe claiming a later second, a foreign one, gets no recorder of its own)
      if (second < MAX_RUN_SECONDS) (this.healthyBySecond[second] ??= new LatencyRecorder()).record(now - p.intendedUs);
    }
    if (p.intendedUs >= t.measureStartUs && p.intendedUs < t.measureEndUs) {
      const h = this.latency[c.kind];
      h.corrected.record(now - p.intendedUs);
      h.uncorrected.record(now - p.sentUs);
      if (now - p.intendedUs > this.behindUs) this.noteBehind(c, p.intendedUs + this.behindUs, now);
    }
    if (now !== c.lastArrivalUs) this.noteArrival(c, now, t);
  }

  /**
   * The silence from a receiver's last delivery (or from the start of the window, if it had none
   * in it) to `t.measureEndUs` is a stall when long enough: a client that received nothing in the
   * window was stalled for the whole window.
   */
  finish(c: MeteredClient, t: MeterTiming): void {
    const from = Math.max(c.lastArrivalUs, t.measureStartUs);
    if (t.measureEndUs - from > this.stallThresholdUs) {
      c.report.stalls++;
      c.report.stalledMs += (t.measureEndUs - from) / 1000;
    }
    c.report.stalledMs = Math.round(c.report.stalledMs);
    c.report.behindMs = Math.round(c.report.behindMs);
  }

  /** Adds [fromUs, toUs) to the client's time behind, less what earlier late messages already covered. */
  private noteBehind(c: MeteredClient, fromUs: number, toUs: number): void {
    const from = Math.max(fromUs, c.behindUntilUs);
    if (toUs > from) c.report.behindMs += (toUs - from) / 1000;
    if (toUs > c.behindUntilUs) c.behindUntilUs = toUs;
  }

  /** A gap in the window since the previous delivery (or since the window began) longer than the threshold is a stall. */
  private noteArrival(c: MeteredClient, now: number, t: MeterTiming): void {
    const from = Math.max(c.lastArrivalUs, t.measureStartUs);
    if (now - from > this.stallThresholdUs) {
      c.report.stalls++;
      c.report.stalledMs += (now - from) / 1000;
    }
    c.lastArrivalUs = now;
  }
}

/** Messages a client got from senders it was not owed anything from: direct messages that leaked to it. */
export function leakedTo(seen: ReadonlyMap<number, SeqTracker>, peers: readonly number[]): number {
  let n = 0;
  for (const [sender, tracker] of seen) if (!peers.includes(sender)) n += tracker.count();
  return n;
}
