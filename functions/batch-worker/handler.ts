/**
 * The batch worker: fed by the batch queue with the inbox's ObjectCreated events and with its own
 * continuation messages. On a message's last allowed receive, a batch that still fails is marked
 * failed (and refunded) before the message goes to the DLQ.
 */
import { services } from '#shared/app/services.ts';
import { batchOfWork } from '#shared/batches/worker.ts';
import { BatchQueueMessage } from '#shared/domain/queue-messages.ts';
import { logger } from '#shared/observability/logger.ts';
import { metricNames } from '#shared/observability/metric-names.ts';
import { MetricUnit, metrics } from '#shared/observability/metrics.ts';
import { sqsWorker } from '#shared/workers/sqs-worker.ts';

export const handler = sqsWorker({
  message: BatchQueueMessage,
  metrics,
  handle: async (work, { messageId, context }) => {
    logger.appendKeys(batchOfWork(work));
    const rows = await services().batchWorker.run(work, {
      owner: messageId,
      remainingMs: () => context.getRemainingTimeInMillis(),
    });
    if (rows > 0) metrics.addMetric(metricNames.batchRows, MetricUnit.Count, rows);
  },
  onLastReceive: async (work, error) => {
    if (await services().batchWorker.giveUp(work, error))
      logger.error('batch failed for good', { error: error as Error });
  },
});
