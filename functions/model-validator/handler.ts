/** Validates each uploaded model file the models bucket reports through the model queue. */
import { services } from '#shared/app/services.ts';
import { ModelQueueMessage } from '#shared/domain/queue-messages.ts';
import { logger } from '#shared/observability/logger.ts';
import { sqsWorker } from '#shared/workers/sqs-worker.ts';

export const handler = sqsWorker({
  message: ModelQueueMessage,
  handle: async (object, { messageId }) => {
    logger.info('object created', { bucket: object.bucket, key: object.key, messageId });
    const model = await services().models.validateUpload(object.key);
    if (model)
      logger.info('model validated', { modelId: model.id, status: model.status, reason: model.statusReason });
    else logger.info('upload ignored: no model version awaits it', { key: object.key });
  },
});
