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
  /** Where the marker was, from the frame's start: where readProbe looks first next time. */
  at?: number;
  /** Where the probe's head (marker and four fields) ends, from the frame's start; its padding follows. */
  headEnd?: number;
}

/** Microseconds since `epochNs` on the monotonic clock. */
export function nowUs(epochNs: bigint): number {
  return Number(process.hrtime.bigint() - epochNs) / 1000;
}

export function encodeProbe(p: Probe, size: number): string {
  const head = `${MARKER}${p.sender}|${p.seq}|${Math.round(p.intendedUs)}|${Math.round(p.sentUs)}|`;
  return size > head.length ? head + 'x'.repeat(size - head.length) : head;
}

const [M0, M1, M2, M3, M4] = Array.from(MARKER_BYTES);

function markerAt(buf: Buffer, i: number): boolean {
  return buf[i] === M0 && buf[i + 1] === M1 && buf[i + 2] === M2 && buf[i + 3] === M3 && buf[i + 4] === M4;
}

/**
 * Reads a probe out of a raw frame payload without building a string or an object per field:
 * the receive path of the generator must keep up with millions of frames a second. It looks
 * first where the marker was in the last frame (`out.at`: one server frames every message
 * alike), then scans; a native indexOf per frame cost more than the whole rest of the parse.
 * Writes into `out` and returns true, or false when the frame carries no probe.
 */
export function readProbe(buf: Buffer, start: number, end: number, out: Probe): boolean {
  const last = end - MARKER_BYTES.length;
  let at = start + (out.at ?? 0);
  if (at > last || !markerAt(buf, at)) {
    for (at = start; at <= last && !markerAt(buf, at); at++);
    if (at > last) return false;
  }
  let i = at + MARKER_BYTES.length;
  let sender = 0;
  let seq = 0;
  let intended = 0;
  let sent = 0;
  for (let f = 0; f < 4; f++) {
    let v = 0;
    const from = i;
    for (; i < end; i++) {
      const c = buf[i] as number;
      if (c === PIPE) break;
      if (c < 0x30 || c > 0x39) return false;
      v = v * 10 + (c - 0x30);
    }
    if (i >= end || i === from) return false;
    if (f === 0) sender = v;
    else if (f === 1) seq = v;
    else if (f === 2) intended = v;
    else sent = v;
    i++;
  }
  out.sender = sender;
  out.seq = seq;
  out.intendedUs = intended;
  out.sentUs = sent;
  out.at = at - start;
  out.headEnd = i - start;
  return true;
}
