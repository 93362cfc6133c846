/**
 * Credits over HTTP (account, top-ups, grants, the ledger) and the credits store's atomicity and
 * idempotency against the emulator. Every test ends by reconciling the user's account against the
 * ledger read straight from DynamoDB. The big concurrent races are in credits-race.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreditsStore } from '../../shared/adapters/dynamo/credits-store.ts';
import {
  ConflictError,
  TransactionConditionFailedError as ExtraConditionFailedError,
} from '../../shared/domain/errors.ts';
import { Api, type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const local = useLocalStack();
const ledger = useReconciler(local);

const SIGNUP_BONUS = 100;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let admin: SignedInUser;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

const clients: DynamoDBDocumentClient[] = [];
afterAll(() => {
  for (const client of clients) client.destroy();
});

/** A store of its own, as another Lambda container would have. */
function newStore(): CreditsStore {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: local.stack.endpoint, region: local.stack.region }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  clients.push(client);
  return new CreditsStore(client, local.stack.resources.tableName);
}

/** Balance and ledger as stored, to show that a refused request changed nothing. */
async function snapshot(userId: string) {
  const { account, entries } = await ledger.read(userId);
  return { balance: account?.balance, sequence: account?.sequence, entries: entries.length };
}

async function walk(api: Api, query: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const separator = query ? '&' : '';
    const path: string = `/v1/account/transactions?${query}${separator}${cursor ? `cursor=${encodeURIComponent(cursor)}` : ''}`;
    const response = await api.get(path);
    expect(response.status).toBe(200);
    items.push(...response.body.items);
    cursor = response.body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('the ledger walk did not end');
}

describe('GET /v1/account', () => {
  it('shows the balance, when it last changed and the limits', async () => {
    const user = await signUp(local.url, 'account');
    const response = await user.api.get('/v1/account');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      balance: SIGNUP_BONUS,
      updatedAt: expect.stringMatching(ISO),
      limits: { dailySpendCap: null, lowBalanceThreshold: null, webhookUrl: null },
    });
    const me = await user.api.get('/v1/users/me');
    expect(me.body.balance).toBe(SIGNUP_BONUS);
    await ledger.expectReconciled(user.id);
  });

  it('records the signup bonus as a grant in the ledger', async () => {
    const user = await signUp(local.url, 'bonus');
    const page = await user.api.get('/v1/account/transactions');
    expect(page.status).toBe(200);
    expect(page.body).toEqual({
      items: [
        {
          id: expect.any(String),
          kind: 'grant',
          amount: SIGNUP_BONUS,
          balanceAfter: SIGNUP_BONUS,
          reason: 'signup bonus',
          createdAt: expect.stringMatching(ISO),
        },
      ],
      nextCursor: null,
    });
    const result = await ledger.expectReconciled(user.id);
    expect(result).toMatchObject({ balance: SIGNUP_BONUS, ledgerSum: SIGNUP_BONUS, entries: 1 });
  });

  it('needs a credential', async () => {
    const anonymous = new Api(local.url);
    for (const [method, path] of [
      ['GET', '/v1/account'],
      ['GET', '/v1/account/transactions'],
      ['POST', '/v1/account/top-ups'],
    ] as const) {
      const response = await anonymous.request(
        method,
        path,
        method === 'POST' ? { body: { amount: 5 } } : {},
      );
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
    }
  });
});

