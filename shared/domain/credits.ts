/**
 * Credits: the rules of money. Amounts are integer credits; every change to a balance is a ledger
 * entry written in the same atomic write; a balance never goes below zero.
 */
import { z } from 'zod';

import type { IdempotencyRecord } from './idempotency.ts';
import type { LedgerEntry, LedgerKind } from './ledger.ts';

export { type LedgerEntry, type LedgerKind, ledgerKinds } from './ledger.ts';

export interface AccountLimits {
  /** Most credits that may be charged per UTC day; null for no cap. */
  dailySpendCap: number | null;
  /** A balance falling below this records a notification (and calls the webhook); null for none. */
  lowBalanceThreshold: number | null;
  webhookUrl: string | null;
}

export const noLimits: AccountLimits = { dailySpendCap: null, lowBalanceThreshold: null, webhookUrl: null };

export interface Account {
  userId: string;
  balance: number;
  /** The sequence number of the latest ledger entry (0 for none). */
  sequence: number;
  limits: AccountLimits;
  /** Credits charged on `spentDay` (UTC), for the daily cap. */
  spentToday: number;
  spentDay: string | null;
  updatedAt: string;
}

export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** What a charge may take today under a daily cap (Infinity without one). */
export function capRemaining(
  account: Pick<Account, 'limits' | 'spentToday' | 'spentDay'>,
  today: string,
): number {
  const cap = account.limits.dailySpendCap;
  if (cap === null) return Number.POSITIVE_INFINITY;
  const spent = account.spentDay === today ? account.spentToday : 0;
  return Math.max(0, cap - spent);
}

/** True when a change takes the balance from at or above the threshold to below it. */
export function crossesLowBalance(threshold: number | null, before: number, after: number): boolean {
  return threshold !== null && before >= threshold && after < threshold;
}

/** Largest self-service top-up (API.md) and largest single admin grant. */
export const MAX_TOP_UP = 1_000_000;
export const MAX_GRANT = 100_000_000;

/** A whole, positive number of credits within a limit (and exactly representable in JSON). */
export function creditAmount(max: number) {
  const limit = Math.min(max, Number.MAX_SAFE_INTEGER);
  // Range first, so 2^53 + 2 says "at most ..." rather than "not a whole number"; one error per field.
  return z
    .number({ message: 'must be a number of credits' })
    .max(limit, { message: `must be at most ${limit}`, abort: true })
    .positive({ message: 'must be at least 1', abort: true })
    .int({ message: 'must be a whole number of credits' });
}

/** What a balance change asks for; the store applies it atomically or not at all. */
export interface BalanceChange {
  userId: string;
  kind: LedgerKind;
  /** Signed amount; a debit is negative and is refused if it would take the balance below zero. */
  amount: number;
  /**
   * Makes the change idempotent: the same id applies once; again with the same parameters it
   * returns the first result; with different parameters it is a conflict.
   */
  idempotencyId: string;
  /** A fingerprint of the parameters that the same idempotency id must repeat. */
  requestHash: string;
  predictionId?: string;
  batchId?: string;
  modelId?: string;
  reason?: string;
  actorId?: string;
}

export type BalanceChangeResult =
  | {
      outcome: 'applied';
      entry: LedgerEntry;
      balance: number;
      /** True when this idempotency id had already been applied and this is its first result. */
      replayed: boolean;
      /** The idempotency record a replay comes from (with what the caller kept, e.g. a response). */
      record?: IdempotencyRecord;
      /** Set when this change took the balance below the low-balance threshold. */
      lowBalance?: { notificationId: string; threshold: number; deliver: boolean };
    }
  | { outcome: 'insufficient-credits'; balance: number; cost: number }
  | { outcome: 'spend-cap-reached'; balance: number; cost: number; cap: number; spentToday: number };

/** A change refused without writing anything. */
export type BalanceChangeRefusal = Extract<
  BalanceChangeResult,
  { outcome: 'insufficient-credits' | 'spend-cap-reached' }
>;

/** An account as a change is computed from: `revision` is the state the write must still find. */
export interface AccountState extends Account {
  revision: number;
}

