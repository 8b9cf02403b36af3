import { describe, expect, it } from 'vitest';
import { createHistogram, encodeHistogram, mergeEncoded, recordUs, summarize } from '../../auto-client/histogram.ts';

describe('histograms', () => {
  it('merge across workers from their encoded form, percentiles computed last', () => {
    const a = createHistogram();
    const b = createHistogram();
    for (let i = 1; i <= 900; i++) recordUs(a, 1000); // 1 ms
    for (let i = 1; i <= 100; i++) recordUs(b, 500_000); // 500 ms
    const merged = mergeEncoded([encodeHistogram(a), encodeHistogram(b)]);
    const s = summarize(merged);
    expect(s.count).toBe(1000);
    expect(s.p50).toBeCloseTo(1, 1);
    expect(s.p90).toBeCloseTo(1, 1);
    expect(s.p99).toBeCloseTo(500, -1);
    expect(s.max).toBeCloseTo(500, -1);
  });

  it('clamps values outside the trackable range instead of losing them', () => {
    const h = createHistogram();
    recordUs(h, -5);
    recordUs(h, 1e12);
    expect(h.totalCount).toBe(2);
    expect(summarize(h).max).toBeGreaterThanOrEqual(600_000);
  });
});
