// The harness's side of a swarm worker's IPC: waits for the worker's next message of a type, and
// turns its error or early exit into a rejection.
import type { ChildProcess } from 'node:child_process';
import type { FromWorker } from '../auto-client/swarm-worker.ts';

/** Waits for the next message of a type from a worker; a worker error or exit rejects. */
export function workerChannel(child: ChildProcess): { next(type: FromWorker['type'], timeoutMs: number): Promise<FromWorker> } {
  const inbox: FromWorker[] = [];
  const waiting: Array<() => void> = [];
  let failure: Error | null = null;
  child.on('message', (m: FromWorker) => {
    if (m.type === 'error') failure = new Error(`worker failed: ${m.message}`);
    else inbox.push(m);
    waiting.splice(0).forEach((w) => w());
  });
  child.on('exit', (code) => {
    if (code !== 0) failure ??= new Error(`worker exited with ${code}`);
    waiting.splice(0).forEach((w) => w());
  });
  return {
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
