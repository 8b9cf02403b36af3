import { describe, expect, it } from 'vitest';
import { SeqTracker } from '../../auto-client/delivery-meter.ts';
import { SendFate } from '../../auto-client/send-fate.ts';

describe('SendFate', () => {
  it('counts a refused send as owed to nobody, and one that arrives anyway as a lie', () => {
    const fate = new SendFate();
    const own = new SeqTracker();
    for (const seq of [0, 1, 2]) fate.sent(seq, seq * 1000);
    fate.onError('BACKPLANE_DOWN', 1, 5_000);
    fate.onError('BACKPLANE_DOWN', 2, 5_000);
    own.see(0);
    own.see(2);
    expect(fate.report(own)).toMatchObject({ refused: 2, refusedButDelivered: 1, uncertain: 0, resent: 0 });
  });

  it('resends an uncertain send with its original due time, a resend interval apart, until it is seen', () => {
    const fate = new SendFate();
    const own = new SeqTracker();
    fate.sent(7, 70_000);
    fate.onError('SEND_UNKNOWN', 7, 100_000);
    expect(fate.dueResends(100_000, own)).toEqual([{ seq: 7, dueUs: 70_000 }]);
    expect(fate.dueResends(200_000, own)).toEqual([]); // not a resend interval yet
    fate.onError('BACKPLANE_DOWN', 7, 210_000); // the resend refused: still uncertain, still owed
    expect(fate.dueResends(400_000, own)).toEqual([{ seq: 7, dueUs: 70_000 }]);
    own.see(7);
    expect(fate.dueResends(1_000_000, own)).toEqual([]);
    expect(fate.report(own)).toEqual({ refused: 0, refusedButDelivered: 0, uncertain: 1, resent: 2, uncertainArrived: 1 });
  });

  it('does not resend an uncertain send that had gone through before its first resend was due', () => {
    const fate = new SendFate();
    const own = new SeqTracker();
    fate.sent(3, 30_000);
    fate.onError('SEND_UNKNOWN', 3, 100_000);
    own.see(3); // only the answer was lost
    expect(fate.dueResends(100_000, own)).toEqual([]);
    expect(fate.report(own)).toEqual({ refused: 0, refusedButDelivered: 0, uncertain: 1, resent: 0, uncertainArrived: 1 });
  });

  it('leaves an uncertain send that never arrives uncounted as arrived: it is lost, not refused', () => {
    const fate = new SendFate();
    fate.sent(4, 0);
    fate.onError('SEND_UNKNOWN', 4, 10);
    expect(fate.report(new SeqTracker())).toEqual({ refused: 0, refusedButDelivered: 0, uncertain: 1, resent: 0, uncertainArrived: 0 });
  });
});
