/**
 * Delivers low-balance notifications to webhooks. A failed delivery stays on the queue: its next
 * attempt is pushed back exponentially (by the message's visibility), and after the queue's
 * maxReceiveCount it goes to the dead-letter queue, the notification marked `failed`.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { services } from '#shared/app/services.ts';
import { config } from '#shared/config.ts';
import { webhookBackoffSeconds } from '#shared/domain/notifications.ts';
import { logger } from '#shared/observability/logger.ts';

const Delivery = z.object({ userId: z.string(), notificationId: z.string() });

async function deliver(record: SQSRecord) {
  const { userId, notificationId } = Delivery.parse(JSON.parse(record.body));
  logger.appendKeys({ userId, notificationId });
  const receives = Number(record.attributes.ApproximateReceiveCount);
  // On the last receive the queue allows, a failure is final (the message goes to the DLQ next).
  const lastAttempt = receives >= config().batches.maxReceives;
  try {
    const outcome = await services().notifications.deliver(userId, notificationId, { lastAttempt });
    logger.info('webhook notification', { outcome });
  } catch (error) {
    if (lastAttempt) {
      logger.error('webhook delivery failed for good', { error: error as Error, receives });
      throw error;
    }
    const delay = webhookBackoffSeconds(receives);
    logger.warn('webhook delivery failed; retrying later', {
      error: error as Error,
      receives,
      retryInSeconds: delay,
    });
    await services().notificationRetries.delay(record.receiptHandle, delay);
    throw error;
  }
}

const processor = new BatchProcessor(EventType.SQS);

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event, context) => processPartialResponse(event, deliver, processor, { context }));
