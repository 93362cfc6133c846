/**
 * Credits configured as a deployed stack has them by default: no signup bonus and no self-service
 * top-ups (configuration is read per process, so this needs a file of its own).
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const local = useLocalStack({ environment: { SIGNUP_BONUS: '0', SELF_SERVICE_TOP_UPS: 'false' } });
const ledger = useReconciler(local);

let admin: SignedInUser;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

describe('with SIGNUP_BONUS=0', () => {
  it('a new user starts at 0 with an empty ledger', async () => {
    const user = await signUp(local.url, 'nobonus');
    const account = await user.api.get('/v1/account');
    expect(account.status).toBe(200);
    expect(account.body).toMatchObject({ balance: 0, limits: expect.any(Object) });
    expect((await user.api.get('/v1/users/me')).body.balance).toBe(0);
    const page = await user.api.get('/v1/account/transactions');
    expect(page.body).toEqual({ items: [], nextCursor: null });
    const stored = await ledger.read(user.id);
    expect(stored.account).toMatchObject({ balance: 0, sequence: 0 });
    expect(stored.entries).toEqual([]);
    expect(await ledger.expectReconciled(user.id)).toMatchObject({ balance: 0, entries: 0 });
  });
});

describe('with SELF_SERVICE_TOP_UPS=false', () => {
  it('a top-up is forbidden (403) and changes nothing, with or without an Idempotency-Key', async () => {
    const user = await signUp(local.url, 'notopup');
    for (const headers of [undefined, { 'idempotency-key': randomUUID() }]) {
      const response = await user.api.post('/v1/account/top-ups', { amount: 10 }, headers);
      expect(response.status).toBe(403);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(response.body).toMatchObject({ type: '/problems/forbidden', status: 403 });
    }
    const stored = await ledger.read(user.id);
    expect(stored.account).toMatchObject({ balance: 0, sequence: 0 });
    expect(stored.entries).toEqual([]);
  });

  it('an admin grant still adds credits, as the first ledger entry', async () => {
    const user = await signUp(local.url, 'granted');
    const response = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
      amount: 50,
      reason: 'trial',
    });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      transaction: { kind: 'grant', amount: 50, balanceAfter: 50, reason: 'trial' },
      balance: 50,
    });
    expect((await user.api.get('/v1/account')).body.balance).toBe(50);
    const { entries } = await ledger.read(user.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ sequence: 1, kind: 'grant', amount: 50 });
    expect(await ledger.expectReconciled(user.id)).toMatchObject({ balance: 50, entries: 1 });
  });
});
