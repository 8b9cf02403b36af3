// One v4 test file's setting: a private redis-server (Debian's, on a free port) for the file, and
// the nodes and clients each test opens, closed after it. `redis` may be replaced by a test that
// restarts it: the file stops whichever it holds at the end.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startRedisServer, type RedisServer } from '../../../common/redis-server.ts';
import type { ChatServer } from '../../../versions/host.ts';
import type { TestClient } from '../../helpers.ts';

export interface V4Fixture {
  redis: RedisServer;
  readonly servers: ChatServer[];
  readonly clients: TestClient[];
}

export function useV4Fixture(): V4Fixture {
  const f: V4Fixture = { redis: undefined as unknown as RedisServer, servers: [], clients: [] };
  beforeAll(async () => {
    f.redis = await startRedisServer({ detached: true });
  });
  afterEach(async () => {
    await Promise.all(f.clients.splice(0).map((c) => c.close()));
    await Promise.all(f.servers.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await f.redis?.stop();
  });
  return f;
}