export type BalanceChangePlan =
  | {
      decision: 'apply';
      /** The ledger entry the change writes, at the next sequence number. */
      entry: LedgerEntry;
      /** The account after the change (the next revision). */
      account: AccountState;
      /** Set when the change takes the balance below the low-balance threshold. */
      lowBalance: { threshold: number; deliver: boolean } | null;
    }
  | { decision: 'refuse'; refusal: BalanceChangeRefusal };

/**
 * Decides a balance change against the account as it is, the way a wallet decides a withdrawal:
 * a debit that would take the balance below zero is refused, so is a charge past what today's
 * spend cap (UTC) leaves; otherwise the change is the ledger entry at the next sequence number,
 * recording the exact balance after it, and the account it leaves, with what it spent today. A
 * change that takes the balance from at or above the low-balance threshold to below it says so.
 * Nothing here reads or writes: the store writes what was decided, conditioned on `account`.
 */
export function planBalanceChange(
  account: AccountState,
  change: BalanceChange,
  at: { now: Date; entryId: string },
): BalanceChangePlan {
  const today = utcDay(at.now);
  const balanceAfter = account.balance + change.amount;
  const charge = change.kind === 'charge' ? -change.amount : 0;
  const spentBefore = account.spentDay === today ? account.spentToday : 0;
  if (balanceAfter < 0) {
    return {
      decision: 'refuse',
      refusal: { outcome: 'insufficient-credits', balance: account.balance, cost: -change.amount },
    };
  }
  if (charge > 0 && charge > capRemaining(account, today)) {
    return {
      decision: 'refuse',
      refusal: {
        outcome: 'spend-cap-reached',
        balance: account.balance,
        cost: charge,
        cap: account.limits.dailySpendCap ?? 0,
        spentToday: spentBefore,
      },
    };
  }
  const sequence = account.sequence + 1;
  const createdAt = at.now.toISOString();
  const entry: LedgerEntry = {
    id: at.entryId,
    userId: change.userId,
    kind: change.kind,
    amount: change.amount,
    balanceAfter,
    sequence,
    ...(change.predictionId ? { predictionId: change.predictionId } : {}),
    ...(change.batchId ? { batchId: change.batchId } : {}),
    ...(change.modelId ? { modelId: change.modelId } : {}),
    ...(change.reason ? { reason: change.reason } : {}),
    ...(change.actorId ? { actorId: change.actorId } : {}),
    createdAt,
  };
  const threshold = account.limits.lowBalanceThreshold;
  return {
    decision: 'apply',
    entry,
    account: {
      ...account,
      balance: balanceAfter,
      sequence,
      revision: account.revision + 1,
      spentToday: spentBefore + charge,
      spentDay: today,
      updatedAt: createdAt,
    },
    lowBalance:
      threshold !== null && crossesLowBalance(threshold, account.balance, balanceAfter)
        ? { threshold, deliver: account.limits.webhookUrl !== null }
        : null,
  };
}

/** Reconciliation: the invariant every test and the scheduled check verify. */
export interface Reconciliation {
  userId: string;
  balance: number;
  ledgerSum: number;
  entries: number;
  ok: boolean;
  problems: string[];
}

export function reconcile(
  account: Account,
  entries: Pick<LedgerEntry, 'amount' | 'sequence' | 'balanceAfter'>[],
): Reconciliation {
  const problems: string[] = [];
  const ordered = [...entries].sort((a, b) => a.sequence - b.sequence);
  let running = 0;
  ordered.forEach((entry, index) => {
    if (entry.sequence !== index + 1)
      problems.push(`ledger sequence has a gap or repeat at ${entry.sequence}`);
    running += entry.amount;
    if (entry.balanceAfter !== running)
      problems.push(`entry ${entry.sequence} says balance ${entry.balanceAfter}, sum is ${running}`);
    if (running < 0) problems.push(`balance went below zero at entry ${entry.sequence}`);
  });
  if (running !== account.balance)
    problems.push(`balance ${account.balance} differs from ledger sum ${running}`);
  if (account.sequence !== ordered.length)
    problems.push(`account sequence ${account.sequence} but ${ordered.length} entries`);
  if (account.balance < 0) problems.push('balance is negative');
  return {
    userId: account.userId,
    balance: account.balance,
    ledgerSum: running,
    entries: ordered.length,
    ok: problems.length === 0,
    problems,
  };
}
