import { defineConfig } from 'vitest/config';

// The QEMU suites (`make e2e`): images/boot.e2e.test.ts boots the OS images alone; the e2e rack
// (test/e2e/*.e2e.test.ts): QEMU nodes under TCG boot through the real server inside
// a network namespace. One file at a time (each suite owns a rack namespace and up to two VMs; the machine has
// two cores), generous hook budgets; the boot waits themselves carry their own timeouts and log tails.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts', 'images/**/*.e2e.test.ts'],
    // the HA rack runs under its own config (vitest.ha.config.ts, `make e2e-ha`)
    exclude: ['node_modules/**', 'test/e2e/ha/**'],
    testTimeout: 300_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
