/**
 * Synchronous predictions over HTTP: billing under concurrency, model failures, short balances,
 * Idempotency-Key, input validation, the history and admin refunds. Every money-moving test ends by
 * reconciling the user's account against the ledger read straight from DynamoDB.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Api, type ApiResponse, type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { modelFile, publishModel } from '../support/models.ts';
import { errorPaths, expectProblem } from '../support/problems.ts';
import { useReconciler } from '../support/reconcile.ts';

const MAX_ROWS = 5;
const MAX_BODY_BYTES = 16 * 1024;

const local = useLocalStack({
  environment: {
    SIGNUP_BONUS: '0',
    MAX_PREDICTION_ROWS: String(MAX_ROWS),
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
  },
});
const ledger = useReconciler(local);

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const IRIS_ROW_2 = [6.7, 3.0, 5.2, 2.3];
const DIABETES_ROW = [0.038, 0.05, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.02, -0.018];

let admin: SignedInUser;
/** A model that loads but fails on every run (models/fixtures/runtime-error.onnx), price 3. */
let broken: any;

beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  const published = await publishModel(
    admin.api,
    { name: `broken-${randomBytes(3).toString('hex')}`, price: 3 },
    await modelFile('fixtures/runtime-error.onnx'),
  );
  broken = published.model;
  expect(broken.status).toBe('active');
});

/** A new user with exactly `credits` (the signup bonus is 0 in this file). */
async function newUser(label: string, credits = 0): Promise<SignedInUser> {
  const user = await signUp(local.url, label);
  if (credits > 0) {
    const grant = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
      amount: credits,
      reason: 'test',
    });
    expect(grant.status, JSON.stringify(grant.body)).toBe(201);
  }
  return user;
}

async function balanceOf(api: Api): Promise<number> {
  const account = await api.get('/v1/account');
  expect(account.status).toBe(200);
  return account.body.balance;
}

/** Balance and ledger as stored, to show that a refused request changed nothing. */
async function snapshot(userId: string) {
  const { account, entries } = await ledger.read(userId);
  return { balance: account?.balance, sequence: account?.sequence, entries: entries.length };
}

function predict(api: Api, model: string, input: unknown, headers?: Record<string, string>) {
  return api.post(`/v1/models/${model}/predictions`, { inputs: { input } }, headers);
}

