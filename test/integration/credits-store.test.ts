/**
 * The credits store against the emulator: idempotency under concurrency from separate containers,
 * atomicity when a transaction fails halfway, refusals without writes, and walking the ledger over
 * HTTP while new entries arrive. Every test ends by reconciling the account against the ledger read
 * straight from DynamoDB. (A file of its own: each transaction on the service table costs more the
 * more the table has seen, so the HTTP tests in credits.test.ts and these do not share one.)
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoAccountStore } from '../../shared/adapters/dynamo/account-store.ts';
import { DynamoIdempotencyStore } from '../../shared/adapters/dynamo/idempotency-store.ts';
import { DynamoPredictionStore } from '../../shared/adapters/dynamo/prediction-store.ts';
import { DynamoTransactions } from '../../shared/adapters/dynamo/transactions.ts';
import { ConflictError, ModelPriceChangedError } from '../../shared/domain/errors.ts';
import { ChangeAlreadySettledError, type IdempotencyRecord } from '../../shared/domain/idempotency.ts';
import { type SignedInUser, signUp } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const local = useLocalStack();
const ledger = useReconciler(local);

const clients: DynamoDBDocumentClient[] = [];
afterAll(() => {
  for (const client of clients) client.destroy();
});

function newClient(): DynamoDBDocumentClient {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: local.stack.endpoints.dynamodb, region: local.stack.region }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  clients.push(client);
  return client;
}

const idempotencyStore = () => new DynamoIdempotencyStore(newClient(), local.stack.resources.tableName);

/** A store of its own, as another Lambda container would have. */
function newStore(): DynamoAccountStore {
  return new DynamoAccountStore(newClient(), local.stack.resources.tableName);
}

/** Balance and ledger as stored, to show that a refused change wrote nothing. */
async function snapshot(userId: string) {
  const { account, entries } = await ledger.read(userId);
  return { balance: account?.balance, sequence: account?.sequence, entries: entries.length };
}

