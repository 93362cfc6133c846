/**
 * The IAM check's proxy against the run's emulator, with a batch worker role as it was before
 * s3:DeleteObject was granted on results/: the segments' DeleteObjects answers 200 with each key
 * AccessDenied in `Errors` (as AWS does), the adapter counts them, nothing is deleted, and the denial
 * is recorded; a DynamoDB call outside the role is refused with AccessDeniedException.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest';
import { isComplete } from '../../infra/local/aws-endpoints.ts';
import type { LocalResources } from '../../infra/local/provision.ts';
import { S3BatchFiles } from '../../shared/adapters/batch-files.ts';
import type { S3Files } from '../../shared/adapters/s3-files.ts';
import { logger } from '../../shared/observability/logger.ts';
import { IamCheck } from '../support/iam-check.ts';
import type { RoleStatement } from '../support/iam-policies.ts';

const prefix = `iam${randomBytes(4).toString('hex')}`;
const bucket = `${prefix}-batches`;
const resources: LocalResources = {
  tableName: `${prefix}-table`,
  modelsBucket: `${prefix}-models`,
  batchBucket: bucket,
  modelQueueUrl: 'http://127.0.0.1:1/000000000000/m',
  batchQueueUrl: 'http://127.0.0.1:1/000000000000/b',
  modelDeadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/md',
  batchDeadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/bd',
  notificationQueueUrl: 'http://127.0.0.1:1/000000000000/n',
  notificationDeadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/nd',
};

/** The batch worker's batch-bucket statements before the fix: grantRead and grantPut. */
const BEFORE_FIX: RoleStatement[] = [
  {
    effect: 'Allow',
    actions: ['s3:GetBucket*', 's3:GetObject*', 's3:List*'],
    resources: ['arn:aws:s3:::{{batchBucket}}', 'arn:aws:s3:::{{batchBucket}}/*'],
  },
  { effect: 'Allow', actions: ['s3:Abort*', 's3:PutObject'], resources: ['arn:aws:s3:::{{batchBucket}}/*'] },
];

const endpoints = inject('awsEndpoints');
// As startLocalStack does: the emulators accept any credentials, the SDK needs some to sign with.
const credentials = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
};
const at = (endpoint: string | undefined) => ({ endpoint, region: 'us-east-1', credentials });
let check: IamCheck;
let s3: S3Client;

beforeAll(async () => {
  if (!isComplete(endpoints)) throw new Error('The run has no AWS endpoints');
  const direct = new S3Client({ ...at(endpoints.s3), forcePathStyle: true });
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  direct.destroy();
  check = await IamCheck.start({ 'batch-worker': BEFORE_FIX }, endpoints);
  const env = check.environmentFor('batch-worker', resources);
  s3 = new S3Client({ ...at(env.AWS_ENDPOINT_URL_S3), forcePathStyle: true });
});

afterAll(async () => {
  s3?.destroy();
  await check?.close({ report: false });
});

it("the batch worker's DeleteObjects of its segments comes back AccessDenied in Errors, counted by the adapter", async () => {
  const segment = 'results/u1/b1.csv.parts/000000';
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: segment, Body: 'a,b\n' }));
  const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
  try {
    const files = new S3BatchFiles(s3, {} as S3Files, bucket);
    expect(await files.deleteSegments([segment])).toBe(1);
    expect(warn).toHaveBeenCalledWith(
      'Batch segments not deleted',
      expect.objectContaining({
        notDeleted: 1,
        errors: [expect.objectContaining({ key: segment, code: 'AccessDenied' })],
      }),
    );
  } finally {
    warn.mockRestore();
  }
  // Still there: the proxy deleted nothing.
  await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: segment }));
  expect(check.denials()).toEqual([
    {
      function: 'batch-worker',
      command: 's3:DeleteObjects',
      action: 's3:DeleteObject',
      resource: `arn:aws:s3:::${bucket}/${segment}`,
      decision: 'ImplicitlyDenied',
    },
  ]);
});

it('a call outside the role fails as AWS fails it: S3 403 AccessDenied, DynamoDB AccessDeniedException', async () => {
  await expect(
    s3.send(new PutObjectCommand({ Bucket: resources.modelsBucket, Key: 'uploads/x.onnx', Body: 'x' })),
  ).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
  const env = check.environmentFor('batch-worker', resources);
  const dynamodb = new DynamoDBClient(at(env.AWS_ENDPOINT_URL_DYNAMODB));
  try {
    await expect(
      dynamodb.send(new GetItemCommand({ TableName: resources.tableName, Key: { pk: { S: 'x' } } })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
  } finally {
    dynamodb.destroy();
  }
  expect(check.denials().map((denial) => denial.action)).toEqual([
    's3:DeleteObject',
    's3:PutObject',
    'dynamodb:GetItem',
  ]);
});
