/**
 * `npm run test:browser`: the web UI driven in Chromium (Debian's /usr/bin/chromium, or
 * CHROMIUM_PATH) through playwright-core, against the local stack started in each test file with the
 * built UI served. The same emulator set-up as `npm test`.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Each file runs its own stack and browser; two at a time keeps a laptop responsive.
    maxWorkers: 2,
    // A first request to a function cold-starts its container (as on Lambda), slower on a loaded
    // machine: polled expectations get the time a person would give the page.
    expect: { poll: { timeout: 10_000, interval: 100 } },
    env: base.test?.env ?? {},
  },
});
