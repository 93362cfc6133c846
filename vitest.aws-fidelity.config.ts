/**
 * `npm run test:aws-fidelity`: the whole integration suite with S3 and SQS on LocalStack and
 * DynamoDB on the embedded emulator, plus the presigned upload tests against SeaweedFS, a strict S3
 * (test/strict-s3). See test/support/aws-fidelity-setup.ts and the README's emulator table.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

export default defineConfig({
  test: {
    ...base.test,
    include: ['test/integration/**/*.test.ts', 'test/strict-s3/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    globalSetup: ['test/support/aws-fidelity-setup.ts'],
    env: {
      ...base.test?.env,
      // LocalStack checks presigned URLs against its default credentials; moto accepts any.
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    },
  },
});
