// What became of one sender's sends when its server can refuse them (v4): each send carries its
// sequence number as its id, so the server's answers name the send they are about.
//  - BACKPLANE_DOWN: not done. Owed to nobody; if it arrives anyway, the server lied
//    (refusedButDelivered, which must stay 0).
//  - SEND_UNKNOWN: the server lost its answer; the send may have gone through. It is resent with
//    the same id until the sender sees it come back (the server must not append it twice, which
//    the receivers' duplicate counts check), and it stays owed: if it never arrives, it is lost.
import type { SeqTracker } from './delivery-meter.ts';

/** Resends of one uncertain send are this far apart: a refused resend (Redis still down) waits. */
const RESEND_EVERY_US = 250_000;

export interface SendFateReport {
  /** Sends refused (BACKPLANE_DOWN) and never uncertain: not done, owed to nobody. */
  refused: number;
  /** Of those, how many arrived anyway (the sender saw them come back): must be 0. */
  refusedButDelivered: number;
  /** Sends the server could not answer for (SEND_UNKNOWN), and the resends made for them. */
  uncertain: number;
  resent: number;
  /** Of the uncertain sends, how many the sender saw come back: some had gone through before any resend was due. */
  uncertainArrived: number;
}

export class SendFate {
  private readonly refusedSeqs = new Set<number>();
  /** Uncertain seqs, and when each may next be resent (µs since the run epoch). */
  private readonly uncertainSeqs = new Map<number, number>();
  /** When each send was due (µs since the run epoch): a resend carries its original due time. */
  private readonly dueUs: number[] = [];
  private resent = 0;

  /** Send `seq` was due at `dueUs`. */
  sent(seq: number, dueUs: number): void {
    this.dueUs[seq] = dueUs;
  }

  /** The server's error about one of this sender's sends. */
  onError(code: string, seq: number, nowUs: number): void {
    if (code === 'SEND_UNKNOWN') {
      if (!this.uncertainSeqs.has(seq)) this.uncertainSeqs.set(seq, nowUs);
    } else if (code === 'BACKPLANE_DOWN') this.refusedSeqs.add(seq);
  }

  /**
   * Uncertain sends not seen back yet and due for a resend, with their original due time; each is
   * counted as resent and waits RESEND_EVERY_US before the next.
   */
  dueResends(nowUs: number, own: SeqTracker | undefined): Array<{ seq: number; dueUs: number }> {
    const out: Array<{ seq: number; dueUs: number }> = [];
    for (const [seq, at] of this.uncertainSeqs) {
      if (at > nowUs || own?.has(seq)) continue;
      this.uncertainSeqs.set(seq, nowUs + RESEND_EVERY_US);
      this.resent++;
      out.push({ seq, dueUs: this.dueUs[seq] ?? nowUs });
    }
    return out;
  }

  report(own: SeqTracker | undefined): SendFateReport {
    let refused = 0;
    let refusedButDelivered = 0;
    for (const seq of this.refusedSeqs) {
      if (this.uncertainSeqs.has(seq)) continue; // a resend refused: the send is still uncertain, and owed
      refused++;
      if (own?.has(seq)) refusedButDelivered++;
    }
    let uncertainArrived = 0;
    for (const seq of this.uncertainSeqs.keys()) if (own?.has(seq)) uncertainArrived++;
    return { refused, refusedButDelivered, uncertain: this.uncertainSeqs.size, resent: this.resent, uncertainArrived };
  }
}

/** A sender's own message it never saw come back, sent this long before its node let it go, went down with the node. */
const LOST_WITH_NODE_WINDOW_US = 1_000_000;

/**
 * A sender whose node died, and that came back with since and epoch, gets every message of its
 * own that made it into the stream (live or replayed). What it sent in the last second before its
 * node let it go and never got back was in that node's hands, not the stream's: lost with the
 * node, never sent to anyone. Older ones missing are not counted here: they are plain losses.
 */
export function sendsLostWithNode(sentAtUs: readonly number[], closedAtUs: number, own: SeqTracker | undefined): number {
  let n = 0;
  sentAtUs.forEach((at, seq) => {
    if (at >= closedAtUs - LOST_WITH_NODE_WINDOW_US && at <= closedAtUs && !own?.has(seq)) n++;
  });
  return n;
}
