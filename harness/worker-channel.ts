// The harness's side of a swarm worker's IPC: waits for the worker's next message of a type, and
// turns its error or early exit into a rejection.
import type { ChildProcess } from 'node:child_process';
import type { FromWorker } from '../auto-client/swarm-worker.ts';

export interface WorkerChannel {
  /** The next message of a type; a worker error or exit rejects, and so does `timeoutMs` without it. */
  next(type: FromWorker['type'], timeoutMs: number): Promise<FromWorker>;
  /** How far its connects have got, by its last word (null: none yet). */
  connecting(): { done: number; connected: number } | null;
}

/** Waits for the next message of a type from a worker; a worker error or exit rejects. */
export function workerChannel(child: ChildProcess): WorkerChannel {
  const inbox: FromWorker[] = [];
  const waiting: Array<() => void> = [];
  let failure: Error | null = null;
  let connecting: { done: number; connected: number } | null = null;
  child.on('message', (m: FromWorker) => {
    if (m.type === 'error') failure = new Error(`worker failed: ${m.message}`);
    else if (m.type === 'connecting') connecting = { done: m.done, connected: m.connected }; // (only the latest counts)
    else inbox.push(m);
    waiting.splice(0).forEach((w) => w());
  });
  child.on('exit', (code) => {
    if (code !== 0) failure ??= new Error(`worker exited with ${code}`);
    waiting.splice(0).forEach((w) => w());
  });
  return {
    connecting: () => connecting,
    next(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker gave no ${type} in ${Math.round(timeoutMs)} ms`)), timeoutMs);
        const check = (): void => {
          const i = inbox.findIndex((m) => m.type === type);
          if (i >= 0) {
            clearTimeout(timer);
            resolve(inbox.splice(i, 1)[0] as FromWorker);
          } else if (failure) {
            clearTimeout(timer);
            reject(failure);
          } else waiting.push(check);
        };
        check();
      });
    },
  };
}
