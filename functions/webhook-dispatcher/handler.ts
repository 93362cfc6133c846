/**
 * Delivers low-balance notifications to webhooks. A failed delivery stays on the queue: its next
 * attempt is pushed back exponentially (by the message's visibility), and after the queue's
 * maxReceiveCount it goes to the dead-letter queue, the notification marked `failed`.
 */
import { services } from '#shared/app/services.ts';
import { webhookBackoffSeconds } from '#shared/domain/notifications.ts';
import { NotificationQueueMessage } from '#shared/domain/queue-messages.ts';
import { logger } from '#shared/observability/logger.ts';
import { sqsWorker } from '#shared/workers/sqs-worker.ts';

export const handler = sqsWorker({
  message: NotificationQueueMessage,
  handle: async ({ userId, notificationId }, { lastReceive }) => {
    logger.appendKeys({ userId, notificationId });
    // On the last receive the queue allows, a failure is final (the message goes to the DLQ next).
    const outcome = await services().notifications.deliver(userId, notificationId, {
      lastAttempt: lastReceive,
    });
    logger.info('webhook notification', { outcome });
  },
  retryDelay: {
    seconds: webhookBackoffSeconds,
    apply: (receiptHandle, seconds) => services().notificationRetries.delay(receiptHandle, seconds),
  },
  onLastReceive: async (_delivery, error, { receiveCount }) => {
    logger.error('webhook delivery failed for good', { error: error as Error, receives: receiveCount });
  },
});
