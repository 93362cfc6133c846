/**
 * Concurrent balance changes hitting DynamoDB at once: several independent credits stores (as
 * separate Lambda containers would have, each with its own client and its own per-account queue)
 * spend one balance together. No credit may be spent twice, none lost, the balance never below zero.
 *
 * Each race runs on a fresh table with the service table's primary key on the shared emulator: moto
 * deep-copies the whole table on every TransactWriteItems (about 20 ms a transaction at 50 items,
 * 300 ms at 1,000; with a stream, every stream record the table has produced is copied too), and a
 * race makes hundreds of transactions, so the service's own table would make it crawl. Accounts are
 * opened with the same items registration writes.
 */
import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { DynamoAccountStore } from '../../shared/adapters/dynamo/account-store.ts';
import type { BalanceChange, BalanceChangeResult } from '../../shared/domain/credits.ts';
import { useReconciler } from '../support/reconcile.ts';

const endpoint = inject('awsEndpoints').dynamodb;
const region = 'us-east-1';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let tableName = '';
const ledger = useReconciler(() => ({ endpoint, region, tableName }));

const clients: DynamoDBDocumentClient[] = [];
const admin = new DynamoDBClient({ endpoint, region, credentials });
afterAll(() => {
  for (const client of clients) client.destroy();
  admin.destroy();
});

const tables: string[] = [];
afterEach(async () => {
  for (const table of tables.splice(0)) await admin.send(new DeleteTableCommand({ TableName: table }));
});

/** A fresh table with the service table's primary key; returns its name and makes it current. */
async function freshTable(): Promise<string> {
  tableName = `race-${randomBytes(4).toString('hex')}`;
  await admin.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
    }),
  );
  tables.push(tableName);
  return tableName;
}

/** One credits store per simulated container, each with a client (and connections) of its own. */
function containers(count: number): DynamoAccountStore[] {
  return Array.from({ length: count }, () => {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint, region, credentials }), {
      marshallOptions: { removeUndefinedValues: true },
    });
    clients.push(client);
    return new DynamoAccountStore(client, tableName);
  });
}

/** Opens an account with the items registration writes (with a signup grant unless 0). */
async function openAccount(store: DynamoAccountStore, bonus: number): Promise<string> {
  const userId = `user-${randomBytes(6).toString('hex')}`;
  await DynamoDBDocumentClient.from(admin).send(
    new TransactWriteCommand({
      TransactItems: store
        .openAccountParts(userId, bonus, new Date().toISOString())
        .map((p) => p.item) as never,
    }),
  );
  return userId;
}

const charge = (userId: string, idempotencyId: string): BalanceChange => ({
  userId,
  kind: 'charge',
  amount: -1,
  idempotencyId,
  requestHash: 'x',
});

function split(results: BalanceChangeResult[]) {
  const applied = results.flatMap((r) => (r.outcome === 'applied' ? [r] : []));
  const refused = results.flatMap((r) => (r.outcome === 'insufficient-credits' ? [r] : []));
  return { applied, refused };
}

/**
 * Simulated containers per race. Every lost race costs a transaction, and moto takes ~25 ms for one:
 * a round of 200 charges takes ~9 s with 4 containers (~380 transactions), ~17-22 s with 8 (~700).
 */
const CONTAINERS = 4;

const pick = (stores: DynamoAccountStore[], i: number) => stores[i % stores.length] as DynamoAccountStore;

