/**
 * Idempotency records, called directly: what a retry under a settled id gets back (replay or
 * conflict), and how a record is stored and read back (records written before `kind` was stored
 * included).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  DynamoIdempotencyStore,
  idempotencyRecordOf,
} from '../../shared/adapters/dynamo/idempotency-store.ts';
import { IdempotencyConflictError } from '../../shared/domain/errors.ts';
import { expiryOf, type IdempotencyRecord, replayOrConflict } from '../../shared/domain/idempotency.ts';
import type { LedgerEntry } from '../../shared/domain/ledger.ts';
import type { PredictionResponse } from '../../shared/domain/predictions.ts';

const entry: LedgerEntry = {
  id: '01JENTRY',
  userId: 'u1',
  kind: 'charge',
  amount: -6,
  balanceAfter: 94,
  sequence: 7,
  predictionId: '01JPREDICTION',
  modelId: 'mdl_1',
  createdAt: '2026-03-15T00:00:00.000Z',
};
const response: PredictionResponse = {
  id: '01JPREDICTION',
  modelId: 'mdl_1',
  modelVersion: 1,
  outputs: { label: [1] },
  rows: 2,
  cost: 6,
  balance: 0,
  createdAt: '2026-03-15T00:00:00.000Z',
};

const base = { requestHash: 'h1', expiresAt: null };
const topUp: IdempotencyRecord = {
  ...base,
  kind: 'balance-change',
  idempotencyId: 'top-up#k',
  entry: { ...entry, kind: 'top_up', amount: 10 },
  balance: 110,
};
const charged: IdempotencyRecord = {
  ...base,
  kind: 'prediction',
  idempotencyId: 'prediction#k',
  entry,
  balance: 94,
  response,
};
const free: IdempotencyRecord = {
  ...base,
  kind: 'prediction',
  idempotencyId: 'prediction#free',
  entry: null,
  balance: 40,
  response: { ...response, cost: 0, balance: 40 },
};
const unpaidChunk: IdempotencyRecord = {
  ...base,
  kind: 'batch-chunk',
  idempotencyId: 'batch#b#chunk#3',
  entry: null,
  balance: null,
  rowsCharged: 0,
};
const paidChunk: IdempotencyRecord = { ...unpaidChunk, entry, balance: 94, rowsCharged: 2 };

function conflictOf(run: () => unknown): IdempotencyConflictError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(IdempotencyConflictError);
    return error as IdempotencyConflictError;
  }
  throw new Error('expected an IdempotencyConflictError, nothing was thrown');
}

describe('replayOrConflict', () => {
  it('replays the balance change an id applied, to the same request', () => {
    expect(replayOrConflict(topUp, { requestHash: 'h1', wants: 'change' })).toEqual({
      entry: topUp.entry,
      balance: 110,
    });
    expect(replayOrConflict(paidChunk, { requestHash: 'h1', wants: 'change' })).toEqual({
      entry,
      balance: 94,
    });
  });

  it('is a conflict for another request under the same id, whatever it wants', () => {
    for (const wants of ['change', 'prediction', 'batch-chunk'] as const) {
      const error = conflictOf(() => replayOrConflict(charged, { requestHash: 'h2', wants }));
      expect(error).toMatchObject({
        reason: 'different-request',
        idempotencyId: 'prediction#k',
        code: 'conflict',
      });
    }
  });

  it('is a conflict when a change is wanted but the id was settled without one', () => {
    for (const record of [free, unpaidChunk]) {
      const error = conflictOf(() => replayOrConflict(record, { requestHash: 'h1', wants: 'change' }));
      expect(error.reason).toBe('settled-without-change');
      expect(error.message).toBe(
        `The idempotency id ${record.idempotencyId} was already settled without a charge.`,
      );
    }
  });

  it('replays a prediction’s response with the balance after its charge', () => {
    expect(replayOrConflict(charged, { requestHash: 'h1', wants: 'prediction' })).toEqual({
      ...response,
      balance: 94,
    });
    expect(replayOrConflict(free, { requestHash: 'h1', wants: 'prediction' })).toEqual({
      ...response,
      cost: 0,
      balance: 40,
    });
  });

  it('cannot replay a response too large to keep', () => {
    const error = conflictOf(() =>
      replayOrConflict({ ...charged, response: null }, { requestHash: 'h1', wants: 'prediction' }),
    );
    expect(error.reason).toBe('response-not-kept');
    expect(error.message).toBe(
      'This Idempotency-Key was already used, and its response was too large to keep.',
    );
  });

  it('replays the rows a chunk paid for, paid or not', () => {
    expect(replayOrConflict(paidChunk, { requestHash: 'h1', wants: 'batch-chunk' })).toEqual({
      rowsCharged: 2,
    });
    expect(replayOrConflict(unpaidChunk, { requestHash: 'h1', wants: 'batch-chunk' })).toEqual({
      rowsCharged: 0,
    });
  });

  it('does not take one kind of record for another', () => {
    expect(conflictOf(() => replayOrConflict(topUp, { requestHash: 'h1', wants: 'prediction' })).reason).toBe(
      'different-request',
    );
    expect(
      conflictOf(() => replayOrConflict(charged, { requestHash: 'h1', wants: 'batch-chunk' })).reason,
    ).toBe('different-request');
  });
});

describe('expiryOf', () => {
  it('is the epoch second the TTL ends at, or null without a TTL', () => {
    const now = new Date('2026-03-15T00:00:00.900Z');
    expect(expiryOf(now, 60)).toBe(Date.parse('2026-03-15T00:01:00.000Z') / 1000);
    expect(expiryOf(now, undefined)).toBeNull();
  });
});

describe('idempotency records in DynamoDB', () => {
  const store = new DynamoIdempotencyStore({} as DynamoDBDocumentClient, 'table');
  const itemOf = (record: IdempotencyRecord) =>
    (store.part('u1', record).item as { Put: { Item: Record<string, unknown> } }).Put.Item;

  it.each([
    ['a top-up', topUp],
    ['a charged prediction', charged],
    ['a free prediction', free],
    ['a prediction whose response was not kept', { ...charged, response: null, expiresAt: 1_800_000_000 }],
    ['an unpaid chunk', unpaidChunk],
    ['a paid chunk', paidChunk],
  ])('reads back %s as written', (_label, record) => {
    expect(idempotencyRecordOf(itemOf(record))).toEqual(record);
  });

  it('stores under the user, once, with only the attributes the record has', () => {
    const part = store.part('u1', unpaidChunk);
    expect(part.tag).toBe('idempotency');
    expect(part.item).toMatchObject({
      Put: {
        ConditionExpression: 'attribute_not_exists(pk)',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    });
    expect(itemOf(unpaidChunk)).toEqual({
      pk: 'USER#u1',
      sk: 'TXN#batch#b#chunk#3',
      kind: 'batch-chunk',
      requestHash: 'h1',
      rowsCharged: 0,
    });
  });

  it('reads records written before the kind was stored', () => {
    const legacy = (item: Record<string, unknown>) => ({ pk: 'USER#u1', ...item });
    expect(
      idempotencyRecordOf(legacy({ sk: 'TXN#batch#b#chunk#3', requestHash: 'h1', rowsCharged: 0 })),
    ).toEqual(unpaidChunk);
    expect(
      idempotencyRecordOf(
        legacy({ sk: 'TXN#prediction#k', requestHash: 'h1', entry, balance: 94, response }),
      ),
    ).toEqual(charged);
    expect(
      idempotencyRecordOf(legacy({ sk: 'TXN#prediction#u', requestHash: 'unkeyed', entry, balance: 94 })),
    ).toMatchObject({ kind: 'prediction', response: null });
    expect(
      idempotencyRecordOf(
        legacy({ sk: 'TXN#top-up#k', requestHash: 'h1', entry: topUp.entry, balance: 110 }),
      ),
    ).toEqual(topUp);
  });

  it('is nothing for an item that is not a record', () => {
    expect(idempotencyRecordOf(undefined)).toBeUndefined();
    expect(idempotencyRecordOf({ pk: 'USER#u1', sk: 'ACCOUNT' })).toBeUndefined();
  });
});
