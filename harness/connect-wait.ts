// The connect phase from the harness's side: every worker connects its share at once, says how
// far it has got every second, and the run waits for all of them for as long as they advance.
// A large share on a slow server takes minutes and is fine; a worker whose connects stop
// finishing ends the run, saying how many connected in all and which worker was behind.
import { fmt } from '../common/helpers.ts';
import type { WorkerChannel } from './worker-channel.ts';

/** A worker none of whose connects finished for this long has stalled. */
export const CONNECT_STALL_MS = 30_000;
/** However it advances, connecting may take at most this long (a worker lives 15 minutes at most). */
export const CONNECT_MAX_MS = 10 * 60_000;

export interface ConnectingWorker {
  readonly channel: WorkerChannel;
  /** Clients in its share. */
  readonly share: number;
}

/** One line of how far the connects have got: "54,000 of 100,000 connected". */
export type ConnectProgress = (connected: number, total: number) => void;

/**
 * Resolves once every worker is ready. Rejects when a worker fails, when one finished no connect
 * for CONNECT_STALL_MS, or after CONNECT_MAX_MS, with how many had connected and who was behind.
 */
export async function awaitConnected(workers: readonly ConnectingWorker[], onProgress: ConnectProgress, stallMs = CONNECT_STALL_MS, maxMs = CONNECT_MAX_MS): Promise<void> {
  const total = workers.reduce((n, w) => n + w.share, 0);
  const started = Date.now();
  const advancedAt = workers.map(() => started);
  const lastDone = workers.map(() => -1);
  const ready = workers.map(() => false);
  /** Each ready worker's own count of its clients connected. */
  const readyConnected = workers.map(() => 0);
  let stop: ((err: Error) => void) | null = null;
  const watch = setInterval(() => {
    const now = Date.now();
    let connected = 0;
    for (const [i, w] of workers.entries()) {
      const c = w.channel.connecting();
      connected += ready[i] ? (readyConnected[i] as number) : (c?.connected ?? 0);
      if (c && c.done > (lastDone[i] as number)) {
        lastDone[i] = c.done;
        advancedAt[i] = now;
      }
    }
    onProgress(connected, total);
    const stalled = workers.findIndex((_, i) => !ready[i] && now - (advancedAt[i] as number) > stallMs);
    if (stalled >= 0) stop?.(connectFailure(workers, ready, connected, total, (now - started) / 1000, `worker ${stalled} finished no connect in the last ${stallMs / 1000} s`, stalled));
    else if (now - started > maxMs) stop?.(connectFailure(workers, ready, connected, total, (now - started) / 1000, `connecting took over ${maxMs / 60_000} minutes`, behindmost(workers, ready)));
  }, 1_000);
  try {
    await Promise.race([
      Promise.all(
        workers.map(async (w, i) => {
          const msg = await w.channel.next('ready', maxMs + stallMs);
          readyConnected[i] = msg.type === 'ready' ? msg.connected : 0;
          ready[i] = true;
        }),
      ),
      new Promise<never>((_, reject) => (stop = reject)),
    ]);
    onProgress(readyConnected.reduce((a, b) => a + b, 0), total);
  } finally {
    clearInterval(watch);
  }
}

/** The worker with the smallest part of its share finished, of those not ready. */
function behindmost(workers: readonly ConnectingWorker[], ready: boolean[]): number {
  let worst = 0;
  let worstPart = Infinity;
  for (const [i, w] of workers.entries()) {
    if (ready[i]) continue;
    const part = (w.channel.connecting()?.done ?? 0) / Math.max(1, w.share);
    if (part < worstPart) [worst, worstPart] = [i, part];
  }
  return worst;
}

function connectFailure(workers: readonly ConnectingWorker[], ready: boolean[], connected: number, total: number, seconds: number, why: string, behind: number): Error {
  const w = workers[behind] as ConnectingWorker;
  const c = w.channel.connecting();
  return new Error(
    `connecting stopped after ${Math.round(seconds)} s: ${fmt(connected)} of ${fmt(total)} clients connected; ${why}` +
      ` (worker ${behind}: ${fmt(c?.connected ?? 0)} of its ${fmt(w.share)} connected, ${fmt((c?.done ?? 0) - (c?.connected ?? 0))} failed;` +
      ` ${ready.filter(Boolean).length} of ${workers.length} workers ready)`,
  );
}
