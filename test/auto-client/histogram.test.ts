import { describe, expect, it } from 'vitest';
import { createHistogram, encodeHistogram, LatencyRecorder, mergeEncoded, recordUs, summarize } from '../../auto-client/histogram.ts';
import { rng } from '../../common/helpers.ts';

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

describe('LatencyRecorder', () => {
  it('becomes the very histogram hdr-histogram-js builds from the same values: same buckets, exact min and max', () => {
    const direct = createHistogram();
    const recorder = new LatencyRecorder();
    const random = rng(7);
    // Spread over every bucket, from below the lowest value to past the highest.
    for (let i = 0; i < 100_000; i++) {
      const us = Math.exp(random() * Math.log(1e9)) - 0.5;
      recordUs(direct, us);
      recorder.record(us);
    }
    expect(recorder.count).toBe(100_000);
    expect(recorder.encode()).toBe(encodeHistogram(direct));
    const h = recorder.toHistogram();
    expect(h.maxValue).toBe(direct.maxValue);
    expect(h.minNonZeroValue).toBe(direct.minNonZeroValue);
    expect(summarize(h)).toEqual(summarize(direct));
  });

  it('keeps a single value exact, and an empty recorder encodes an empty histogram', () => {
    const one = new LatencyRecorder();
    one.record(123_457);
    expect(one.toHistogram().maxValue).toBe(123_457);
    expect(one.toHistogram().minNonZeroValue).toBe(123_457);
    expect(new LatencyRecorder().toHistogram().totalCount).toBe(0);
  });
});
