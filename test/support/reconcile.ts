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

/** What reconciliation looks at of the account item. */
export type StoredAccount = Pick<Account, 'userId' | 'balance' | 'sequence' | 'updatedAt'>;

export interface StoredLedger {
  account: StoredAccount | undefined;
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

/** Where the items live: a test file's stack, or any table on the emulator (read at each call). */
export type LedgerTarget = StackHandle | (() => { endpoint: string; region: string; tableName: string });

function resolve(target: LedgerTarget) {
  if (typeof target === 'function') return target();
  return {
    endpoint: target.stack.endpoints.dynamodb,
    region: target.stack.region,
    tableName: target.stack.resources.tableName,
  };
}

/** Call at the top level of a test file (after `useLocalStack()` when given its handle). */
export function useReconciler(target: LedgerTarget): Reconciler {
  let documentClient: DynamoDBDocumentClient | undefined;
  const client = () => {
    const { endpoint, region } = resolve(target);
    documentClient ??= DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint,
        region,
        // The emulator takes any credentials; the SDK only needs some to sign with.
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
    );
    return documentClient;
  };
  afterAll(() => documentClient?.destroy());

  async function read(userId: string): Promise<StoredLedger> {
    const TableName = resolve(target).tableName;
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
    const account: StoredAccount | undefined = Item
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
    // reconcile() reads only these fields of the account.
    return reconcile(account as Account, entries);
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
