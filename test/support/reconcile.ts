/**
 * Reconciliation read straight from DynamoDB: the account item and every ledger item of a user,
 * checked with the domain's `reconcile` (balance = sum of the ledger, never below zero, a gapless
 * sequence, each `balanceAfter` the running sum). It uses its own client, not the service's code.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, expect } from 'vitest';
import {
  type Account,
  type LedgerEntry,
  type Reconciliation,
  reconcile,
} from '../../shared/domain/credits.ts';
import type { StackHandle } from './local-stack.ts';

export interface StoredLedger {
  account: Account | undefined;
  /** Oldest first, as stored (whatever attributes they carry). */
  entries: LedgerEntry[];
}

export interface Reconciler {
  /** The raw account and ledger items of a user. */
  read(userId: string): Promise<StoredLedger>;
  /** Reconciles a user's account against its ledger; throws if there is no account. */
  reconciliation(userId: string): Promise<Reconciliation>;
  /** Asserts that the user's account reconciles, and returns the reconciliation. */
  expectReconciled(userId: string): Promise<Reconciliation>;
  /** The test's own document client (for direct reads and for building stores). */
  client(): DynamoDBDocumentClient;
}

/** Call at the top level of a test file, after `useLocalStack()`. */
export function useReconciler(local: StackHandle): Reconciler {
  let documentClient: DynamoDBDocumentClient | undefined;
  const client = () => {
    documentClient ??= DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: local.stack.endpoint, region: local.stack.region }),
    );
    return documentClient;
  };
  afterAll(() => documentClient?.destroy());

  async function read(userId: string): Promise<StoredLedger> {
    const TableName = local.stack.resources.tableName;
    const pk = `USER#${userId}`;
    const { Item } = await client().send(
      new GetCommand({ TableName, Key: { pk, sk: 'ACCOUNT' }, ConsistentRead: true }),
    );
    const entries: LedgerEntry[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await client().send(
        new QueryCommand({
          TableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ledger)',
          ExpressionAttributeValues: { ':pk': pk, ':ledger': 'LEDGER#' },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      entries.push(...((page.Items ?? []) as LedgerEntry[]));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    const account: Account | undefined = Item
      ? {
          userId,
          balance: Item.balance as number,
          sequence: Item.sequence as number,
          updatedAt: Item.updatedAt as string,
        }
      : undefined;
    return { account, entries };
  }

  async function reconciliation(userId: string): Promise<Reconciliation> {
    const { account, entries } = await read(userId);
    if (!account) throw new Error(`There is no account item for user ${userId}`);
    return reconcile(account, entries);
  }

  async function expectReconciled(userId: string): Promise<Reconciliation> {
    const result = await reconciliation(userId);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.balance).toBeGreaterThanOrEqual(0);
    return result;
  }

  return { read, reconciliation, expectReconciled, client };
}
