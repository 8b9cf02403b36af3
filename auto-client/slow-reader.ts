// The slow readers of a swarm: a stuck one stops reading its socket for its slow period; a
// throttled one reads at most its bytes per second then. Both read again after it, and say how
// much they had read when their slow period ended.
import type { ClientReport } from './delivery-meter.ts';
import type { ClientSpec } from './swarm-plan.ts';
import type { WireClient } from './wire-client.ts';

export interface SlowReader {
  spec: ClientSpec;
  wire: WireClient | null;
  readonly report: ClientReport;
  /** A throttled reader: the bytes its socket had read when its slow period began. */
  throttleBytes: number;
}

/** Pauses or resumes each slow reader's socket for `sinceUs`, µs after sending began. */
export function applySlow(readers: readonly SlowReader[], sinceUs: number): void {
  for (const c of readers) {
    const slow = c.spec.slow;
    if (!slow) continue;
    if (sinceUs >= slow.untilUs && c.report.receivedBeforeResume === null) c.report.receivedBeforeResume = c.report.received;
    if (!c.wire) continue;
    const socket = c.wire.socket;
    const active = sinceUs >= slow.fromUs && sinceUs < slow.untilUs;
    if (!active) {
      if (socket.isPaused()) socket.resume();
      continue;
    }
    if (slow.mode === 'stuck') {
      if (!socket.isPaused()) socket.pause();
      continue;
    }
    // throttle: read while under budget for the time elapsed since the slow period began.
    const budget = (slow.bytesPerSec * (sinceUs - slow.fromUs)) / 1e6;
    const read = socket.bytesRead - c.throttleBytes;
    if (c.throttleBytes === 0) c.throttleBytes = socket.bytesRead;
    if (read > budget && !socket.isPaused()) socket.pause();
    else if (read <= budget && socket.isPaused()) socket.resume();
  }
}
