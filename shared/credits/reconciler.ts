/**
 * The scheduled reconciliation: for every account changed since the last run, balance = sum of the
 * ledger and balance >= 0. Mismatches are reported (a metric with an alarm in AWS); nothing is
 * "fixed" automatically, since a mismatch means a bug to investigate.
 */
import type { Account, LedgerEntry, Reconciliation } from '../domain/credits.ts';
import { reconcile } from '../domain/credits.ts';

export interface ReconcilerPort {
  accountsChangedSince(since: string): Promise<string[]>;
  getAccount(userId: string): Promise<Account | undefined>;
  allLedgerEntries(userId: string): Promise<LedgerEntry[]>;
  lastReconciliation(): Promise<string | undefined>;
  saveReconciliation(at: string): Promise<void>;
}

/** Re-checks a little before the last run, so a change committed during that run is not missed. */
const OVERLAP_MS = 5 * 60_000;

export async function reconcileChangedAccounts(
  port: ReconcilerPort,
  now: () => Date = () => new Date(),
): Promise<{ since: string; checked: number; mismatches: Reconciliation[] }> {
  const startedAt = now();
  const last = await port.lastReconciliation();
  const since = last ? new Date(Date.parse(last) - OVERLAP_MS).toISOString() : '1970-01-01T00:00:00.000Z';
  const userIds = await port.accountsChangedSince(since);
  const mismatches: Reconciliation[] = [];
  for (const userId of userIds) {
    const account = await port.getAccount(userId);
    if (!account) continue;
    const result = reconcile(account, await port.allLedgerEntries(userId));
    if (!result.ok) mismatches.push(result);
  }
  await port.saveReconciliation(startedAt.toISOString());
  return { since, checked: userIds.length, mismatches };
}