describe('POST /v1/account/top-ups', () => {
  it('adds credits and answers 201 with the ledger entry and the new balance', async () => {
    const user = await signUp(local.url, 'topup');
    const response = await user.api.post('/v1/account/top-ups', { amount: 25 });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      transaction: {
        id: expect.any(String),
        kind: 'top_up',
        amount: 25,
        balanceAfter: SIGNUP_BONUS + 25,
        createdAt: expect.stringMatching(ISO),
      },
      balance: SIGNUP_BONUS + 25,
    });
    const account = await user.api.get('/v1/account');
    expect(account.body.balance).toBe(SIGNUP_BONUS + 25);
    expect(Date.parse(account.body.updatedAt)).toBe(Date.parse(response.body.transaction.createdAt));
    const page = await user.api.get('/v1/account/transactions?limit=1');
    expect(page.body.items).toEqual([response.body.transaction]);
    await ledger.expectReconciled(user.id);
  });

  it('accepts the largest top-up', async () => {
    const user = await signUp(local.url, 'topup-max');
    const response = await user.api.post('/v1/account/top-ups', { amount: 1_000_000 });
    expect(response.status).toBe(201);
    expect(response.body.balance).toBe(SIGNUP_BONUS + 1_000_000);
    await ledger.expectReconciled(user.id);
  });

  it('with the same Idempotency-Key and body, returns the same transaction and charges once', async () => {
    const user = await signUp(local.url, 'idem');
    const key = randomUUID();
    const first = await user.api.post('/v1/account/top-ups', { amount: 10 }, { 'idempotency-key': key });
    const second = await user.api.post('/v1/account/top-ups', { amount: 10 }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(first.body.balance).toBe(SIGNUP_BONUS + 10);
    expect((await user.api.get('/v1/account')).body.balance).toBe(SIGNUP_BONUS + 10);
    expect(await snapshot(user.id)).toEqual({ balance: SIGNUP_BONUS + 10, sequence: 2, entries: 2 });

    // Without a key, the same body is a new top-up.
    const third = await user.api.post('/v1/account/top-ups', { amount: 10 });
    expect(third.status).toBe(201);
    expect(third.body.transaction.id).not.toBe(first.body.transaction.id);
    expect(third.body.balance).toBe(SIGNUP_BONUS + 20);
    await ledger.expectReconciled(user.id);
  });

  it('answers 409 idempotency-key-reused for the same key with a different amount, changing nothing', async () => {
    const user = await signUp(local.url, 'idem-conflict');
    const key = randomUUID();
    const first = await user.api.post('/v1/account/top-ups', { amount: 10 }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const before = await snapshot(user.id);
    const reused = await user.api.post('/v1/account/top-ups', { amount: 11 }, { 'idempotency-key': key });
    expect(reused.status).toBe(409);
    expect(reused.headers.get('content-type')).toBe('application/problem+json');
    expect(reused.body).toMatchObject({ type: '/problems/idempotency-key-reused', status: 409 });
    expect(await snapshot(user.id)).toEqual(before);
    // The original request still replays.
    const again = await user.api.post('/v1/account/top-ups', { amount: 10 }, { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect(again.body.transaction.id).toBe(first.body.transaction.id);
    expect(await snapshot(user.id)).toEqual(before);
    await ledger.expectReconciled(user.id);
  });

  it('scopes an Idempotency-Key to its user', async () => {
    const [alice, bob] = await Promise.all([signUp(local.url, 'alice'), signUp(local.url, 'bob')]);
    const key = randomUUID();
    const a = await alice.api.post('/v1/account/top-ups', { amount: 3 }, { 'idempotency-key': key });
    const b = await bob.api.post('/v1/account/top-ups', { amount: 4 }, { 'idempotency-key': key });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.transaction.id).not.toBe(a.body.transaction.id);
    expect(a.body.balance).toBe(SIGNUP_BONUS + 3);
    expect(b.body.balance).toBe(SIGNUP_BONUS + 4);
    await ledger.expectReconciled(alice.id);
    await ledger.expectReconciled(bob.id);
  });

  it('charges once when the same Idempotency-Key arrives many times at once', async () => {
    const user = await signUp(local.url, 'idem-burst');
    const key = randomUUID();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        user.api.post('/v1/account/top-ups', { amount: 9 }, { 'idempotency-key': key }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(responses.map((r) => r.body.transaction.id)).size).toBe(1);
    expect(await snapshot(user.id)).toEqual({ balance: SIGNUP_BONUS + 9, sequence: 2, entries: 2 });
    await ledger.expectReconciled(user.id);
  });
});

describe('POST /v1/admin/users/{userId}/grants', () => {
  it('lets an admin grant credits (201, ledger kind grant with the reason)', async () => {
    const user = await signUp(local.url, 'grantee');
    const response = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
      amount: 2_000_000,
      reason: 'research credits',
    });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      transaction: {
        id: expect.any(String),
        kind: 'grant',
        amount: 2_000_000,
        balanceAfter: SIGNUP_BONUS + 2_000_000,
        reason: 'research credits',
        createdAt: expect.stringMatching(ISO),
      },
      balance: SIGNUP_BONUS + 2_000_000,
    });
    expect((await user.api.get('/v1/account')).body.balance).toBe(SIGNUP_BONUS + 2_000_000);
    const page = await user.api.get('/v1/account/transactions?kind=grant');
    expect(page.body.items.map((e: any) => e.reason)).toEqual(['research credits', 'signup bonus']);
    const { entries } = await ledger.read(user.id);
    expect(entries.find((e) => e.sequence === 2)).toMatchObject({ actorId: admin.id, kind: 'grant' });
    await ledger.expectReconciled(user.id);
  });

  it('is forbidden (403) to a user who is not an admin, and changes nothing', async () => {
    const [user, other] = await Promise.all([signUp(local.url, 'nonadmin'), signUp(local.url, 'target')]);
    const before = await Promise.all([snapshot(user.id), snapshot(other.id)]);
    for (const target of [user.id, other.id]) {
      const response = await user.api.post(`/v1/admin/users/${target}/grants`, { amount: 10, reason: 'me' });
      expect(response.status).toBe(403);
      expect(response.body).toMatchObject({ type: '/problems/forbidden', status: 403 });
    }
    expect(await Promise.all([snapshot(user.id), snapshot(other.id)])).toEqual(before);
  });

  it('answers 404 for an unknown user', async () => {
    const response = await admin.api.post(`/v1/admin/users/${randomUUID()}/grants`, {
      amount: 10,
      reason: 'nobody',
    });
    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ type: '/problems/not-found', status: 404 });
  });

  it('honours Idempotency-Key: same body replays, a different body is 409', async () => {
    const user = await signUp(local.url, 'grant-idem');
    const key = randomUUID();
    const path = `/v1/admin/users/${user.id}/grants`;
    const body = { amount: 40, reason: 'refund of outage' };
    const first = await admin.api.post(path, body, { 'idempotency-key': key });
    const second = await admin.api.post(path, body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body.transaction.id).toBe(first.body.transaction.id);
    expect(await snapshot(user.id)).toEqual({ balance: SIGNUP_BONUS + 40, sequence: 2, entries: 2 });

    for (const changed of [
      { amount: 41, reason: body.reason },
      { amount: body.amount, reason: 'something else' },
    ]) {
      const reused = await admin.api.post(path, changed, { 'idempotency-key': key });
      expect(reused.status).toBe(409);
      expect(reused.body.type).toBe('/problems/idempotency-key-reused');
    }
    expect(await snapshot(user.id)).toEqual({ balance: SIGNUP_BONUS + 40, sequence: 2, entries: 2 });

    // The same key used by the user for a top-up is a different request space.
    const topUp = await user.api.post('/v1/account/top-ups', { amount: 1 }, { 'idempotency-key': key });
    expect(topUp.status).toBe(201);
    expect(topUp.body.balance).toBe(SIGNUP_BONUS + 41);
    await ledger.expectReconciled(user.id);
  });

  it('needs a reason', async () => {
    const user = await signUp(local.url, 'grant-reason');
    const before = await snapshot(user.id);
    for (const body of [{ amount: 10 }, { amount: 10, reason: '' }, { amount: 10, reason: '   ' }]) {
      const response = await admin.api.post(`/v1/admin/users/${user.id}/grants`, body);
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ path: '/reason', message: expect.any(String) }]);
    }
    expect(await snapshot(user.id)).toEqual(before);
  });
});

