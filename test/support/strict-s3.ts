/**
 * The strict S3 (SeaweedFS) of `npm run test:aws-fidelity`, seen by a test: a client with the one
 * identity it accepts, and the ObjectCreated event S3 would have queued (SeaweedFS sends none).
 */
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, inject } from 'vitest';
import type { LocalStack } from '../../infra/local/local-stack.ts';

export function strictS3() {
  return inject('strictS3');
}

/** The environment that makes a test stack sign with SeaweedFS's identity. */
export function strictS3Environment(): Record<string, string> {
  const { credentials } = strictS3();
  return { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey };
}

export function useStrictS3(stack: () => LocalStack) {
  let s3: S3Client | undefined;
  let sqs: SQSClient | undefined;
  afterAll(() => {
    s3?.destroy();
    sqs?.destroy();
  });
  const client = () => {
    const { endpoint, credentials } = strictS3();
    s3 ??= new S3Client({ endpoint, region: stack().region, forcePathStyle: true, credentials });
    return s3;
  };
  return {
    client,
    async exists(bucket: string, key: string): Promise<boolean> {
      try {
        await client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch {
        return false;
      }
    },
    /** Keys under a prefix, as stored. */
    async keys(bucket: string, prefix: string): Promise<string[]> {
      const listed = await client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (listed.Contents ?? []).flatMap((object) => (object.Key ? [object.Key] : []));
    },
    /** Queues what S3 would have sent for a new object, URL-encoded key and all. */
    async notifyCreated(queueUrl: string, bucket: string, key: string): Promise<void> {
      const head = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const record = {
        eventName: 'ObjectCreated:Put',
        s3: {
          bucket: { name: bucket },
          object: {
            key: encodeURIComponent(key),
            size: head.ContentLength,
            eTag: head.ETag?.replaceAll('"', ''),
          },
        },
      };
      sqs ??= new SQSClient({ endpoint: stack().endpoints.sqs, region: stack().region });
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ Records: [record] }) }),
      );
    },
  };
}
