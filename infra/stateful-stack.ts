/**
 * Everything that holds data: the table, the buckets and the queues. It lives apart from the
 * functions and the API so the stateless stack can be destroyed and redeployed without touching data.
 * The local emulator is provisioned from this same stack's synthesized template.
 */
import { CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { functions } from '../shared/api/functions.ts';
import {
  BATCH_INBOX_PREFIX,
  BATCH_RESULTS_PREFIX,
  MODEL_UPLOAD_PREFIX,
} from '../shared/domain/object-keys.ts';
import type { StageSettings } from './stage.ts';

/** How long a model file that was overwritten or deleted can still be restored. */
export const MODEL_NONCURRENT_VERSION_DAYS = Duration.days(30);

/**
 * An uploaded model file that failed validation stays where it was uploaded (`uploads/{id}.onnx`),
 * told apart from valid ones only by this tag, which the model validator is to put on it; the
 * lifecycle then deletes it this long after its upload (its version then expires as a non-current one).
 */
export const INVALID_MODEL_UPLOAD_TAG = { key: 'model-status', value: 'invalid' } as const;
export const INVALID_MODEL_UPLOAD_DAYS = Duration.days(30);

export interface StatefulStackProps extends StackProps {
  settings: StageSettings;
}

export class StatefulStack extends Stack {
  readonly table: dynamodb.TableV2;
  readonly modelsBucket: s3.Bucket;
  readonly batchBucket: s3.Bucket;
  readonly modelQueue: sqs.Queue;
  readonly modelDeadLetterQueue: sqs.Queue;
  readonly batchQueue: sqs.Queue;
  readonly batchDeadLetterQueue: sqs.Queue;
  readonly notificationQueue: sqs.Queue;
  readonly notificationDeadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const production = settings.stage === 'prod';

    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      globalSecondaryIndexes: [
        {
          indexName: 'gsi1',
          partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
          sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
        },
        {
          indexName: 'gsi2',
          partitionKey: { name: 'gsi2pk', type: dynamodb.AttributeType.STRING },
          sortKey: { name: 'gsi2sk', type: dynamodb.AttributeType.STRING },
        },
      ],
      // Idempotency records, spent refresh tokens and old prediction records expire by themselves.
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: production,
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      removalPolicy: settings.removalPolicy,
    });

    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(settings.logRetentionDays) }],
      removalPolicy: settings.removalPolicy,
      autoDeleteObjects: !production,
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log bucket itself; logging it into itself would loop.',
    });

    const uploadCors: s3.CorsRule[] = settings.corsOrigins.length
      ? [
          {
            allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.GET],
            allowedOrigins: settings.corsOrigins,
            allowedHeaders: ['*'],
            exposedHeaders: ['ETag'],
            maxAge: 3000,
          },
        ]
      : [];

    const bucketDefaults = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      serverAccessLogsBucket: accessLogs,
      cors: uploadCors,
      removalPolicy: settings.removalPolicy,
      autoDeleteObjects: !production,
    } satisfies s3.BucketProps;

    this.modelsBucket = new s3.Bucket(this, 'ModelsBucket', {
      ...bucketDefaults,
      serverAccessLogsPrefix: 'models/',
      // Versioned, so that an overwritten or deleted model file can be restored for a while.
      versioned: true,
      lifecycleRules: [
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { noncurrentVersionExpiration: MODEL_NONCURRENT_VERSION_DAYS },
        // Once their non-current versions are gone, the delete markers left alone go too.
        { expiredObjectDeleteMarker: true },
        {
          prefix: MODEL_UPLOAD_PREFIX,
          tagFilters: { [INVALID_MODEL_UPLOAD_TAG.key]: INVALID_MODEL_UPLOAD_TAG.value },
          expiration: INVALID_MODEL_UPLOAD_DAYS,
        },
      ],
    });

    this.batchBucket = new s3.Bucket(this, 'BatchBucket', {
      ...bucketDefaults,
      serverAccessLogsPrefix: 'batches/',
      lifecycleRules: [
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { prefix: BATCH_INBOX_PREFIX, expiration: Duration.days(30) },
        { prefix: BATCH_RESULTS_PREFIX, expiration: Duration.days(30) },
      ],
    });

    const queuePair = (name: string, visibilityTimeout: Duration) => {
      const deadLetterQueue = new sqs.Queue(this, `${name}DeadLetterQueue`, {
        retentionPeriod: Duration.days(14),
        enforceSSL: true,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
      });
      Validations.of(deadLetterQueue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself a dead-letter queue.',
      });
      const queue = new sqs.Queue(this, `${name}Queue`, {
        visibilityTimeout,
        retentionPeriod: Duration.days(4),
        enforceSSL: true,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
      });
      return { queue, deadLetterQueue };
    };

    // AWS asks for a visibility timeout of six times the consuming function's timeout.
    const model = queuePair('Model', Duration.seconds(functions['model-validator'].timeoutSeconds * 6));
    const batch = queuePair('Batch', Duration.seconds(functions['batch-worker'].timeoutSeconds * 6));
    this.modelQueue = model.queue;
    this.modelDeadLetterQueue = model.deadLetterQueue;
    this.batchQueue = batch.queue;
    this.batchDeadLetterQueue = batch.deadLetterQueue;
    // Webhook deliveries, retried with backoff by the dispatcher before they are dead-lettered.
    const notification = queuePair(
      'Notification',
      Duration.seconds(functions['webhook-dispatcher'].timeoutSeconds * 6),
    );
    this.notificationQueue = notification.queue;
    this.notificationDeadLetterQueue = notification.deadLetterQueue;

    this.modelsBucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.SqsDestination(this.modelQueue),
      { prefix: MODEL_UPLOAD_PREFIX },
    );
    this.batchBucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.SqsDestination(this.batchQueue),
      { prefix: BATCH_INBOX_PREFIX },
    );
    // The notifications above are configured by a CDK-provided singleton function (one per stack).
    for (const child of this.node.children) {
      if (child.node.id.startsWith('BucketNotificationsHandler')) {
        Validations.of(child).acknowledge({
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          reason:
            "CDK's BucketNotificationsHandler (it puts the buckets' notification configuration at deploy time) " +
            'uses AWSLambdaBasicExecutionRole, which only lets it write its own logs to CloudWatch Logs.',
        });
      }
    }

    new CfnOutput(this, 'TableName', {
      value: this.table.tableName,
      description: 'The table; `npm run admin:create -- --table <this>` makes the first admin',
    });
    new CfnOutput(this, 'BatchBucketName', {
      value: this.batchBucket.bucketName,
      description: `Operators may drop batch files under ${BATCH_INBOX_PREFIX}{userId}/{modelId}/`,
    });
  }
}
