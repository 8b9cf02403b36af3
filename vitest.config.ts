import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Servers, swarms and browsers share two cores: run files one at a time so no test measures another.
    fileParallelism: false,
    // The soak weighs servers' heaps after full GCs (test/bench/soak.test.ts).
    execArgv: ['--expose-gc'],
  },
});
