/**
 * The one shape of an SQS-fed worker (the model validator, the batch worker, the webhook
 * dispatcher). Each message body is read with its queue's schema (shared/domain/queue-messages.ts)
 * into the pieces of work it carries, handled in order. Partial batch failures are reported
 * (Powertools' BatchProcessor): a message whose work throws is returned in `batchItemFailures` and
 * retried (then dead-lettered) alone, the others are done. On the message's last receive, a failure
 * first goes to the worker's `onLastReceive`, so that what the message was for can be closed before
 * the message goes to the dead-letter queue; before, a worker may push its next receive back.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { z } from 'zod';
import { config } from '../config.ts';
import { readMessage } from '../domain/s3-events.ts';
import { logger } from '../observability/logger.ts';

/** The message a piece of work came in. */
export interface Receipt {
  messageId: string;
  receiptHandle: string;
  /** How many times the queue has handed out this message, this time included. */
  receiveCount: number;
  /** The queue's last receive of the message: a failure now sends it to the dead-letter queue. */
  lastReceive: boolean;
  context: Context;
}

export interface SqsWorkerOptions<Work> {
  /** Reads a message's JSON body into the work it carries; a body it refuses fails the message. */
  message: z.ZodType<Work[]>;
  handle(work: Work, receipt: Receipt): Promise<void>;
  /** Runs when `handle` fails on the message's last receive, before the failure is reported. */
  onLastReceive?(work: Work, error: unknown, receipt: Receipt): Promise<void>;
  /**
   * Brings a failed message back after a delay of its own rather than the queue's visibility
   * timeout (a backoff by receive count); not on the last receive, which has no next one.
   */
  retryDelay?: {
    seconds(receiveCount: number): number;
    apply(receiptHandle: string, seconds: number): Promise<void>;
  };
  /** Publishes the metrics the work adds, once per invocation. */
  metrics?: Metrics;
}

export function sqsWorker<Work>(options: SqsWorkerOptions<Work>) {
  const processor = new BatchProcessor(EventType.SQS);
  const handleRecord = async (record: SQSRecord, context: Context) => {
    const receiveCount = Number(record.attributes.ApproximateReceiveCount);
    const receipt: Receipt = {
      messageId: record.messageId,
      receiptHandle: record.receiptHandle,
      receiveCount,
      // Every work queue has the stage's maxReceiveCount (infra/stateful-stack.ts), which the stack
      // hands the functions as BATCH_MAX_RECEIVES.
      lastReceive: receiveCount >= config().batches.maxReceives,
      context,
    };
    for (const work of readMessage(options.message, record.body)) {
      try {
        await options.handle(work, receipt);
      } catch (error) {
        const next = receipt.lastReceive ? 'goes to the dead-letter queue' : 'will be retried';
        logger.warn(`work failed; its message ${next}`, {
          error: error as Error,
          messageId: record.messageId,
          receiveCount,
          lastReceive: receipt.lastReceive,
        });
        if (receipt.lastReceive) await options.onLastReceive?.(work, error, receipt);
        else if (options.retryDelay) {
          const seconds = options.retryDelay.seconds(receiveCount);
          logger.info('the next receive is pushed back', {
            messageId: record.messageId,
            retryInSeconds: seconds,
          });
          await options.retryDelay.apply(record.receiptHandle, seconds);
        }
        throw error;
      }
    }
  };
  const worker = middy<SQSEvent, SQSBatchResponse>().use(injectLambdaContext(logger, { resetKeys: true }));
  if (options.metrics) worker.use(logMetrics(options.metrics));
  return worker.handler((event, context) =>
    processPartialResponse(event, (record: SQSRecord) => handleRecord(record, context), processor, {
      context,
    }),
  );
}
