import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { WebhookDelivery } from '../domain/queue-messages.ts';
import type { NotificationQueuePort } from '../notifications/service.ts';

/** Hands a recorded notification to the webhook dispatcher; the HTTP call never happens in a request. */
export class SqsNotificationQueue implements NotificationQueuePort {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(userId: string, notificationId: string): Promise<void> {
    const message: WebhookDelivery = { userId, notificationId };
    await this.client.send(
      new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(message) }),
    );
  }
}
