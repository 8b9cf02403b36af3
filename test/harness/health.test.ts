// How the harness dates a server's failures: when relaying stopped, when it stopped accepting.
import { describe, expect, it } from 'vitest';
import { findRelayOutage } from '../../harness/health.ts';
import { resolveScenario } from '../../harness/scenarios.ts';
import { traceOf } from '../../harness/server-health.ts';

describe('findRelayOutage', () => {
  // 100 ms steps; a message sent every step; healthy deliveries as given.
  const sent = Array(80).fill(5) as number[];

  it('finds the longest silence while messages were being sent, and whether relaying ever came back', () => {
    const healthy = sent.map((_, b) => (b >= 20 && b < 55 ? 0 : 40));
    expect(findRelayOutage(healthy, sent, 0, 80, 10, 20)).toEqual({ fromS: 2, seconds: 3.5, neverResumed: false });
    const dead = sent.map((_, b) => (b >= 30 ? 0 : 40));
    expect(findRelayOutage(dead, sent, 0, 80, 10, 20)).toEqual({ fromS: 3, seconds: 5, neverResumed: true });
  });

  it('calls nothing an outage that is shorter than the bar, or when nothing was being sent', () => {
    const healthy = sent.map((_, b) => (b >= 20 && b < 35 ? 0 : 40));
    expect(findRelayOutage(healthy, sent, 0, 80, 10, 20)).toBeNull();
    const quiet = sent.map((_, b) => (b >= 20 ? 0 : 5)); // senders stopped at 2 s: silence after 3 s is owed nothing
    const heard = quiet.map((n) => (n > 0 ? 40 : 0));
    expect(findRelayOutage(heard, quiet, 0, 80, 10, 20)).toBeNull();
  });
});

describe('traceOf', () => {
  it('dates unreachability from the first failed probe after the last one that answered', () => {
    const ok = (t: number) => ({ t, ok: true, error: null });
    const bad = (t: number) => ({ t, ok: false, error: 'connect ECONNREFUSED 127.0.0.1:9' });
    expect(traceOf([ok(0), bad(1), ok(2), bad(3), bad(4)])).toEqual({ probes: 5, failures: 3, unreachableFromS: 3, lastError: 'connect ECONNREFUSED 127.0.0.1:9' });
    expect(traceOf([ok(0), bad(1), ok(2)])).toMatchObject({ failures: 1, unreachableFromS: null });
  });
});

describe('slow-consumer proves it can take effect', () => {
  it('refuses a run whose stuck readers would not fill the loopback buffers, naming the duration that would', () => {
    expect(() => resolveScenario('slow-consumer', { durationS: 5 })).toThrow(
      /^slow-consumer: a slow reader would have only [\d.]+ MB unread when it reads again, less than 1\.5 × the [\d.]+ MB loopback buffers for it \(.*\), so a server that blocks on a slow reader might never block: raise --duration to at least \d+, or raise --rate or --size$/,
    );
    expect(resolveScenario('slow-consumer').durationS).toBe(12);
  });
});
