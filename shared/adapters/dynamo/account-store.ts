/**
 * The account store: the only code that writes an account item. Every balance change is one
 * DynamoDB transaction that moves the account from a known state (its revision) to the next, puts
 * the ledger entry at the next sequence number and puts an idempotency record, together with
 * whatever else the caller must record atomically (a prediction, usage counters, a condition on a
 * model's price). What a change does is decided by the domain's pure `planBalanceChange`; this
 * store reads the state it decides on and writes what it decided, under a condition on that state.
 *
 * The condition on the revision makes concurrent changes safe without locks: when another writer
 * got there first, the cancelled transaction returns the account as it now is and the change is
 * planned again from there. Because we know the balance before, the ledger records `balanceAfter`
 * exactly, the ledger is gapless, and the daily spend cap and the low-balance threshold are
 * checked against the very state the write replaces. A container remembers the last state it
 * saw, so a warm charge costs one call; changes this process makes to one account are queued so
 * they do not race each other for nothing.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import {
  type Account,
  type AccountLimits,
  type AccountState,
  type BalanceChange,
  type BalanceChangePlan,
  type BalanceChangeResult,
  type LedgerEntry,
  noLimits,
  planBalanceChange,
} from '../../domain/credits.ts';
import { NotFoundError } from '../../domain/errors.ts';
import {
  expiryOf,
  type IdempotencyRecord,
  type RecordedOutcome,
  replayOrConflict,
} from '../../domain/idempotency.ts';
import type { TransactionPart } from '../../domain/transactions.ts';
import { DynamoIdempotencyStore, idempotencyRecordOf } from './idempotency-store.ts';
import { keys } from './keys.ts';
import { cancellation, conditionError, part, transactItems } from './transactions.ts';

export interface ApplyOptions {
  /**
   * Further writes and checks that must happen in the same transaction (built by adapters); the
   * first of them whose condition fails throws its domain error.
   */
  with?: TransactionPart[];
  /** How long the idempotency record must outlive the change; forever when omitted. */
  idempotencyTtlSeconds?: number;
  /** What the idempotency record keeps besides the change (e.g. a response to replay). */
  outcome?: RecordedOutcome;
}

/**
 * A safety net, not a limit on contention: an attempt lost to another writer means the account
 * moved on. Several containers writing one account steadily can make a change lose well over 100
 * times in a row (the credits race tests saw 83 with 4 writers), and failing it then would be a 500.
 */
const MAX_ATTEMPTS = 1000;

/**
 * "Full jitter" backoff (a random wait up to an exponentially growing cap, as AWS's architecture
 * blog recommends for contended writes): 0-10 ms after the first loss, capped at 160 ms.
 */
function backOff(attempt: number): Promise<void> {
  const cap = Math.min(160, 10 * 2 ** Math.min(attempt, 4));
  return new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
}

/** An account item as the state changes are planned from. */
export function accountStateOf(userId: string, item: Record<string, unknown>): AccountState {
  const limits = (item.limits ?? {}) as Partial<AccountLimits>;
  return {
    userId,
    balance: Number(item.balance),
    sequence: Number(item.sequence),
    revision: Number(item.revision ?? 0),
    limits: {
      dailySpendCap: limits.dailySpendCap ?? null,
      lowBalanceThreshold: limits.lowBalanceThreshold ?? null,
      webhookUrl: limits.webhookUrl ?? null,
    },
    spentToday: Number(item.spentToday ?? 0),
    spentDay: (item.spentDay as string | undefined) ?? null,
    updatedAt: String(item.updatedAt),
  };
}