describe('concurrent charges against one balance', () => {
  it('200 charges of 1 against 100 credits from 4 containers: exactly 100 apply, 5 rounds in a row', async () => {
    const ROUNDS = 5;
    const timings: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // A fresh table each round (see the top of the file). Round 1 spends a signup grant of 100;
      // later rounds open the account empty and top it up to exactly 100 through one container.
      await freshTable();
      const stores = containers(CONTAINERS);
      const userId = await openAccount(pick(stores, 0), round === 1 ? 100 : 0);
      if (round > 1) {
        const refill = await pick(stores, round).apply({
          userId,
          kind: 'top_up',
          amount: 100,
          idempotencyId: 'refill',
          requestHash: 'refill',
        });
        expect(refill).toMatchObject({ outcome: 'applied', balance: 100 });
      }

      const startedAt = performance.now();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => pick(stores, i).apply(charge(userId, `race-${i}`))),
      );
      timings.push(performance.now() - startedAt);

      const { applied, refused } = split(results);
      expect(applied, `round ${round}`).toHaveLength(100);
      expect(refused, `round ${round}`).toHaveLength(100);
      expect(applied.every((r) => !r.replayed)).toBe(true);
      // Each applied charge took the balance one step down: every value 99..0 exactly once.
      expect(applied.map((r) => r.entry.balanceAfter).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 100 }, (_, i) => i),
      );
      expect(new Set(applied.map((r) => r.entry.id)).size).toBe(100);
      expect(refused.every((r) => r.balance === 0 && r.cost === 1)).toBe(true);

      const result = await ledger.expectReconciled(userId);
      expect(result.balance).toBe(0);
      expect(result.entries).toBe(101);
      const { entries } = await ledger.read(userId);
      expect(entries.filter((e) => e.kind === 'charge' && e.amount === -1)).toHaveLength(100);
    }
    console.log(
      `race rounds (200 charges, ${CONTAINERS} containers): ${timings.map((t) => t.toFixed(0)).join(', ')} ms`,
    );
  }, 240_000);

  it('charges and top-ups interleaved from 4 containers conserve every credit', async () => {
    await freshTable();
    const stores = containers(CONTAINERS);
    // Half the scale of the brief's 20 top-ups of 5 and 200 charges against 100 (nearly every change
    // here succeeds, so each costs about as many transactions as there are containers).
    const START = 50;
    const TOP_UPS = 10;
    const TOP_UP = 5;
    const CHARGES = 100;
    const userId = await openAccount(pick(stores, 0), START);
    const changes: BalanceChange[] = [];
    for (let i = 0; i < CHARGES; i++) {
      changes.push(charge(userId, `charge-${i}`));
      if (i % (CHARGES / TOP_UPS) === 0) {
        changes.push({
          userId,
          kind: 'top_up',
          amount: TOP_UP,
          idempotencyId: `top-up-${i}`,
          requestHash: 't',
        });
      }
    }
    expect(changes.filter((c) => c.kind === 'top_up')).toHaveLength(TOP_UPS);

    const startedAt = performance.now();
    const results = await Promise.all(
      changes.map((change, i) =>
        pick(stores, i)
          .apply(change)
          .then((result) => ({ change, result })),
      ),
    );
    console.log(
      `mixed race (${changes.length} changes, ${CONTAINERS} containers): ${(performance.now() - startedAt).toFixed(0)} ms`,
    );

    const topUps = results.filter(({ change }) => change.kind === 'top_up').map(({ result }) => result);
    const charges = results.filter(({ change }) => change.kind === 'charge').map(({ result }) => result);
    // A credit is never refused.
    expect(topUps.every((r) => r.outcome === 'applied' && !r.replayed)).toBe(true);
    const { applied, refused } = split(charges);
    expect(applied.length + refused.length).toBe(CHARGES);
    // A charge is refused only when the balance really was 0 at that moment.
    expect(refused.every((r) => r.balance === 0 && r.cost === 1)).toBe(true);

    const result = await ledger.expectReconciled(userId);
    // Conservation: what came in is what was spent plus what is left.
    expect(applied.length + result.balance).toBe(START + TOP_UPS * TOP_UP);
    expect(result.entries).toBe(1 + TOP_UPS + applied.length);
    // There were credits for every charge, so each refusal left exactly one credit behind.
    expect(START + TOP_UPS * TOP_UP).toBe(CHARGES);
    expect(result.balance).toBe(refused.length);

    const { entries } = await ledger.read(userId);
    expect(entries.filter((e) => e.kind === 'top_up').map((e) => e.amount)).toEqual(
      Array(TOP_UPS).fill(TOP_UP),
    );
    expect(entries.filter((e) => e.kind === 'charge')).toHaveLength(applied.length);
  }, 90_000);
});
