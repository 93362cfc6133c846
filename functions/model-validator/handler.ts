import { services } from '#shared/app/services.ts';
import { logger } from '#shared/observability/logger.ts';
import { objectCreatedWorker } from '#shared/workers/sqs-worker.ts';

export const handler = objectCreatedWorker(async ({ object }) => {
  const model = await services().models.validateUpload(object.key);
  if (model)
    logger.info('model validated', { modelId: model.id, status: model.status, reason: model.statusReason });
  else logger.info('upload ignored: no model version awaits it', { key: object.key });
});
