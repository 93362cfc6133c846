/**
 * The batch worker: fed by the batch queue with the inbox's ObjectCreated events and with its own
 * continuation messages. It reports partial batch failures; on a message's last allowed receive a
 * batch that still fails is marked failed (and refunded) before the message goes to the DLQ.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { services } from '#shared/app/services.ts';
import { BatchBusyError } from '#shared/batches/service.ts';
import { config } from '#shared/config.ts';
import { parseInboxKey } from '#shared/domain/batches.ts';
import { objectsCreated } from '#shared/domain/s3-events.ts';
import { logger } from '#shared/observability/logger.ts';
import { MetricUnit, metrics } from '#shared/observability/metrics.ts';

const Continuation = z.object({
  kind: z.literal('batch-continuation'),
  userId: z.string(),
  batchId: z.string(),
});

async function handleRecord(record: SQSRecord, context: Context) {
  const run = { owner: record.messageId, remainingMs: () => context.getRemainingTimeInMillis() };
  const lastReceive = Number(record.attributes.ApproximateReceiveCount) >= config().batches.maxReceives;
  const body = JSON.parse(record.body) as unknown;
  const continuation = Continuation.safeParse(body);
  const targets = continuation.success
    ? [
        {
          userId: continuation.data.userId,
          batchId: continuation.data.batchId,
          key: undefined,
          eTag: undefined,
        },
      ]
    : objectsCreated(record.body).map((o) => ({
        ...(parseInboxKey(o.key) ?? { userId: '', fileName: '' }),
        batchId: parseInboxKey(o.key)?.fileName ?? '',
        key: o.key,
        eTag: o.eTag,
      }));
  for (const target of targets) {
    logger.appendKeys({ userId: target.userId, batchId: target.batchId });
    try {
      const rows = target.key
        ? await services().batches.handleInboxObject(target.key, target.eTag, run)
        : await services().batches.continueBatch(target.userId, target.batchId, run);
      if (rows > 0) metrics.addMetric('BatchRows', MetricUnit.Count, rows);
    } catch (error) {
      logger.warn('batch run failed; the message will be retried', { error: error as Error });
      if (lastReceive && !(error instanceof BatchBusyError)) {
        logger.error('batch failed for good', { error: error as Error });
        const reason = `Processing failed repeatedly: ${(error as Error).message}`;
        // An operator's drop has a batch id of its own: find its batch by the object.
        if (target.key) await services().batches.failInboxObject(target.key, target.eTag, reason);
        else await services().batches.failById(target.userId, target.batchId, reason);
      }
      throw error;
    }
  }
}

const processor = new BatchProcessor(EventType.SQS);

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .handler((event, context) =>
    processPartialResponse(event, (record: SQSRecord) => handleRecord(record, context), processor, {
      context,
    }),
  );
