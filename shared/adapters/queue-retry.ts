import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** Makes a failed message of one queue come back after a delay instead of the queue's visibility timeout. */
export class SqsRetryDelay {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async delay(receiptHandle: string, seconds: number): Promise<void> {
    try {
      await this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: Math.min(43_200, Math.max(0, Math.round(seconds))),
        }),
      );
    } catch {
      // The queue's own visibility timeout still brings the message back.
    }
  }
}
