/**
 * Creates the local table, buckets, queues and bucket notifications from the CDK stateful stack's
 * synthesized template, so local resources cannot drift from the deployed ones.
 */
import {
  CreateTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { stageSettings } from '../stage.ts';
import { StatefulStack } from '../stateful-stack.ts';
import type { AwsEndpoints } from './aws-endpoints.ts';

export interface LocalResources {
  tableName: string;
  modelsBucket: string;
  batchBucket: string;
  modelQueueUrl: string;
  batchQueueUrl: string;
  modelDeadLetterQueueUrl: string;
  batchDeadLetterQueueUrl: string;
  notificationQueueUrl: string;
  notificationDeadLetterQueueUrl: string;
}

export interface AwsTarget {
  endpoints: AwsEndpoints;
  region: string;
}

type CfnTemplate = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

/** Synthesizes the stateful stack once per process (it takes a second or two). */
let synthesized: { template: CfnTemplate; ids: Record<keyof LocalResourcesIds, string> } | undefined;

interface LocalResourcesIds {
  table: string;
  modelsBucket: string;
  batchBucket: string;
  modelQueue: string;
  modelDeadLetterQueue: string;
  batchQueue: string;
  batchDeadLetterQueue: string;
  notificationQueue: string;
  notificationDeadLetterQueue: string;
}

function synthesizeStatefulStack() {
  if (synthesized) return synthesized;
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new StatefulStack(app, 'Stateful', { settings: stageSettings('dev') });
  const id = (s: Stack, construct: { node: { defaultChild?: unknown } }) =>
    s.getLogicalId(construct.node.defaultChild as CfnElement);
  const ids = {
    table: id(stack, stack.table),
    modelsBucket: id(stack, stack.modelsBucket),
    batchBucket: id(stack, stack.batchBucket),
    modelQueue: id(stack, stack.modelQueue),
    modelDeadLetterQueue: id(stack, stack.modelDeadLetterQueue),
    batchQueue: id(stack, stack.batchQueue),
    batchDeadLetterQueue: id(stack, stack.batchDeadLetterQueue),
    notificationQueue: id(stack, stack.notificationQueue),
    notificationDeadLetterQueue: id(stack, stack.notificationDeadLetterQueue),
  };
  const template = app.synth().getStackByName(stack.stackName).template as CfnTemplate;
  synthesized = { template, ids };
  return synthesized;
}

function properties(template: CfnTemplate, logicalId: string): Record<string, unknown> {
  const resource = template.Resources[logicalId];
  if (!resource) throw new Error(`The stateful template has no resource ${logicalId}`);
  return resource.Properties ?? {};
}

const refOf = (value: unknown): string | undefined => {
  if (value && typeof value === 'object') {
    const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    return v.Ref ?? v['Fn::GetAtt']?.[0];
  }
  return undefined;
};

/** Provisioning an emulator that already has the resources (a LocalStack kept running) is fine. */
async function ignoreExisting<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (
      name === 'ResourceInUseException' ||
      name === 'BucketAlreadyOwnedByYou' ||
      name === 'BucketAlreadyExists'
    ) {
      return undefined;
    }
    throw error;
  }
}

export interface ProvisionOptions {
  /** Prefix of every resource name, so test files can have resources of their own. */
  prefix: string;
  /** Visibility timeout of the work queues; the template's (six times the function timeout) is too long to wait for locally. */
  visibilityTimeoutSeconds?: number;
  /** Set up the buckets' S3 -> SQS notifications (default true; SeaweedFS has no such notifications). */
  bucketNotifications?: boolean;
}

