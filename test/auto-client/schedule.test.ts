// The senders' open-model schedule: a linear ramp over the warm-up, the full rate in the window.
import { describe, expect, it } from 'vitest';
import { instantsBefore, RAMP_FROM, scheduleOffsetUs } from '../../auto-client/schedule.ts';

const WARM_US = 2_000_000;
const END_US = 6_000_000;

/** Send times (µs after sendStart) of a sender with this full-rate gap and start phase. */
function schedule(gapUs: number, phase = 0): number[] {
  const times: number[] = [];
  for (let n = phase; ; n++) {
    const t = scheduleOffsetUs(n, gapUs, WARM_US);
    if (t >= END_US) return times;
    times.push(t);
  }
}

describe('send schedule', () => {
  it('ramps from a tenth of the rate to the full rate over the warm-up, then keeps the full rate', () => {
    const times = schedule(1000); // 1,000 messages/s at the full rate
    const warm = times.filter((t) => t < WARM_US);
    const measured = times.filter((t) => t >= WARM_US);
    // Over the warm-up the mean share is (0.1 + 1) / 2: 1,100 sends instead of 2,000.
    expect(warm).toHaveLength(1100);
    expect(measured).toHaveLength(4000);
    for (let i = 1; i < measured.length; i++) expect((measured[i] as number) - (measured[i - 1] as number)).toBeCloseTo(1000, 6);
    // The rate at the start of the ramp is a tenth of the full rate, rising steadily.
    const first = (times[1] as number) - (times[0] as number);
    expect(Math.abs(first - 1000 / RAMP_FROM) / (1000 / RAMP_FROM)).toBeLessThan(0.03);
    const gaps = times.slice(1, warm.length).map((t, i) => t - (times[i] as number));
    for (let i = 1; i < gaps.length; i++) expect(gaps[i] as number).toBeLessThanOrEqual((gaps[i - 1] as number) + 1e-6);
  });

  it('keeps a slow sender on schedule too: one message a second sends within the warm-up and every second after', () => {
    for (const phase of [0, 0.3, 0.9]) {
      const times = schedule(1_000_000, phase);
      expect(times.filter((t) => t < WARM_US).length).toBeGreaterThanOrEqual(1);
      expect(times.filter((t) => t >= WARM_US)).toHaveLength(4);
    }
  });

  it('does not ramp without a warm-up', () => {
    expect(scheduleOffsetUs(3.5, 500, 0)).toBe(1750);
  });

  it('counts the instants due before a time: the inverse of the schedule, in the ramp and after it', () => {
    for (const n of [0.5, 3, 120, 999, 2500]) {
      const t = scheduleOffsetUs(n, 1000, WARM_US);
      expect(instantsBefore(t, 1000, WARM_US)).toBeCloseTo(n, 6);
    }
    expect(instantsBefore(1750, 500, 0)).toBe(3.5);
    expect(instantsBefore(0, 1000, WARM_US)).toBe(0);
  });
});