/** Every prediction the caller can list (newest first), walking the pages. */
async function listAll(api: Api, query = '', limit = 100): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 200; page++) {
    const path: string = `/v1/predictions?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const response = await api.get(path);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body.items.length).toBeLessThanOrEqual(limit);
    items.push(...response.body.items);
    cursor = response.body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('the prediction list did not end');
}

function expectNoOutputs(response: ApiResponse) {
  expect(response.body).not.toHaveProperty('outputs');
  expect(JSON.stringify(response.body)).not.toContain('probabilities');
}

describe('concurrent predictions against a small balance', () => {
  it('lets exactly as many succeed as the balance covers: 20 of 50, the other 30 get 402 with nothing charged', async () => {
    const user = await newUser('race', 20);
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => predict(user.api, 'iris', i % 2 ? IRIS_ROW : IRIS_ROW_2)),
    );
    const succeeded = responses.filter((r) => r.status === 201);
    const refused = responses.filter((r) => r.status === 402);
    expect(
      responses.map((r) => r.status).filter((s) => s !== 201 && s !== 402),
      JSON.stringify(responses.find((r) => r.status !== 201 && r.status !== 402)?.body),
    ).toEqual([]);
    expect(succeeded).toHaveLength(20);
    expect(refused).toHaveLength(30);
    for (const response of refused) {
      expectProblem(response, 402, 'insufficient-credits');
      expectNoOutputs(response);
    }
    // Each success was charged 1 and saw its own balance after.
    expect(succeeded.every((r) => r.body.cost === 1 && r.body.rows === 1)).toBe(true);
    expect(succeeded.map((r) => r.body.balance).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    const ids = new Set(succeeded.map((r) => r.body.id));
    expect(ids.size).toBe(20);

    const result = await ledger.expectReconciled(user.id);
    expect(result).toMatchObject({ balance: 0, ledgerSum: 0, entries: 21 });
    const { entries } = await ledger.read(user.id);
    const charges = entries.filter((e) => e.kind === 'charge');
    expect(charges).toHaveLength(20);
    expect(charges.every((e) => e.amount === -1)).toBe(true);
    expect(new Set(charges.map((e) => e.predictionId))).toEqual(ids);
    expect(await balanceOf(user.api)).toBe(0);
    // Refused predictions leave no record.
    const history = await listAll(user.api);
    expect(new Set(history.map((p) => p.id))).toEqual(ids);
  });
});

describe('a model that fails at run time', () => {
  it('answers 422 model-error, charges nothing and records the prediction as failed', async () => {
    const user = await newUser('broken', 30);
    const before = await snapshot(user.id);
    const response = await predict(user.api, broken.id, [IRIS_ROW]);
    const problem = expectProblem(response, 422, 'model-error');
    expect(problem.detail).toMatch(/Nothing was charged/);
    expect(problem.predictionId).toEqual(expect.any(String));
    expectNoOutputs(response);
    // By name, and with several rows: the same.
    const byName = await predict(user.api, broken.name, [IRIS_ROW, IRIS_ROW_2]);
    expectProblem(byName, 422, 'model-error');

    expect(await snapshot(user.id)).toEqual(before);
    expect(await balanceOf(user.api)).toBe(30);
    await ledger.expectReconciled(user.id);

    const history = await listAll(user.api);
    expect(history.map((p) => p.id)).toEqual([byName.body.predictionId, problem.predictionId]);
    expect(history[1]).toMatchObject({
      id: problem.predictionId,
      modelId: broken.id,
      modelName: broken.name,
      modelVersion: 1,
      status: 'failed',
      rows: 1,
      cost: 0,
      error: { code: 'model_error', message: expect.any(String) },
    });
    expect(history[0]).toMatchObject({ status: 'failed', rows: 2, cost: 0 });
    expect(history[1]).not.toHaveProperty('outputs');
    const one = await user.api.get(`/v1/predictions/${problem.predictionId}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ status: 'failed', cost: 0 });
  });
});

describe('a short balance', () => {
  it('answers 402 when the balance does not cover the cost, with nothing charged and no outputs', async () => {
    const user = await newUser('short', 3);
    const before = await snapshot(user.id);
    // digits costs 3 per row: two rows cost 6.
    const digitsRow = Array.from({ length: 64 }, (_, i) => i % 17);
    const tooDear = await predict(user.api, 'digits', [digitsRow, digitsRow]);
    const problem = expectProblem(tooDear, 402, 'insufficient-credits');
    expect(problem).toMatchObject({ cost: 6, balance: 3 });
    expect(problem.detail).toContain('6');
    expectNoOutputs(tooDear);
    expect(await snapshot(user.id)).toEqual(before);

    const affordable = await predict(user.api, 'digits', digitsRow);
    expect(affordable.status).toBe(201);
    expect(affordable.body).toMatchObject({ cost: 3, balance: 0 });
    const broke = await predict(user.api, 'iris', IRIS_ROW);
    expectProblem(broke, 402, 'insufficient-credits');
    expectNoOutputs(broke);
    expect((await listAll(user.api)).map((p) => p.id)).toEqual([affordable.body.id]);
    const result = await ledger.expectReconciled(user.id);
    expect(result).toMatchObject({ balance: 0, entries: 2 });
  });

  it('answers 402 to a user who never had credits', async () => {
    const user = await newUser('empty');
    const response = await predict(user.api, 'iris', IRIS_ROW);
    expectProblem(response, 402, 'insufficient-credits');
    expect(await snapshot(user.id)).toEqual({ balance: 0, sequence: 0, entries: 0 });
    expect(await listAll(user.api)).toEqual([]);
  });
});

