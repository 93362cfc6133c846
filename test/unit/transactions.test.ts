/**
 * Transactions of named parts, against a scripted client: a failed condition is reported as the
 * domain error of the part it belongs to, whatever the part's position, and a part without one is
 * named by its tag.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoIdempotencyStore } from '../../shared/adapters/dynamo/idempotency-store.ts';
import { DynamoPredictionStore } from '../../shared/adapters/dynamo/prediction-store.ts';
import { cancellation, DynamoTransactions, part } from '../../shared/adapters/dynamo/transactions.ts';
import { DynamoUsageStore } from '../../shared/adapters/dynamo/usage-store.ts';
import {
  ModelPriceChangedError,
  PredictionAlreadyRefundedError,
  TransactionConditionFailedError,
} from '../../shared/domain/errors.ts';
import { ChangeAlreadySettledError, type IdempotencyRecord } from '../../shared/domain/idempotency.ts';
import type { Prediction } from '../../shared/domain/predictions.ts';
import type { TransactionPart } from '../../shared/domain/transactions.ts';

type Reason = { Code: string; Item?: Record<string, unknown> };

function cancelled(reasons: Reason[]): TransactionCanceledException {
  return new TransactionCanceledException({
    message: `Transaction cancelled [${reasons.map((r) => r.Code).join(', ')}]`,
    $metadata: {},
    // A document client hands these on as DynamoDB gives them (plain values in tests read the same).
    CancellationReasons: reasons as never,
  });
}

/** A client that cancels every transaction with these reasons (or accepts it without any). */
function clientCancelling(reasons?: Reason[]) {
  const sent: TransactWriteCommand[] = [];
  const client = {
    send: async (command: TransactWriteCommand) => {
      sent.push(command);
      if (reasons) throw cancelled(reasons);
      return {};
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent };
}

const predictions = new DynamoPredictionStore({} as DynamoDBDocumentClient, 'table');
const usage = new DynamoUsageStore({} as DynamoDBDocumentClient, 'table');
const prediction: Prediction = {
  id: '01JPREDICTION',
  userId: 'u1',
  modelId: 'mdl_1',
  modelName: 'iris',
  modelVersion: 1,
  status: 'succeeded',
  rows: 1,
  cost: 2,
  latencyMs: 3,
  createdAt: '2026-03-15T00:00:00.000Z',
};
const usageParts = usage.usageParts({
  userId: 'u1',
  modelId: 'mdl_1',
  day: '2026-03-15',
  predictions: 1,
  failed: 0,
  credits: 2,
});

const none = { Code: 'None' };
const failed = { Code: 'ConditionalCheckFailed' };

async function errorOf(parts: TransactionPart[], reasons: Reason[]): Promise<unknown> {
  const { client } = clientCancelling(reasons);
  return new DynamoTransactions(client).write(parts).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('a transaction of named parts', () => {
  it('sends the parts’ items in order, as one TransactWriteItems', async () => {
    const { client, sent } = clientCancelling();
    const parts = [
      predictions.recordPart(prediction, 60),
      predictions.priceCheckPart('mdl_1', 2),
      ...usageParts,
    ];
    await new DynamoTransactions(client).write(parts);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(TransactWriteCommand);
    expect(sent[0]?.input.TransactItems).toEqual(parts.map((p) => p.item));
    expect(parts.map((p) => p.tag)).toEqual(['prediction', 'price-check', 'usage', 'usage', 'usage']);
  });

  it('reports a failed price check as ModelPriceChangedError, wherever the check sits', async () => {
    const check = predictions.priceCheckPart('mdl_1', 2);
    const first = await errorOf([check, ...usageParts], [failed, none, none, none]);
    const last = await errorOf([...usageParts, check], [none, none, none, failed]);
    for (const error of [first, last]) {
      expect(error).toBeInstanceOf(ModelPriceChangedError);
      expect(error).toMatchObject({ modelId: 'mdl_1', price: 2 });
    }
  });

  it('reports an idempotency record that exists already as ChangeAlreadySettledError, with that record', async () => {
    const record = (requestHash: string): IdempotencyRecord => ({
      kind: 'batch-chunk',
      idempotencyId: 'batch#b1#chunk#0',
      requestHash,
      expiresAt: null,
      entry: null,
      balance: null,
      rowsCharged: 3,
    });
    const idempotency = new DynamoIdempotencyStore({} as DynamoDBDocumentClient, 'table');
    const settle = idempotency.part('u1', record('mine'));
    const stored = (settle.item as { Put: { Item: Record<string, unknown> } }).Put.Item;
    const theirs = { ...stored, requestHash: 'theirs' };
    const error = await errorOf(
      [...usageParts, settle],
      [none, none, none, { ...failed, Item: marshall(theirs) }],
    );
    expect(error).toBeInstanceOf(ChangeAlreadySettledError);
    expect(error).toMatchObject({ idempotencyId: 'batch#b1#chunk#0', record: record('theirs') });
    // Without the item (a storage that does not return it), the record is read afterwards instead.
    const bare = await errorOf([settle], [failed]);
    expect(bare).toMatchObject({ idempotencyId: 'batch#b1#chunk#0', record: undefined });
  });

  it('reports a prediction refunded already as PredictionAlreadyRefundedError (a conflict)', async () => {
    const error = await errorOf([predictions.refundPart(prediction, prediction.createdAt)], [failed]);
    expect(error).toBeInstanceOf(PredictionAlreadyRefundedError);
    expect(error).toMatchObject({ code: 'conflict' });
  });

  it('names a failed part without a domain error of its own by its tag, with the item as it is', async () => {
    const record = predictions.recordPart(prediction, 60);
    const item = { pk: 'USER#u1', sk: `PRED#${prediction.id}`, cost: 2 };
    const error = await errorOf([record], [{ ...failed, Item: marshall(item) }]);
    expect(error).toBeInstanceOf(TransactionConditionFailedError);
    expect(error).toMatchObject({ tag: 'prediction', item });
  });

  it('passes on a cancellation with no failed condition (a conflict) unchanged', async () => {
    const error = await errorOf(usageParts, [{ Code: 'TransactionConflict' }, none, none]);
    expect(error).toBeInstanceOf(TransactionCanceledException);
  });
});

describe('cancellation', () => {
  it('pairs each failed condition with its part and tells a conflict apart', () => {
    const a = part('audit', { Put: { TableName: 't', Item: { pk: 'a', sk: 'a' } } });
    const b = part('usage', { Put: { TableName: 't', Item: { pk: 'b', sk: 'b' } } });
    const c = part('batch-progress', { Put: { TableName: 't', Item: { pk: 'c', sk: 'c' } } });
    const result = cancellation(cancelled([none, { ...failed, Item: { pk: 'b' } }, failed]), [a, b, c]);
    expect(result).toEqual({
      failed: [
        { part: b, current: { pk: 'b' } },
        { part: c, current: undefined },
      ],
      conflict: false,
    });
    expect(cancellation(cancelled([{ Code: 'TransactionConflict' }, none, none]), [a, b, c])).toEqual({
      failed: [],
      conflict: true,
    });
  });

  it('is undefined for any error that is not a cancelled transaction', () => {
    expect(cancellation(new Error('network'), [])).toBeUndefined();
  });
});
