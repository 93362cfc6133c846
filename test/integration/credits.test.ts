/**
 * Credits over HTTP: the account, top-ups, admin grants, the ledger, idempotency keys and bad input.
 * Tests end by reconciling the user's account against the ledger read straight from DynamoDB.
 * The credits store's own guarantees are in credits-store.test.ts, the concurrent races in
 * credits-race.test.ts, the production-like configuration in credits-config.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
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
});
