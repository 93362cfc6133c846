/**
 * What the scheduled reconciliation reads: the accounts changed since a time (through the gsi2
 * index every balance change stamps, shard by shard), each account and its whole ledger, and when
 * the last run started.
 */
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ReconcilerPort } from '../../credits/reconciler.ts';
import type { Account } from '../../domain/credits.ts';
import type { LedgerEntry } from '../../domain/ledger.ts';
import { accountStateOf } from './account-store.ts';
import { keys } from './keys.ts';
import type { DynamoLedgerStore } from './ledger-store.ts';
import { queryAll } from './query.ts';

const STATE_KEY = { pk: 'RECONCILER', sk: 'STATE' };

export class DynamoReconcilerStore implements ReconcilerPort {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly ledger: DynamoLedgerStore,
  ) {}

  /** Users whose account changed at or after `since` (through the gsi2 index, shard by shard). */
  async accountsChangedSince(since: string): Promise<string[]> {
    const users = new Set<string>();
    for (let shard = 0; shard < keys.accountShards; shard++) {
      const items = await queryAll(this.client, {
        TableName: this.tableName,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk >= :since',
        ExpressionAttributeValues: { ':pk': `ACCOUNTS#${shard}`, ':since': since },
      });
      for (const item of items) users.add(String(item.userId));
    }
    return [...users];
  }

  async lastReconciliation(): Promise<string | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: STATE_KEY,
        ConsistentRead: true,
      }),
    );
    return Item?.lastRunAt as string | undefined;
  }

  async saveReconciliation(at: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: STATE_KEY,
        UpdateExpression: 'SET lastRunAt = :at',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }

  async getAccount(userId: string): Promise<Account | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.account(userId), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const { revision: _revision, ...account } = accountStateOf(userId, Item);
    return account;
  }

  allLedgerEntries(userId: string): Promise<LedgerEntry[]> {
    return this.ledger.allLedgerEntries(userId);
  }
}