describe('Idempotency-Key', () => {
  it('answers the same key and body again with the same response, charged once', async () => {
    const user = await newUser('idem', 10);
    const key = randomUUID();
    const first = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ cost: 1, balance: 9 });
    const again = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await balanceOf(user.api)).toBe(9);
    // A new key is a new prediction.
    const other = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': randomUUID() });
    expect(other.status).toBe(201);
    expect(other.body.id).not.toBe(first.body.id);
    expect(other.body.balance).toBe(8);
    // And the first key still answers as the first time.
    const later = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key });
    expect(later.body).toEqual(first.body);

    const { entries } = await ledger.read(user.id);
    expect(entries.filter((e) => e.kind === 'charge').map((e) => e.predictionId)).toEqual([
      first.body.id,
      other.body.id,
    ]);
    expect((await listAll(user.api)).map((p) => p.id)).toEqual([other.body.id, first.body.id]);
    await ledger.expectReconciled(user.id);
  });

  it('charges once when the same key and body arrive concurrently', async () => {
    const user = await newUser('idem-race', 10);
    const key = randomUUID();
    const responses = await Promise.all(
      Array.from({ length: 6 }, () => predict(user.api, 'iris', IRIS_ROW_2, { 'Idempotency-Key': key })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(6).fill(201));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    expect(responses.every((r) => r.body.balance === 9)).toBe(true);
    expect(await balanceOf(user.api)).toBe(9);
    const result = await ledger.expectReconciled(user.id);
    expect(result.entries).toBe(2);
    expect(await listAll(user.api)).toHaveLength(1);
  });

  it('answers 409 idempotency-key-reused for the same key with a different body or model', async () => {
    const user = await newUser('idem-409', 10);
    const key = randomUUID();
    expect((await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key })).status).toBe(201);
    const before = await snapshot(user.id);
    const otherBody = await predict(user.api, 'iris', IRIS_ROW_2, { 'Idempotency-Key': key });
    expectProblem(otherBody, 409, 'idempotency-key-reused');
    expectNoOutputs(otherBody);
    const otherModel = await predict(user.api, 'breast-cancer', Array(30).fill(1), {
      'Idempotency-Key': key,
    });
    expectProblem(otherModel, 409, 'idempotency-key-reused');
    expect(await snapshot(user.id)).toEqual(before);
    // Keys belong to their user: another user may use the same key.
    const stranger = await newUser('idem-other', 5);
    const theirs = await predict(stranger.api, 'iris', IRIS_ROW_2, { 'Idempotency-Key': key });
    expect(theirs.status).toBe(201);
    expect(theirs.body.balance).toBe(4);
    await ledger.expectReconciled(user.id);
  });

  it('answers 409 idempotency-key-reused also when different bodies with one key arrive concurrently', async () => {
    const user = await newUser('idem-409-race', 10);
    const key = randomUUID();
    const bodies = [IRIS_ROW, IRIS_ROW_2, [5.0, 3.0, 1.5, 0.3], [6.0, 2.9, 4.5, 1.5]];
    const responses = await Promise.all(
      bodies.map((row) => predict(user.api, 'iris', row, { 'Idempotency-Key': key })),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses, JSON.stringify(responses.map((r) => r.body))).toEqual([201, 409, 409, 409]);
    for (const response of responses.filter((r) => r.status === 409)) {
      const problem = expectProblem(response, 409, 'idempotency-key-reused');
      expect(problem.detail).not.toContain('prediction#');
    }
    expect(await balanceOf(user.api)).toBe(9);
    await ledger.expectReconciled(user.id);
  });

  it('does not remember a 402: after a top-up the same key succeeds', async () => {
    const user = await newUser('idem-402');
    const key = randomUUID();
    const refused = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key });
    expectProblem(refused, 402, 'insufficient-credits');
    const topUp = await user.api.post('/v1/account/top-ups', { amount: 5 });
    expect(topUp.status).toBe(201);
    const retried = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key });
    expect(retried.status, JSON.stringify(retried.body)).toBe(201);
    expect(retried.body).toMatchObject({ cost: 1, balance: 4 });
    const replayed = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key });
    expect(replayed.body).toEqual(retried.body);
    expect(await balanceOf(user.api)).toBe(4);
    await ledger.expectReconciled(user.id);
  });

  it('does not remember a 400 or a 422 either', async () => {
    const user = await newUser('idem-4xx', 10);
    const key = randomUUID();
    expectProblem(
      await predict(user.api, 'iris', [1, 2, 3], { 'Idempotency-Key': key }),
      400,
      'validation-failed',
    );
    expect((await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': key })).status).toBe(201);
    const failedKey = randomUUID();
    expectProblem(
      await predict(user.api, broken.id, IRIS_ROW, { 'Idempotency-Key': failedKey }),
      422,
      'model-error',
    );
    const fine = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': failedKey });
    expect(fine.status).toBe(201);
    expect(fine.body.balance).toBe(8);
    await ledger.expectReconciled(user.id);
  });

  it('refuses a key longer than 255 characters with 400', async () => {
    const user = await newUser('idem-long', 5);
    const response = await predict(user.api, 'iris', IRIS_ROW, { 'Idempotency-Key': 'k'.repeat(256) });
    const problem = expectProblem(response, 400, 'validation-failed');
    expect(errorPaths(problem)).toEqual(['header.idempotency-key']);
    expect(await balanceOf(user.api)).toBe(5);
  });
});

