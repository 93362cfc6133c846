/**
 * Account limits over HTTP: `PUT /v1/account/limits` and what the limits do. The daily spend cap is
 * checked in the same conditional write as the charge, so concurrent predictions cannot overshoot
 * it; the low-balance threshold records a notification only when a charge crosses it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoAccountStore } from '../../shared/adapters/dynamo/account-store.ts';
import { type Api, type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { expectProblem } from '../support/problems.ts';
import { useReconciler } from '../support/reconcile.ts';

// The signup bonus is 100 credits unless a test file changes it; iris costs 1 credit per row.
const SIGNUP_BONUS = 100;
const local = useLocalStack({ environment: { SIGNUP_BONUS: String(SIGNUP_BONUS) } });
const ledger = useReconciler(local);

const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const NO_LIMITS = { dailySpendCap: null, lowBalanceThreshold: null, webhookUrl: null };

let admin: SignedInUser;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

function predictIris(api: Api, rows = 1) {
  const input = rows === 1 ? IRIS_ROW : Array.from({ length: rows }, () => IRIS_ROW);
  return api.post('/v1/models/iris/predictions', { inputs: { input } });
}

async function limitsOf(api: Api) {
  const account = await api.get('/v1/account');
  expect(account.status).toBe(200);
  return account.body.limits;
}

async function balanceOf(api: Api): Promise<number> {
  const account = await api.get('/v1/account');
  expect(account.status).toBe(200);
  return account.body.balance;
}

async function notificationsOf(api: Api): Promise<any[]> {
  const me = await api.get('/v1/users/me');
  expect(me.status).toBe(200);
  return me.body.notifications;
}

/** The account item as stored (spentToday and the webhook secret are not in any answer). */
async function storedAccount(userId: string) {
  const { Item } = await ledger.client().send(
    new GetCommand({
      TableName: local.stack.resources.tableName,
      Key: { pk: `USER#${userId}`, sk: 'ACCOUNT' },
      ConsistentRead: true,
    }),
  );
  return Item ?? {};
}

