import { defineConfig } from 'vitest/config';

// Tests that start real components (PostgreSQL, Ceph RGW, ipmi_sim, QEMU) are slow to
// start on two cores; hooks get a generous budget, the assertions themselves do not wait.
export default defineConfig({
  test: {
    include: ['boot/**/*.test.ts', 'server/**/*.test.ts', 'agent/**/*.test.ts', 'images/**/*.test.ts', 'test/**/*.test.ts'],
    // *.e2e.test.ts (QEMU boots, minutes each) run under vitest.e2e.config.ts: `make e2e`
    exclude: ['node_modules/**', 'test/e2e/**', '**/*.e2e.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
