/**
 * The IAM check of the tests (test/support/iam-check.ts): which (action, resource) pairs a request
 * needs, and the role evaluator that decides them with the IAM policy simulator. The batch worker's
 * DeleteObjects of its assembled segments is denied by its role as it was before s3:DeleteObject was
 * granted on results/ (grantRead + grantPut on the batch bucket), and allowed by the synthesized role.
 */
import { describe, expect, it } from 'vitest';
import type { LocalResources } from '../../infra/local/provision.ts';
import { deleteObjectsKeys, dynamoDbCalls, escapeXml, s3Calls, sqsCalls } from '../support/iam-actions.ts';
import {
  fillTokens,
  iamPattern,
  RoleEvaluator,
  type RoleStatement,
  synthesizeRolePolicies,
} from '../support/iam-policies.ts';
import { buildIamReport } from '../support/iam-report.ts';

const resources: LocalResources = {
  tableName: 'tx-table',
  modelsBucket: 'tx-models',
  batchBucket: 'tx-batches',
  modelQueueUrl: 'http://127.0.0.1:1/000000000000/tx-model-queue',
  batchQueueUrl: 'http://127.0.0.1:1/000000000000/tx-batch-queue',
  modelDeadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/tx-model-dlq',
  batchDeadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/tx-batch-dlq',
  notificationQueueUrl: 'http://127.0.0.1:1/000000000000/tx-notification-queue',
  notificationDeadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/tx-notification-dlq',
};
const TABLE = 'arn:aws:dynamodb:us-east-1:000000000000:table/tx-table';

