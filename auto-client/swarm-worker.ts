// A swarm in a worker process, driven by the harness over IPC: plan → planned, connect → ready,
// go → result. Connecting waits for its own message so that the harness can start every worker's
// connects at once, after all of them have loaded: a worker still compiling would otherwise take
// CPU from the others' connects, and the connect rate would count its start-up.
// It exits by itself when the run is over, when its parent goes away, or after a hard deadline.
import { Swarm } from './swarm.ts';
import type { SwarmPlan, SwarmResult, SwarmTiming } from './swarm-plan.ts';

export type ToWorker = { type: 'plan'; plan: SwarmPlan } | { type: 'connect' } | { type: 'go'; timing: SwarmTiming };
export type FromWorker =
  | { type: 'planned' }
  /** While it connects, every CONNECTING_EVERY_MS: connects finished (connected or failed), and connected. */
  | { type: 'connecting'; done: number; connected: number }
  | { type: 'ready'; connected: number }
  | { type: 'progress'; connected: number; received: number }
  | { type: 'result'; result: SwarmResult }
  | { type: 'error'; message: string };

/** No worker lives longer than this, whatever it was told. */
const HARD_DEADLINE_MS = 15 * 60_000;
/** How often a worker says how far its connects have got. */
export const CONNECTING_EVERY_MS = 1_000;

if (!process.send) throw new Error('swarm-worker must be started by the harness (IPC)');
const send = (msg: FromWorker): void => void process.send?.(msg);
let swarm: Swarm | null = null;
let progress: NodeJS.Timeout | null = null;

setTimeout(() => process.exit(3), HARD_DEADLINE_MS).unref();
process.on('disconnect', () => process.exit(0));
process.on('message', (msg: ToWorker) => {
  void handle(msg).catch((err: unknown) => {
    send({ type: 'error', message: (err as Error).stack ?? String(err) });
    process.exitCode = 1;
  });
});

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'plan') {
    swarm = new Swarm(msg.plan);
    send({ type: 'planned' });
    return;
  }
  if (!swarm) throw new Error(`${msg.type} before plan`);
  const s = swarm;
  if (msg.type === 'connect') {
    const tell = setInterval(() => send({ type: 'connecting', ...s.connectProgress() }), CONNECTING_EVERY_MS);
    try {
      await s.connectAll();
    } finally {
      clearInterval(tell);
    }
    send({ type: 'ready', connected: s.connectedCount() }); // failures travel in the result
    return;
  }
  progress = setInterval(() => send({ type: 'progress', connected: s.connectedCount(), received: s.receivedCount() }), 1000);
  const result = await s.run(msg.timing);
  clearInterval(progress);
  await s.close();
  // Disconnect only once the (large) result has been written to the channel, or it may be lost.
  process.send?.({ type: 'result', result } satisfies FromWorker, () => process.disconnect());
}
