import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/cluster needs a real cluster: only `npm run test:cluster` (which sets the variable) runs it.
    exclude: process.env.KERNELCHAOS_TEST_CLUSTER === '1' ? ['node_modules/**'] : ['test/cluster/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
