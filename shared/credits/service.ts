/** Credits use cases: the account, self-service top-ups, admin grants and the ledger. */

import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { ulid } from 'ulid';
import { fingerprint } from '../auth/secrets.ts';
import type { AuditEntry } from '../domain/audit.ts';
import {
  type Account,
  type AccountLimits,
  type BalanceChange,
  type BalanceChangeResult,
  type LedgerEntry,
  type LedgerKind,
  utcDay,
} from '../domain/credits.ts';
import { ledgerCursor } from '../domain/cursors.ts';
import {
  ConflictError,
  ForbiddenError,
  IdempotencyKeyReusedError,
  NotFoundError,
  ValidationError,
} from '../domain/errors.ts';
import { isLocalHostName, isPublicAddress } from '../domain/network.ts';
import { WEBHOOK_SECRET_PREFIX } from '../domain/notifications.ts';
import type { TransactionPart } from '../domain/transactions.ts';
import type { Principal } from '../domain/users.ts';

/** The account writer: reads an account, changes its balance or its limits. */
export interface AccountPort {
  getAccount(userId: string): Promise<Account | undefined>;
  apply(
    change: BalanceChange,
    options?: { idempotencyTtlSeconds?: number; with?: TransactionPart[] },
  ): Promise<BalanceChangeResult>;
  setLimits(userId: string, limits: AccountLimits, extra?: Record<string, unknown>): Promise<Account>;
}

/** The ledger queries. */
export interface LedgerPort {
  listLedger(
    userId: string,
    options: { limit: number; before?: number | undefined; kind?: LedgerKind | undefined },
  ): Promise<{ items: LedgerEntry[]; nextBefore: number | null }>;
  allLedgerEntries(userId: string): Promise<LedgerEntry[]>;
}

export interface UserLookup {
  findById(userId: string): Promise<unknown>;
}

export interface CreditsAddedCounter {
  creditsAddedPart(day: string, credits: number): TransactionPart;
}

export interface AuditPort {
  entry(input: Omit<AuditEntry, 'id' | 'at'>): AuditEntry;
  part(entry: AuditEntry): TransactionPart;
}

export interface LimitsChange {
  dailySpendCap?: number | null | undefined;
  lowBalanceThreshold?: number | null | undefined;
  webhookUrl?: string | null | undefined;
}

/** Idempotency-Key records are kept at least this long (API.md: at least 24 hours). */
export const IDEMPOTENCY_TTL_SECONDS = 48 * 3600;

export interface LedgerPage {
  items: LedgerEntry[];
  nextCursor: string | null;
}

export class CreditsService {
  constructor(
    private readonly accounts: AccountPort,
    private readonly ledger: LedgerPort,
    private readonly users: UserLookup,
    private readonly counters: CreditsAddedCounter,
    private readonly audit: AuditPort,
    private readonly settings: { selfServiceTopUps: boolean; allowHttpWebhooksOnLocalhost: boolean },
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Changes the spend cap, the low-balance threshold or the webhook; a field left out stays as it
   * is, null clears it. A new webhook URL gets a new signing secret, shown in this answer only.
   */
  async setLimits(
    userId: string,
    change: LimitsChange,
  ): Promise<{ account: Account; webhookSecret?: string }> {
    if (change.webhookUrl) this.checkWebhookUrl(change.webhookUrl);
    const current = await this.account(userId);
    const limits: AccountLimits = {
      dailySpendCap: change.dailySpendCap === undefined ? current.limits.dailySpendCap : change.dailySpendCap,
      lowBalanceThreshold:
        change.lowBalanceThreshold === undefined
          ? current.limits.lowBalanceThreshold
          : change.lowBalanceThreshold,
      webhookUrl: change.webhookUrl === undefined ? current.limits.webhookUrl : change.webhookUrl,
    };
    const newWebhook = limits.webhookUrl !== null && limits.webhookUrl !== current.limits.webhookUrl;
    const webhookSecret = newWebhook
      ? `${WEBHOOK_SECRET_PREFIX}${randomBytes(24).toString('base64')}`
      : undefined;
    const account = await this.accounts.setLimits(userId, limits, webhookSecret ? { webhookSecret } : {});
    return { account, ...(webhookSecret ? { webhookSecret } : {}) };
  }

  async account(userId: string): Promise<Account> {
    const account = await this.accounts.getAccount(userId);
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
    const entry = this.audit.entry({
      actorId: admin.userId,
      action: 'credits.grant',
      target: { type: 'user', id: userId },
      details: { amount, reason },
    });
    return this.change(
      { userId, kind: 'grant', amount, reason, actorId: admin.userId },
      idempotencyKey ? `grant#${admin.userId}#${idempotencyKey}` : undefined,
      [this.audit.part(entry)],
    );
  }

  async transactions(
    userId: string,
    query: { limit: number; cursor?: string | undefined; kind?: LedgerKind | undefined },
  ): Promise<LedgerPage> {
    const before = query.cursor ? ledgerCursor.decode(query.cursor) : undefined;
    const page = await this.ledger.listLedger(userId, { limit: query.limit, before, kind: query.kind });
    return { items: page.items, nextCursor: page.nextBefore ? ledgerCursor.encode(page.nextBefore) : null };
  }

  /** Webhooks go out over HTTPS; plain HTTP is allowed only to this machine in local development. */
  private checkWebhookUrl(url: string): void {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    const local = isLocalHostName(host) || host === '127.0.0.1' || host === '::1';
    // Local development may point a webhook at a receiver on this machine, over plain HTTP.
    if (local && this.settings.allowHttpWebhooksOnLocalhost && parsed.protocol === 'http:') return;
    const literal = isIP(host) !== 0;
    if (parsed.protocol === 'https:' && !local && (!literal || isPublicAddress(host))) return;
    throw new ValidationError('The webhook URL must be an https:// URL of a public host.', [
      { path: '/webhookUrl', message: 'must use https and a public host name' },
    ]);
  }

  /** The whole ledger (optionally of one kind), newest first, for a CSV export. */
  async exportLedger(userId: string, kind: LedgerKind | undefined): Promise<LedgerEntry[]> {
    const entries = await this.ledger.allLedgerEntries(userId);
    return entries.filter((e) => !kind || e.kind === kind).reverse();
  }

  private async change(
    change: Omit<BalanceChange, 'idempotencyId' | 'requestHash'>,
    idempotencyId: string | undefined,
    extra: TransactionPart[] = [],
  ): Promise<{ entry: LedgerEntry; balance: number; replayed: boolean }> {
    try {
      const result = await this.accounts.apply(
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
        {
          with: [this.counters.creditsAddedPart(utcDay(this.now()), change.amount), ...extra],
          ...(idempotencyId ? { idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS } : {}),
        },
      );
      if (result.outcome !== 'applied') throw new Error('A credit can never be refused for lack of credits');
      return result;
    } catch (error) {
      if (error instanceof ConflictError && idempotencyId) throw new IdempotencyKeyReusedError();
      throw error;
    }
  }
}
