import { defineConfig } from 'vitest/config';

// The HA rack (`make e2e-ha`, issue 14): three replicas behind HAProxy, PostgreSQL, Ceph RGW, two QEMU nodes and
// 200 simulated ones, with replicas killed, paused and cut off during the boot. One suite, ~10 minutes on two
// cores; it owns its namespaces, so it runs alone.
export default defineConfig({
  test: {
    include: ['test/e2e/ha/**/*.e2e.test.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
