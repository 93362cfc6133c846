/**
 * Transactions built from named parts. DynamoDB reports why a transaction was cancelled as a list
 * of reasons in the order of its items; this module is the one place that pairs the two, so
 * everything above it knows a failed condition by its part, and a part by its tag.
 */
import { type DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { TransactionConditionFailedError } from '../../domain/errors.ts';
import type { TransactionPart, TransactionPartTag } from '../../domain/transactions.ts';
import { cancellationReasons } from './errors.ts';

export type TransactItem = NonNullable<
  ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']
>[number];

/** A part as the DynamoDB adapters build it. */
export function part(
  tag: TransactionPartTag,
  item: TransactItem,
  conditionFailed?: TransactionPart['conditionFailed'],
): TransactionPart {
  return conditionFailed ? { tag, item, conditionFailed } : { tag, item };
}

export function transactItems(parts: readonly TransactionPart[]): TransactItem[] {
  return parts.map((p) => p.item as TransactItem);
}

/** A part whose condition failed, with the item as it is now when DynamoDB returned it. */
export interface FailedPart {
  part: TransactionPart;
  current: Record<string, unknown> | undefined;
}

export interface Cancellation {
  /** The parts whose conditions failed, in the order they were sent. */
  failed: FailedPart[];
  /** Another transaction held one of the items (DynamoDB cancels rather than waits). */
  conflict: boolean;
}

/** Why a transaction of these parts was cancelled; undefined when the error is not a cancellation. */
export function cancellation(error: unknown, parts: readonly TransactionPart[]): Cancellation | undefined {
  const reasons = cancellationReasons(error);
  if (!reasons) return undefined;
  const failed: FailedPart[] = [];
  parts.forEach((p, i) => {
    const reason = reasons[i];
    if (reason?.Code === 'ConditionalCheckFailed') failed.push({ part: p, current: asPlain(reason.Item) });
  });
  return { failed, conflict: reasons.some((r) => r.Code === 'TransactionConflict') };
}

/** The domain error of a part whose condition failed. */
export function conditionError({ part: p, current }: FailedPart): Error {
  return p.conditionFailed?.(current) ?? new TransactionConditionFailedError(p.tag, current);
}

/** Writes parts built by the adapters (records, counters, markers) all together or not at all. */
export class DynamoTransactions {
  constructor(private readonly client: DynamoDBDocumentClient) {}

  /** A failed condition throws the domain error of the (first) part it belongs to. */
  async write(parts: TransactionPart[]): Promise<void> {
    if (parts.length === 0) return;
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: transactItems(parts) }));
    } catch (error) {
      const failed = cancellation(error, parts)?.failed[0];
      if (failed) throw conditionError(failed);
      throw error;
    }
  }
}

/**
 * The item a cancellation reason carries, as plain values. The document client leaves these in
 * DynamoDB's attribute-value form; accept either.
 */
function asPlain(item: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!item) return undefined;
  const looksMarshalled = Object.values(item).every(
    (v) =>
      v !== null &&
      typeof v === 'object' &&
      Object.keys(v as object).length === 1 &&
      /^(S|N|B|BOOL|NULL|M|L|SS|NS|BS)$/.test(Object.keys(v as object)[0] ?? ''),
  );
  return looksMarshalled ? unmarshall(item as never) : item;
}
