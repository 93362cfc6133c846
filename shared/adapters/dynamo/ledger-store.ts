/**
 * The ledger queries: entries are items under their account, one per sequence number (written only
 * by the account store, in the transaction of their change), read newest first a page at a time or
 * all at once.
 */
import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { LedgerEntry, LedgerKind } from '../../domain/ledger.ts';
import { keys } from './keys.ts';
import { queryAll } from './query.ts';

/** A ledger entry as stored (the item's own attributes, keys left out). */
export function ledgerEntryOf(item: Record<string, unknown>): LedgerEntry {
  return {
    id: String(item.id),
    userId: String(item.userId),
    kind: item.kind as LedgerKind,
    amount: Number(item.amount),
    balanceAfter: Number(item.balanceAfter),
    sequence: Number(item.sequence),
    ...(item.predictionId ? { predictionId: String(item.predictionId) } : {}),
    ...(item.batchId ? { batchId: String(item.batchId) } : {}),
    ...(item.modelId ? { modelId: String(item.modelId) } : {}),
    ...(item.reason ? { reason: String(item.reason) } : {}),
    ...(item.actorId ? { actorId: String(item.actorId) } : {}),
    createdAt: String(item.createdAt),
  };
}

export class DynamoLedgerStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Ledger entries newest first, after the given sequence number (exclusive). */
  async listLedger(
    userId: string,
    options: { limit: number; before?: number | undefined; kind?: LedgerKind | undefined },
  ): Promise<{ items: LedgerEntry[]; nextBefore: number | null }> {
    // One entry more than the page is read, so a cursor is given only when another page exists.
    const wanted = options.limit + 1;
    const items: LedgerEntry[] = [];
    let exclusiveStartKey: Record<string, unknown> | undefined = options.before
      ? keys.ledgerEntry(userId, options.before)
      : undefined;
    // A kind filter is applied after DynamoDB's limit, so keep reading until the page is full.
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: {
            ':pk': keys.account(userId).pk,
            ':prefix': keys.ledgerPrefix,
            ...(options.kind ? { ':kind': options.kind } : {}),
          },
          ...(options.kind ? { FilterExpression: 'kind = :kind' } : {}),
          ScanIndexForward: false,
          Limit: wanted - items.length + (options.kind ? 50 : 0),
          ExclusiveStartKey: exclusiveStartKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        if (items.length < wanted) items.push(ledgerEntryOf(item));
      }
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey && items.length < wanted);
    const more = items.length > options.limit;
    const pageItems = items.slice(0, options.limit);
    const last = pageItems.at(-1);
    return { items: pageItems, nextBefore: more && last ? last.sequence : null };
  }

  /** Every ledger entry of a user, oldest first (for reconciliation). */
  async allLedgerEntries(userId: string): Promise<LedgerEntry[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.account(userId).pk, ':prefix': keys.ledgerPrefix },
      ConsistentRead: true,
    });
    return items.map(ledgerEntryOf);
  }
}
