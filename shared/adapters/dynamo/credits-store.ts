/**
 * The credits store: the only code that writes an account item. Every balance change is one
 * DynamoDB transaction that moves the account from a known state (its ledger sequence) to the next,
 * puts the ledger entry at the next sequence number and puts an idempotency record, together with
 * whatever else the caller must record atomically (a prediction, a condition on a model's price).
 *
 * The condition on the sequence makes concurrent changes safe without locks: when another writer
 * got there first, the cancelled transaction returns the account as it now is and the change is
 * tried again from there. Because we know the balance before, the ledger records `balanceAfter`
 * exactly and the ledger is gapless. A container remembers the last state it saw, so a warm
 * charge costs one call; changes made in this process to one account are queued so they do not
 * race each other for nothing.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { ulid } from 'ulid';
import type {
  Account,
  BalanceChange,
  BalanceChangeResult,
  LedgerEntry,
  LedgerKind,
} from '../../domain/credits.ts';
import { ConflictError, NotFoundError, TransactionConditionFailedError } from '../../domain/errors.ts';
import { cancellationReasons } from './errors.ts';
import { epochSeconds, keys } from './keys.ts';

type TransactItem = NonNullable<
  ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']
>[number];

export interface ApplyOptions {
  /** Further writes and checks that must happen in the same transaction (built by adapters). */
  with?: unknown[];
  /** How long the idempotency record must outlive the change; forever when omitted. */
  idempotencyTtlSeconds?: number;
  /** Extra attributes stored with the idempotency record (e.g. a response to replay). */
  record?: Record<string, unknown>;
}

interface AccountState {
  balance: number;
  sequence: number;
}

const MAX_ATTEMPTS = 100;

function asPlain(item: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!item) return undefined;
  const looksMarshalled = Object.values(item).every(
    (v) =>
      v !== null &&
      typeof v === 'object' &&
      Object.keys(v as object).length === 1 &&
      /^(S|N|B|BOOL|NULL|M|L|SS|NS|BS)$/.test(Object.keys(v as object)[0] ?? ''),
  );
  return looksMarshalled ? unmarshall(item as never) : item;
}

function toEntry(item: Record<string, unknown>): LedgerEntry {
  return {
    id: String(item.id),
    userId: String(item.userId),
    kind: item.kind as LedgerKind,
    amount: Number(item.amount),
    balanceAfter: Number(item.balanceAfter),
    sequence: Number(item.sequence),
    ...(item.predictionId ? { predictionId: String(item.predictionId) } : {}),
    ...(item.batchId ? { batchId: String(item.batchId) } : {}),
    ...(item.reason ? { reason: String(item.reason) } : {}),
    ...(item.actorId ? { actorId: String(item.actorId) } : {}),
    createdAt: String(item.createdAt),
  };
}

