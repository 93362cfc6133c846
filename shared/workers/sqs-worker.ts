/**
 * Builds an SQS-fed worker that reports partial batch failures: a message whose work throws is
 * returned in `batchItemFailures` and retried (then dead-lettered) alone, the others are done.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { objectsCreated, type StoredObjectEvent } from '../domain/s3-events.ts';
import { logger } from '../observability/logger.ts';

export interface ObjectWork {
  object: StoredObjectEvent;
  record: SQSRecord;
  context: Context;
}

export function objectCreatedWorker(handleObject: (work: ObjectWork) => Promise<void>) {
  const processor = new BatchProcessor(EventType.SQS);
  const handleRecord = async (record: SQSRecord, context: Context) => {
    for (const object of objectsCreated(record.body)) {
      logger.info('object created', { bucket: object.bucket, key: object.key, messageId: record.messageId });
      await handleObject({ object, record, context });
    }
  };
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler((event, context) =>
      processPartialResponse(event, (record: SQSRecord) => handleRecord(record, context), processor, {
        context,
      }),
    );
}
