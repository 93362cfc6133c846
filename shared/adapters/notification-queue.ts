import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** Hands a recorded notification to the webhook dispatcher; the HTTP call never happens in a request. */
export class SqsNotificationQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(userId: string, notificationId: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify({ userId, notificationId }),
      }),
    );
  }
}
