/**
 * The credits store: the only code that writes an account item. Every balance change is one
 * DynamoDB transaction that moves the account from a known state (its revision) to the next, puts
 * the ledger entry at the next sequence number and puts an idempotency record, together with
 * whatever else the caller must record atomically (a prediction, usage counters, a condition on a
 * model's price).
 *
 * The condition on the revision makes concurrent changes safe without locks: when another writer
 * got there first, the cancelled transaction returns the account as it now is and the change is
 * tried again from there. Because we know the balance before, the ledger records `balanceAfter`
 * exactly, the ledger is gapless, and the daily spend cap and the low-balance threshold are
 * checked against the very state the write replaces. A container remembers the last state it
 * saw, so a warm charge costs one call; changes this process makes to one account are queued so
 * they do not race each other for nothing.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import {
  type Account,
  type AccountLimits,
  type BalanceChange,
  type BalanceChangeResult,
  capRemaining,
  crossesLowBalance,
  type LedgerEntry,
  type LedgerKind,
  noLimits,
  utcDay,
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
import { ledgerEntryOf } from './ledger-store.ts';
import { queryAll } from './query.ts';
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

interface AccountState extends Account {
  revision: number;
}

/**
 * A safety net, not a limit on contention: an attempt lost to another writer means the account
 * moved on. Several containers writing one account steadily can make a change lose well over 100
 * times in a row (the credits race tests saw 83 with 4 writers), and failing it then would be a 500.
 */
const MAX_ATTEMPTS = 1000;

