// What a receiver measures, frame by frame: one-way latency from the intended send time (and,
// beside it, from the actual send time), lost / duplicate / reordered deliveries per sender,
// deliveries per second, and stalls. Kept apart from the sockets so the receive path can be
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
  /** Connected from before sending started until the end of the drain. */
  stayed: boolean;
  closeCode: number | null;
  /** What the server told this client it dropped for it (v3 drop). */
  droppedByServer: number;
}

/** One receiver, as the meter sees it. */
export interface MeteredClient {
  readonly kind: ClientKind;
  readonly report: ClientReport;
  /** Which sequence numbers arrived, per sender id. */
  readonly seen: Map<number, SeqTracker>;
  /** When the last probe arrived (µs since the epoch; 0: none yet). */
  lastArrivalUs: number;
}

export function meteredClient(id: number, room: string, kind: ClientKind): MeteredClient {
  return {
    kind,
    seen: new Map(),
    lastArrivalUs: 0,
    report: { id, room, kind, received: 0, duplicates: 0, reordered: 0, stalls: 0, stalledMs: 0, stayed: false, closeCode: null, droppedByServer: 0 },
  };
}

/** Which sequence numbers of one sender a receiver has seen. */
export class SeqTracker {
  bits = new Uint8Array(64);
  highest = -1;

  /** 0 new in order, 1 new but out of order, 2 duplicate. */
  see(seq: number): 0 | 1 | 2 {
    const byte = seq >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    const bit = 1 << (seq & 7);
    if ((this.bits[byte] as number) & bit) return 2;
    this.bits[byte] = (this.bits[byte] as number) | bit;
    if (seq < this.highest) return 1;
    this.highest = seq;
    return 0;
  }
}

export class DeliveryMeter {
  readonly latency: Record<ClientKind, { corrected: LatencyRecorder; uncorrected: LatencyRecorder }> = {
    healthy: { corrected: new LatencyRecorder(), uncorrected: new LatencyRecorder() },
    slow: { corrected: new LatencyRecorder(), uncorrected: new LatencyRecorder() },
    churn: { corrected: new LatencyRecorder(), uncorrected: new LatencyRecorder() },
  };
  /** Probes received per second since sendStart. */
  readonly perSecond: number[] = [];
  /** Probe frames read, in every phase. */
  framesReceived = 0;
  private readonly probe: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
  private timing: MeterTiming | null = null;
  /** The clock read for the chunk being parsed (−1: not read yet): frames of one read arrived together. */
  private chunkNowUs = -1;

  constructor(
    private readonly epoch: bigint,
    /** A gap between deliveries longer than this, at a receiver, is a stall. */
    private readonly stallThresholdUs: number,
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

  /** Measures one text frame; false when it carries no probe (a control frame, for the caller). */
  onText(c: MeteredClient, buf: Buffer, start: number, end: number): boolean {
    const p = this.probe;
    if (!readProbe(buf, start, end, p)) return false;
    this.framesReceived++;
    const t = this.timing;
    if (t === null) return true;
    const now = this.chunkNowUs >= 0 ? this.chunkNowUs : (this.chunkNowUs = nowUs(this.epoch));
    let tracker = c.seen.get(p.sender);
    if (tracker === undefined) c.seen.set(p.sender, (tracker = new SeqTracker()));
    const seen = tracker.see(p.seq);
    const r = c.report;
    if (seen === 2) {
      r.duplicates++;
      return true;
    }
    if (seen === 1) r.reordered++;
    r.received++;
    const second = Math.floor((now - t.sendStartUs) / 1e6);
    if (second >= 0) this.perSecond[second] = (this.perSecond[second] ?? 0) + 1;
    if (p.intendedUs >= t.measureStartUs && p.intendedUs < t.measureEndUs) {
      const h = this.latency[c.kind];
      h.corrected.record(now - p.intendedUs);
      h.uncorrected.record(now - p.sentUs);
    }
    if (now !== c.lastArrivalUs) this.noteArrival(c, now, t);
    return true;
  }

  /** A receiver that never heard again after its last delivery: the silence up to `untilUs` is a stall. */
  finish(c: MeteredClient, untilUs: number): void {
    if (c.lastArrivalUs > 0 && untilUs - c.lastArrivalUs > this.stallThresholdUs) {
      c.report.stalls++;
      c.report.stalledMs += (untilUs - c.lastArrivalUs) / 1000;
    }
    c.report.stalledMs = Math.round(c.report.stalledMs);
  }

  private noteArrival(c: MeteredClient, now: number, t: MeterTiming): void {
    const from = Math.max(c.lastArrivalUs, t.measureStartUs);
    if (now > from) {
      const gap = now - from;
      if (gap > this.stallThresholdUs && c.lastArrivalUs > 0) {
        c.report.stalls++;
        c.report.stalledMs += gap / 1000;
      }
    }
    c.lastArrivalUs = now;
  }
}
