import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { sqsClient } from './aws-clients.ts';

/** Makes a failed message come back after `seconds` instead of the queue's visibility timeout. */
export async function delayRetry(queueUrl: string, record: SQSRecord, seconds: number): Promise<void> {
  try {
    await sqsClient().send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: Math.min(43_200, Math.max(0, Math.round(seconds))),
      }),
    );
  } catch {
    // The queue's own visibility timeout still brings the message back.
  }
}
