import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Notification } from '../../domain/notifications.ts';
import { keys } from './keys.ts';

export class DynamoNotificationStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async recent(userId: string, limit: number): Promise<Notification[]> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': keys.userProfile(userId).pk, ':prefix': keys.notificationPrefix },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (Items ?? []).map(({ pk: _pk, sk: _sk, ...n }) => n as Notification);
  }

  async get(userId: string, notificationId: string): Promise<Notification | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: keys.notification(userId, notificationId),
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...notification } = Item;
    return notification as Notification;
  }

  async markDelivery(
    userId: string,
    notificationId: string,
    outcome: { delivery: Notification['delivery']; error?: string; at: string },
  ): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: keys.notification(userId, notificationId),
        UpdateExpression: `SET delivery = :delivery, lastAttemptAt = :at${outcome.delivery === 'delivered' ? ', deliveredAt = :at' : ''}${outcome.error ? ', lastError = :error' : ''} ADD attempts :one`,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: {
          ':delivery': outcome.delivery,
          ':at': outcome.at,
          ':one': 1,
          ...(outcome.error ? { ':error': outcome.error } : {}),
        },
      }),
    );
  }
}