describe('GET /v1/account/transactions over a ledger that keeps growing', () => {
  it('walks the whole ledger while new entries arrive, missing and repeating nothing', async () => {
    const walker = await signUp(local.url, 'walker');
    const store = newStore();
    // 1 signup bonus + 59 top-ups = 60 entries.
    for (let i = 1; i <= 59; i++) {
      const result = await store.apply({
        userId: walker.id,
        kind: 'top_up',
        amount: i,
        idempotencyId: `seed-${i}`,
        requestHash: 'seed',
      });
      expect(result.outcome).toBe('applied');
    }
    const existing = (await ledger.read(walker.id)).entries.map((e) => e.id);
    expect(existing).toHaveLength(60);

    const seen: any[] = [];
    const added: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const path: string = `/v1/account/transactions?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      // After the first page, a new entry is written while each page is read.
      const [page, topUp] = await Promise.all([
        walker.api.get(path),
        pages > 0 ? walker.api.post('/v1/account/top-ups', { amount: 1 }) : undefined,
      ]);
      if (topUp) {
        expect(topUp.status).toBe(201);
        added.push(topUp.body.transaction.id);
      }
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(7);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    expect(cursor).toBeNull();
    expect(pages).toBeGreaterThanOrEqual(9);

    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(existing));
    // Entries written after the walk began are newer than its first page, so none shows up in it.
    expect(ids.filter((id) => added.includes(id))).toEqual([]);
    // Newest first: the seeded top-ups only ever raise the balance.
    const balances = seen.map((e) => e.balanceAfter);
    expect([...balances].sort((a, b) => b - a)).toEqual(balances);

    const result = await ledger.expectReconciled(walker.id);
    expect(result.entries).toBe(60 + added.length);
  });
});

describe('the credits store', () => {
  let user: SignedInUser;
  beforeAll(async () => {
    user = await signUp(local.url, 'store');
  });

  it('applies one idempotency id once when it arrives 20 times at once in separate containers', async () => {
    const stores = Array.from({ length: 8 }, newStore);
    const before = await snapshot(user.id);
    const change = {
      userId: user.id,
      kind: 'charge' as const,
      amount: -7,
      idempotencyId: `burst-${randomUUID()}`,
      requestHash: 'burst',
    };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (stores[i % stores.length] as DynamoAccountStore).apply(change)),
    );
    expect(results.every((r) => r.outcome === 'applied')).toBe(true);
    const applied = results.flatMap((r) => (r.outcome === 'applied' ? [r] : []));
    expect(new Set(applied.map((r) => r.entry.id)).size).toBe(1);
    expect(applied.filter((r) => !r.replayed)).toHaveLength(1);
    expect(applied.filter((r) => r.replayed)).toHaveLength(19);
    expect(new Set(applied.map((r) => r.balance))).toEqual(new Set([(before.balance ?? 0) - 7]));
    expect(await snapshot(user.id)).toEqual({
      balance: (before.balance ?? 0) - 7,
      sequence: (before.sequence ?? 0) + 1,
      entries: before.entries + 1,
    });
    const { entries } = await ledger.read(user.id);
    expect(entries.filter((e) => e.id === applied[0]?.entry.id)).toHaveLength(1);
    await ledger.expectReconciled(user.id);
  });

  it('refuses the same idempotency id with different parameters (ConflictError), changing nothing', async () => {
    const store = newStore();
    const idempotencyId = `conflict-${randomUUID()}`;
    const base = { userId: user.id, kind: 'top_up' as const, idempotencyId };
    const first = await store.apply({ ...base, amount: 3, requestHash: 'a' });
    expect(first).toMatchObject({ outcome: 'applied', replayed: false });
    const before = await snapshot(user.id);
    await expect(newStore().apply({ ...base, amount: 4, requestHash: 'b' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(store.apply({ ...base, amount: 4, requestHash: 'b' })).rejects.toBeInstanceOf(ConflictError);
    expect(await snapshot(user.id)).toEqual(before);
    await ledger.expectReconciled(user.id);
  });

  it('a transaction that fails halfway leaves no trace; the same idempotency id applies once later', async () => {
    const store = newStore();
    const before = await ledger.read(user.id);
    const change = {
      userId: user.id,
      kind: 'top_up' as const,
      amount: 11,
      idempotencyId: `halfway-${randomUUID()}`,
      requestHash: 'halfway',
    };
    // A price check on a model version that does not exist: its condition fails.
    const failing = new DynamoPredictionStore(newClient(), local.stack.resources.tableName).priceCheckPart(
      'mdl_nope',
      1,
    );
    const error = await store.apply(change, { with: [failing] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelPriceChangedError);
    expect(error).toMatchObject({ modelId: 'mdl_nope', price: 1 });

    const after = await ledger.read(user.id);
    expect(after.account).toEqual(before.account);
    expect(after.entries).toEqual(before.entries);
    expect(await idempotencyStore().get(user.id, change.idempotencyId)).toBeUndefined();
    await ledger.expectReconciled(user.id);

    // A debit that fails halfway the same way.
    await expect(
      store.apply(
        { ...change, kind: 'charge', amount: -1, idempotencyId: `${change.idempotencyId}-debit` },
        { with: [failing] },
      ),
    ).rejects.toBeInstanceOf(ModelPriceChangedError);
    expect((await ledger.read(user.id)).entries).toHaveLength(before.entries.length);

    const retried = await store.apply(change);
    expect(retried).toMatchObject({
      outcome: 'applied',
      replayed: false,
      balance: (before.account?.balance ?? 0) + 11,
    });
    const replayed = await newStore().apply(change);
    expect(replayed).toMatchObject({ outcome: 'applied', replayed: true });
    expect(replayed.outcome === 'applied' && replayed.entry.id).toBe(
      retried.outcome === 'applied' && retried.entry.id,
    );
    expect(await snapshot(user.id)).toEqual({
      balance: (before.account?.balance ?? 0) + 11,
      sequence: (before.account?.sequence ?? 0) + 1,
      entries: before.entries.length + 1,
    });
    await ledger.expectReconciled(user.id);
  });

  it('refuses a debit beyond the balance without writing, and replays an applied one even then', async () => {
    const store = newStore();
    const { balance = 0 } = await snapshot(user.id);
    const drain = { userId: user.id, kind: 'charge' as const, idempotencyId: `drain-${randomUUID()}` };
    const applied = await store.apply({ ...drain, amount: -balance, requestHash: 'drain' });
    expect(applied).toMatchObject({ outcome: 'applied', balance: 0 });
    const before = await snapshot(user.id);
    const refused = await store.apply({
      userId: user.id,
      kind: 'charge',
      amount: -1,
      idempotencyId: `refused-${randomUUID()}`,
      requestHash: 'x',
    });
    expect(refused).toEqual({ outcome: 'insufficient-credits', balance: 0, cost: 1 });
    expect(await snapshot(user.id)).toEqual(before);
    // A retry of the charge that drained the account is its result, not a refusal.
    const retry = await newStore().apply({ ...drain, amount: -balance, requestHash: 'drain' });
    expect(retry).toMatchObject({ outcome: 'applied', replayed: true, balance: 0 });
    await ledger.expectReconciled(user.id);
  });
});

describe('idempotency records', () => {
  it('settle an id once: a second write fails with ChangeAlreadySettledError carrying the first record', async () => {
    const user = await signUp(local.url, 'records');
    const store = idempotencyStore();
    const transactions = new DynamoTransactions(newClient());
    const record = (rowsCharged: number, requestHash: string): IdempotencyRecord => ({
      kind: 'batch-chunk',
      idempotencyId: `batch#${randomUUID()}#chunk#0`,
      requestHash,
      expiresAt: null,
      entry: null,
      balance: null,
      rowsCharged,
    });
    const first = record(0, 'first');
    await transactions.write([store.part(user.id, first)]);
    expect(await store.get(user.id, first.idempotencyId)).toEqual(first);

    const second = { ...record(3, 'second'), idempotencyId: first.idempotencyId };
    const error = await transactions.write([store.part(user.id, second)]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChangeAlreadySettledError);
    expect((error as ChangeAlreadySettledError).record).toEqual(first);
    expect(await store.get(user.id, first.idempotencyId)).toEqual(first);
  });
});
