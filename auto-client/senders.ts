// A swarm's senders on their open-model schedule: each sends its bursts when they are due (each
// with its own phase, Poisson gaps when asked), whether or not the server keeps up, and the sends
// a v4 server could not answer for go again under the same id. What they sent is counted in the
// ledger; at the end each sender's report says what became of its sends.
import type { MeteredClient } from './delivery-meter.ts';
import { scheduleOffsetUs } from './schedule.ts';
import { SendFate, sendsLostWithNode } from './send-fate.ts';
import { SendLedger } from './send-ledger.ts';
import type { ClientSpec, SwarmPlan, SwarmTiming } from './swarm-plan.ts';
import type { WireClient } from './wire-client.ts';

/** What the senders need of a swarm's client. */
export interface SendingClient extends MeteredClient {
  readonly spec: ClientSpec;
  wire: WireClient | null;
  readonly fate: SendFate | null;
}

interface Sender<C extends SendingClient> {
  c: C;
  /** The next probe's sequence number, and the schedule's position (n) and due time. */
  seq: number;
  n: number;
  nextUs: number;
  /** When each send left (fault scenarios only: see sendsLostWithNode). */
  sentAtUs: number[];
}

/** Sends one probe from `c`: its seq, and when it was due and left (µs since the epoch). */
export type SendProbe<C> = (c: C, seq: number, dueUs: number, nowUs: number) => void;

export class Senders<C extends SendingClient> {
  readonly ledger: SendLedger;
  private readonly senders: Sender<C>[];
  private readonly at: (n: number) => number;

  constructor(
    clients: readonly C[],
    private readonly plan: SwarmPlan,
    private readonly timing: SwarmTiming,
    private readonly random: () => number,
  ) {
    const periodUs = (1e6 / plan.ratePerSender) * plan.burst;
    const warmUs = timing.measureStartUs - timing.sendStartUs;
    this.at = (n) => timing.sendStartUs + scheduleOffsetUs(n, periodUs, warmUs);
    // Every sender the plan holds, connected or not: the offered load is checked against the plan.
    this.senders = clients
      .filter((c) => c.spec.sends)
      .map((c) => {
        const n = random(); // each sender's own phase
        return { c, seq: 0, n, nextUs: this.at(n), sentAtUs: [] };
      });
    this.ledger = new SendLedger(this.senders.length, timing.sendStartUs, plan.slowResumeUs === null ? -Infinity : timing.sendStartUs + plan.slowResumeUs);
  }

  /** Sends every burst due by `now` (until the measurement ends), then the resends due. */
  tick(now: number, send: SendProbe<C>): void {
    const burst = this.plan.burst;
    for (const s of this.senders) {
      while (s.nextUs <= now && s.nextUs < this.timing.measureEndUs) {
        this.ledger.planned(burst);
        for (let b = 0; b < burst && s.c.wire?.isOpen; b++) {
          send(s.c, s.seq, s.nextUs, now);
          if (s.c.report.recovery) s.sentAtUs.push(now);
          s.c.fate?.sent(s.seq, s.nextUs);
          s.seq++;
          this.ledger.sent(s.c.spec.room, now, s.nextUs);
        }
        s.n += this.plan.poisson ? -Math.log(1 - this.random()) : 1;
        s.nextUs = this.at(s.n);
      }
      // Sends the server could not answer for go again, with the same id, until they come back.
      if (s.c.fate && s.c.wire?.isOpen) for (const r of s.c.fate.dueResends(now, s.c.seen.get(s.c.spec.id))) send(s.c, r.seq, r.dueUs, now);
    }
  }

  /** After the run: senders the server lost, what each sent (direct), and what became of the sends of each that lost its node. */
  finish(countSent: boolean): void {
    this.ledger.offered.sendersLost = this.senders.filter((s) => s.c.wire === null || s.c.report.closedByServer !== null).length;
    for (const s of this.senders) {
      if (countSent) s.c.report.sent = s.seq;
      const r = s.c.report.recovery;
      const own = s.c.seen.get(s.c.spec.id);
      if (r && s.c.report.closedByServer) r.lostWithNode = sendsLostWithNode(s.sentAtUs, s.c.report.closedByServer.atUs, own);
      if (r && s.c.fate) Object.assign(r, s.c.fate.report(own));
    }
  }
}
