// The senders' open-model schedule: when each message is due, and how many are due by a time.
// A linear ramp over the warm-up, then the full rate.

/** Senders start the warm-up at this share of their rate and reach the full rate when measuring starts. */
export const RAMP_FROM = 0.1;

/**
 * When a sender's n-th scheduled instant falls, in µs after sendStart: n instants take n × gapUs
 * at the full rate, and during the warm-up the rate ramps linearly from RAMP_FROM to 1, so a cold
 * server (JIT, heap, TCP windows) is not buried under a backlog that would spill into the measured
 * window. The cumulative schedule is inverted exactly (a quadratic during the ramp), so a sender
 * of one message a second keeps its schedule as well as one of a thousand. n need not be whole:
 * a random start phase, and exponential steps for Poisson arrivals.
 */
export function scheduleOffsetUs(n: number, gapUs: number, warmUs: number): number {
  const fullRateUs = n * gapUs; // how long n instants take at the full rate
  if (warmUs <= 0) return fullRateUs;
  const rampUs = (warmUs * (1 + RAMP_FROM)) / 2; // full-rate time the ramp's instants take
  if (fullRateUs >= rampUs) return warmUs + (fullRateUs - rampUs);
  // Solve (1 − a) / (2W) · τ² + a · τ = fullRateUs for the time τ into the ramp.
  const k = (1 - RAMP_FROM) / (2 * warmUs);
  return (-RAMP_FROM + Math.sqrt(RAMP_FROM * RAMP_FROM + 4 * k * fullRateUs)) / (2 * k);
}

/**
 * How many instants fall before `tUs` after sendStart: the inverse of scheduleOffsetUs, so a
 * scenario can tell before it runs how much a sender will have sent by then.
 */
export function instantsBefore(tUs: number, gapUs: number, warmUs: number): number {
  if (tUs <= 0) return 0;
  if (warmUs <= 0 || tUs >= warmUs) {
    const rampUs = warmUs > 0 ? (warmUs * (1 + RAMP_FROM)) / 2 : 0;
    return (rampUs + (tUs - Math.max(warmUs, 0))) / gapUs;
  }
  const k = (1 - RAMP_FROM) / (2 * warmUs);
  return (RAMP_FROM * tUs + k * tUs * tUs) / gapUs;
}
