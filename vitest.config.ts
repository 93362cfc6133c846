import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The browser tests need Chromium (`npm run test:browser`), the strict-S3 ones SeaweedFS
    // (`npm run test:aws-fidelity`).
    exclude: ['test/browser/**', 'test/strict-s3/**', '**/node_modules/**'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Integration files mostly wait on the emulator; a few more workers than cores keeps both busy.
    maxWorkers: 3,
    // A first request to a function cold-starts its container (as on Lambda), slower on a loaded
    // machine: polled expectations get the time a person would give the page.
    expect: { poll: { timeout: 10_000, interval: 100 } },
    env: {
      LOG_LEVEL: 'SILENT',
      STAGE: 'dev',
      // Tests may lower scrypt's cost (the production default stays at OWASP's 2^17).
      SCRYPT_LOG2_N: '12',
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
  },
});
