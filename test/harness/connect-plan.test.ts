// How the harness spreads clients over workers and waits for their connects: the worker count
// chosen from --clients, a plan that cannot fit refused with its numbers, and a connect phase that
// waits as long as workers advance and names the one that stopped.
import { describe, expect, it } from 'vitest';
import type { FromWorker } from '../../auto-client/swarm-worker.ts';
import { awaitConnected, type ConnectingWorker } from '../../harness/connect-wait.ts';
import { largestWorkerShare, resolveScenario } from '../../harness/scenarios.ts';
import type { WorkerChannel } from '../../harness/worker-channel.ts';

describe('workers for a plan', () => {
  it('are chosen from --clients when not given: none holds over 12,500', () => {
    const c = resolveScenario('connections', { clients: 100_000 });
    expect(c.workers).toBe(9); // worker 0 the sender, 8 × 12,500
    expect(largestWorkerShare(c)).toBeLessThanOrEqual(12_500);
    expect(resolveScenario('connections', { clients: 1000 }).workers).toBe(3);
  });

  it('are taken as given when they fit, and a plan that does not fit is refused with the numbers', () => {
    expect(resolveScenario('connections', { clients: 100_000, workers: 8 }).workers).toBe(8);
    // Two workers: worker 0 holds the sender alone, worker 1 all 29,999 others.
    expect(() => resolveScenario('connections', { clients: 30_000, workers: 2 })).toThrow(/at most 15,000 clients per worker .* one of 2 workers would hold 29,999/);
  });
});

/** A worker that connects `perTick` clients a tick until `stopAt`, then is ready (or never, if it stalls). */
function fakeWorker(share: number, perTick: number, stopAt = share): ConnectingWorker & { tick(): void } {
  let done = 0;
  const waiters: Array<(m: FromWorker) => void> = [];
  const channel: WorkerChannel = {
    connecting: () => ({ done, connected: done }),
    next: () => new Promise((resolve) => (done >= share ? resolve({ type: 'ready', connected: done }) : waiters.push(resolve))),
  };
  return {
    channel,
    share,
    tick() {
      done = Math.min(stopAt, done + perTick);
      if (done >= share) waiters.splice(0).forEach((w) => w({ type: 'ready', connected: done }));
    },
  };
}

describe('awaitConnected', () => {
  it('waits for as long as every worker advances, and shows the count', async () => {
    const workers = [fakeWorker(300, 50), fakeWorker(300, 30)];
    const ticker = setInterval(() => workers.forEach((w) => w.tick()), 100);
    const seen: string[] = [];
    try {
      await awaitConnected(workers, (c, t) => seen.push(`${c}/${t}`), 5_000, 60_000);
    } finally {
      clearInterval(ticker);
    }
    expect(seen.at(-1)).toBe('600/600');
  });

  it('stops when one worker finishes no connect for the stall window, naming it and the counts', async () => {
    const workers = [fakeWorker(100, 100), fakeWorker(500, 100, 200)]; // worker 1 stops at 200 of 500
    const ticker = setInterval(() => workers.forEach((w) => w.tick()), 100);
    try {
      await expect(awaitConnected(workers, () => {}, 1_500, 60_000)).rejects.toThrow(
        /^connecting stopped after \d+ s: 300 of 600 clients connected; worker 1 finished no connect in the last 1.5 s \(worker 1: 200 of its 500 connected, 0 failed; 1 of 2 workers ready\)$/,
      );
    } finally {
      clearInterval(ticker);
    }
  });
});
