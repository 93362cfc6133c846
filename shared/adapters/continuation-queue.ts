import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ContinuationQueue } from '../batches/ports.ts';

export const CONTINUATION_KIND = 'batch-continuation';

/** Continues a batch in a new invocation by putting a message on the batch queue itself. */
export class SqsContinuationQueue implements ContinuationQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async continueLater(userId: string, batchId: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify({ kind: CONTINUATION_KIND, userId, batchId }),
      }),
    );
  }
}