describe('bad amounts are 400 with errors[].path /amount and change nothing', () => {
  let user: SignedInUser;
  beforeAll(async () => {
    user = await signUp(local.url, 'bad-amounts');
  });

  // Raw JSON, so that numbers beyond 2^53 reach the server as written.
  const common: [string, string][] = [
    ['zero', '0'],
    ['negative', '-5'],
    ['fractional', '1.5'],
    ['a string', '"10"'],
    ['beyond 2^53', String(2 ** 53 + 2)],
    ['far beyond 2^53', '1e300'],
    ['null', 'null'],
    ['a boolean', 'true'],
    ['an object', '{"value":10}'],
  ];
  const body = (amount: string | undefined, extra = '') =>
    amount === undefined ? `{${extra}}` : `{"amount":${amount}${extra ? `,${extra}` : ''}}`;

  async function expectRefused(path: string, rawBody: string, token: string) {
    const before = await snapshot(user.id);
    const response = await new Api(local.url, token).request('POST', path, {
      rawBody,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status, rawBody).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.body).toMatchObject({ type: '/problems/validation-failed', status: 400 });
    // Every complaint is about the amount (a number beyond 2^53 is both not safe and too large).
    const errors: { path: string; message: string }[] = response.body.errors;
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.map((e) => e.path)).toEqual(errors.map(() => '/amount'));
    expect(await snapshot(user.id)).toEqual(before);
  }

  it.each([...common, ['over the top-up limit', '1000001'], ['missing', undefined]] as [
    string,
    string | undefined,
  ][])('top-up: %s', async (_label, amount) => {
    await expectRefused('/v1/account/top-ups', body(amount), user.accessToken);
  });

  it.each([...common, ['over the grant limit', '100000001'], ['missing', undefined]] as [
    string,
    string | undefined,
  ][])('grant: %s', async (_label, amount) => {
    await expectRefused(
      `/v1/admin/users/${user.id}/grants`,
      body(amount, '"reason":"test"'),
      admin.accessToken,
    );
  });

  it('a bad amount with an Idempotency-Key is not remembered: the key works afterwards', async () => {
    const key = randomUUID();
    const refused = await user.api.post('/v1/account/top-ups', { amount: 0 }, { 'idempotency-key': key });
    expect(refused.status).toBe(400);
    const accepted = await user.api.post('/v1/account/top-ups', { amount: 6 }, { 'idempotency-key': key });
    expect(accepted.status).toBe(201);
    await ledger.expectReconciled(user.id);
  });

  it('unknown fields are refused too', async () => {
    const before = await snapshot(user.id);
    const response = await user.api.post('/v1/account/top-ups', { amount: 5, currency: 'EUR' });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ path: '/currency', message: expect.any(String) }]);
    expect(await snapshot(user.id)).toEqual(before);
  });
});

