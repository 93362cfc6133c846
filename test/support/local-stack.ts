/** Starts the service for one test file: its own resources on the run's emulator, its own gateway. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';
import type { AwsEndpoints } from '../../infra/local/aws-endpoints.ts';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';

export interface StackHandle {
  readonly stack: LocalStack;
  readonly url: string;
}

export function useLocalStack(
  options: {
    environment?: Record<string, string>;
    visibilityTimeoutSeconds?: number;
    /** Receives the gateway's one-line summary of each request, as `npm run dev` prints it. */
    onRequest?: (line: string) => void;
    /** Services on another emulator than the run's (the strict-S3 tests put S3 on SeaweedFS). */
    endpoints?: Partial<AwsEndpoints>;
    /** Whether the S3 endpoint delivers bucket notifications (default true). */
    bucketNotifications?: boolean;
  } = {},
): StackHandle {
  let stack: LocalStack | undefined;
  beforeAll(async () => {
    stack = await startLocalStack({
      port: 0,
      endpoints: { ...inject('awsEndpoints'), ...options.endpoints },
      ...(options.bucketNotifications === false ? { bucketNotifications: false } : {}),
      prefix: `t${randomBytes(4).toString('hex')}`,
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 5,
      ...(options.environment ? { environment: options.environment } : {}),
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  const started = () => {
    if (!stack) throw new Error('The local stack is not started (use inside tests).');
    return stack;
  };
  return {
    get stack() {
      return started();
    },
    get url() {
      return started().url;
    },
  };
}

/** The admin every test stack has (created through the same use case `npm run dev` uses). */
export const TEST_ADMIN = { email: 'admin@example.com', password: 'test-admin-password' };

export async function ensureTestAdmin(): Promise<void> {
  const { services } = await import('../../shared/app/services.ts');
  await services().users.ensureAdmin(TEST_ADMIN.email, TEST_ADMIN.password);
}
