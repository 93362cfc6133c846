import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Integration files mostly wait on the emulator; a few more workers than cores keeps both busy.
    maxWorkers: 3,
    env: {
      LOG_LEVEL: 'SILENT',
      STAGE: 'dev',
    },
  },
});
