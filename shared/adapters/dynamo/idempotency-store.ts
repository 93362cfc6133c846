/**
 * Idempotency records in DynamoDB: one item per (user, idempotency id) under the user
 * (`TXN#{id}`), whatever settled the id. The record goes in the same transaction as what it
 * records, under `attribute_not_exists`, so an id is settled once; a record with a TTL expires
 * through DynamoDB's TTL on `expiresAt`.
 */
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { ChangeAlreadySettledError, type IdempotencyRecord } from '../../domain/idempotency.ts';
import type { PredictionResponse } from '../../domain/predictions.ts';
import type { TransactionPart } from '../../domain/transactions.ts';
import type { IdempotencyPort } from '../../predictions/ports.ts';
import { keys } from './keys.ts';
import { ledgerEntryOf } from './ledger-store.ts';
import { part } from './transactions.ts';

const ID_PREFIX = 'TXN#';

/**
 * What a stored record is. Records written before the kind was stored say it by what they hold
 * (a chunk its rows charged, a prediction its response or its id).
 */
function kindOf(item: Record<string, unknown>, idempotencyId: string): IdempotencyRecord['kind'] {
  if (item.kind === 'balance-change' || item.kind === 'prediction' || item.kind === 'batch-chunk')
    return item.kind;
  if (item.rowsCharged !== undefined) return 'batch-chunk';
  if (item.response !== undefined || idempotencyId.startsWith('prediction#')) return 'prediction';
  return 'balance-change';
}

/** A record as stored; undefined for an item that is not one. */
export function idempotencyRecordOf(
  item: Record<string, unknown> | undefined,
): IdempotencyRecord | undefined {
  if (!item || typeof item.sk !== 'string' || !item.sk.startsWith(ID_PREFIX)) return undefined;
  const idempotencyId = item.sk.slice(ID_PREFIX.length);
  const base = {
    idempotencyId,
    requestHash: String(item.requestHash),
    expiresAt: item.expiresAt === undefined ? null : Number(item.expiresAt),
    entry: item.entry ? ledgerEntryOf(item.entry as Record<string, unknown>) : null,
    balance: item.balance === undefined ? null : Number(item.balance),
  };
  const kind = kindOf(item, idempotencyId);
  if (kind === 'prediction')
    return { ...base, kind, response: (item.response as PredictionResponse | undefined) ?? null };
  if (kind === 'batch-chunk') return { ...base, kind, rowsCharged: Number(item.rowsCharged ?? 0) };
  return { ...base, kind };
}

export class DynamoIdempotencyStore implements IdempotencyPort {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * The write of a record, for the transaction of what it records. When the id is settled
   * already, its condition fails with ChangeAlreadySettledError carrying the record that settled it.
   */
  part(userId: string, record: IdempotencyRecord): TransactionPart {
    return part(
      'idempotency',
      {
        Put: {
          TableName: this.tableName,
          Item: {
            ...keys.balanceChange(userId, record.idempotencyId),
            kind: record.kind,
            requestHash: record.requestHash,
            ...(record.entry ? { entry: record.entry } : {}),
            ...(record.balance === null ? {} : { balance: record.balance }),
            ...(record.kind === 'prediction' && record.response ? { response: record.response } : {}),
            ...(record.kind === 'batch-chunk' ? { rowsCharged: record.rowsCharged } : {}),
            ...(record.expiresAt === null ? {} : { expiresAt: record.expiresAt }),
          },
          // An id is settled once, whichever request gets there first.
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      (current) => new ChangeAlreadySettledError(record.idempotencyId, idempotencyRecordOf(current)),
    );
  }

  /** The record of an idempotency id, if it is settled (read consistently). */
  async get(userId: string, idempotencyId: string): Promise<IdempotencyRecord | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: keys.balanceChange(userId, idempotencyId),
        ConsistentRead: true,
      }),
    );
    return idempotencyRecordOf(Item);
  }
}