function toState(userId: string, item: Record<string, unknown>): AccountState {
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

export class CreditsStore {
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
    const state = toState(userId, Item);
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
          const updated = toState(userId, Attributes ?? {});
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
    const state = toState(userId, Item);
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
      const today = utcDay(now);
      const balanceAfter = state.balance + change.amount;
      const charge = change.kind === 'charge' ? -change.amount : 0;
      const overCap = charge > 0 && charge > capRemaining(state, today);
      if (balanceAfter < 0 || overCap) {
        if (!fresh) {
          state = await this.freshState(change.userId);
          fresh = true;
          continue;
        }
        // Refused without writing; but a retry of a change that did go through must replay it.
        const replay = await this.replay(change);
        if (replay) return replay;
        if (balanceAfter < 0)
          return { outcome: 'insufficient-credits', balance: state.balance, cost: -change.amount };
        return {
          outcome: 'spend-cap-reached',
          balance: state.balance,
          cost: charge,
          cap: state.limits.dailySpendCap ?? 0,
          spentToday: state.spentDay === today ? state.spentToday : 0,
        };
      }
      const sequence = state.sequence + 1;
      const spentToday = (state.spentDay === today ? state.spentToday : 0) + charge;
      const entry: LedgerEntry = {
        id: ulid(now.getTime()),
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
        createdAt: now.toISOString(),
      };
      const threshold = state.limits.lowBalanceThreshold;
      const notificationId = crossesLowBalance(threshold, state.balance, balanceAfter)
        ? ulid(now.getTime())
        : undefined;
      const accountPart = part('account', {
        Update: {
          TableName: this.tableName,
          Key: keys.account(change.userId),
          // The account moves from the exact state the checks above were made against, and
          // never below zero.
          UpdateExpression:
            'SET balance = :after, #sequence = :sequence, revision = :nextRevision, spentToday = :spentToday, spentDay = :today, updatedAt = :now, gsi2pk = :changedShard, gsi2sk = :changedAt',
          ConditionExpression: 'revision = :revision AND balance = :before AND :after >= :zero',
          ExpressionAttributeNames: { '#sequence': 'sequence' },
          ExpressionAttributeValues: {
            ':after': balanceAfter,
            ':sequence': sequence,
            ':revision': state.revision,
            ':nextRevision': state.revision + 1,
            ':before': state.balance,
            ':spentToday': spentToday,
            ':today': today,
            ':zero': 0,
            ':now': entry.createdAt,
            // Indexes the account by when it last changed, for the scheduled reconciliation.
            ...keys.accountChanged(change.userId, entry.createdAt, ':changedShard', ':changedAt'),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      });
      const idempotencyPart = this.idempotency.part(change.userId, {
        ...(options.outcome ?? { kind: 'balance-change' }),
        idempotencyId: change.idempotencyId,
        requestHash: change.requestHash,
        expiresAt: expiryOf(now, options.idempotencyTtlSeconds),
        entry,
        balance: balanceAfter,
      });
      const callerParts = options.with ?? [];
      const parts = [
        accountPart,
        part('ledger-entry', {
          Put: {
            TableName: this.tableName,
            Item: { ...keys.ledgerEntry(change.userId, sequence), ...entry },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        }),
        idempotencyPart,
        ...callerParts,
      ];
      if (notificationId && threshold !== null) {
        parts.push(
          part('low-balance-notification', {
            Put: {
              TableName: this.tableName,
              Item: {
                ...keys.notification(change.userId, notificationId),
                id: notificationId,
                userId: change.userId,
                type: 'low_balance',
                balance: balanceAfter,
                threshold,
                delivery: state.limits.webhookUrl ? 'pending' : 'none',
                createdAt: entry.createdAt,
              },
            },
          }),
        );
      }
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: transactItems(parts) }));
        this.known.set(change.userId, {
          ...state,
          balance: balanceAfter,
          sequence,
          revision: state.revision + 1,
          spentToday,
          spentDay: today,
          updatedAt: entry.createdAt,
        });
        return {
          outcome: 'applied',
          entry,
          balance: balanceAfter,
          replayed: false,
          ...(notificationId && threshold !== null
            ? { lowBalance: { notificationId, threshold, deliver: state.limits.webhookUrl !== null } }
            : {}),
        };
      } catch (error) {
        const cancelled = cancellation(error, parts);
        if (!cancelled) throw error;
        const failed = (p: TransactionPart) => cancelled.failed.find((f) => f.part === p);
        const settled = failed(idempotencyPart);
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
          await new Promise((resolve) =>
            setTimeout(resolve, 5 + Math.random() * 20 * Math.min(attempt + 1, 10)),
          );
          state = await this.freshState(change.userId);
          fresh = true;
          continue;
        }
        const account = failed(accountPart);
        if (account) {
          if (!account.current) throw new NotFoundError(`There is no account for user ${change.userId}.`);
          // Someone else changed the account first: start again from what it is now.
          state = toState(change.userId, account.current);
          this.known.set(change.userId, state);
          fresh = true;
          continue;
        }
        throw error;
      }
    }
    throw new Error(`Balance change ${change.idempotencyId} kept conflicting after ${MAX_ATTEMPTS} attempts`);
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

  /** Ledger entries newest first, after the given sequence number (exclusive). */
  async listLedger(
    userId: string,
    options: { limit: number; before?: number | undefined; kind?: LedgerKind | undefined },
  ): Promise<{ items: LedgerEntry[]; nextBefore: number | null }> {
    // One entry more than the page is read, so a cursor is given only when another page exists.
    const wanted = options.limit + 1;
    const items: LedgerEntry[] = [];
    let exclusiveStartKey: Record<string, unknown> | undefined = options.before
      ? keys.ledgerEntry(userId, options.before)
      : undefined;
    // A kind filter is applied after DynamoDB's limit, so keep reading until the page is full.
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: {
            ':pk': keys.account(userId).pk,
            ':prefix': keys.ledgerPrefix,
            ...(options.kind ? { ':kind': options.kind } : {}),
          },
          ...(options.kind ? { FilterExpression: 'kind = :kind' } : {}),
          ScanIndexForward: false,
          Limit: wanted - items.length + (options.kind ? 50 : 0),
          ExclusiveStartKey: exclusiveStartKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        if (items.length < wanted) items.push(ledgerEntryOf(item));
      }
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey && items.length < wanted);
    const more = items.length > options.limit;
    const pageItems = items.slice(0, options.limit);
    const last = pageItems.at(-1);
    return { items: pageItems, nextBefore: more && last ? last.sequence : null };
  }

  /** Users whose account changed at or after `since` (through the gsi2 index, shard by shard). */
  async accountsChangedSince(since: string): Promise<string[]> {
    const users = new Set<string>();
    for (let shard = 0; shard < keys.accountShards; shard++) {
      const items = await queryAll(this.client, {
        TableName: this.tableName,
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :pk AND gsi2sk >= :since',
        ExpressionAttributeValues: { ':pk': `ACCOUNTS#${shard}`, ':since': since },
      });
      for (const item of items) users.add(String(item.userId));
    }
    return [...users];
  }

  async lastReconciliation(): Promise<string | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: 'RECONCILER', sk: 'STATE' },
        ConsistentRead: true,
      }),
    );
    return Item?.lastRunAt as string | undefined;
  }

  async saveReconciliation(at: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: 'RECONCILER', sk: 'STATE' },
        UpdateExpression: 'SET lastRunAt = :at',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }

  /** Every ledger entry of a user, oldest first (for reconciliation). */
  async allLedgerEntries(userId: string): Promise<LedgerEntry[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': keys.account(userId).pk, ':prefix': keys.ledgerPrefix },
      ConsistentRead: true,
    });
    return items.map(ledgerEntryOf);
  }
}
