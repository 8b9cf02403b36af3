// The swarm worker's IPC protocol, on a real worker process and a real server: a worker that has
// its plan connects nothing until it is told to, so the harness can start every worker's connects
// at once and the connect rate never counts another worker's start-up.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { FromWorker, ToWorker } from '../../auto-client/swarm-worker.ts';
import type { SwarmPlan } from '../../auto-client/swarm-plan.ts';
import { workerChannel } from '../../harness/worker-channel.ts';
import { stopProcessGroup } from '../../harness/server-process.ts';
import { startVersion } from '../../versions/versions.ts';
import { delay } from '../helpers.ts';

const WORKER = fileURLToPath(new URL('../../auto-client/swarm-worker.ts', import.meta.url));

describe('swarm worker', () => {
  it('takes its plan, says planned, and connects only when told to', async () => {
    const server = await startVersion('v3', { port: 0 });
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const channel = workerChannel(child); // the harness's own reading of a worker's messages
      const next = (type: FromWorker['type']): Promise<FromWorker> => channel.next(type, 20_000);
      const plan: SwarmPlan = {
        workerId: 0,
        epochNs: process.hrtime.bigint().toString(),
        clients: Array.from({ length: 5 }, (_, id) => ({ id, room: 'lobby', sends: false, kind: 'healthy' as const, url: server.wsUrl })),
        ratePerSender: 1,
        poisson: false,
        burst: 1,
        seed: 1,
        sizeBytes: 64,
        awaitJoined: true,
        stallThresholdUs: 1e6,
        behindUs: 1e6,
        churnPeriodMs: 0,
        connectConcurrency: 2,
        slowResumeUs: null,
      };
      child.send({ type: 'plan', plan } satisfies ToWorker);
      expect(await next('planned')).toEqual({ type: 'planned' });
      await delay(300);
      expect(server.metrics.snapshot().connections).toBe(0);
      child.send({ type: 'connect' } satisfies ToWorker);
      expect(await next('ready')).toEqual({ type: 'ready', connected: 5 });
      expect(server.metrics.snapshot().connections).toBe(5);
    } finally {
      await stopProcessGroup(child, 2_000);
      await server.close();
    }
  });
});
