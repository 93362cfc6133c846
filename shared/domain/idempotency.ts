/**
 * Idempotency records: what an idempotency id settled, kept so that a retry (or a concurrent copy)
 * of a request gets the first outcome instead of doing the work again. Shaped after Powertools'
 * `IdempotencyRecord` (key, payload hash, expiry, stored response), with one difference: a record
 * is written in the same transaction as what it records, so there is no "in progress" state. A
 * record exists exactly when its work happened.
 *
 * All kinds share one key per (user, id), so an id is settled once whichever way it was settled.
 */
import { IdempotencyConflictError } from './errors.ts';
import type { LedgerEntry } from './ledger.ts';
import type { PredictionResponse } from './predictions.ts';

/** What a record keeps besides the balance change, by the kind of request that settled the id. */
export type RecordedOutcome =
  /** A top-up, grant or refund: the change is all there is. */
  | { kind: 'balance-change' }
  /**
   * A prediction: the response it gave (null when too large to keep); a replay answers it with the
   * record's balance.
   */
  | { kind: 'prediction'; response: PredictionResponse | null }
  /** A chunk of a batch: how many of its rows were paid for. */
  | { kind: 'batch-chunk'; rowsCharged: number };

export type IdempotencyRecord = RecordedOutcome & {
  idempotencyId: string;
  /** The fingerprint of the request that settled it; a retry must repeat it (Powertools' payload hash). */
  requestHash: string;
  /** When the record may be deleted (epoch seconds, as DynamoDB's TTL wants); null: kept for good. */
  expiresAt: number | null;
  /** The ledger entry of the balance change it applied; null when it changed no balance. */
  entry: LedgerEntry | null;
  /** The balance after it (what a replay answers with); null when it was not recorded. */
  balance: number | null;
};

/** When a record kept `ttlSeconds` from `now` expires; null (kept for good) without a TTL. */
export function expiryOf(now: Date, ttlSeconds: number | undefined): number | null {
  return ttlSeconds ? Math.floor(now.getTime() / 1000) + ttlSeconds : null;
}

/** What a replay gives back, by what the request wants of the record. */
export interface Replays {
  /** The balance change the id applied. */
  change: { entry: LedgerEntry; balance: number };
  /** The response a prediction gave, with the balance after it. */
  prediction: PredictionResponse;
  /** How many rows of a batch chunk were paid for. */
  'batch-chunk': { rowsCharged: number };
}

/**
 * A request arrives under an idempotency id that is settled already. The same request (the same
 * fingerprint) gets what was recorded; another request, or one that wants what the record does not
 * hold, is a conflict (IdempotencyConflictError). Either way nothing is done again.
 */
export function replayOrConflict<W extends keyof Replays>(
  record: IdempotencyRecord,
  request: { requestHash: string; wants: W },
): Replays[W] {
  const conflict = (reason: IdempotencyConflictError['reason']) =>
    new IdempotencyConflictError(record.idempotencyId, reason);
  if (record.requestHash !== request.requestHash) throw conflict('different-request');
  const replays: { [K in keyof Replays]: () => Replays[K] } = {
    change: () => {
      if (!record.entry || record.balance === null) throw conflict('settled-without-change');
      return { entry: record.entry, balance: record.balance };
    },
    prediction: () => {
      if (record.kind !== 'prediction') throw conflict('different-request');
      if (!record.response) throw conflict('response-not-kept');
      return { ...record.response, balance: record.balance ?? record.response.balance };
    },
    'batch-chunk': () => {
      if (record.kind !== 'batch-chunk') throw conflict('different-request');
      return { rowsCharged: record.rowsCharged };
    },
  };
  return replays[request.wants]();
}

/**
 * A transaction wrote nothing because its idempotency id was settled already (by a retry or a
 * concurrent request). `record` is the record that settled it, when the storage returned it.
 */
export class ChangeAlreadySettledError extends Error {
  override name = 'ChangeAlreadySettledError';
  constructor(
    readonly idempotencyId: string,
    readonly record: IdempotencyRecord | undefined,
  ) {
    super(`The idempotency id ${idempotencyId} was already settled`);
  }
}
