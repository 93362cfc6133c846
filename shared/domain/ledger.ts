/** The ledger: one entry per change of a balance, gapless, never deleted. */

/** The kinds API.md fixes; a signup bonus is a `grant` with its reason. */
export const ledgerKinds = ['top_up', 'grant', 'charge', 'refund'] as const;
export type LedgerKind = (typeof ledgerKinds)[number];

export interface LedgerEntry {
  id: string;
  userId: string;
  kind: LedgerKind;
  /** Signed: credits added are positive, charges negative. */
  amount: number;
  balanceAfter: number;
  /** Position in this account's ledger, 1 for the first entry; gapless. */
  sequence: number;
  predictionId?: string;
  batchId?: string;
  /** The model version a charge paid for. */
  modelId?: string;
  reason?: string;
  actorId?: string;
  createdAt: string;
}
