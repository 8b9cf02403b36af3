// A cluster's stats as one server's, and what a report says of its nodes and of a fault, from
// readings made by hand: sums, worst cases, and a node that stopped answering.
import { describe, expect, it } from 'vitest';
import { SeqTracker, type ClientReport } from '../../auto-client/delivery-meter.ts';
import { sendsLostWithNode } from '../../auto-client/send-fate.ts';
import { clusterFigures, clusterLine, recoveryFigures, recoveryLine } from '../../harness/cluster-figures.ts';
import { alignNodes, mergeStats, type RawStats } from '../../harness/server-sampler.ts';
import type { ServerStats } from '../../versions/protocol.ts';

function node(name: string, o: { deliveries: number; cpuS: number; uptimeS: number; loopP99?: number; published?: number; rttP99?: number }): ServerStats {
  return {
    version: 'v4', describe: `v4 · node ${name} · redis x`, connections: 10, poolSize: 10, rooms: 1, received: 5, deliveries: o.deliveries, drops: 0, kicks: 0,
    controlFrames: 0, writes: o.deliveries, queueDepth: 1, queueDepthMax: 1, bufferedBytes: 0, badInput: { BAD_JSON: 1 }, refusals: {},
    loopDelayMs: { p50: 1, p99: o.loopP99 ?? 2, max: 3 }, rssBytes: 100, heapUsedBytes: 50, cpuUserUs: o.cpuS * 1e6, cpuSystemUs: 0, uptimeS: o.uptimeS, node: name,
    backplane: { state: 'up', published: o.published ?? 0, received: 0, inFlight: 0, refused: 0, reconnects: 0, outageS: 0, replayed: 0, gaps: 0, resets: 0, refetched: 0, publishRttMs: { p50: 0, p99: 0, max: 0 }, publishRttAllMs: { p50: 1, p99: o.rttP99 ?? 2, max: 3 } },
  };
}

describe('a cluster read as one server', () => {
  it('sums counts and costs, keeps the worst event loop, and each node', () => {
    const m = mergeStats([node('n1', { deliveries: 100, cpuS: 1, uptimeS: 10, loopP99: 2 }), node('n2', { deliveries: 50, cpuS: 2, uptimeS: 9, loopP99: 7 })]);
    expect(m).toMatchObject({ deliveries: 150, connections: 20, cpuUserUs: 3e6, uptimeS: 9, rooms: 1, badInput: { BAD_JSON: 2 }, describe: 'v4 · redis x · 2 nodes answering' });
    expect(m.loopDelayMs.p99).toBe(7);
    expect(m.nodes!.map((n) => n.node)).toEqual(['n1', 'n2']);
  });

  it('compares a reading with a killed node missing only over the nodes both readings have', () => {
    const before: RawStats = { ...mergeStats([node('n1', { deliveries: 0, cpuS: 1, uptimeS: 1 }), node('n2', { deliveries: 0, cpuS: 1, uptimeS: 1 }), node('n3', { deliveries: 0, cpuS: 5, uptimeS: 1 })]), nodesAsked: 3 };
    const after: RawStats = { ...mergeStats([node('n1', { deliveries: 80, cpuS: 2, uptimeS: 11 }), node('n2', { deliveries: 40, cpuS: 3, uptimeS: 11 })]), nodesAsked: 3 };
    const aligned = alignNodes(before, after)!;
    expect(aligned.nodes!.map((n) => n.node)).toEqual(['n1', 'n2']);
    expect(aligned.cpuUserUs).toBe(2e6); // without n3's 5 s, after − before is the 3 s the two spent
    const c = clusterFigures(aligned, after, 3.5)!;
    expect(c.nodes).toEqual([
      { node: 'n1', connections: 10, deliveries: 80, cpuPct: 10 },
      { node: 'n2', connections: 10, deliveries: 40, cpuPct: 20 },
    ]);
    expect(clusterLine(c)).toBe('2 nodes, deliveries by node: n1 80 (67%, CPU 10%), n2 40 (33%, CPU 20%); Redis CPU 3.5%; 0 published, publish round trip p99 2 ms');
  });

  it('has no cluster figures for a single process', () => {
    const one = node('n1', { deliveries: 1, cpuS: 1, uptimeS: 1 });
    expect(clusterFigures(one, one, null)).toBeNull();
  });
});

describe('what clients went through in a fault', () => {
  const client = (id: number, recovery: ClientReport['recovery'], closed = false): ClientReport => ({
    id, room: 'lobby', kind: 'healthy', received: 0, duplicates: 0, reordered: 0, stalls: 0, stalledMs: 0, behindMs: 0, stayed: false, closeCode: null,
    closedByServer: closed ? { code: 1006, atUs: 1 } : null, droppedByServer: 0, receivedBeforeResume: null, recovery,
  });
  it('counts who was let go, who came back and how fast, and what was replayed, lost in gaps, reset or refused', () => {
    const r = recoveryFigures(
      [{ kind: 'node-kill', atS: 4.5, endS: null, detail: 'node n3 killed' }],
      [
        client(0, { reconnects: 1, reconnectMs: [300], replayed: 10, gapMissed: 0, resets: 0, refused: 0, refusedButDelivered: 0, uncertain: 0, resent: 0, uncertainArrived: 0, lostWithNode: 1 }, true),
        client(1, { reconnects: 1, reconnectMs: [200], replayed: 12, gapMissed: 3, resets: 0, refused: 0, refusedButDelivered: 0, uncertain: 0, resent: 0, uncertainArrived: 0, lostWithNode: 0 }, true),
        client(2, { reconnects: 0, reconnectMs: [], replayed: 0, gapMissed: 0, resets: 1, refused: 2, refusedButDelivered: 0, uncertain: 0, resent: 0, uncertainArrived: 0, lostWithNode: 0 }, true),
        client(3, { reconnects: 0, reconnectMs: [], replayed: 0, gapMissed: 0, resets: 0, refused: 0, refusedButDelivered: 0, uncertain: 0, resent: 0, uncertainArrived: 0, lostWithNode: 0 }),
      ],
    )!;
    expect(r).toMatchObject({ letGo: 3, resumed: 2, reconnectMsP50: 200, reconnectMsMax: 300, replayed: 22, gapMissed: 3, resets: 1, refused: 2, lostWithNode: 1 });
    expect(recoveryLine(r)).toBe('node n3 killed at 4.5 s. 2 of 3 clients let go got a connection back (reconnect p50 200 ms, max 300 ms); 22 messages replayed, 3 reported lost in gap notices, 1 reset notices, 2 sends refused (BACKPLANE_DOWN); 1 sends went down with the node before it published them (owed to nobody)');
  });
});

describe('a sender whose node died', () => {
  it('counts as gone with the node only its own sends of the last second before the close that never came back', () => {
    const own = new SeqTracker();
    for (const seq of [0, 1, 3]) own.see(seq);
    // seq 2 sent 3 s before the close and missing: a plain loss, not counted here; 4 and 5 in the last second, missing
    expect(sendsLostWithNode([1_000_000, 2_000_000, 3_000_000, 5_500_000, 5_800_000, 5_900_000], 6_000_000, own)).toBe(2);
    expect(sendsLostWithNode([5_500_000], 6_000_000, undefined)).toBe(1);
  });
});
