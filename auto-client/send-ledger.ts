// What a swarm's senders sent, counted as they send: by room (what each room's receivers are
// owed), by room before the slow readers read again, per step of the send timeline, against the
// plan (the offered load), and how late each send left against its schedule.
import { TIMELINE_STEP_MS } from './delivery-meter.ts';
import { createHistogram, recordUs } from './histogram.ts';
import type { OfferedLoad } from './swarm-plan.ts';

export class SendLedger {
  readonly byRoom: Record<string, number> = {};
  readonly beforeResumeByRoom: Record<string, number> = {};
  private readonly timeline: number[] = [];
  readonly offered: OfferedLoad;
  /** Schedule lag: how long after it was due each send left (µs). */
  readonly lag = createHistogram();

  constructor(
    senders: number,
    private readonly sendStartUs: number,
    /** When the slow readers read again (µs since the epoch; -Infinity: no slow readers). */
    private readonly resumeAtUs: number,
  ) {
    this.offered = { senders, planned: 0, sent: 0, sendersLost: 0 };
  }

  /** The schedule asked for `n` sends at once. */
  planned(n: number): void {
    this.offered.planned += n;
  }

  /** A send into `room` left at `nowUs`, due at `dueUs`. */
  sent(room: string, nowUs: number, dueUs: number): void {
    this.offered.sent++;
    this.byRoom[room] = (this.byRoom[room] ?? 0) + 1;
    if (nowUs < this.resumeAtUs) this.beforeResumeByRoom[room] = (this.beforeResumeByRoom[room] ?? 0) + 1;
    const step = Math.floor((nowUs - this.sendStartUs) / (TIMELINE_STEP_MS * 1000));
    this.timeline[step] = (this.timeline[step] ?? 0) + 1;
    recordUs(this.lag, nowUs - dueUs);
  }

  /** Sends per TIMELINE_STEP_MS since sending began, gaps as 0. */
  sentTimeline(): number[] {
    return Array.from(this.timeline, (v) => v ?? 0);
  }
}