export async function provisionLocalResources(
  target: AwsTarget,
  options: ProvisionOptions,
): Promise<LocalResources> {
  const { template, ids } = synthesizeStatefulStack();
  const { region, endpoints } = target;
  const dynamo = new DynamoDBClient({ region, endpoint: endpoints.dynamodb });
  const s3 = new S3Client({ region, endpoint: endpoints.s3, forcePathStyle: true });
  const sqs = new SQSClient({ region, endpoint: endpoints.sqs });
  const name = (suffix: string) => `${options.prefix}-${suffix}`.toLowerCase();

  try {
    // Table, with the key schema, indexes and TTL of the template.
    const table = properties(template, ids.table);
    const tableName = name('table');
    const indexes = (table.GlobalSecondaryIndexes as GlobalSecondaryIndex[] | undefined)?.map((index) => ({
      IndexName: index.IndexName,
      KeySchema: index.KeySchema,
      Projection: index.Projection ?? { ProjectionType: 'ALL' },
    }));
    await ignoreExisting(
      dynamo.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: table.KeySchema as never,
          AttributeDefinitions: table.AttributeDefinitions as never,
          ...(indexes?.length ? { GlobalSecondaryIndexes: indexes } : {}),
        }),
      ),
    );
    const ttl = table.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
    if (ttl?.Enabled && ttl.AttributeName) {
      await dynamo.send(
        new UpdateTimeToLiveCommand({
          TableName: tableName,
          TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
        }),
      );
    }

    // Queues: dead-letter queues first, then the work queues that redrive into them.
    const queueUrls: Record<string, string> = {};
    const queueArns: Record<string, string> = {};
    const createQueue = async (logicalId: string, queueName: string) => {
      const props = properties(template, logicalId);
      const redrive = props.RedrivePolicy as
        | { deadLetterTargetArn: unknown; maxReceiveCount: number }
        | undefined;
      const attributes: Record<string, string> = {};
      if (redrive) {
        const target = refOf(redrive.deadLetterTargetArn);
        const arn = target ? queueArns[target] : undefined;
        if (!arn) throw new Error(`Dead-letter queue of ${logicalId} is not created yet`);
        attributes.RedrivePolicy = JSON.stringify({
          deadLetterTargetArn: arn,
          maxReceiveCount: redrive.maxReceiveCount,
        });
        attributes.VisibilityTimeout = String(
          options.visibilityTimeoutSeconds ?? props.VisibilityTimeout ?? 30,
        );
      }
      const { QueueUrl } = await sqs.send(
        new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }),
      );
      if (!QueueUrl) throw new Error(`No URL for queue ${queueName}`);
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
      );
      queueUrls[logicalId] = QueueUrl;
      queueArns[logicalId] = Attributes?.QueueArn ?? '';
    };
    await createQueue(ids.modelDeadLetterQueue, name('model-dlq'));
    await createQueue(ids.batchDeadLetterQueue, name('batch-dlq'));
    await createQueue(ids.modelQueue, name('model-queue'));
    await createQueue(ids.batchQueue, name('batch-queue'));
    await createQueue(ids.notificationDeadLetterQueue, name('notification-dlq'));
    await createQueue(ids.notificationQueue, name('notification-queue'));

    // Buckets and their notifications (CDK writes these as a custom resource per bucket).
    const bucketNames: Record<string, string> = {
      [ids.modelsBucket]: name('models'),
      [ids.batchBucket]: name('batches'),
    };
    for (const bucket of Object.values(bucketNames))
      await ignoreExisting(s3.send(new CreateBucketCommand({ Bucket: bucket })));
    for (const resource of Object.values(template.Resources)) {
      if (options.bucketNotifications === false || resource.Type !== 'Custom::S3BucketNotifications')
        continue;
      const bucketId = refOf(resource.Properties?.BucketName);
      const bucket = bucketId ? bucketNames[bucketId] : undefined;
      if (!bucket) continue;
      const configuration = resource.Properties?.NotificationConfiguration as {
        QueueConfigurations?: {
          Events: string[];
          QueueArn: unknown;
          Filter?: { Key: { FilterRules: { Name: string; Value: string }[] } };
        }[];
      };
      await s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: bucket,
          NotificationConfiguration: {
            QueueConfigurations: (configuration.QueueConfigurations ?? []).map((q) => {
              const queueId = refOf(q.QueueArn);
              const arn = queueId ? queueArns[queueId] : undefined;
              if (!arn) throw new Error(`Notification of ${bucket} points at an unknown queue`);
              return {
                Events: q.Events as never,
                QueueArn: arn,
                ...(q.Filter
                  ? {
                      Filter: {
                        Key: {
                          FilterRules: q.Filter.Key.FilterRules.map((r) => ({
                            Name: r.Name as never,
                            Value: r.Value,
                          })),
                        },
                      },
                    }
                  : {}),
              };
            }),
          },
        }),
      );
    }

    const url = (logicalId: string) => {
      const value = queueUrls[logicalId];
      if (!value) throw new Error(`Queue ${logicalId} was not created`);
      return value;
    };
    return {
      tableName,
      modelsBucket: name('models'),
      batchBucket: name('batches'),
      modelQueueUrl: url(ids.modelQueue),
      batchQueueUrl: url(ids.batchQueue),
      modelDeadLetterQueueUrl: url(ids.modelDeadLetterQueue),
      batchDeadLetterQueueUrl: url(ids.batchDeadLetterQueue),
      notificationQueueUrl: url(ids.notificationQueue),
      notificationDeadLetterQueueUrl: url(ids.notificationDeadLetterQueue),
    };
  } finally {
    dynamo.destroy();
    s3.destroy();
    sqs.destroy();
  }
}

/** The environment variables the functions read to find these resources (see shared/config.ts). */
export function resourceEnvironment(resources: LocalResources): Record<string, string> {
  return {
    TABLE_NAME: resources.tableName,
    MODELS_BUCKET: resources.modelsBucket,
    BATCH_BUCKET: resources.batchBucket,
    BATCH_QUEUE_URL: resources.batchQueueUrl,
    NOTIFICATION_QUEUE_URL: resources.notificationQueueUrl,
  };
}
