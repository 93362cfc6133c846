/** Direct reads of a test stack's table, to check what the service stored (not what it answered). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../infra/local/local-stack.ts';

export class TableReader {
  private readonly client: DynamoDBDocumentClient;
  private readonly raw: DynamoDBClient;

  constructor(private readonly stack: LocalStack) {
    this.raw = new DynamoDBClient({ endpoint: stack.endpoints.dynamodb, region: stack.region });
    this.client = DynamoDBDocumentClient.from(this.raw);
  }

  get tableName(): string {
    return this.stack.resources.tableName;
  }

  async get(key: { pk: string; sk: string }): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return Item;
  }

  /** The user's PROFILE item, where the password hash lives. */
  profile(userId: string): Promise<Record<string, unknown> | undefined> {
    return this.get({ pk: `USER#${userId}`, sk: 'PROFILE' });
  }

  /** Every item of the table (the test's own table, so small). */
  async scanAll(): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({ TableName: this.tableName, ConsistentRead: true, ExclusiveStartKey: start }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Items whose partition key starts with `prefix`, e.g. `EMAIL#someone@example.com`. */
  async itemsWithKeyPrefix(prefix: string): Promise<Record<string, unknown>[]> {
    return (await this.scanAll()).filter((item) => String(item.pk).startsWith(prefix));
  }

  destroy(): void {
    this.client.destroy();
    this.raw.destroy();
  }
}
