/**
 * `npm run test:aws-fidelity`: the stricter local world. LocalStack (host mode, no Docker) serves S3
 * and SQS for the whole integration suite, the embedded moto keeps DynamoDB (LocalStack's DynamoDB
 * needs a JDK download), and SeaweedFS, which verifies presigned signatures, expiry, signed lengths
 * and checksums, serves the uploads of test/strict-s3. Everything is installed, started on free
 * ports and stopped here.
 */
import type { TestProject } from 'vitest/node';
import { startLocalstackEmulator } from '../../infra/local/localstack-emulator.ts';
import { startSeaweedfs } from '../../infra/local/seaweedfs.ts';
import startDefault from './global-setup.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The strict S3 (SeaweedFS) and the only credentials it accepts. */
    strictS3: { endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  }
}

export default async function setup(project: TestProject) {
  const log = (line: string) => console.log(line);
  const [localstack, seaweedfs] = await Promise.all([
    startLocalstackEmulator({ log }),
    startSeaweedfs({ log }),
  ]);
  log(`LocalStack (S3, SQS) at ${localstack.endpoint}; SeaweedFS (strict S3) at ${seaweedfs.endpoint}`);
  process.env.AWS_ENDPOINT_URL_S3 = localstack.endpoint;
  process.env.AWS_ENDPOINT_URL_SQS = localstack.endpoint;
  project.provide('strictS3', { endpoint: seaweedfs.endpoint, credentials: seaweedfs.credentials });
  let stopDefault: (() => Promise<void>) | undefined;
  try {
    stopDefault = await startDefault(project);
  } catch (error) {
    await Promise.all([localstack.stop(), seaweedfs.stop()]);
    throw error;
  }
  return async () => {
    await stopDefault?.();
    await Promise.all([localstack.stop(), seaweedfs.stop()]);
  };
}
