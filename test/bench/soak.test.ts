// The soak, as CI runs it: 10,000 client lives against v1.1, v2 and v3 leave the server where it
// started; v1's pool keeps every dead socket (its story).
import { describe, expect, it } from 'vitest';
import { soak } from '../../bench/soak-cycles.ts';

/** What 10,000 cycles may leave on the heap after full GCs: 150 B a cycle; v1 keeps about 3 KB a cycle. */
const HEAP_TOLERANCE_BYTES = 1.5e6;
/** RSS after: malloc and V8 keep some pages; a leak of a few hundred bytes a cycle would pass this, the heap check would not. */
const RSS_TOLERANCE_BYTES = 30e6;

describe('the soak', () => {
  it.each(['v1.1', 'v2', 'v3'] as const)('%s: after 10,000 connect/join/move/chat/leave cycles, pool, rooms, heap and RSS are back where they started', async (version) => {
    const r = await soak(version, 10_000);
    expect(r.after).toMatchObject({ connections: 0, poolSize: 0, rooms: 0 });
    expect(r.before).toMatchObject({ connections: 0, poolSize: 0, rooms: 0 });
    expect(r.after.heapUsedBytes - r.before.heapUsedBytes).toBeLessThan(HEAP_TOLERANCE_BYTES);
    expect(r.after.rssBytes - r.before.rssBytes).toBeLessThan(RSS_TOLERANCE_BYTES);
  }, 120_000);

  it("v1: its pool keeps every one of 2,000 dead sockets, and the heap grows with them", async () => {
    const r = await soak('v1', 2_000);
    expect(r.after.poolSize - r.before.poolSize).toBe(2_000);
    expect(r.after.connections).toBe(0);
    expect(r.after.heapUsedBytes - r.before.heapUsedBytes).toBeGreaterThan(2_000 * 1_000); // kilobytes per dead socket
  }, 120_000);
});