describe('PUT /v1/account/limits', () => {
  it('starts with no limits, and sets, keeps and clears each limit as asked', async () => {
    const user = await signUp(local.url, 'limits');
    expect(await limitsOf(user.api)).toEqual(NO_LIMITS);

    const capped = await user.api.put('/v1/account/limits', { dailySpendCap: 50 });
    expect(capped.status, JSON.stringify(capped.body)).toBe(200);
    expect(capped.body).toEqual({ ...NO_LIMITS, dailySpendCap: 50 });
    expect(await limitsOf(user.api)).toEqual({ ...NO_LIMITS, dailySpendCap: 50 });

    // A field left out stays as it is.
    const threshold = await user.api.put('/v1/account/limits', { lowBalanceThreshold: 10 });
    expect(threshold.status).toBe(200);
    expect(threshold.body).toEqual({ ...NO_LIMITS, dailySpendCap: 50, lowBalanceThreshold: 10 });

    // An empty change changes nothing.
    const unchanged = await user.api.put('/v1/account/limits', {});
    expect(unchanged.status).toBe(200);
    expect(unchanged.body).toEqual({ ...NO_LIMITS, dailySpendCap: 50, lowBalanceThreshold: 10 });

    // null clears; zero is a limit, not "none".
    const cleared = await user.api.put('/v1/account/limits', { dailySpendCap: null, lowBalanceThreshold: 0 });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toEqual({ ...NO_LIMITS, lowBalanceThreshold: 0 });
    expect(await limitsOf(user.api)).toEqual({ ...NO_LIMITS, lowBalanceThreshold: 0 });

    // Limits are not money: the balance and the ledger did not move.
    expect(await balanceOf(user.api)).toBe(SIGNUP_BONUS);
    const reconciled = await ledger.expectReconciled(user.id);
    expect(reconciled.entries).toBe(1);
  });

  it('refuses invalid values with 400 validation-failed and changes nothing', async () => {
    const user = await signUp(local.url, 'limits-invalid');
    await user.api.put('/v1/account/limits', { dailySpendCap: 7 });
    const invalid: unknown[] = [
      { dailySpendCap: -1 },
      { dailySpendCap: 1.5 },
      { dailySpendCap: '10' },
      { dailySpendCap: Number.MAX_SAFE_INTEGER + 2 },
      { lowBalanceThreshold: -5 },
      { lowBalanceThreshold: true },
      { webhookUrl: 'not a url' },
      { webhookUrl: 42 },
      { webhookUrl: `https://example.com/${'x'.repeat(2100)}` },
      { somethingElse: 1 },
      [],
      'cap',
    ];
    for (const body of invalid) {
      const response = await user.api.put('/v1/account/limits', body);
      expectProblem(response, 400, 'validation-failed');
    }
    expect(await limitsOf(user.api)).toEqual({ ...NO_LIMITS, dailySpendCap: 7 });
  });

  it('takes webhooks over https only, and returns a new whsec_ signing secret once per new URL', async () => {
    const user = await signUp(local.url, 'limits-webhook');
    for (const webhookUrl of [
      'http://example.com/hook',
      'ftp://example.com/hook',
      'https://localhost/hook',
      'http://192.0.2.10/hook',
    ]) {
      const refused = await user.api.put('/v1/account/limits', { webhookUrl });
      const problem = expectProblem(refused, 400, 'validation-failed');
      expect(problem.errors?.map((e) => e.path)).toEqual(['/webhookUrl']);
    }
    expect(await limitsOf(user.api)).toEqual(NO_LIMITS);

    const set = await user.api.put('/v1/account/limits', { webhookUrl: 'https://hooks.example.com/credits' });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ ...NO_LIMITS, webhookUrl: 'https://hooks.example.com/credits' });
    const secret = set.body.webhookSecret as string;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice('whsec_'.length), 'base64').length).toBeGreaterThanOrEqual(24);

    // Shown once: neither the account nor a change that keeps the URL repeats it.
    const account = await user.api.get('/v1/account');
    expect(account.body.limits).toEqual({ ...NO_LIMITS, webhookUrl: 'https://hooks.example.com/credits' });
    expect(JSON.stringify(account.body)).not.toContain(secret);
    const again = await user.api.put('/v1/account/limits', { lowBalanceThreshold: 5 });
    expect(again.body).toEqual({
      ...NO_LIMITS,
      lowBalanceThreshold: 5,
      webhookUrl: 'https://hooks.example.com/credits',
    });
    const same = await user.api.put('/v1/account/limits', {
      webhookUrl: 'https://hooks.example.com/credits',
    });
    expect(same.body.webhookSecret).toBeUndefined();
    expect((await storedAccount(user.id)).webhookSecret).toBe(secret);

    // A different URL gets a different secret; null removes the webhook.
    const moved = await user.api.put('/v1/account/limits', { webhookUrl: 'https://hooks.example.com/v2' });
    expect(moved.body.webhookSecret).toMatch(/^whsec_/);
    expect(moved.body.webhookSecret).not.toBe(secret);
    const removed = await user.api.put('/v1/account/limits', { webhookUrl: null });
    expect(removed.body).toEqual({ ...NO_LIMITS, lowBalanceThreshold: 5 });
    expect(removed.body.webhookSecret).toBeUndefined();
  });

  it('needs a signed-in caller', async () => {
    const anonymous = await admin.api.as(undefined).put('/v1/account/limits', { dailySpendCap: 1 });
    expectProblem(anonymous, 401, 'unauthorized');
  });
});

