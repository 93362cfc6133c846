/** Credits use cases: the account, self-service top-ups, admin grants and the ledger. */
import { ulid } from 'ulid';
import { fingerprint } from '../auth/secrets.ts';
import {
  type Account,
  type BalanceChange,
  type BalanceChangeResult,
  type LedgerEntry,
  type LedgerKind,
  type Reconciliation,
  reconcile,
} from '../domain/credits.ts';
import {
  ConflictError,
  ForbiddenError,
  IdempotencyKeyReusedError,
  NotFoundError,
  ValidationError,
} from '../domain/errors.ts';
import type { Principal } from '../domain/users.ts';

export interface CreditsPort {
  getAccount(userId: string): Promise<Account | undefined>;
  apply(change: BalanceChange, options?: { idempotencyTtlSeconds?: number }): Promise<BalanceChangeResult>;
  listLedger(
    userId: string,
    options: { limit: number; before?: number | undefined; kind?: LedgerKind | undefined },
  ): Promise<{ items: LedgerEntry[]; nextBefore: number | null }>;
  allLedgerEntries(userId: string): Promise<LedgerEntry[]>;
}

export interface UserLookup {
  findById(userId: string): Promise<unknown>;
}

/** Idempotency-Key records are kept at least this long (API.md: at least 24 hours). */
export const IDEMPOTENCY_TTL_SECONDS = 48 * 3600;

export interface LedgerPage {
  items: LedgerEntry[];
  nextCursor: string | null;
}

export function encodeLedgerCursor(before: number): string {
  return Buffer.from(JSON.stringify({ before })).toString('base64url');
}

export function decodeLedgerCursor(cursor: string): number {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { before?: unknown };
    if (typeof parsed.before === 'number' && Number.isSafeInteger(parsed.before) && parsed.before > 0)
      return parsed.before;
  } catch {
    // fall through to the validation error
  }
  throw new ValidationError('The cursor is not valid; use the nextCursor of a previous page.', [
    { path: 'query.cursor', message: 'is not a cursor this API issued' },
  ]);
}

export class CreditsService {
  constructor(
    private readonly credits: CreditsPort,
    private readonly users: UserLookup,
    private readonly settings: { selfServiceTopUps: boolean },
  ) {}

  async account(userId: string): Promise<Account> {
    const account = await this.credits.getAccount(userId);
    if (!account) throw new NotFoundError('This account does not exist.');
    return account;
  }

  async topUp(principal: Principal, amount: number, idempotencyKey: string | undefined) {
    if (!this.settings.selfServiceTopUps) {
      throw new ForbiddenError(
        'Self-service top-ups are turned off on this service; ask an admin for a grant.',
      );
    }
    return this.change(
      { userId: principal.userId, kind: 'top_up', amount, actorId: principal.userId },
      idempotencyKey ? `top-up#${idempotencyKey}` : undefined,
    );
  }

  async grant(
    admin: Principal,
    userId: string,
    amount: number,
    reason: string,
    idempotencyKey: string | undefined,
  ) {
    if (!(await this.users.findById(userId))) throw new NotFoundError(`There is no user ${userId}.`);
    return this.change(
      { userId, kind: 'grant', amount, reason, actorId: admin.userId },
      idempotencyKey ? `grant#${admin.userId}#${idempotencyKey}` : undefined,
    );
  }

  async transactions(
    userId: string,
    query: { limit: number; cursor?: string | undefined; kind?: LedgerKind | undefined },
  ): Promise<LedgerPage> {
    const before = query.cursor ? decodeLedgerCursor(query.cursor) : undefined;
    const page = await this.credits.listLedger(userId, { limit: query.limit, before, kind: query.kind });
    return { items: page.items, nextCursor: page.nextBefore ? encodeLedgerCursor(page.nextBefore) : null };
  }

  async reconcile(userId: string): Promise<Reconciliation> {
    const account = await this.account(userId);
    return reconcile(account, await this.credits.allLedgerEntries(userId));
  }

  private async change(
    change: Omit<BalanceChange, 'idempotencyId' | 'requestHash'>,
    idempotencyId: string | undefined,
  ): Promise<{ entry: LedgerEntry; balance: number; replayed: boolean }> {
    try {
      const result = await this.credits.apply(
        {
          ...change,
          idempotencyId: idempotencyId ?? ulid(),
          requestHash: fingerprint({
            userId: change.userId,
            kind: change.kind,
            amount: change.amount,
            reason: change.reason ?? null,
          }),
        },
        idempotencyId ? { idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS } : {},
      );
      if (result.outcome !== 'applied') throw new Error('A credit can never be refused for lack of credits');
      return result;
    } catch (error) {
      if (error instanceof ConflictError && idempotencyId) throw new IdempotencyKeyReusedError();
      throw error;
    }
  }
}
