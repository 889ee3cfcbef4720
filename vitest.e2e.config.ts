import { defineConfig } from 'vitest/config';

// The e2e rack (test/e2e/*.e2e.test.ts, `make e2e`): QEMU nodes under TCG boot through the real server inside
// a network namespace. One file at a time (each suite owns a rack namespace and up to two VMs; the machine has
// two cores), generous hook budgets; the boot waits themselves carry their own timeouts and log tails.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
