import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ContinuationQueue } from '../batches/ports.ts';
import type { BatchContinuation } from '../domain/queue-messages.ts';

/** Continues a batch in a new invocation by putting a message on the batch queue itself. */
export class SqsContinuationQueue implements ContinuationQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async continueLater(userId: string, batchId: string): Promise<void> {
    const message: BatchContinuation = { kind: 'batch-continuation', userId, batchId };
    await this.client.send(
      new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message) }),
    );
  }
}
