/**
 * The composition root: wires the adapters to the use cases once per container, from configuration.
 * It only wires: behaviour lives in the use cases and the adapters. Handlers ask for the services
 * here; use cases never construct adapters themselves. Each part is built on first use, so a
 * function only needs the resources of the services it calls.
 */

import { dynamoClient, s3Client, sqsClient } from '../adapters/aws-clients.ts';
import { S3BatchFiles } from '../adapters/batch-files.ts';
import { SqsContinuationQueue } from '../adapters/continuation-queue.ts';
import { DynamoAccountStore } from '../adapters/dynamo/account-store.ts';
import { DynamoAuditStore } from '../adapters/dynamo/audit-store.ts';
import { DynamoBatchStore } from '../adapters/dynamo/batch-store.ts';
import { DynamoIdempotencyStore } from '../adapters/dynamo/idempotency-store.ts';
import { DynamoLedgerStore } from '../adapters/dynamo/ledger-store.ts';
import { DynamoModelStore } from '../adapters/dynamo/model-store.ts';
import { DynamoNotificationStore } from '../adapters/dynamo/notification-store.ts';
import { DynamoPredictionStore } from '../adapters/dynamo/prediction-store.ts';
import { DynamoReconcilerStore } from '../adapters/dynamo/reconciler-store.ts';
import { DynamoTransactions } from '../adapters/dynamo/transactions.ts';
import { DynamoUsageStore } from '../adapters/dynamo/usage-store.ts';
import { DynamoUserStore } from '../adapters/dynamo/user-store.ts';
import { S3ModelFiles } from '../adapters/model-files.ts';
import { OnnxModelRuntime } from '../adapters/model-runtime.ts';
import { SqsNotificationQueue } from '../adapters/notification-queue.ts';
import { SqsRetryDelay } from '../adapters/queue-retry.ts';
import { S3Files } from '../adapters/s3-files.ts';
import { signingKeys } from '../adapters/signing-key-source.ts';
import { httpWebhookSender } from '../adapters/webhook-sender.ts';
import { BatchService } from '../batches/service.ts';
import { BatchWorker } from '../batches/worker.ts';
import { config, requireResource } from '../config.ts';
import { CreditsService, IDEMPOTENCY_TTL_SECONDS } from '../credits/service.ts';
import { ModelService } from '../models/service.ts';
import { lowBalanceHandOff, NotificationService } from '../notifications/service.ts';
import type { FollowUps } from '../predictions/ports.ts';
import { PredictionService } from '../predictions/service.ts';
import { ReportsService } from '../reports/service.ts';
import { UserService } from '../users/service.ts';

function lazy<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= build();
    return value;
  };
}

const table = lazy(() => requireResource('tableName'));
const files = lazy(() => new S3Files(s3Client()));
const accountStore = lazy(() => new DynamoAccountStore(dynamoClient(), table()));
const ledgerStore = lazy(() => new DynamoLedgerStore(dynamoClient(), table()));
const reconcilerStore = lazy(() => new DynamoReconcilerStore(dynamoClient(), table(), ledgerStore()));
const idempotencyStore = lazy(() => new DynamoIdempotencyStore(dynamoClient(), table()));
const usageStore = lazy(() => new DynamoUsageStore(dynamoClient(), table()));
const transactions = lazy(() => new DynamoTransactions(dynamoClient()));
const auditStore = lazy(() => new DynamoAuditStore(dynamoClient(), table()));
const notificationStore = lazy(() => new DynamoNotificationStore(dynamoClient(), table()));
const modelStore = lazy(() => new DynamoModelStore(dynamoClient(), table()));

const userStore = lazy(
  () =>
    new DynamoUserStore(dynamoClient(), table(), accountStore(), (bonus, createdAt) => [
      usageStore().userCreatedPart(),
      ...(bonus > 0 ? [usageStore().creditsAddedPart(createdAt.slice(0, 10), bonus)] : []),
    ]),
);

const notificationQueue = lazy(
  () => new SqsNotificationQueue(sqsClient(), requireResource('notificationQueueUrl')),
);
const notificationRetries = lazy(
  () => new SqsRetryDelay(sqsClient(), requireResource('notificationQueueUrl')),
);

const followUps = lazy(
  (): FollowUps => ({
    audit: auditStore(),
    notifyLowBalance: lowBalanceHandOff(notificationQueue),
  }),
);

