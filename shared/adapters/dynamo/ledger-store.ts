/** Ledger entries in DynamoDB: one item per entry under its account, by sequence number. */
import type { LedgerEntry, LedgerKind } from '../../domain/ledger.ts';

/** A ledger entry as stored (the item's own attributes, keys left out). */
export function ledgerEntryOf(item: Record<string, unknown>): LedgerEntry {
  return {
    id: String(item.id),
    userId: String(item.userId),
    kind: item.kind as LedgerKind,
    amount: Number(item.amount),
    balanceAfter: Number(item.balanceAfter),
    sequence: Number(item.sequence),
    ...(item.predictionId ? { predictionId: String(item.predictionId) } : {}),
    ...(item.batchId ? { batchId: String(item.batchId) } : {}),
    ...(item.modelId ? { modelId: String(item.modelId) } : {}),
    ...(item.reason ? { reason: String(item.reason) } : {}),
    ...(item.actorId ? { actorId: String(item.actorId) } : {}),
    createdAt: String(item.createdAt),
  };
}
