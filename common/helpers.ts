// Small helpers more than one part of the workbench needs, in one place. Imports nothing: the
// versions, the auto-client, the harness and the benches all sit above it.

/** Client i connects from its own loopback source address: one address pair runs out of ports past ~14k connections. */
export function localAddressOf(i: number): string {
  return `127.0.${1 + (Math.floor(i / 200) % 200)}.${2 + (i % 200)}`;
}

/** A small seeded PRNG (mulberry32): a run's schedules, a bench's cuts and a test's choices are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A count with thousands separators: 19,900. */
export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

/** `x` rounded to `digits` decimal places. */
export function round(x: number, digits: number): number {
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}

/** "1 sender", "2 senders", "1,000 clients": a count and its noun, singular or plural. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${fmt(n)} ${n === 1 ? one : many}`;
}

/** Resolves true once `done()` holds, checked every `everyMs`, or false after `timeoutMs`. */
export function waitUntil(done: () => boolean, timeoutMs: number, everyMs = 5): Promise<boolean> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = (): void => {
      if (done()) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(check, everyMs);
    };
    check();
  });
}
