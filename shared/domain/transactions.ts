/**
 * Parts of one atomic storage transaction. An adapter builds each part (a write or a check) and
 * names it with a tag; use cases pass parts along without looking inside. When a part's condition
 * fails, the adapter that sent the transaction throws that part's domain error: what failed is
 * known by name, never by the part's position in the transaction.
 */

export type TransactionPartTag =
  /** The account item moving from the state a balance change was computed from. */
  | 'account'
  | 'ledger-entry'
  /** The record that settles an idempotency id once (a balance change, a free prediction, a chunk). */
  | 'idempotency'
  | 'low-balance-notification'
  /** A prediction's record (written once). */
  | 'prediction'
  /** The model version a charge was priced with is still active at that price. */
  | 'price-check'
  /** A prediction is marked refunded, once. */
  | 'prediction-refund'
  | 'usage'
  | 'credits-added'
  | 'users-counter'
  | 'batch-progress'
  | 'audit'
  /** A sign-in email is unique. */
  | 'email'
  | 'user-profile';

export interface TransactionPart {
  readonly tag: TransactionPartTag;
  /** The adapter's own item; only the adapter that sends the transaction reads it. */
  readonly item: unknown;
  /**
   * The domain error a failed condition of this part means, given the item as it is now (when the
   * storage returned it). A part without one that fails is a `TransactionConditionFailedError`.
   */
  readonly conditionFailed?: (current: Record<string, unknown> | undefined) => Error;
}