describe('the IAM actions of a request', () => {
  it('a transaction needs the action of each part on its table', () => {
    const calls = dynamoDbCalls('TransactWriteItems', {
      TransactItems: [
        { Put: { TableName: 'tx-table', Item: {} } },
        { Update: { TableName: 'tx-table', Key: {} } },
        { ConditionCheck: { TableName: 'tx-table', Key: {} } },
        { Delete: { TableName: 'tx-table', Key: {} } },
      ],
    });
    expect(calls).toEqual([
      { action: 'dynamodb:PutItem', resource: TABLE },
      { action: 'dynamodb:UpdateItem', resource: TABLE },
      { action: 'dynamodb:ConditionCheckItem', resource: TABLE },
      { action: 'dynamodb:DeleteItem', resource: TABLE },
    ]);
  });

  it('a query of an index needs dynamodb:Query on the index; a batch read, BatchGetItem per table', () => {
    expect(dynamoDbCalls('Query', { TableName: 'tx-table', IndexName: 'gsi1' })).toEqual([
      { action: 'dynamodb:Query', resource: `${TABLE}/index/gsi1` },
    ]);
    expect(dynamoDbCalls('BatchGetItem', { RequestItems: { 'tx-table': {} } })).toEqual([
      { action: 'dynamodb:BatchGetItem', resource: TABLE },
    ]);
  });

  it('an SQS batch command is authorized as its single-message action, on the queue of its URL', () => {
    expect(sqsCalls('SendMessageBatch', { QueueUrl: resources.batchQueueUrl })).toEqual([
      { action: 'sqs:SendMessage', resource: 'arn:aws:sqs:us-east-1:000000000000:tx-batch-queue' },
    ]);
    expect(sqsCalls('ChangeMessageVisibility', { QueueUrl: resources.notificationQueueUrl })[0]?.action).toBe(
      'sqs:ChangeMessageVisibility',
    );
  });

  it('S3: reads and heads need GetObject, listing needs ListBucket on the bucket, a copy reads its source', () => {
    expect(s3Calls('HEAD', '/tx-batches/inbox/u%2B1/a.csv', {}).calls).toEqual([
      { action: 's3:GetObject', resource: 'arn:aws:s3:::tx-batches/inbox/u+1/a.csv' },
    ]);
    expect(s3Calls('GET', '/tx-batches?list-type=2&prefix=inbox%2F&x-id=ListObjectsV2', {}).calls).toEqual([
      { action: 's3:ListBucket', resource: 'arn:aws:s3:::tx-batches' },
    ]);
    expect(
      s3Calls('PUT', '/tx-batches/results/b.csv?x-id=CopyObject', {
        'x-amz-copy-source': 'tx-batches/results/b.csv.parts/000000',
      }).calls,
    ).toEqual([
      { action: 's3:PutObject', resource: 'arn:aws:s3:::tx-batches/results/b.csv' },
      { action: 's3:GetObject', resource: 'arn:aws:s3:::tx-batches/results/b.csv.parts/000000' },
    ]);
    expect(s3Calls('DELETE', '/tx-batches/results/b.csv?uploadId=1', {}).calls[0]?.action).toBe(
      's3:AbortMultipartUpload',
    );
  });

  it('DeleteObjects needs s3:DeleteObject on every key of its body', () => {
    const keys = ['results/u/b.parts/000000', 'results/u/b.parts/0001&<x>'];
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${keys
      .map((key) => `<Object><Key>${escapeXml(key)}</Key></Object>`)
      .join('')}<Quiet>true</Quiet></Delete>`;
    expect(deleteObjectsKeys(xml)).toEqual(keys);
    expect(s3Calls('POST', '/tx-batches?delete&x-id=DeleteObjects', {}, keys).calls).toEqual(
      keys.map((key) => ({ action: 's3:DeleteObject', resource: `arn:aws:s3:::tx-batches/${key}` })),
    );
  });
});

/** The batch worker's S3 statements before the fix: grantRead and grantPut on the batch bucket. */
const BATCH_WORKER_BEFORE_FIX: RoleStatement[] = [
  {
    effect: 'Allow',
    actions: ['s3:GetBucket*', 's3:GetObject*', 's3:List*'],
    resources: ['arn:aws:s3:::{{batchBucket}}', 'arn:aws:s3:::{{batchBucket}}/*'],
  },
  {
    effect: 'Allow',
    actions: [
      's3:Abort*',
      's3:PutObject',
      's3:PutObjectLegalHold',
      's3:PutObjectRetention',
      's3:PutObjectTagging',
      's3:PutObjectVersionTagging',
    ],
    resources: ['arn:aws:s3:::{{batchBucket}}/*'],
  },
];
const SEGMENT = 'arn:aws:s3:::tx-batches/results/u1/b1.parts/000000';

describe('the role evaluator', () => {
  it("denies the batch worker's DeleteObjects of its segments under its role before the fix", async () => {
    const evaluator = new RoleEvaluator('batch-worker', BATCH_WORKER_BEFORE_FIX, resources);
    const [deleteKey] = s3Calls('POST', '/tx-batches?delete', {}, ['results/u1/b1.parts/000000']).calls;
    if (!deleteKey) throw new Error('no call');
    expect(await evaluator.decide(deleteKey)).toBe('ImplicitlyDenied');
    expect(await evaluator.decide({ action: 's3:PutObject', resource: SEGMENT })).toBe('Allowed');
    expect(await evaluator.decide({ action: 's3:GetObject', resource: SEGMENT })).toBe('Allowed');
    expect(
      await evaluator.decide({ action: 's3:PutObject', resource: 'arn:aws:s3:::tx-models/uploads/x' }),
    ).toBe('ImplicitlyDenied');
  });

  it('allows what a statement grants on a prefix, denies the rest, and an explicit Deny wins', async () => {
    const evaluator = new RoleEvaluator(
      'batch-worker',
      [
        ...BATCH_WORKER_BEFORE_FIX,
        {
          effect: 'Allow',
          actions: ['s3:DeleteObject'],
          resources: ['arn:aws:s3:::{{batchBucket}}/results/*'],
        },
        {
          effect: 'Deny',
          actions: ['s3:DeleteObject'],
          resources: ['arn:aws:s3:::{{batchBucket}}/results/keep'],
        },
      ],
      resources,
    );
    expect(await evaluator.decide({ action: 's3:DeleteObject', resource: SEGMENT })).toBe('Allowed');
    expect(
      await evaluator.decide({
        action: 's3:DeleteObject',
        resource: 'arn:aws:s3:::tx-batches/inbox/u1/a.csv',
      }),
    ).toBe('ImplicitlyDenied');
    expect(
      await evaluator.decide({ action: 's3:DeleteObject', resource: 'arn:aws:s3:::tx-batches/results/keep' }),
    ).toBe('ExplicitlyDenied');
    expect(evaluator.exercised({ action: 's3:DeleteObject', resource: SEGMENT })).toEqual([
      'batch-worker s3:DeleteObject arn:aws:s3:::{{batchBucket}}/results/*',
    ]);
  });

  it('fills tokens with a stack’s names and matches IAM wildcards', () => {
    expect(fillTokens('arn:aws:sqs:us-east-1:000000000000:{{batchQueue}}', resources)).toBe(
      'arn:aws:sqs:us-east-1:000000000000:tx-batch-queue',
    );
    expect(iamPattern('s3:GetObject*', true).test('s3:getobjectversion')).toBe(true);
    expect(iamPattern('arn:aws:s3:::b/results/*', false).test('arn:aws:s3:::b/inbox/x')).toBe(false);
  });

  it('reports the grants no call exercised, and every denial', () => {
    const report = buildIamReport({ 'batch-worker': BATCH_WORKER_BEFORE_FIX }, [
      {
        denials: [
          {
            function: 'batch-worker',
            command: 's3:DeleteObjects',
            action: 's3:DeleteObject',
            resource: SEGMENT,
            decision: 'ImplicitlyDenied',
          },
        ],
        exercised: ['batch-worker s3:PutObject arn:aws:s3:::{{batchBucket}}/*'],
        calls: { 'batch-worker': { 's3:PutObject': 1, 's3:DeleteObject': 1 } },
      },
    ]);
    expect(report.denials).toHaveLength(1);
    expect(report.unexercised).toContain('batch-worker s3:Abort* arn:aws:s3:::{{batchBucket}}/*');
    expect(report.unexercised).not.toContain('batch-worker s3:PutObject arn:aws:s3:::{{batchBucket}}/*');
  });
});

describe("the synthesized batch worker's role", () => {
  it('may delete the segments it assembled, and nothing in the inbox', { timeout: 180_000 }, async () => {
    const policies = await synthesizeRolePolicies();
    const evaluator = new RoleEvaluator('batch-worker', policies['batch-worker'] ?? [], resources);
    expect(await evaluator.decide({ action: 's3:DeleteObject', resource: SEGMENT })).toBe('Allowed');
    expect(
      await evaluator.decide({
        action: 's3:DeleteObject',
        resource: 'arn:aws:s3:::tx-batches/inbox/u1/m/b.csv',
      }),
    ).toBe('ImplicitlyDenied');
  });
});