const modelFiles = lazy(
  () => new S3ModelFiles(files(), requireResource('modelsBucket'), config().presignedUrlTtlSeconds),
);

const modelRuntime = lazy(
  () =>
    new OnnxModelRuntime(files(), requireResource('modelsBucket'), {
      capacity: config().models.cacheSize,
      threads: config().models.intraOpThreads,
    }),
);

const users = lazy(() => {
  const settings = config();
  return new UserService(userStore(), signingKeys, {
    scryptLog2N: settings.auth.scryptLog2N,
    signupBonus: settings.signupBonus,
    refreshTokenTtlSeconds: settings.auth.refreshTokenTtlSeconds,
    token: {
      issuer: settings.auth.issuer,
      audience: settings.auth.audience,
      ttlSeconds: settings.auth.accessTokenTtlSeconds,
    },
    signIn: settings.auth.signIn,
  });
});

const credits = lazy(
  () =>
    new CreditsService(accountStore(), ledgerStore(), userStore(), usageStore(), auditStore(), {
      selfServiceTopUps: config().selfServiceTopUps,
      allowHttpWebhooksOnLocalhost: config().stage === 'dev',
    }),
);

const models = lazy(
  () =>
    new ModelService(
      modelStore(),
      modelFiles(),
      modelRuntime(),
      { maxModelBytes: config().models.maxModelBytes },
      auditStore(),
    ),
);

const predictions = lazy(() => {
  const settings = config();
  return new PredictionService(
    models(),
    modelRuntime(),
    accountStore(),
    idempotencyStore(),
    new DynamoPredictionStore(dynamoClient(), table()),
    usageStore(),
    transactions(),
    followUps(),
    {
      maxRows: settings.predictions.maxRows,
      timeoutMs: settings.predictions.timeoutMs,
      retentionSeconds: settings.predictions.retentionSeconds,
      inlineOutputBytes: 16 * 1024,
      ratePerMinute: settings.predictions.perMinute,
      nameCacheSeconds: settings.models.nameCacheSeconds,
      idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
    },
  );
});

const batchStore = lazy(() => new DynamoBatchStore(dynamoClient(), table()));
const batchFiles = lazy(() => new S3BatchFiles(s3Client(), files(), requireResource('batchBucket')));

const batches = lazy(
  () =>
    new BatchService(batchStore(), batchFiles(), models(), {
      maxBytes: config().batches.maxBytes,
      presignTtlSeconds: config().presignedUrlTtlSeconds,
    }),
);

const batchWorker = lazy(() => {
  const settings = config();
  return new BatchWorker(
    batchStore(),
    batchFiles(),
    models(),
    modelRuntime(),
    accountStore(),
    idempotencyStore(),
    usageStore(),
    transactions(),
    followUps(),
    new SqsContinuationQueue(sqsClient(), requireResource('batchQueueUrl')),
    {
      chunkSize: settings.batches.chunkSize,
      maxRows: settings.batches.maxRows,
      maxBytes: settings.batches.maxBytes,
      reserveMs: settings.batches.reserveMs,
      maxRunMs: settings.batches.maxRunMs,
    },
  );
});

const notifications = lazy(
  () =>
    new NotificationService(
      notificationStore(),
      accountStore(),
      httpWebhookSender({ allowLocalhost: config().stage === 'dev', timeoutMs: 5000 }),
    ),
);

const reports = lazy(
  () =>
    new ReportsService(
      usageStore(),
      {
        userEmail: async (userId) => (await userStore().findById(userId))?.email,
        modelName: async (modelId) => {
          const model = await modelStore().get(modelId);
          return model ? { name: model.name, version: model.version } : undefined;
        },
      },
      auditStore(),
    ),
);

/** Who calls an HTTP route: the principal of a bearer access token or API key (httpFunction's `authenticate`). */
export function authenticate(authorization: string | undefined) {
  return users().authenticate(authorization);
}

export function services() {
  return {
    get users() {
      return users();
    },
    get credits() {
      return credits();
    },
    get reconcilerStore() {
      return reconcilerStore();
    },
    get models() {
      return models();
    },
    get predictions() {
      return predictions();
    },
    get batches() {
      return batches();
    },
    get batchWorker() {
      return batchWorker();
    },
    get notifications() {
      return notifications();
    },
    /** Pushes a failed webhook delivery's next attempt back (the dispatcher's backoff). */
    get notificationRetries() {
      return notificationRetries();
    },
    get reports() {
      return reports();
    },
  };
}