describe('inputs that do not match the model', () => {
  let user: SignedInUser;
  beforeAll(async () => {
    user = await newUser('inputs', 50);
  });

  const sixRows = Array.from({ length: MAX_ROWS + 1 }, () => IRIS_ROW);
  const cases: { title: string; body: unknown; paths: string[]; message?: RegExp }[] = [
    {
      title: 'a wrong input name',
      body: { inputs: { features: IRIS_ROW } },
      paths: ['/inputs/features', '/inputs/input'],
    },
    {
      title: 'the wrong rank',
      body: { inputs: { input: [[IRIS_ROW]] } },
      paths: ['/inputs/input'],
      message: /rank 2/,
    },
    {
      title: 'three features where iris takes four (nested form)',
      body: { inputs: { input: [[5.1, 3.5, 1.4]] } },
      paths: ['/inputs/input'],
      message: /dimension 1 must be 4, got 3/,
    },
    {
      title: 'three features where iris takes four (flat form)',
      body: { inputs: { input: [5.1, 3.5, 1.4] } },
      paths: ['/inputs/input'],
      message: /must be 4, got 3/,
    },
    {
      title: 'a string where a number goes',
      body: { inputs: { input: [[5.1, '3.5', 1.4, 0.2]] } },
      paths: ['/inputs/input/0/1'],
      message: /must be a number/,
    },
    {
      title: 'null where a number goes',
      body: { inputs: { input: [5.1, 3.5, null, 0.2] } },
      paths: ['/inputs/input/0/2'],
    },
    {
      title: '"NaN" and "Infinity" as strings',
      body: { inputs: { input: ['NaN', 3.5, 'Infinity', 0.2] } },
      paths: ['/inputs/input/0/0', '/inputs/input/0/2'],
    },
    {
      title: 'ragged nested arrays',
      body: { inputs: { input: [IRIS_ROW, [1, 2, 3]] } },
      paths: ['/inputs/input/1'],
      message: /ragged/,
    },
    { title: 'an empty array', body: { inputs: { input: [] } }, paths: ['/inputs/input'], message: /empty/ },
    { title: 'an empty row', body: { inputs: { input: [[]] } }, paths: ['/inputs/input/0'] },
    {
      title: `more rows than MAX_PREDICTION_ROWS (${MAX_ROWS})`,
      body: { inputs: { input: sixRows } },
      paths: ['/inputs/input'],
      message: /6 rows, the limit is 5/,
    },
    { title: 'missing inputs', body: {}, paths: ['/inputs'] },
    { title: 'inputs that are not an object', body: { inputs: IRIS_ROW }, paths: ['/inputs'] },
    {
      title: 'an extra top-level field',
      body: { inputs: { input: IRIS_ROW }, explain: true },
      paths: ['/explain'],
    },
  ];

  for (const { title, body, paths, message } of cases) {
    it(`refuses ${title} with 400 naming the input, charging nothing`, async () => {
      const before = await snapshot(user.id);
      const response = await user.api.post('/v1/models/iris/predictions', body);
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem)).toEqual(paths);
      if (message) expect(problem.errors?.[0]?.message).toMatch(message);
      expectNoOutputs(response);
      expect(await snapshot(user.id)).toEqual(before);
    });
  }

  it('says which input, what was expected and what came', async () => {
    const response = await predict(user.api, 'iris', [[5.1, 3.5, 1.4]]);
    const problem = expectProblem(response, 400, 'validation-failed');
    expect(problem.detail).toContain('/inputs/input');
    expect(problem.detail).toContain('must be 4');
    expect(problem.detail).toContain('[1, 3]');
  });

  it('refuses a body that is not JSON (a bare NaN) with 400', async () => {
    const before = await snapshot(user.id);
    const response = await user.api.request('POST', '/v1/models/iris/predictions', {
      rawBody: '{"inputs": {"input": [NaN, 3.5, 1.4, 0.2]}}',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 400, 'validation-failed');
    expect(await snapshot(user.id)).toEqual(before);
  });

  it('refuses arrays nested thousands deep with 400, not a server error', async () => {
    const before = await snapshot(user.id);
    const depth = 6000;
    const rawBody = `{"inputs": {"input": ${'['.repeat(depth)}1${']'.repeat(depth)}}}`;
    expect(rawBody.length).toBeLessThan(MAX_BODY_BYTES);
    for (const headers of [{}, { 'idempotency-key': randomUUID() }] as Record<string, string>[]) {
      const response = await user.api.request('POST', '/v1/models/iris/predictions', {
        rawBody,
        headers: { 'content-type': 'application/json', ...headers },
      });
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem)[0]).toMatch(/^\/inputs\/input\/0/);
    }
    expect(await snapshot(user.id)).toEqual(before);
  });

  it('accepts exactly MAX_PREDICTION_ROWS rows, charged per row', async () => {
    const rows = Array.from({ length: MAX_ROWS }, (_, i) => (i % 2 ? IRIS_ROW : IRIS_ROW_2));
    const before = await balanceOf(user.api);
    const response = await predict(user.api, 'iris', rows);
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body).toMatchObject({ rows: MAX_ROWS, cost: MAX_ROWS, balance: before - MAX_ROWS });
    expect(response.body.outputs.label).toEqual([2, 0, 2, 0, 2]);
  });

  it('refuses a body over MAX_BODY_BYTES with 413 payload-too-large', async () => {
    const before = await snapshot(user.id);
    const rows = Array.from({ length: 2000 }, () => IRIS_ROW);
    const body = { inputs: { input: rows } };
    expect(JSON.stringify(body).length).toBeGreaterThan(MAX_BODY_BYTES);
    const response = await user.api.post('/v1/models/iris/predictions', body);
    const problem = expectProblem(response, 413, 'payload-too-large');
    expect(problem.detail).toContain(String(MAX_BODY_BYTES));
    expect(await snapshot(user.id)).toEqual(before);
  });

  it('answers 404 for an unknown model, by name or id', async () => {
    const before = await snapshot(user.id);
    expectProblem(await predict(user.api, 'no-such-model', IRIS_ROW), 404, 'not-found');
    expectProblem(await predict(user.api, 'mdl_01ARZ3NDEKTSV4RRFFQ69G5FAV', IRIS_ROW), 404, 'not-found');
    expect(await snapshot(user.id)).toEqual(before);
  });

  it('charges a new price and answers 404 once retired, though this container cached the model by name', async () => {
    const copy = (
      await publishModel(
        admin.api,
        { name: `retiring-${randomBytes(3).toString('hex')}`, price: 1 },
        await modelFile('iris/model.onnx'),
      )
    ).model;
    expect(copy.status).toBe('active');
    const warm = await predict(user.api, copy.name, IRIS_ROW);
    expect(warm.body).toMatchObject({ modelId: copy.id, cost: 1 });

    expect((await admin.api.patch(`/v1/models/${copy.id}`, { price: 2 })).status).toBe(200);
    const repriced = await predict(user.api, copy.name, IRIS_ROW);
    expect(repriced.body).toMatchObject({ modelId: copy.id, cost: 2, balance: warm.body.balance - 2 });

    expect((await admin.api.patch(`/v1/models/${copy.id}`, { status: 'retired' })).status).toBe(200);
    const before = await snapshot(user.id);
    expectProblem(await predict(user.api, copy.name, IRIS_ROW), 404, 'not-found');
    expectProblem(await predict(user.api, copy.id, IRIS_ROW), 404, 'not-found');
    expectProblem(await predict(user.api, copy.name, IRIS_ROW), 404, 'not-found');
    expect(await snapshot(user.id)).toEqual(before);
    await ledger.expectReconciled(user.id);
  });
});

