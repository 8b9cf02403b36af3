// The one rule for catching up a room's stream (versions/v4/feed.ts), for a node's feed and a
// resuming client alike: what history trimmed is a gap, then the entries it holds, up to a bound.
import { describe, expect, it } from 'vitest';
import type { HistorySlice } from '../../../versions/v4/backplane.ts';
import { catchUpPlan } from '../../../versions/v4/feed.ts';

const slice = (first: number, last: number, epoch: string | null = 'e1', seqs = range(first, last)): HistorySlice => ({
  epoch,
  first,
  last,
  entries: seqs.map((seq) => ({ seq, epoch: epoch ?? '', payload: `{"n":${seq}}` })),
});
function range(from: number, to: number): number[] {
  return from === 0 ? [] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
const seqsOf = (plan: ReturnType<typeof catchUpPlan>): number[] => plan.entries.map((e) => e.seq);

describe('catchUpPlan', () => {
  it('owes the entries after the reader, up to the bound, when history holds them all', () => {
    const plan = catchUpPlan(slice(1, 10), 4, 8);
    expect(plan.gap).toBeNull();
    expect(seqsOf(plan)).toEqual([5, 6, 7, 8]);
  });

  it('tells what history trimmed as a gap, then the entries it holds', () => {
    const plan = catchUpPlan(slice(7, 12), 3, 12);
    expect(plan.gap).toEqual({ from: 4, to: 6 });
    expect(seqsOf(plan)).toEqual([7, 8, 9, 10, 11, 12]);
  });

  it('bounds the gap too: what history trimmed past the bound is not this reader\'s to be told', () => {
    const plan = catchUpPlan(slice(20, 30), 3, 10);
    expect(plan.gap).toEqual({ from: 4, to: 10 });
    expect(seqsOf(plan)).toEqual([]);
  });

  it('an empty history after sends (all trimmed) is one gap up to the last seq', () => {
    const plan = catchUpPlan(slice(0, 9, 'e1', []), 2, 9);
    expect(plan.gap).toEqual({ from: 3, to: 9 });
    expect(seqsOf(plan)).toEqual([]);
  });

  it('owes nothing to a reader that has everything, and tells no gap for a stream that does not exist', () => {
    expect(catchUpPlan(slice(1, 5), 5, 5)).toEqual({ gap: null, entries: [] });
    expect(catchUpPlan(slice(0, 0, null, []), 0, 0)).toEqual({ gap: null, entries: [] });
  });
});