describe('GET /v1/account/transactions', () => {
  let user: SignedInUser;
  let topUps: any[];
  let grant: any;
  beforeAll(async () => {
    user = await signUp(local.url, 'ledger');
    topUps = [];
    for (const amount of [10, 20, 30]) {
      const response = await user.api.post('/v1/account/top-ups', { amount });
      topUps.push(response.body.transaction);
    }
    grant = (await admin.api.post(`/v1/admin/users/${user.id}/grants`, { amount: 5, reason: 'thanks' })).body
      .transaction;
  });

  it('lists the ledger newest first, 20 by default, with only public fields', async () => {
    const page = await user.api.get('/v1/account/transactions');
    expect(page.status).toBe(200);
    expect(page.body.nextCursor).toBeNull();
    expect(page.body.items.map((e: any) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['grant', 5, 165],
      ['top_up', 30, 160],
      ['top_up', 20, 130],
      ['top_up', 10, 110],
      ['grant', 100, 100],
    ]);
    expect(page.body.items[0]).toEqual(grant);
    expect(page.body.items.slice(1, 4)).toEqual([...topUps].reverse());
    for (const item of page.body.items) {
      expect(Object.keys(item).sort()).toEqual(
        expect.arrayContaining(['amount', 'balanceAfter', 'createdAt', 'id', 'kind']),
      );
      expect(item).not.toHaveProperty('sequence');
      expect(item).not.toHaveProperty('userId');
      expect(item).not.toHaveProperty('actorId');
      expect(item).not.toHaveProperty('pk');
    }
    const times = page.body.items.map((e: any) => Date.parse(e.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('pages with ?limit= and nextCursor, without gaps or repeats', async () => {
    const first = await user.api.get('/v1/account/transactions?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.items.map((e: any) => e.amount)).toEqual([5, 30]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await user.api.get(
      `/v1/account/transactions?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
    );
    expect(second.status).toBe(200);
    expect(second.body.items.map((e: any) => e.amount)).toEqual([20, 10]);
    const all = await walk(user.api, 'limit=2');
    expect(all.map((e) => e.amount)).toEqual([5, 30, 20, 10, 100]);
    const exact = await walk(user.api, 'limit=5');
    expect(exact.map((e) => e.amount)).toEqual([5, 30, 20, 10, 100]);
    const big = await user.api.get('/v1/account/transactions?limit=100');
    expect(big.body).toMatchObject({ nextCursor: null });
    expect(big.body.items).toHaveLength(5);
  });

  it('filters by ?kind=', async () => {
    const topUpsOnly = await user.api.get('/v1/account/transactions?kind=top_up');
    expect(topUpsOnly.status).toBe(200);
    expect(topUpsOnly.body.items).toEqual([...topUps].reverse());
    const grants = await user.api.get('/v1/account/transactions?kind=grant');
    expect(grants.body.items.map((e: any) => e.amount)).toEqual([5, 100]);
    const charges = await user.api.get('/v1/account/transactions?kind=charge');
    expect(charges.body).toEqual({ items: [], nextCursor: null });
    const paged = await walk(user.api, 'kind=top_up&limit=2');
    expect(paged.map((e) => e.amount)).toEqual([30, 20, 10]);
    const firstPage = await user.api.get('/v1/account/transactions?kind=top_up&limit=1');
    expect(firstPage.body.items.map((e: any) => e.amount)).toEqual([30]);
    expect(firstPage.body.nextCursor).toEqual(expect.any(String));
  });

  it('shows only the caller’s own ledger', async () => {
    const other = await signUp(local.url, 'other');
    const page = await other.api.get('/v1/account/transactions');
    expect(page.body.items).toHaveLength(1);
    expect(page.body.items[0]).toMatchObject({ kind: 'grant', amount: SIGNUP_BONUS });
  });

  it.each([
    ['a malformed cursor', 'cursor=not-a-cursor', 'query.cursor'],
    [
      'a cursor of the wrong shape',
      `cursor=${Buffer.from('{"before":"x"}').toString('base64url')}`,
      'query.cursor',
    ],
    ['an empty cursor', 'cursor=', 'query.cursor'],
    ['limit=0', 'limit=0', 'query.limit'],
    ['limit=101', 'limit=101', 'query.limit'],
    ['limit=abc', 'limit=abc', 'query.limit'],
    ['limit=1.5', 'limit=1.5', 'query.limit'],
    ['limit=-1', 'limit=-1', 'query.limit'],
    ['an unknown kind', 'kind=bonus', 'query.kind'],
    ['an unknown parameter', 'sort=asc', 'query.sort'],
  ])('answers 400 for %s', async (_label, query, path) => {
    const response = await user.api.get(`/v1/account/transactions?${query}`);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.body).toMatchObject({ type: '/problems/validation-failed', status: 400 });
    expect(response.body.errors).toEqual([{ path, message: expect.any(String) }]);
  });

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
      Array.from({ length: 20 }, (_, i) => (stores[i % stores.length] as CreditsStore).apply(change)),
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
    const failing = {
      ConditionCheck: {
        TableName: local.stack.resources.tableName,
        Key: { pk: 'NOPE', sk: 'NOPE' },
        ConditionExpression: 'attribute_exists(pk)',
      },
    };
    const error = await store.apply(change, { with: [failing] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ExtraConditionFailedError);
    expect((error as ExtraConditionFailedError).index).toBe(0);

    const after = await ledger.read(user.id);
    expect(after.account).toEqual(before.account);
    expect(after.entries).toEqual(before.entries);
    expect(await store.getChangeRecord(user.id, change.idempotencyId)).toBeUndefined();
    await ledger.expectReconciled(user.id);

    // A debit that fails halfway the same way.
    await expect(
      store.apply(
        { ...change, kind: 'charge', amount: -1, idempotencyId: `${change.idempotencyId}-debit` },
        { with: [failing] },
      ),
    ).rejects.toBeInstanceOf(ExtraConditionFailedError);
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
