import { logger } from '#shared/observability/logger.ts';
import { objectCreatedWorker } from '#shared/workers/sqs-worker.ts';

export const handler = objectCreatedWorker(async ({ object }) => {
  logger.info('model file received', { key: object.key });
});
