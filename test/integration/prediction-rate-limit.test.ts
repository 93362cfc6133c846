/**
 * Abuse limits on predictions, with PREDICTIONS_PER_MINUTE lowered to 5 for this file: the sixth
 * prediction within a minute is 429 with Retry-After, and a user with an empty balance cannot keep a
 * model busy for free (402 without running it).
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { InvocationRecord } from '../../infra/local/lambda-runtime.ts';
import { type Api, type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { modelFile, publishModel } from '../support/models.ts';
import { expectProblem } from '../support/problems.ts';
import { useReconciler } from '../support/reconcile.ts';

const PER_MINUTE = 5;

const local = useLocalStack({
  environment: { PREDICTIONS_PER_MINUTE: String(PER_MINUTE), SIGNUP_BONUS: '0' },
});
const ledger = useReconciler(local);

const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

let admin: SignedInUser;

beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

async function newUser(label: string, credits: number): Promise<SignedInUser> {
  const user = await signUp(local.url, label);
  if (credits > 0) {
    const grant = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
      amount: credits,
      reason: 'test',
    });
    expect(grant.status).toBe(201);
  }
  return user;
}

const predict = (api: Api, model: string) =>
  api.post(`/v1/models/${model}/predictions`, { inputs: { input: IRIS_ROW } });

describe('the prediction rate limit', () => {
  it('answers the sixth prediction within a minute with 429 and Retry-After, charging nothing', async () => {
    const user = await newUser('limited', 50);
    for (let i = 0; i < PER_MINUTE; i++) {
      const response = await predict(user.api, 'iris');
      expect(response.status, JSON.stringify(response.body)).toBe(201);
    }
    const limited = await predict(user.api, 'iris');
    const problem = expectProblem(limited, 429, 'rate-limited');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(problem.retryAfter).toBe(retryAfter);
    expect(limited.body).not.toHaveProperty('outputs');
    // Still limited a moment later; other requests of the same user are not.
    expectProblem(await predict(user.api, 'iris'), 429, 'rate-limited');
    expect((await user.api.get('/v1/predictions')).body.items).toHaveLength(PER_MINUTE);

    const result = await ledger.expectReconciled(user.id);
    expect(result.balance).toBe(50 - PER_MINUTE);
    expect(result.entries).toBe(1 + PER_MINUTE);
  });

  it('counts each user on their own', async () => {
    const first = await newUser('first', 10);
    const second = await newUser('second', 10);
    for (let i = 0; i < PER_MINUTE; i++) expect((await predict(first.api, 'iris')).status).toBe(201);
    expectProblem(await predict(first.api, 'iris'), 429, 'rate-limited');
    expect((await predict(second.api, 'iris')).status).toBe(201);
  });
});

describe('the rate limit across containers', () => {
  it('holds per container for now: a burst spread over several containers gets more through', async () => {
    const user = await newUser('burst', 100);
    const containers = new Set<number>();
    const listener = (record: InvocationRecord) => {
      if (record.name === 'predict') containers.add(record.container);
    };
    local.stack.runtime.events.on('invocation', listener);
    const burst = 16;
    const statuses = await Promise.all(
      Array.from({ length: burst }, async () => (await predict(user.api, 'iris')).status),
    ).finally(() => local.stack.runtime.events.off('invocation', listener));

    const succeeded = statuses.filter((s) => s === 201).length;
    expect(statuses.filter((s) => s === 429)).toHaveLength(burst - succeeded);
    // Each container's limiter is its own module state (the README says so): with several
    // containers more than PER_MINUTE get through, but never more than PER_MINUTE per container.
    expect(containers.size).toBeGreaterThan(1);
    expect(succeeded).toBeGreaterThan(PER_MINUTE);
    expect(succeeded).toBeLessThanOrEqual(PER_MINUTE * containers.size);
    expect((await ledger.expectReconciled(user.id)).balance).toBe(100 - succeeded);
  });
});

describe('an empty balance', () => {
  let broken: any;

  beforeAll(async () => {
    // A model that fails on every run: if it ran, the answer would be 422 and a failed record.
    broken = (
      await publishModel(
        admin.api,
        { name: `broken-${randomBytes(3).toString('hex')}`, price: 2 },
        await modelFile('fixtures/runtime-error.onnx'),
      )
    ).model;
    expect(broken.status).toBe('active');
  });

  it('cannot get the model to run: 402 without running it, and nothing recorded', async () => {
    const user = await newUser('drained', 1);
    const spent = await predict(user.api, 'iris');
    expect(spent.status).toBe(201);
    expect(spent.body.balance).toBe(0);
    for (let i = 0; i < 3; i++) {
      const response = await predict(user.api, broken.id);
      expectProblem(response, 402, 'insufficient-credits');
    }
    const history = (await user.api.get('/v1/predictions')).body.items as any[];
    expect(history.map((p) => p.id)).toEqual([spent.body.id]);
    expect(history.some((p) => p.status === 'failed')).toBe(false);

    // With credits again, the same model does run (and fails, uncharged).
    const topUp = await user.api.post('/v1/account/top-ups', { amount: 2 });
    expect(topUp.status).toBe(201);
    expectProblem(await predict(user.api, broken.id), 422, 'model-error');
    const result = await ledger.expectReconciled(user.id);
    expect(result.balance).toBe(2);
  });

  it('cannot get the model to run even on its first prediction, before this container saw its balance', async () => {
    const user = await newUser('never-paid', 0);
    for (let i = 0; i < 3; i++) {
      const response = await predict(user.api, broken.id);
      expectProblem(response, 402, 'insufficient-credits');
      expect(response.body).toMatchObject({ cost: 2, balance: 0 });
    }
    expect((await user.api.get('/v1/predictions')).body.items).toEqual([]);
    const { account, entries } = await ledger.read(user.id);
    expect(account?.balance).toBe(0);
    expect(entries).toEqual([]);
  });
});
