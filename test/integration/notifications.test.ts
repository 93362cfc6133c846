import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { objectsCreated } from '../../shared/domain/s3-events.ts';
import { invocationsDuring, nextInvocationFor } from '../support/invocations.ts';
import { useLocalStack } from '../support/local-stack.ts';

const local = useLocalStack();
let s3: S3Client | undefined;
const client = () => {
  s3 ??= new S3Client({
    endpoint: local.stack.endpoints.s3,
    region: local.stack.region,
    forcePathStyle: true,
  });
  return s3;
};
afterAll(() => s3?.destroy());

describe('bucket notifications reach the right worker through SQS', () => {
  it('invokes the batch worker for a file dropped into the batch inbox, with the key decoded', async () => {
    const key = 'inbox/user-1/iris/my batch file.csv';
    const invoked = nextInvocationFor(local.stack, 'batch-worker', key);
    await client().send(
      new PutObjectCommand({ Bucket: local.stack.resources.batchBucket, Key: key, Body: 'a,b\n1,2\n' }),
    );
    const report = await invoked;
    expect(report.failedMessageIds).toEqual([]);
    const [record] = report.event.Records;
    expect(record?.eventSource).toBe('aws:sqs');
    expect(objectsCreated(record?.body ?? '')).toEqual([
      expect.objectContaining({ bucket: local.stack.resources.batchBucket, key }),
    ]);
  });

  it('invokes the model validator for a file uploaded to the models bucket', async () => {
    const key = 'uploads/model-1/model.onnx';
    const invoked = nextInvocationFor(local.stack, 'model-validator', key);
    await client().send(
      new PutObjectCommand({ Bucket: local.stack.resources.modelsBucket, Key: key, Body: 'onnx' }),
    );
    const report = await invoked;
    expect(report.worker).toBe('model-validator');
  });

  it('does not wake any worker for objects outside the watched prefixes', async () => {
    const seen = await invocationsDuring(local.stack, async () => {
      await client().send(
        new PutObjectCommand({
          Bucket: local.stack.resources.batchBucket,
          Key: 'results/user-1/x.csv',
          Body: 'x',
        }),
      );
    });
    const keys = seen.flatMap((r) =>
      r.event.Records.flatMap((rec) => objectsCreated(rec.body).map((o) => o.key)),
    );
    expect(keys).not.toContain('results/user-1/x.csv');
  });
});