export class DynamoAccountStore {
  private readonly known = new Map<string, AccountState>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly idempotency: DynamoIdempotencyStore;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.idempotency = new DynamoIdempotencyStore(client, tableName);
  }

  /** The parts that open an account (with its signup bonus), for the registration transaction. */
  openAccountParts(userId: string, bonus: number, createdAt: string): TransactionPart[] {
    const parts = [
      part('account', {
        Put: {
          TableName: this.tableName,
          Item: {
            ...keys.account(userId),
            userId,
            balance: bonus,
            sequence: bonus > 0 ? 1 : 0,
            revision: 0,
            limits: noLimits,
            spentToday: 0,
            updatedAt: createdAt,
            // Indexed as changed, so the reconciler checks new accounts (and their bonus) too.
            ...keys.accountChanged(userId, createdAt, 'gsi2pk', 'gsi2sk'),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      }),
    ];
    if (bonus > 0) {
      const entry: LedgerEntry = {
        id: ulid(),
        userId,
        kind: 'grant',
        amount: bonus,
        balanceAfter: bonus,
        sequence: 1,
        reason: 'signup bonus',
        createdAt,
      };
      parts.push(
        part('ledger-entry', {
          Put: {
            TableName: this.tableName,
            Item: { ...keys.ledgerEntry(userId, 1), ...entry },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        }),
      );
    }
    return parts;
  }

  /** What this container last saw of a balance; no read. */
  knownBalance(userId: string): number | undefined {
    return this.known.get(userId)?.balance;
  }

  async getAccount(userId: string): Promise<Account | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.account(userId), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const state = accountStateOf(userId, Item);
    this.known.set(userId, state);
    const { revision: _revision, ...account } = state;
    return account;
  }

  /** Sets the account's limits; a change the write replaces is retried from the current state. */
  async setLimits(
    userId: string,
    limits: AccountLimits,
    extra: Record<string, unknown> = {},
  ): Promise<Account> {
    return this.serialised(userId, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const state = await this.freshState(userId);
        try {
          const { Attributes } = await this.client.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: keys.account(userId),
              UpdateExpression: `SET limits = :limits, revision = :next, updatedAt = :now${Object.keys(extra)
                .map((k) => `, ${k} = :${k}`)
                .join('')}`,
              ConditionExpression: 'revision = :revision',
              ExpressionAttributeValues: {
                ':limits': limits,
                ':revision': state.revision,
                ':next': state.revision + 1,
                ':now': this.now().toISOString(),
                ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`:${k}`, v])),
              },
              ReturnValues: 'ALL_NEW',
            }),
          );
          const updated = accountStateOf(userId, Attributes ?? {});
          this.known.set(userId, updated);
          const { revision: _revision, ...account } = updated;
          return account;
        } catch (error) {
          if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
        }
      }
      throw new Error(`Limits of ${userId} kept conflicting`);
    });
  }

  /** A raw attribute of the account item that is not part of the Account (e.g. a webhook secret). */
  async accountAttribute(userId: string, name: string): Promise<unknown> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: keys.account(userId),
        ProjectionExpression: '#n',
        ExpressionAttributeNames: { '#n': name },
      }),
    );
    return Item?.[name];
  }

  /** Applies one balance change atomically, at most once per idempotency id. */
  apply(change: BalanceChange, options: ApplyOptions = {}): Promise<BalanceChangeResult> {
    if (!Number.isSafeInteger(change.amount) || change.amount === 0) {
      throw new Error(`A balance change must be a non-zero whole number of credits, got ${change.amount}`);
    }
    return this.serialised(change.userId, () => this.applyNow(change, options));
  }

  private serialised<T>(userId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(userId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(userId, settled);
    void settled.then(() => {
      if (this.queues.get(userId) === settled) this.queues.delete(userId);
    });
    return next;
  }

  private async freshState(userId: string): Promise<AccountState> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: keys.account(userId), ConsistentRead: true }),
    );
    if (!Item) throw new NotFoundError(`There is no account for user ${userId}.`);
    const state = accountStateOf(userId, Item);
    this.known.set(userId, state);
    return state;
  }

  private async applyNow(change: BalanceChange, options: ApplyOptions): Promise<BalanceChangeResult> {
    let state = this.known.get(change.userId);
    let fresh = false;
    if (!state) {
      state = await this.freshState(change.userId);
      fresh = true;
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.now();
      const plan = planBalanceChange(state, change, { now, entryId: ulid(now.getTime()) });
      if (plan.decision === 'refuse') {
        // A refusal decided on what this container last saw is checked against the account as it is.
        if (!fresh) {
          state = await this.freshState(change.userId);
          fresh = true;
          continue;
        }
        // Refused without writing; but a retry of a change that did go through must replay it.
        return (await this.replay(change)) ?? plan.refusal;
      }
      const notificationId = plan.lowBalance ? ulid(now.getTime()) : undefined;
      const { parts, account, idempotency, callerParts } = this.changeParts(
        state,
        change,
        plan,
        options,
        notificationId,
      );
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: transactItems(parts) }));
        this.known.set(change.userId, plan.account);
        return {
          outcome: 'applied',
          entry: plan.entry,
          balance: plan.account.balance,
          replayed: false,
          ...(notificationId && plan.lowBalance
            ? { lowBalance: { notificationId, ...plan.lowBalance } }
            : {}),
        };
      } catch (error) {
        const cancelled = cancellation(error, parts);
        if (!cancelled) throw error;
        const failed = (p: TransactionPart) => cancelled.failed.find((f) => f.part === p);
        const settled = failed(idempotency);
        if (settled) {
          // A retry (or a concurrent copy) of this change got there first: answer its result, from
          // the record DynamoDB returned with the failed condition (or read, if it did not).
          const replay = settled.current
            ? this.replayed(change, idempotencyRecordOf(settled.current))
            : await this.replay(change);
          if (replay) return replay;
        }
        const failedCallerPart = cancelled.failed.find((f) => callerParts.includes(f.part));
        if (failedCallerPart) throw conditionError(failedCallerPart);
        if (cancelled.conflict) {
          // Another transaction held one of the items (DynamoDB cancels rather than waits): back off
          // a little and try again from the account as it is now.
          await backOff(attempt);
          state = await this.freshState(change.userId);
          fresh = true;
          continue;
        }
        const moved = failed(account);
        if (moved) {
          if (!moved.current) throw new NotFoundError(`There is no account for user ${change.userId}.`);
          // Someone else changed the account first: start again from what it is now. Several
          // containers losing to each other at once would retry in lockstep and lose again, so the
          // loser waits a random while first (more after each loss).
          state = accountStateOf(change.userId, moved.current);
          this.known.set(change.userId, state);
          fresh = true;
          await backOff(attempt);
          continue;
        }
        throw error;
      }
    }
    throw new Error(`Balance change ${change.idempotencyId} kept conflicting after ${MAX_ATTEMPTS} attempts`);
  }

  /** The transaction that writes a planned change, conditioned on the state it was planned from. */
  private changeParts(
    before: AccountState,
    change: BalanceChange,
    plan: Extract<BalanceChangePlan, { decision: 'apply' }>,
    options: ApplyOptions,
    notificationId: string | undefined,
  ) {
    const { entry, account: after } = plan;
    const account = part('account', {
      Update: {
        TableName: this.tableName,
        Key: keys.account(change.userId),
        // The account moves from the exact state the plan was made from, and never below zero.
        UpdateExpression:
          'SET balance = :after, #sequence = :sequence, revision = :nextRevision, spentToday = :spentToday, spentDay = :today, updatedAt = :now, gsi2pk = :changedShard, gsi2sk = :changedAt',
        ConditionExpression: 'revision = :revision AND balance = :before AND :after >= :zero',
        ExpressionAttributeNames: { '#sequence': 'sequence' },
        ExpressionAttributeValues: {
          ':after': after.balance,
          ':sequence': after.sequence,
          ':revision': before.revision,
          ':nextRevision': after.revision,
          ':before': before.balance,
          ':spentToday': after.spentToday,
          ':today': after.spentDay,
          ':zero': 0,
          ':now': after.updatedAt,
          // Indexes the account by when it last changed, for the scheduled reconciliation.
          ...keys.accountChanged(change.userId, entry.createdAt, ':changedShard', ':changedAt'),
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    });
    const idempotency = this.idempotency.part(change.userId, {
      ...(options.outcome ?? { kind: 'balance-change' }),
      idempotencyId: change.idempotencyId,
      requestHash: change.requestHash,
      expiresAt: expiryOf(new Date(entry.createdAt), options.idempotencyTtlSeconds),
      entry,
      balance: after.balance,
    });
    const callerParts = options.with ?? [];
    const parts = [
      account,
      part('ledger-entry', {
        Put: {
          TableName: this.tableName,
          Item: { ...keys.ledgerEntry(change.userId, entry.sequence), ...entry },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      }),
      idempotency,
      ...callerParts,
    ];
    if (notificationId && plan.lowBalance) {
      parts.push(
        part('low-balance-notification', {
          Put: {
            TableName: this.tableName,
            Item: {
              ...keys.notification(change.userId, notificationId),
              id: notificationId,
              userId: change.userId,
              type: 'low_balance',
              balance: after.balance,
              threshold: plan.lowBalance.threshold,
              delivery: plan.lowBalance.deliver ? 'pending' : 'none',
              createdAt: entry.createdAt,
            },
          },
        }),
      );
    }
    return { parts, account, idempotency, callerParts };
  }

  /** The recorded result of an idempotency id, if one exists; a conflict if its parameters differ. */
  private async replay(change: BalanceChange): Promise<BalanceChangeResult | undefined> {
    return this.replayed(change, await this.idempotency.get(change.userId, change.idempotencyId));
  }

  private replayed(
    change: BalanceChange,
    record: IdempotencyRecord | undefined,
  ): BalanceChangeResult | undefined {
    if (!record) return undefined;
    const { entry, balance } = replayOrConflict(record, { requestHash: change.requestHash, wants: 'change' });
    return { outcome: 'applied', entry, balance, replayed: true, record };
  }
}
