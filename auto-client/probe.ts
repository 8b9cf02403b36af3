// The measurement data a message carries inside `content`, so any server that relays content
// verbatim can be measured: `~ce1|<sender>|<seq>|<intended µs>|<sent µs>|` then padding.
// Times are microseconds since a run epoch on CLOCK_MONOTONIC (process.hrtime.bigint()), the
// one clock every process on a Linux host shares. Comparing them across hosts is meaningless.

const MARKER = '~ce1|';
const MARKER_BYTES = Buffer.from(MARKER);
const PIPE = 0x7c;

export interface Probe {
  sender: number;
  seq: number;
  intendedUs: number;
  sentUs: number;
}

/** Microseconds since `epochNs` on the monotonic clock. */
export function nowUs(epochNs: bigint): number {
  return Number(process.hrtime.bigint() - epochNs) / 1000;
}

export function encodeProbe(p: Probe, size: number): string {
  const head = `${MARKER}${p.sender}|${p.seq}|${Math.round(p.intendedUs)}|${Math.round(p.sentUs)}|`;
  return size > head.length ? head + 'x'.repeat(size - head.length) : head;
}

/**
 * Reads a probe out of a raw frame payload without building a string or an object per field:
 * the receive path of the generator must keep up with millions of frames a second.
 * Writes into `out` and returns true, or false when the frame carries no probe.
 */
export function readProbe(buf: Buffer, start: number, end: number, out: Probe): boolean {
  const at = buf.indexOf(MARKER_BYTES, start);
  if (at < 0 || at >= end) return false;
  let i = at + MARKER_BYTES.length;
  const fields = [0, 0, 0, 0];
  for (let f = 0; f < 4; f++) {
    let v = 0;
    let digits = 0;
    for (; i < end; i++) {
      const c = buf[i] as number;
      if (c === PIPE) break;
      if (c < 0x30 || c > 0x39) return false;
      v = v * 10 + (c - 0x30);
      digits++;
    }
    if (i >= end || digits === 0) return false;
    fields[f] = v;
    i++;
  }
  out.sender = fields[0] as number;
  out.seq = fields[1] as number;
  out.intendedUs = fields[2] as number;
  out.sentUs = fields[3] as number;
  return true;
}