describe('the daily spend cap', () => {
  it('refuses a charge that would cross it with 402 spend-cap-reached and charges nothing', async () => {
    const user = await signUp(local.url, 'cap');
    await user.api.put('/v1/account/limits', { dailySpendCap: 5 });
    const first = await predictIris(user.api, 3);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.cost).toBe(3);

    const before = await ledger.read(user.id);
    const crossing = await predictIris(user.api, 3);
    const problem = expectProblem(crossing, 402, 'spend-cap-reached');
    expect(problem).toMatchObject({ cap: 5, spentToday: 3, cost: 3 });
    expect(problem.outputs).toBeUndefined();
    const after = await ledger.read(user.id);
    expect(after.entries).toHaveLength(before.entries.length);
    expect(after.account?.balance).toBe(before.account?.balance);

    // Exactly up to the cap is allowed; one more credit is not.
    expect((await predictIris(user.api, 2)).status).toBe(201);
    expectProblem(await predictIris(user.api, 1), 402, 'spend-cap-reached');
    expect(await balanceOf(user.api)).toBe(SIGNUP_BONUS - 5);
    expect((await storedAccount(user.id)).spentToday).toBe(5);

    // Raising the cap lets charges through again; clearing it removes the limit.
    await user.api.put('/v1/account/limits', { dailySpendCap: 6 });
    expect((await predictIris(user.api, 1)).status).toBe(201);
    expectProblem(await predictIris(user.api, 1), 402, 'spend-cap-reached');
    await user.api.put('/v1/account/limits', { dailySpendCap: null });
    expect((await predictIris(user.api, 4)).status).toBe(201);
    expect(await balanceOf(user.api)).toBe(SIGNUP_BONUS - 10);
    expect((await storedAccount(user.id)).spentToday).toBe(10);

    // The balance running out is still insufficient-credits, not the cap.
    await user.api.put('/v1/account/limits', { dailySpendCap: 1000 });
    expectProblem(await predictIris(user.api, 91), 402, 'insufficient-credits');
    await ledger.expectReconciled(user.id);
  });

  it('does not count credits added: top-ups and grants leave the day’s spending as it is', async () => {
    const user = await signUp(local.url, 'cap-topup');
    await user.api.put('/v1/account/limits', { dailySpendCap: 2 });
    expect((await predictIris(user.api, 2)).status).toBe(201);
    expect((await user.api.post('/v1/account/top-ups', { amount: 50 })).status).toBe(201);
    const grant = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
      amount: 5,
      reason: 'cap test',
    });
    expect(grant.status).toBe(201);
    expectProblem(await predictIris(user.api, 1), 402, 'spend-cap-reached');
    expect(await balanceOf(user.api)).toBe(SIGNUP_BONUS - 2 + 55);
    await ledger.expectReconciled(user.id);
  });

  it('holds under concurrency: cap 10, 30 concurrent predictions, exactly 10 succeed', async () => {
    const user = await signUp(local.url, 'cap-race');
    await user.api.put('/v1/account/limits', { dailySpendCap: 10 });
    expect(await balanceOf(user.api)).toBe(SIGNUP_BONUS);

    const responses = await Promise.all(Array.from({ length: 30 }, () => predictIris(user.api)));
    const statuses = responses.map((r) => r.status);
    const succeeded = responses.filter((r) => r.status === 201);
    const refused = responses.filter((r) => r.status === 402);
    expect(succeeded, JSON.stringify(statuses)).toHaveLength(10);
    expect(refused).toHaveLength(20);
    for (const response of refused) {
      expect(response.body.type).toBe('/problems/spend-cap-reached');
      expect(response.body.cap).toBe(10);
    }
    // Every success saw a distinct balance: no charge was lost or doubled.
    expect(succeeded.map((r) => r.body.balance).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 10 }, (_, i) => SIGNUP_BONUS - 10 + i),
    );

    expect(await balanceOf(user.api)).toBe(SIGNUP_BONUS - 10);
    const stored = await storedAccount(user.id);
    expect(stored.spentToday).toBe(10);
    expect(stored.spentDay).toBe(new Date().toISOString().slice(0, 10));
    const { entries } = await ledger.read(user.id);
    const charges = entries.filter((e) => e.kind === 'charge');
    expect(charges).toHaveLength(10);
    expect(charges.reduce((sum, e) => sum + e.amount, 0)).toBe(-10);
    await ledger.expectReconciled(user.id);

    // The predictions recorded are exactly the ones charged.
    const history = await user.api.get('/v1/predictions?limit=100');
    expect(history.body.items.map((p: any) => p.id).sort()).toEqual(succeeded.map((r) => r.body.id).sort());
  });
});

