import type { AuditEntry } from '../domain/audit.ts';
import type { BalanceChange, BalanceChangeResult } from '../domain/credits.ts';
import type { IdempotencyRecord, RecordedOutcome } from '../domain/idempotency.ts';
import type { Prediction } from '../domain/predictions.ts';
import type { TransactionPart } from '../domain/transactions.ts';
import type { UsageDelta } from '../domain/usage.ts';

export type { TransactionPart };

export interface PredictionStore {
  /** The write that records a prediction, to go in the charge's transaction. */
  recordPart(prediction: Prediction, retentionSeconds: number): TransactionPart;
  get(userId: string, predictionId: string): Promise<Prediction | undefined>;
  findById(predictionId: string): Promise<Prediction | undefined>;
  list(
    userId: string,
    options: { limit: number; before?: string | undefined; model?: string | undefined },
  ): Promise<{ items: Prediction[]; last: string | null }>;
  /** Marks a prediction refunded, once (else PredictionAlreadyRefundedError); for the refund's transaction. */
  refundPart(prediction: Prediction, at: string): TransactionPart;
  /**
   * Holds a charge to the model version and price it was computed with; when either changed, its
   * condition fails with ModelPriceChangedError.
   */
  priceCheckPart(modelId: string, price: number): TransactionPart;
}

export interface ChargePort {
  /**
   * Applies a balance change with its idempotency record (keeping `outcome` besides the change);
   * a change whose id is settled already replays it (`replayed`, with the record).
   */
  apply(
    change: BalanceChange,
    options?: { with?: TransactionPart[]; idempotencyTtlSeconds?: number; outcome?: RecordedOutcome },
  ): Promise<BalanceChangeResult>;
  /** What this container last saw of a balance, if anything (no read). */
  knownBalance(userId: string): number | undefined;
  getAccount(userId: string): Promise<{ balance: number } | undefined>;
}

/** Idempotency records: what settled an id, written with what it records and read back typed. */
export interface IdempotencyPort {
  /** The record of an idempotency id, if it is settled. */
  get(userId: string, idempotencyId: string): Promise<IdempotencyRecord | undefined>;
  /**
   * The write of a record that settles an id without a balance change (a free prediction, an
   * unpaid chunk); an id settled already fails it with ChangeAlreadySettledError.
   */
  part(userId: string, record: IdempotencyRecord): TransactionPart;
}

export interface UsagePort {
  /** Counter updates for rows predicted, failed and charged, to go in the same transaction. */
  usageParts(delta: UsageDelta): TransactionPart[];
}

export interface TransactionPort {
  /** Writes all parts atomically; a failed condition throws the domain error of its part. */
  write(parts: TransactionPart[]): Promise<void>;
}

/** What happens around a charge: audit entries for admin actions, low-balance notifications. */
export interface FollowUps {
  audit: {
    entry(input: Omit<AuditEntry, 'id' | 'at'>): AuditEntry;
    part(entry: AuditEntry): TransactionPart;
  };
  /** Hands a low-balance notification to the webhook queue (never calls the webhook itself). */
  notifyLowBalance(userId: string, notificationId: string): Promise<void>;
}