export class CreditsStore {
  private readonly known = new Map<string, AccountState>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The items that open an account (with its signup bonus), for the registration transaction. */
  openAccountItems(userId: string, bonus: number, createdAt: string): TransactItem[] {
    const items: TransactItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: {
            ...keys.account(userId),
            userId,
            balance: bonus,
            sequence: bonus > 0 ? 1 : 0,
            updatedAt: createdAt,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
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
      items.push({
        Put: {
          TableName: this.tableName,
          Item: { ...keys.ledgerEntry(userId, 1), ...entry },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      });
    }
    return items;
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
    this.known.set(userId, { balance: Number(Item.balance), sequence: Number(Item.sequence) });
    return {
      userId,
      balance: Number(Item.balance),
      sequence: Number(Item.sequence),
      updatedAt: String(Item.updatedAt),
    };
  }

  /** Applies one balance change atomically, at most once per idempotency id. */
  apply(change: BalanceChange, options: ApplyOptions = {}): Promise<BalanceChangeResult> {
    if (!Number.isSafeInteger(change.amount) || change.amount === 0) {
      throw new Error(`A balance change must be a non-zero whole number of credits, got ${change.amount}`);
    }
    const previous = this.queues.get(change.userId) ?? Promise.resolve();
    const next = previous.then(
      () => this.applyNow(change, options),
      () => this.applyNow(change, options),
    );
    const settled = next.catch(() => undefined);
    this.queues.set(change.userId, settled);
    void settled.then(() => {
      if (this.queues.get(change.userId) === settled) this.queues.delete(change.userId);
    });
    return next;
  }

  private async freshState(userId: string): Promise<AccountState> {
    const account = await this.getAccount(userId);
    if (!account) throw new NotFoundError(`There is no account for user ${userId}.`);
    return { balance: account.balance, sequence: account.sequence };
  }

  private async applyNow(change: BalanceChange, options: ApplyOptions): Promise<BalanceChangeResult> {
    let state = this.known.get(change.userId);
    let fresh = false;
    if (!state) {
      state = await this.freshState(change.userId);
      fresh = true;
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const balanceAfter = state.balance + change.amount;
      if (balanceAfter < 0) {
        if (!fresh) {
          state = await this.freshState(change.userId);
          fresh = true;
          continue;
        }
        // Refused without writing; but a retry of a change that did go through must replay it.
        const replay = await this.replay(change);
        if (replay) return replay;
        return { outcome: 'insufficient-credits', balance: state.balance, cost: -change.amount };
      }
      const sequence = state.sequence + 1;
      const now = this.now();
      const entry: LedgerEntry = {
        id: ulid(now.getTime()),
        userId: change.userId,
        kind: change.kind,
        amount: change.amount,
        balanceAfter,
        sequence,
        ...(change.predictionId ? { predictionId: change.predictionId } : {}),
        ...(change.batchId ? { batchId: change.batchId } : {}),
        ...(change.reason ? { reason: change.reason } : {}),
        ...(change.actorId ? { actorId: change.actorId } : {}),
        createdAt: now.toISOString(),
      };
      try {
        await this.client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.tableName,
                  Key: keys.account(change.userId),
                  // The account moves from the state we computed from, and never below zero.
                  UpdateExpression: 'SET balance = :after, #sequence = :sequence, updatedAt = :now',
                  ConditionExpression: '#sequence = :previous AND balance = :before AND :after >= :zero',
                  ExpressionAttributeNames: { '#sequence': 'sequence' },
                  ExpressionAttributeValues: {
                    ':after': balanceAfter,
                    ':sequence': sequence,
                    ':previous': state.sequence,
                    ':before': state.balance,
                    ':zero': 0,
                    ':now': entry.createdAt,
                  },
                  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: { ...keys.ledgerEntry(change.userId, sequence), ...entry },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: {
                    ...keys.balanceChange(change.userId, change.idempotencyId),
                    requestHash: change.requestHash,
                    entry,
                    balance: balanceAfter,
                    ...options.record,
                    ...(options.idempotencyTtlSeconds
                      ? { expiresAt: epochSeconds(now) + options.idempotencyTtlSeconds }
                      : {}),
                  },
                  ConditionExpression: 'attribute_not_exists(pk)',
                },
              },
              ...((options.with ?? []) as TransactItem[]),
            ],
          }),
        );
        this.known.set(change.userId, { balance: balanceAfter, sequence });
        return { outcome: 'applied', entry, balance: balanceAfter, replayed: false };
      } catch (error) {
        const reasons = cancellationReasons(error);
        if (!reasons) throw error;
        const [account, , idempotency, ...extra] = reasons;
        if (idempotency?.Code === 'ConditionalCheckFailed') {
          const replay = await this.replay(change);
          if (replay) return replay;
        }
        const failedExtra = extra.findIndex((r) => r.Code === 'ConditionalCheckFailed');
        if (failedExtra >= 0)
          throw new TransactionConditionFailedError(failedExtra, asPlain(extra[failedExtra]?.Item));
        if (account?.Code === 'ConditionalCheckFailed') {
          const current = asPlain(account.Item);
          if (!current) throw new NotFoundError(`There is no account for user ${change.userId}.`);
          // Someone else changed the account first: start again from what it is now.
          state = { balance: Number(current.balance), sequence: Number(current.sequence) };
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
    const record = await this.getChangeRecord(change.userId, change.idempotencyId);
    if (!record) return undefined;
    if (record.requestHash !== change.requestHash) {
      throw new ConflictError(
        `The idempotency id ${change.idempotencyId} was already used for a different change.`,
      );
    }
    return {
      outcome: 'applied',
      entry: toEntry(record.entry as Record<string, unknown>),
      balance: Number(record.balance),
      replayed: true,
      stored: record,
    };
  }

  async getChangeRecord(userId: string, idempotencyId: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: keys.balanceChange(userId, idempotencyId),
        ConsistentRead: true,
      }),
    );
    return Item;
  }

  /** Ledger entries newest first, after the given sequence number (exclusive). */
  async listLedger(
    userId: string,
    options: { limit: number; before?: number | undefined; kind?: LedgerKind | undefined },
  ): Promise<{ items: LedgerEntry[]; nextBefore: number | null }> {
    const items: LedgerEntry[] = [];
    let exclusiveStartKey: Record<string, unknown> | undefined = options.before
      ? keys.ledgerEntry(userId, options.before)
      : undefined;
    // A kind filter is applied after DynamoDB's limit, so keep reading until the page is full.
    while (items.length < options.limit) {
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
          Limit: options.limit - items.length + (options.kind ? 50 : 0),
          ExclusiveStartKey: exclusiveStartKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        if (items.length < options.limit) items.push(toEntry(item));
      }
      exclusiveStartKey = page.LastEvaluatedKey;
      if (!exclusiveStartKey) break;
    }
    const last = items.at(-1);
    const more =
      items.length === options.limit &&
      last !== undefined &&
      (exclusiveStartKey !== undefined || last.sequence > 1);
    return { items, nextBefore: more && last ? last.sequence : null };
  }

  /** Every ledger entry of a user, oldest first (for reconciliation). */
  async allLedgerEntries(userId: string): Promise<LedgerEntry[]> {
    const entries: LedgerEntry[] = [];
    let exclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': keys.account(userId).pk, ':prefix': keys.ledgerPrefix },
          ExclusiveStartKey: exclusiveStartKey,
          ConsistentRead: true,
        }),
      );
      entries.push(...(page.Items ?? []).map(toEntry));
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey);
    return entries;
  }
}

/** @deprecated use TransactionConditionFailedError from the domain errors. */
export { TransactionConditionFailedError as ExtraConditionFailedError };