describe('the daily spend cap across containers', () => {
  const clients: DynamoDBDocumentClient[] = [];
  afterAll(() => {
    for (const client of clients) client.destroy();
  });

  /** Credits stores as separate Lambda containers would have them: own client, own cache, own queue. */
  function containers(count: number): DynamoAccountStore[] {
    return Array.from({ length: count }, () => {
      const client = DynamoDBDocumentClient.from(
        new DynamoDBClient({
          endpoint: local.stack.endpoints.dynamodb,
          region: local.stack.region,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }),
        { marshallOptions: { removeUndefinedValues: true } },
      );
      clients.push(client);
      return new DynamoAccountStore(client, local.stack.resources.tableName);
    });
  }

  it('lets exactly the cap through when 4 containers charge one account at once', async () => {
    const user = await signUp(local.url, 'cap-containers');
    await user.api.put('/v1/account/limits', { dailySpendCap: 10 });
    const stores = containers(4);
    // Every container has seen the account before the race (as warm containers would).
    for (const store of stores) await store.getAccount(user.id);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (stores[i % stores.length] as DynamoAccountStore).apply({
          userId: user.id,
          kind: 'charge',
          amount: -1,
          idempotencyId: `cap-race#${i}`,
          requestHash: `cap-race#${i}`,
        }),
      ),
    );
    const outcomes = results.map((r) => r.outcome);
    expect(
      outcomes.filter((o) => o === 'applied'),
      JSON.stringify(outcomes),
    ).toHaveLength(10);
    expect(outcomes.filter((o) => o === 'spend-cap-reached')).toHaveLength(20);
    const stored = await storedAccount(user.id);
    expect(stored.balance).toBe(SIGNUP_BONUS - 10);
    expect(stored.spentToday).toBe(10);
    await ledger.expectReconciled(user.id);
    // The service sees the same: the next prediction is over the cap.
    expectProblem(await predictIris(user.api), 402, 'spend-cap-reached');
  });
});

describe('the low-balance threshold', () => {
  it('records a low_balance notification when a charge takes the balance below it, and only then', async () => {
    const user = await signUp(local.url, 'low');
    await user.api.put('/v1/account/limits', { lowBalanceThreshold: 97 });
    expect(await notificationsOf(user.api)).toEqual([]);

    // 100 → 99 → 97: at the threshold is not below it.
    expect((await predictIris(user.api, 1)).status).toBe(201);
    expect((await predictIris(user.api, 2)).status).toBe(201);
    expect(await notificationsOf(user.api)).toEqual([]);

    // 97 → 96 crosses it.
    const crossing = await predictIris(user.api, 1);
    expect(crossing.status).toBe(201);
    expect(crossing.body.balance).toBe(96);
    const notifications = await notificationsOf(user.api);
    expect(notifications).toHaveLength(1);
    expect(notifications[0]).toMatchObject({
      id: expect.any(String),
      type: 'low_balance',
      balance: 96,
      threshold: 97,
      // No webhook: nothing to deliver.
      delivery: 'none',
      createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });

    // Staying below records nothing more.
    expect((await predictIris(user.api, 3)).status).toBe(201);
    expect((await predictIris(user.api, 1)).status).toBe(201);
    expect(await notificationsOf(user.api)).toHaveLength(1);

    // Neither does a credit, nor a threshold raised above the balance.
    expect((await user.api.post('/v1/account/top-ups', { amount: 10 })).status).toBe(201); // 92 → 102
    await user.api.put('/v1/account/limits', { lowBalanceThreshold: 110 });
    expect((await predictIris(user.api, 1)).status).toBe(201); // 102 → 101, already below 110
    expect(await notificationsOf(user.api)).toHaveLength(1);

    // Back above, then below again: a second crossing, a second notification, newest first.
    expect((await user.api.post('/v1/account/top-ups', { amount: 20 })).status).toBe(201); // 121
    expect((await predictIris(user.api, 5)).status).toBe(201); // 116
    expect(await notificationsOf(user.api)).toHaveLength(1);
    expect((await predictIris(user.api, 7)).status).toBe(201); // 109 < 110
    const after = await notificationsOf(user.api);
    expect(after).toHaveLength(2);
    expect(after[0]).toMatchObject({ type: 'low_balance', balance: 109, threshold: 110, delivery: 'none' });
    expect(after[1]).toMatchObject({ balance: 96, threshold: 97 });
    expect(after[0].id).not.toBe(after[1].id);
    expect(await balanceOf(user.api)).toBe(109);
    await ledger.expectReconciled(user.id);
  });

  it('records nothing for a refused charge, and nothing when the threshold is cleared', async () => {
    const user = await signUp(local.url, 'low-refused');
    await user.api.put('/v1/account/limits', { lowBalanceThreshold: 50, dailySpendCap: 10 });
    // Would cross the threshold, but the cap refuses it first: no charge, no notification.
    expectProblem(await predictIris(user.api, 60), 402, 'spend-cap-reached');
    expect(await notificationsOf(user.api)).toEqual([]);
    await user.api.put('/v1/account/limits', { lowBalanceThreshold: null, dailySpendCap: null });
    expect((await predictIris(user.api, 60)).status).toBe(201);
    expect(await notificationsOf(user.api)).toEqual([]);
    await ledger.expectReconciled(user.id);
  });
});