describe('the prediction history', () => {
  let alice: SignedInUser;
  let bob: SignedInUser;
  /** Alice's predictions in the order she made them. */
  const made: { id: string; model: string; modelId: string; outputs: unknown }[] = [];
  let bobsId: string;

  beforeAll(async () => {
    alice = await newUser('alice', 100);
    bob = await newUser('bob', 10);
    const plan: [string, unknown][] = [
      ['iris', IRIS_ROW],
      ['diabetes', DIABETES_ROW],
      ['iris', [IRIS_ROW, IRIS_ROW_2]],
      ['breast-cancer', Array(30).fill(0.5)],
      ['iris', IRIS_ROW_2],
      ['diabetes', [DIABETES_ROW, DIABETES_ROW]],
      ['iris', IRIS_ROW],
    ];
    for (const [model, input] of plan) {
      const response = await predict(alice.api, model, input);
      expect(response.status).toBe(201);
      made.push({
        id: response.body.id,
        model,
        modelId: response.body.modelId,
        outputs: response.body.outputs,
      });
    }
    const theirs = await predict(bob.api, 'iris', IRIS_ROW);
    expect(theirs.status).toBe(201);
    bobsId = theirs.body.id;
  });

  it('lists only your own predictions, newest first', async () => {
    const response = await alice.api.get('/v1/predictions');
    expect(response.status).toBe(200);
    expect(response.body.nextCursor).toBeNull();
    const items = response.body.items as any[];
    expect(items.map((p) => p.id)).toEqual(made.map((p) => p.id).reverse());
    expect(items.map((p) => p.id)).not.toContain(bobsId);
    const newest = items[0];
    expect(newest).toMatchObject({
      modelName: 'iris',
      modelVersion: 1,
      status: 'succeeded',
      rows: 1,
      cost: 1,
      outputs: made.at(-1)?.outputs,
    });
    expect(newest.createdAt).toMatch(ISO);
    expect(newest.latencyMs).toEqual(expect.any(Number));
    expect(items.find((p) => p.id === made[2]?.id)).toMatchObject({ rows: 2, cost: 2 });
    expect((await listAll(bob.api)).map((p) => p.id)).toEqual([bobsId]);
  });

  it('filters by model name or id', async () => {
    const irisIds = made
      .filter((p) => p.model === 'iris')
      .map((p) => p.id)
      .reverse();
    const byName = await alice.api.get('/v1/predictions?modelId=iris');
    expect(byName.status).toBe(200);
    expect(byName.body.items.map((p: any) => p.id)).toEqual(irisIds);
    const diabetes = made.find((p) => p.model === 'diabetes');
    const byId = await listAll(alice.api, `&modelId=${diabetes?.modelId}`);
    expect(byId.map((p) => p.id)).toEqual(
      made
        .filter((p) => p.model === 'diabetes')
        .map((p) => p.id)
        .reverse(),
    );
    expect(byId.every((p) => p.modelName === 'diabetes')).toBe(true);
    expect(await listAll(alice.api, '&modelId=digits')).toEqual([]);
  });

  it('pages with limit and cursor, also under a filter', async () => {
    const all = made.map((p) => p.id).reverse();
    const first = await alice.api.get('/v1/predictions?limit=2');
    expect(first.body.items.map((p: any) => p.id)).toEqual(all.slice(0, 2));
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await alice.api.get(
      `/v1/predictions?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
    );
    expect(second.body.items.map((p: any) => p.id)).toEqual(all.slice(2, 4));

    expect((await listAll(alice.api, '', 2)).map((p) => p.id)).toEqual(all);
    expect((await listAll(alice.api, '', 3)).map((p) => p.id)).toEqual(all);
    expect((await listAll(alice.api, '&modelId=iris', 1)).map((p) => p.id)).toEqual(
      made
        .filter((p) => p.model === 'iris')
        .map((p) => p.id)
        .reverse(),
    );
  });

  it('refuses a bad limit or cursor with 400', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'cursor=not-a-cursor']) {
      const problem = expectProblem(
        await alice.api.get(`/v1/predictions?${query}`),
        400,
        'validation-failed',
      );
      expect(errorPaths(problem).length).toBeGreaterThan(0);
    }
  });

  it("returns your own prediction by id with its outputs, and 404 for another user's", async () => {
    const mine = made[2];
    const response = await alice.api.get(`/v1/predictions/${mine?.id}`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: mine?.id,
      modelId: mine?.modelId,
      modelName: 'iris',
      status: 'succeeded',
      rows: 2,
      cost: 2,
      outputs: mine?.outputs,
    });
    expectProblem(await alice.api.get(`/v1/predictions/${bobsId}`), 404, 'not-found');
    expectProblem(await bob.api.get(`/v1/predictions/${mine?.id}`), 404, 'not-found');
    expectProblem(await alice.api.get('/v1/predictions/01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404, 'not-found');
  });
});

describe('admin refunds', () => {
  let user: SignedInUser;
  let prediction: any;

  beforeAll(async () => {
    user = await newUser('refund', 20);
    const response = await predict(user.api, 'breast-cancer', [Array(30).fill(1), Array(30).fill(2)]);
    expect(response.status).toBe(201);
    prediction = response.body;
    expect(prediction).toMatchObject({ rows: 2, cost: 4, balance: 16 });
  });

  it("refuses a user's refund with 403", async () => {
    const response = await user.api.post(`/v1/admin/predictions/${prediction.id}/refunds`, {
      reason: 'please',
    });
    expectProblem(response, 403, 'forbidden');
    expect(await balanceOf(user.api)).toBe(16);
  });

  it("gives the prediction's cost back once, as a refund ledger entry", async () => {
    const response = await admin.api.post(`/v1/admin/predictions/${prediction.id}/refunds`, {
      reason: 'wrong answer',
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body).toMatchObject({
      transaction: { kind: 'refund', amount: 4, balanceAfter: 20, predictionId: prediction.id },
      balance: 20,
    });
    expect(await balanceOf(user.api)).toBe(20);
    const { entries } = await ledger.read(user.id);
    const refunds = entries.filter((e) => e.kind === 'refund');
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ amount: 4, predictionId: prediction.id, reason: 'wrong answer' });
    const transactions = await user.api.get('/v1/account/transactions');
    expect(transactions.body.items[0]).toMatchObject({
      kind: 'refund',
      amount: 4,
      predictionId: prediction.id,
    });
    const record = await user.api.get(`/v1/predictions/${prediction.id}`);
    expect(record.body.refundedAt).toMatch(ISO);
    expect(record.body.cost).toBe(4);
    await ledger.expectReconciled(user.id);
  });

  it('answers a second refund with 409 and changes nothing', async () => {
    const before = await snapshot(user.id);
    const response = await admin.api.post(`/v1/admin/predictions/${prediction.id}/refunds`, {
      reason: 'again',
    });
    expectProblem(response, 409, 'conflict');
    expect(await snapshot(user.id)).toEqual(before);
  });

  it('refunds once when two refunds race', async () => {
    const charged = await predict(user.api, 'iris', IRIS_ROW);
    expect(charged.status).toBe(201);
    const responses = await Promise.all(
      [1, 2, 3].map((i) =>
        admin.api.post(`/v1/admin/predictions/${charged.body.id}/refunds`, { reason: `race ${i}` }),
      ),
    );
    expect(responses.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    expect(await balanceOf(user.api)).toBe(20);
    const { entries } = await ledger.read(user.id);
    expect(entries.filter((e) => e.kind === 'refund' && e.predictionId === charged.body.id)).toHaveLength(1);
    await ledger.expectReconciled(user.id);
  });

  it('answers 409 for a failed prediction (nothing was charged), 404 for an unknown one, 400 without a reason', async () => {
    const failed = await predict(user.api, broken.id, IRIS_ROW);
    expectProblem(failed, 422, 'model-error');
    const before = await snapshot(user.id);
    expectProblem(
      await admin.api.post(`/v1/admin/predictions/${failed.body.predictionId}/refunds`, { reason: 'x' }),
      409,
      'conflict',
    );
    expectProblem(
      await admin.api.post('/v1/admin/predictions/01ARZ3NDEKTSV4RRFFQ69G5FAV/refunds', { reason: 'x' }),
      404,
      'not-found',
    );
    const noReason = expectProblem(
      await admin.api.post(`/v1/admin/predictions/${prediction.id}/refunds`, {}),
      400,
      'validation-failed',
    );
    expect(errorPaths(noReason)).toEqual(['/reason']);
    expect(await snapshot(user.id)).toEqual(before);
  });
});
