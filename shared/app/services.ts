/**
 * The composition root: wires the adapters to the use cases once per container, from configuration.
 * Handlers ask for the services here; use cases never construct adapters themselves. Each part is
 * built on first use, so a function only needs the resources of the services it calls.
 */

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { dynamoClient, s3Client, sqsClient } from '../adapters/aws-clients.ts';
import { S3BatchFiles } from '../adapters/batch-files.ts';
import { SqsContinuationQueue } from '../adapters/continuation-queue.ts';
import { DynamoAuditStore } from '../adapters/dynamo/audit-store.ts';
import { DynamoBatchRepository } from '../adapters/dynamo/batches-store.ts';
import { CreditsStore } from '../adapters/dynamo/credits-store.ts';
import { DynamoModelRepository } from '../adapters/dynamo/models-store.ts';
import { DynamoNotificationStore } from '../adapters/dynamo/notifications-store.ts';
import { DynamoPredictionRepository } from '../adapters/dynamo/predictions-store.ts';
import { DynamoTransactions } from '../adapters/dynamo/transactions.ts';
import { DynamoUsageStore } from '../adapters/dynamo/usage-store.ts';
import { DynamoUserRepository } from '../adapters/dynamo/users-store.ts';
import { OnnxModelRuntime } from '../adapters/model-runtime.ts';
import { SqsNotificationQueue } from '../adapters/notification-queue.ts';
import { S3Files } from '../adapters/s3-files.ts';
import { signingKeys } from '../adapters/signing-key-source.ts';
import { BatchService } from '../batches/service.ts';
import { config, requireResource } from '../config.ts';
import { CreditsService, IDEMPOTENCY_TTL_SECONDS } from '../credits/service.ts';
import { isLocalHostName, isPublicAddress } from '../domain/network.ts';
import type { ModelFiles } from '../models/ports.ts';
import { ModelService } from '../models/service.ts';
import { NotificationService, type WebhookSender } from '../notifications/service.ts';
import { logger } from '../observability/logger.ts';
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
const creditsStore = lazy(() => new CreditsStore(dynamoClient(), table()));
const usageStore = lazy(() => new DynamoUsageStore(dynamoClient(), table()));
const transactions = lazy(() => new DynamoTransactions(dynamoClient()));
const auditStore = lazy(() => new DynamoAuditStore(dynamoClient(), table()));
const notificationStore = lazy(() => new DynamoNotificationStore(dynamoClient(), table()));
const modelRepository = lazy(() => new DynamoModelRepository(dynamoClient(), table()));

const userRepository = lazy(
  () =>
    new DynamoUserRepository(dynamoClient(), table(), creditsStore(), (bonus, createdAt) => [
      usageStore().userCreatedPart(),
      ...(bonus > 0 ? [usageStore().creditsAddedPart(createdAt.slice(0, 10), bonus)] : []),
    ]),
);

const followUps = lazy(
  (): FollowUps => ({
    audit: auditStore(),
    notifyLowBalance: async (userId, notificationId) => {
      // The charge is committed already: a failed hand-off must not turn it into an error. The
      // notification stays `pending` (visible in GET /v1/users/me) and is logged for operators.
      try {
        const queue = new SqsNotificationQueue(sqsClient(), requireResource('notificationQueueUrl'));
        await queue.enqueue(userId, notificationId);
      } catch (error) {
        logger.warn('could not queue a low-balance notification', {
          userId,
          notificationId,
          error: error as Error,
        });
      }
    },
  }),
);

const modelFiles = lazy((): ModelFiles => {
  const bucket = requireResource('modelsBucket');
  return {
    bucket,
    getBytes: (key) => files().getBytes(bucket, key),
    size: (key) => files().size(bucket, key),
    put: (key, bytes) => files().put(bucket, key, bytes, 'application/octet-stream'),
    presignUpload: (key, contentType, declared) =>
      files().presignPut(bucket, key, config().presignedUrlTtlSeconds, { contentType, ...declared }),
  };
});

const modelRuntime = lazy(
  () =>
    new OnnxModelRuntime(files(), requireResource('modelsBucket'), {
      capacity: config().models.cacheSize,
      threads: config().models.intraOpThreads,
    }),
);

const users = lazy(() => {
  const settings = config();
  return new UserService(userRepository(), signingKeys, {
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
    new CreditsService(creditsStore(), userRepository(), usageStore(), auditStore(), {
      selfServiceTopUps: config().selfServiceTopUps,
      allowHttpWebhooksOnLocalhost: config().stage === 'dev',
    }),
);

const models = lazy(
  () =>
    new ModelService(
      modelRepository(),
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
    creditsStore(),
    new DynamoPredictionRepository(dynamoClient(), table()),
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

const batches = lazy(() => {
  const settings = config();
  return new BatchService(
    new DynamoBatchRepository(dynamoClient(), table()),
    new S3BatchFiles(s3Client(), files(), requireResource('batchBucket')),
    models(),
    modelRuntime(),
    creditsStore(),
    usageStore(),
    transactions(),
    followUps(),
    // Only the worker continues batches; the API side never sends.
    {
      continueLater: (userId: string, batchId: string) =>
        new SqsContinuationQueue(sqsClient(), requireResource('batchQueueUrl')).continueLater(
          userId,
          batchId,
        ),
    },
    {
      chunkSize: settings.batches.chunkSize,
      maxRows: settings.batches.maxRows,
      maxBytes: settings.batches.maxBytes,
      reserveMs: settings.batches.reserveMs,
      maxRunMs: settings.batches.maxRunMs,
      presignTtlSeconds: settings.presignedUrlTtlSeconds,
    },
  );
});

const sendWebhook: WebhookSender = async (url, init) => {
  // Checked again at delivery, against what the name resolves to now.
  const { hostname } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  const allowLocal =
    config().stage === 'dev' && (isLocalHostName(host) || host === '127.0.0.1' || host === '::1');
  if (!allowLocal) {
    const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true });
    if (addresses.length === 0 || addresses.some((a) => !isPublicAddress(a.address))) {
      throw new Error(`the webhook host ${host} does not resolve to public addresses only`);
    }
  }
  const response = await fetch(url, {
    method: 'POST',
    headers: init.headers,
    body: init.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(5000),
  });
  await response.body?.cancel();
  return { status: response.status };
};

const notifications = lazy(() => new NotificationService(notificationStore(), creditsStore(), sendWebhook));

const reports = lazy(
  () =>
    new ReportsService(
      usageStore(),
      {
        userEmail: async (userId) => (await userRepository().findById(userId))?.email,
        modelName: async (modelId) => {
          const model = await modelRepository().get(modelId);
          return model ? { name: model.name, version: model.version } : undefined;
        },
      },
      auditStore(),
    ),
);

export function services() {
  return {
    get users() {
      return users();
    },
    get credits() {
      return credits();
    },
    get creditsStore() {
      return creditsStore();
    },
    get userRepository() {
      return userRepository();
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
    get notifications() {
      return notifications();
    },
    get reports() {
      return reports();
    },
  };
}
