// What a receiver counts, frame by frame: every message of a frame that joins several, and the
// stalls of a client that received late or nothing at all.
import { describe, expect, it } from 'vitest';
import { DeliveryMeter, leakedTo, meteredClient, SEEN, SeqTracker, type MeterTiming } from '../../auto-client/delivery-meter.ts';
import { encodeProbe } from '../../auto-client/probe.ts';

const SIZE = 128;
const chat = (sender: number, seq: number): string => JSON.stringify({ type: 'chat', room: 'lobby', from: `c${sender}`, content: encodeProbe({ sender, seq, intendedUs: 0, sentUs: 0 }, SIZE) });
/** A timing whose window is the whole past and the next hour, so every delivery counts. */
const always: MeterTiming = { sendStartUs: 0, measureStartUs: 0, measureEndUs: 3.6e9 };

describe('DeliveryMeter.onText', () => {
  it('counts every message of a frame that joins several with newlines, as gorilla\'s chat example sends them', () => {
    const meter = new DeliveryMeter(process.hrtime.bigint(), 250_000, SIZE);
    meter.start(always);
    const c = meteredClient(1, 'lobby', 'healthy');
    const frame = Buffer.from([chat(7, 0), chat(7, 1), chat(8, 0)].join('\n'));
    expect(meter.onText(c, frame, 0, frame.length)).toBe(true);
    expect(c.report.received).toBe(3);
    expect(c.report.duplicates).toBe(0);
    expect(meter.framesReceived).toBe(1);
    // The same joined frame inside a larger buffer, and with a trailing newline: positions are relative to the frame.
    const padded = Buffer.concat([Buffer.from('xxxx'), Buffer.from([chat(7, 2), chat(7, 3)].join('\n') + '\n')]);
    expect(meter.onText(c, padded, 4, padded.length)).toBe(true);
    expect(c.report.received).toBe(5);
  });

  it('finds the next message even when the content is not padded as the plan said', () => {
    const meter = new DeliveryMeter(process.hrtime.bigint(), 250_000, 10_000); // a plan far larger than the frames
    meter.start(always);
    const c = meteredClient(1, 'lobby', 'healthy');
    const frame = Buffer.from([chat(1, 0), chat(1, 1)].join('\n'));
    meter.onText(c, frame, 0, frame.length);
    expect(c.report.received).toBe(2);
  });

  it('leaves a frame without a probe to the caller', () => {
    const meter = new DeliveryMeter(process.hrtime.bigint(), 250_000, SIZE);
    const frame = Buffer.from('{"type":"joined","room":"lobby"}');
    expect(meter.onText(meteredClient(1, 'lobby', 'healthy'), frame, 0, frame.length)).toBe(false);
  });
});

describe('DeliveryMeter.finish', () => {
  const window: MeterTiming = { sendStartUs: 0, measureStartUs: 1_000_000, measureEndUs: 5_000_000 };

  it('counts a client that received nothing in the window as stalled for the whole window', () => {
    const meter = new DeliveryMeter(0n, 250_000, SIZE);
    const silent = meteredClient(1, 'lobby', 'healthy');
    meter.finish(silent, window);
    expect(silent.report).toMatchObject({ stalls: 1, stalledMs: 4000 });
  });

  it('counts the silence from its last delivery before the window, never more than the window', () => {
    const meter = new DeliveryMeter(0n, 250_000, SIZE);
    const c = meteredClient(1, 'lobby', 'healthy');
    c.lastArrivalUs = 200_000; // during the warm-up
    meter.finish(c, window);
    expect(c.report).toMatchObject({ stalls: 1, stalledMs: 4000 });
  });

  it('leaves a client that heard until the end alone', () => {
    const meter = new DeliveryMeter(0n, 250_000, SIZE);
    const c = meteredClient(1, 'lobby', 'healthy');
    c.lastArrivalUs = 4_900_000;
    meter.finish(c, window);
    expect(c.report).toMatchObject({ stalls: 0, stalledMs: 0 });
  });
});

describe('DeliveryMeter: time behind', () => {
  // The clock reads about 10 s since the epoch; probes say when each message was due.
  const at10s = (): bigint => process.hrtime.bigint() - 10_000_000_000n;
  const due = (seq: number, intendedUs: number): Buffer =>
    Buffer.from(JSON.stringify({ type: 'chat', room: 'lobby', from: 'c7', content: encodeProbe({ sender: 7, seq, intendedUs, sentUs: intendedUs }, SIZE) }));

  it('counts a room that keeps receiving, ever later, as behind: the union of [due + bound, arrival) over its late messages', () => {
    const meter = new DeliveryMeter(at10s(), 250_000, SIZE, 1_000_000);
    meter.start({ sendStartUs: 0, measureStartUs: 0, measureEndUs: 3.6e9 });
    const c = meteredClient(1, 'lobby', 'healthy');
    for (const [seq, intendedUs] of [[0, 7_000_000], [1, 7_500_000], [2, 9_500_000]] as const) {
      meter.beginChunk();
      meter.onText(c, due(seq, intendedUs), 0, due(seq, intendedUs).length);
    }
    meter.finish(c, { sendStartUs: 0, measureStartUs: 0, measureEndUs: 3.6e9 });
    // 3 s late: behind from 8 s to now (10 s); 2.5 s late: inside that; 0.5 s late: within the bound.
    expect(c.report.received).toBe(3);
    expect(c.report.behindMs).toBeGreaterThanOrEqual(2000);
    expect(c.report.behindMs).toBeLessThan(2500);
  });

  it('leaves a client whose messages all came within the bound, and messages due outside the window, alone', () => {
    const meter = new DeliveryMeter(at10s(), 250_000, SIZE, 1_000_000);
    meter.start({ sendStartUs: 0, measureStartUs: 9_000_000, measureEndUs: 3.6e9 });
    const c = meteredClient(1, 'lobby', 'healthy');
    meter.onText(c, due(0, 5_000_000), 0, due(0, 5_000_000).length); // 5 s late, but due before the window
    meter.beginChunk();
    meter.onText(c, due(1, 9_800_000), 0, due(1, 9_800_000).length); // 0.2 s late
    expect(c.report.received).toBe(2);
    expect(c.report.behindMs).toBe(0);
  });
});

describe('SeqTracker.see', () => {
  it('names what a sequence number is: in order, reordered, or a duplicate', () => {
    const t = new SeqTracker();
    expect([t.see(0), t.see(2), t.see(1), t.see(2), t.see(100)]).toEqual([SEEN.IN_ORDER, SEEN.IN_ORDER, SEEN.REORDERED, SEEN.DUPLICATE, SEEN.IN_ORDER]);
  });
});

describe('leakedTo', () => {
  it('counts what a client got from senders it was owed nothing from, each seq once', () => {
    const seen = new Map<number, SeqTracker>();
    const from = (sender: number, seqs: number[]): void => {
      const t = new SeqTracker();
      for (const s of seqs) t.see(s);
      seen.set(sender, t);
    };
    from(1, [0, 1, 2, 3]);
    from(2, [0, 5, 700]); // a seq past the tracker's first 64 bytes counts too
    from(3, [4, 4, 4]); // a duplicate is one message
    expect(leakedTo(seen, [1])).toBe(4);
    expect(leakedTo(seen, [1, 2, 3])).toBe(0);
    expect(leakedTo(seen, [])).toBe(8);
  });
});
