/**
 * Usage reports and admin statistics agree exactly with the raw records. A scripted mix of activity
 * (several users, sync predictions on several models with one and many rows, a model error, 402s, a
 * batch with invalid rows and one that runs out of credits, top-ups, grants, a refund) is replayed;
 * then every LEDGER#, PRED#, BATCH# and PROFILE item is read straight from the table and the
 * expected numbers are recomputed from them, independently of the counters the reports read.
 * CSV exports are parsed back and compared with their JSON twins; bad input, roles and the audit
 * trail are checked too.
 *
 * Everything here happens on one UTC day; a run that straddles midnight UTC could attribute a batch
 * chunk to the next day (the batch record keeps only its creation time).
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Api, type ApiResponse, type SignedInUser, signIn, signUp } from '../support/api.ts';
import { TableReader } from '../support/dynamo.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { errorPaths, expectProblem } from '../support/problems.ts';
import { useReconciler } from '../support/reconcile.ts';

const SIGNUP_BONUS = 100;
// Small chunks, so a batch is charged in several transactions.
const local = useLocalStack({ environment: { SIGNUP_BONUS: String(SIGNUP_BONUS), BATCH_CHUNK_SIZE: '4' } });
const ledger = useReconciler(local);

const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const BREAST_CANCER_ROW = [
  17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4,
  0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119,
  0.2654, 0.4601, 0.1189,
];
const DIABETES_ROW = [0.038, 0.05, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.02, -0.018];
const DIGITS_ROW = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);

const rowsOf = (row: number[], count: number) => Array.from({ length: count }, () => row);

interface Counts {
  predictions: number;
  failed: number;
  credits: number;
}
const zero = (): Counts => ({ predictions: 0, failed: 0, credits: 0 });
const active = (c: Counts) => c.predictions + c.failed > 0;

let admin: SignedInUser;
let alice: SignedInUser;
let bob: SignedInUser;
let carol: SignedInUser;
let dave: SignedInUser;
/** The admin's model that loads but fails on every run. */
let broken: any;
/** What the script did that the audit trail must show, oldest first. */
const audited: { action: string; targetId: string }[] = [];
/** Statuses of every prediction request of the script, to show the mix really happened. */
const statuses: number[] = [];

async function predict(user: SignedInUser, model: string, rows: number[][] | number[]) {
  const response = await user.api.post(`/v1/models/${model}/predictions`, { inputs: { input: rows } });
  statuses.push(response.status);
  return response;
}

async function expectPredicted(user: SignedInUser, model: string, rows: number[][] | number[]) {
  const response = await predict(user, model, rows);
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

async function grant(user: SignedInUser, amount: number) {
  const response = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
    amount,
    reason: 'report test',
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  audited.push({ action: 'credits.grant', targetId: user.id });
}

/** Creates a batch, uploads the file and waits until the worker has finished it. */
async function runBatch(user: SignedInUser, modelId: string, csv: string) {
  const created = await user.api.post('/v1/batches', { modelId, format: 'csv' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { url, method, headers } = created.body.upload;
  const upload = await fetch(url, { method, headers, body: csv });
  expect(upload.ok, await upload.text()).toBe(true);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const batch = await user.api.get(`/v1/batches/${created.body.id}`);
    expect(batch.status).toBe(200);
    if (['succeeded', 'failed'].includes(batch.body.status)) return batch.body;
    if (Date.now() > deadline) throw new Error(`batch not finished: ${JSON.stringify(batch.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function publishBroken() {
  const name = `broken-${Date.now().toString(36)}`;
  const created = await admin.api.post('/v1/models', { name, description: 'fails', price: 2 });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  audited.push({ action: 'model.create', targetId: created.body.model.id });
  const bytes = await readFile(new URL('../../models/fixtures/runtime-error.onnx', import.meta.url));
  const { url, method, headers } = created.body.upload;
  const upload = await fetch(url, { method, headers, body: bytes });
  expect(upload.ok).toBe(true);
  const deadline = Date.now() + 45_000;
  for (;;) {
    const model = await admin.api.get(`/v1/models/${created.body.model.id}`);
    if (model.body.status !== 'pending_upload') return model.body;
    if (Date.now() > deadline) throw new Error('the model was not validated in time');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  [alice, bob, carol, dave] = (await Promise.all(
    ['alice', 'bob', 'carol', 'dave'].map((label) => signUp(local.url, `report-${label}`)),
  )) as [SignedInUser, SignedInUser, SignedInUser, SignedInUser];

  // The admin publishes a model that fails on every run, and reprices it.
  broken = await publishBroken();
  expect(broken.status).toBe('active');
  const patched = await admin.api.patch(`/v1/models/${broken.id}`, { price: 3, description: 'always fails' });
  expect(patched.status).toBe(200);
  audited.push({ action: 'model.update', targetId: broken.id });

  // Alice: one- and many-row predictions on all four demo models, a model error, a top-up, a grant,
  // a refund, then a prediction she cannot afford.
  await expectPredicted(alice, 'iris', IRIS_ROW);
  await expectPredicted(alice, 'iris', rowsOf(IRIS_ROW, 3));
  const refunded = await expectPredicted(alice, 'breast-cancer', rowsOf(BREAST_CANCER_ROW, 2));
  await expectPredicted(alice, 'diabetes', DIABETES_ROW);
  await expectPredicted(alice, 'digits', rowsOf(DIGITS_ROW, 2));
  const failed = await predict(alice, broken.id, rowsOf(IRIS_ROW, 2));
  expectProblem(failed, 422, 'model-error');
  expect((await alice.api.post('/v1/account/top-ups', { amount: 50 })).status).toBe(201);
  await grant(alice, 20);
  const refund = await admin.api.post(`/v1/admin/predictions/${refunded.id}/refunds`, {
    reason: 'report test',
  });
  expect(refund.status, JSON.stringify(refund.body)).toBe(201);
  audited.push({ action: 'prediction.refund', targetId: refunded.id });
  expectProblem(await predict(alice, 'digits', rowsOf(DIGITS_ROW, 60)), 402, 'insufficient-credits');

  // Bob: a grant, a sync prediction and a batch with invalid rows.
  await grant(bob, 30);
  await expectPredicted(bob, 'diabetes', rowsOf(DIABETES_ROW, 3));
  const bobBatch = await runBatch(
    bob,
    'iris',
    [
      'sepal_length,sepal_width,petal_length,petal_width',
      '5.1,3.5,1.4,0.2',
      '6.7,3.0,5.2,2.3',
      'abc,3.0,5.2,2.3',
      '5.9,3.0,5.1,1.8',
      '4.9,3.1,1.5',
      '5.0,3.6,1.4,0.2',
      '6.3,3.3,6.0,2.5,9.9',
      '5.8,2.7,5.1,1.9',
      '7.1,3.0,5.9,2.1',
      '6.5,3.0,5.8,2.2',
      '',
    ].join('\n'),
  );
  expect(bobBatch).toMatchObject({ status: 'succeeded', rows: 10, succeeded: 7, failed: 3, cost: 7 });

  // Carol: spends most of her credits, then a batch runs out of them, then a 402.
  await expectPredicted(carol, 'digits', rowsOf(DIGITS_ROW, 30));
  const carolBatch = await runBatch(
    carol,
    'digits',
    [
      DIGITS_ROW.map((_, i) => `pixel_${i}`).join(','),
      ...rowsOf(DIGITS_ROW, 8).map((r) => r.join(',')),
      '',
    ].join('\n'),
  );
  expect(carolBatch).toMatchObject({ status: 'succeeded', rows: 8, succeeded: 3, failed: 5, cost: 9 });
  expectProblem(await predict(carol, 'iris', rowsOf(IRIS_ROW, 2)), 402, 'insufficient-credits');

  // Dave only signs up.
  expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(5);
  for (const user of [alice, bob, carol, dave]) await ledger.expectReconciled(user.id);
}, 240_000);

/** The numbers recomputed from the raw items of the table. */
interface Expected {
  /** userId → "day|modelId" → counts. */
  usage: Map<string, Map<string, Counts>>;
  creditsAddedByDay: Map<string, number>;
  users: number;
}

async function recompute(): Promise<Expected> {
  const reader = new TableReader(local.stack);
  const items = await reader.scanAll();
  reader.destroy();
  const usage = new Map<string, Map<string, Counts>>();
  const creditsAddedByDay = new Map<string, number>();
  let users = 0;
  const add = (userId: string, day: string, modelId: string, counts: Partial<Counts>) => {
    const byKey = usage.get(userId) ?? usage.set(userId, new Map()).get(userId);
    if (!byKey) throw new Error('unreachable');
    const key = `${day}|${modelId}`;
    const current = byKey.get(key) ?? zero();
    current.predictions += counts.predictions ?? 0;
    current.failed += counts.failed ?? 0;
    current.credits += counts.credits ?? 0;
    byKey.set(key, current);
  };
  const charges = new Map<string, number>();
  const chargeKeyOf = (item: Record<string, any>) => item.predictionId ?? item.batchId;
  const costs = new Map<string, number>();
  for (const item of items as Record<string, any>[]) {
    const pk = String(item.pk);
    const sk = String(item.sk);
    if (!pk.startsWith('USER#')) continue;
    const userId = pk.slice('USER#'.length);
    if (sk === 'PROFILE') users++;
    if (sk.startsWith('PRED#')) {
      const day = String(item.createdAt).slice(0, 10);
      if (item.status === 'succeeded') add(userId, day, item.modelId, { predictions: Number(item.rows) });
      else if (item.status === 'failed') add(userId, day, item.modelId, { failed: Number(item.rows) });
      else throw new Error(`unexpected prediction status ${item.status}`);
      costs.set(item.id, Number(item.cost));
    }
    if (sk.startsWith('BATCH#')) {
      const day = String(item.createdAt).slice(0, 10);
      add(userId, day, item.modelId, { predictions: Number(item.succeeded), failed: Number(item.failed) });
      costs.set(item.id, Number(item.cost));
    }
    if (sk.startsWith('LEDGER#')) {
      const day = String(item.createdAt).slice(0, 10);
      const amount = Number(item.amount);
      if (item.kind === 'charge') {
        add(userId, day, item.modelId, { credits: -amount });
        charges.set(chargeKeyOf(item), (charges.get(chargeKeyOf(item)) ?? 0) - amount);
      }
      if (item.kind === 'top_up' || item.kind === 'grant')
        creditsAddedByDay.set(day, (creditsAddedByDay.get(day) ?? 0) + amount);
    }
  }
  // The raw records agree among themselves: each charge paid exactly its prediction's or batch's cost.
  for (const [id, cost] of costs) expect(charges.get(id) ?? 0, id).toBe(cost);
  for (const id of charges.keys()) expect(costs.has(id), `a charge for ${id} without a record`).toBe(true);
  return { usage, creditsAddedByDay, users };
}

function sum(counts: Iterable<Counts>): Counts {
  const total = zero();
  for (const c of counts) {
    total.predictions += c.predictions;
    total.failed += c.failed;
    total.credits += c.credits;
  }
  return total;
}

/** The last 30 UTC days up to today, oldest first, built by hand. */
function last30Days(): string[] {
  const today = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
  return Array.from({ length: 30 }, (_, i) =>
    new Date(today - (29 - i) * 86_400_000).toISOString().slice(0, 10),
  );
}

function expectedByDay(expected: Expected, userId: string, days: string[]) {
  const records = [...(expected.usage.get(userId) ?? new Map<string, Counts>()).entries()];
  return days.map((period) => ({
    period,
    ...sum(records.filter(([key]) => key.startsWith(`${period}|`)).map(([, c]) => c)),
  }));
}

function expectedByModel(expected: Expected, userId: string) {
  const byModel = new Map<string, Counts>();
  for (const [key, counts] of expected.usage.get(userId) ?? new Map<string, Counts>()) {
    const modelId = key.split('|')[1] as string;
    byModel.set(modelId, sum([byModel.get(modelId) ?? zero(), counts]));
  }
  return byModel;
}

/** Every page of a list endpoint, newest first. */
async function listAll(api: Api, path: string, limit = 7): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const separator = path.includes('?') ? '&' : '?';
    const response: ApiResponse = await api.get(
      `${path}${separator}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    items.push(...response.body.items);
    cursor = response.body.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('too many pages');
}

function parseCsv(text: string): Record<string, string>[] {
  return parse(text, { columns: true, bom: true }) as Record<string, string>[];
}

const asCsvRow = (row: Record<string, unknown>, columns: string[]) =>
  Object.fromEntries(
    columns.map((c) => {
      const value = row[c];
      return [c, value === undefined || value === null ? '' : String(value)];
    }),
  );

describe('GET /v1/usage', () => {
  it('by day agrees exactly with the raw records for every user, with every day of the last 30', async () => {
    const expected = await recompute();
    const days = last30Days();
    for (const user of [alice, bob, carol, dave]) {
      const report = await user.api.get('/v1/usage?groupBy=day');
      expect(report.status, JSON.stringify(report.body)).toBe(200);
      expect(report.body.from).toBe(days[0]);
      expect(report.body.to).toBe(days.at(-1));
      expect(report.body.groupBy).toBe('day');
      const items = expectedByDay(expected, user.id, days);
      expect(report.body.items, user.email).toEqual(items);
      expect(report.body.totals).toEqual(sum(items));
      // The default groupBy is day.
      expect((await user.api.get('/v1/usage')).body).toEqual(report.body);
    }
    // The mix really produced all kinds of rows.
    const alices = sum(expectedByModel(expected, alice.id).values());
    expect(alices).toEqual({ predictions: 9, failed: 2, credits: 16 });
    expect(sum(expectedByModel(expected, bob.id).values())).toEqual({
      predictions: 10,
      failed: 3,
      credits: 13,
    });
    expect(sum(expectedByModel(expected, carol.id).values())).toEqual({
      predictions: 33,
      failed: 5,
      credits: 99,
    });
    expect(expected.usage.has(dave.id)).toBe(false);
  });

  it('by model agrees exactly with the raw records, most credits first', async () => {
    const expected = await recompute();
    for (const user of [alice, bob, carol, dave]) {
      const report = await user.api.get('/v1/usage?groupBy=model');
      expect(report.status).toBe(200);
      expect(report.body.groupBy).toBe('model');
      const byModel = expectedByModel(expected, user.id);
      const items = report.body.items as (Counts & { modelId: string })[];
      expect(items.map((i) => i.modelId).sort()).toEqual([...byModel.keys()].sort());
      for (const item of items) expect(item).toEqual({ modelId: item.modelId, ...byModel.get(item.modelId) });
      for (let i = 1; i < items.length; i++)
        expect(items[i - 1]?.credits).toBeGreaterThanOrEqual(items[i]?.credits ?? 0);
      expect(report.body.totals).toEqual(sum(byModel.values()));
    }
    // Alice used five models, among them the broken one with failures only.
    const alices = expectedByModel(expected, alice.id);
    expect(alices.size).toBe(5);
    expect(alices.get(broken.id)).toEqual({ predictions: 0, failed: 2, credits: 0 });
  });

  it('covers an explicit inclusive range, and a range without activity is all zeros', async () => {
    const expected = await recompute();
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const report = await alice.api.get(`/v1/usage?from=${yesterday}&to=${today}&groupBy=day`);
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ from: yesterday, to: today });
    expect(report.body.items).toEqual(expectedByDay(expected, alice.id, [yesterday, today]));
    const past = await alice.api.get('/v1/usage?from=2020-02-27&to=2020-03-01&groupBy=model');
    expect(past.body).toEqual({
      from: '2020-02-27',
      to: '2020-03-01',
      groupBy: 'model',
      items: [],
      totals: zero(),
    });
    const pastDays = await alice.api.get('/v1/usage?from=2020-02-27&to=2020-03-01');
    expect(pastDays.body.items.map((i: any) => i.period)).toEqual([
      '2020-02-27',
      '2020-02-28',
      '2020-02-29',
      '2020-03-01',
    ]);
  });

  it('gives the same report as CSV with ?format=csv and with Accept: text/csv', async () => {
    for (const groupBy of ['day', 'model'] as const) {
      const key = groupBy === 'day' ? 'period' : 'modelId';
      const json = await alice.api.get(`/v1/usage?groupBy=${groupBy}`);
      const columns = [key, 'predictions', 'failed', 'credits'];
      const expectedRows = (json.body.items as Record<string, unknown>[]).map((row) =>
        asCsvRow(row, columns),
      );
      const viaQuery = await alice.api.get(`/v1/usage?groupBy=${groupBy}&format=csv`);
      const viaAccept = await alice.api.get(`/v1/usage?groupBy=${groupBy}`, { accept: 'text/csv' });
      for (const csv of [viaQuery, viaAccept]) {
        expect(csv.status).toBe(200);
        expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
        expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename=".+\.csv"$/);
        expect(typeof csv.body).toBe('string');
        expect((csv.body as string).split('\r\n')[0]).toBe(columns.join(','));
        expect(parseCsv(csv.body)).toEqual(expectedRows);
      }
      // ?format=json wins over the Accept header.
      const forcedJson = await alice.api.get(`/v1/usage?groupBy=${groupBy}&format=json`, {
        accept: 'text/csv',
      });
      expect(forcedJson.body).toEqual(json.body);
    }
  });

  it('refuses bad query input with 400 validation-failed', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const bad = [
      ['from after to', '?from=2026-03-02&to=2026-03-01', 'query.from'],
      ['a day that does not exist', '?from=2026-02-30&to=2026-03-05', 'query.from'],
      ['a malformed date', `?from=03/01/2026&to=${today}`, 'query.from'],
      ['a malformed to', '?to=2026-3-1', 'query.to'],
      ['more than 366 days', '?from=2024-01-01&to=2025-01-01', 'query.from'],
      ['an unknown groupBy', '?groupBy=week', 'query.groupBy'],
      ['an unknown format', '?format=xml', 'query.format'],
      ['an unknown parameter', '?userId=someone-else', 'query'],
    ] as const;
    for (const [what, query, path] of bad) {
      const response = await alice.api.get(`/v1/usage${query}`);
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem).join(' '), what).toContain(path);
    }
    // 366 days is the most a report covers.
    expect((await alice.api.get('/v1/usage?from=2024-01-01&to=2024-12-31')).status).toBe(200);
  });

  it('needs a signed-in caller', async () => {
    expectProblem(await alice.api.as(undefined).get('/v1/usage'), 401, 'unauthorized');
  });
});

describe('GET /v1/admin/stats', () => {
  it('agrees exactly with the raw records: users, activity, credits charged and added, per model, per day, top users', async () => {
    const expected = await recompute();
    const days = last30Days();
    const response = await admin.api.get('/v1/admin/stats');
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const stats = response.body;

    const allUsage = [...expected.usage.values()].flatMap((m) => [...m.values()]);
    const totals = sum(allUsage);
    const perUser = new Map([...expected.usage.entries()].map(([userId, m]) => [userId, sum(m.values())]));
    const activeUsers = [...perUser.values()].filter(active).length;
    const creditsAdded = days.reduce((s, day) => s + (expected.creditsAddedByDay.get(day) ?? 0), 0);

    expect(stats.from).toBe(days[0]);
    expect(stats.to).toBe(days.at(-1));
    expect(stats.users).toBe(expected.users);
    expect(stats.users).toBe(5); // the admin, alice, bob, carol, dave
    expect(stats.activeUsers).toBe(activeUsers);
    expect(stats.activeUsers).toBe(3);
    expect(stats.predictions).toBe(totals.predictions);
    expect(stats.failed).toBe(totals.failed);
    expect(stats.creditsCharged).toBe(totals.credits);
    expect(stats.creditsAdded).toBe(creditsAdded);
    // Five signup bonuses, a top-up of 50 and grants of 20 and 30.
    expect(creditsAdded).toBe(5 * SIGNUP_BONUS + 50 + 20 + 30);
    expect(stats.errorRate).toBeCloseTo(totals.failed / (totals.predictions + totals.failed), 12);

    // Per model.
    const perModel = new Map<string, Counts>();
    for (const byKey of expected.usage.values()) {
      for (const [key, counts] of byKey) {
        const modelId = key.split('|')[1] as string;
        perModel.set(modelId, sum([perModel.get(modelId) ?? zero(), counts]));
      }
    }
    expect(stats.byModel.map((m: any) => m.modelId).sort()).toEqual([...perModel.keys()].sort());
    const models = new Map((await listAll(admin.api, '/v1/models', 100)).map((m: any) => [m.id, m] as const));
    for (const entry of stats.byModel) {
      const counts = perModel.get(entry.modelId) as Counts;
      expect(entry).toMatchObject({
        ...counts,
        modelName: models.get(entry.modelId)?.name,
        modelVersion: models.get(entry.modelId)?.version,
      });
      expect(entry.errorRate).toBeCloseTo(counts.failed / (counts.predictions + counts.failed), 12);
      if (entry.modelId === broken.id) {
        // Only failures: no latency recorded.
        expect(entry).toMatchObject({ predictions: 0, credits: 0, errorRate: 1 });
        expect(entry.p50LatencyMs).toBeNull();
      } else {
        // Every demo model had a successful sync prediction here.
        expect(entry.p50LatencyMs).toEqual(expect.any(Number));
        expect(entry.p95LatencyMs).toBeGreaterThanOrEqual(entry.p50LatencyMs);
      }
    }
    expect(stats.byModel.map((m: any) => m.modelName).sort()).toEqual(
      ['breast-cancer', 'diabetes', 'digits', 'iris', broken.name].sort(),
    );

    // Per day: every day of the range, the activity on the days it happened.
    expect(stats.byDay.map((d: any) => d.period)).toEqual(days);
    for (const day of stats.byDay) {
      const ofDay = [...expected.usage.values()].map((m) =>
        sum([...m.entries()].filter(([key]) => key.startsWith(`${day.period}|`)).map(([, c]) => c)),
      );
      expect(day).toEqual({
        period: day.period,
        ...sum(ofDay),
        creditsAdded: expected.creditsAddedByDay.get(day.period) ?? 0,
        activeUsers: ofDay.filter(active).length,
      });
    }

    // Top users: the active ones, most credits first, with their emails.
    const emails = new Map([alice, bob, carol, dave].map((u) => [u.id, u.email]));
    expect(stats.topUsers).toHaveLength(activeUsers);
    for (const top of stats.topUsers) {
      expect(top).toEqual({ userId: top.userId, email: emails.get(top.userId), ...perUser.get(top.userId) });
    }
    expect(stats.topUsers.map((u: any) => u.userId)).toEqual([carol.id, alice.id, bob.id]);
  });

  it('covers a given range and refuses bad ones', async () => {
    const past = await admin.api.get('/v1/admin/stats?from=2020-01-01&to=2020-01-03');
    expect(past.status).toBe(200);
    expect(past.body).toMatchObject({
      from: '2020-01-01',
      to: '2020-01-03',
      users: 5,
      activeUsers: 0,
      predictions: 0,
      failed: 0,
      creditsCharged: 0,
      creditsAdded: 0,
      errorRate: 0,
      byModel: [],
      topUsers: [],
    });
    expect(past.body.byDay).toHaveLength(3);
    for (const query of [
      '?from=2026-03-02&to=2026-03-01',
      '?from=2026-02-30',
      '?from=2020-01-01&to=2021-01-01',
      '?groupBy=day',
    ]) {
      expectProblem(await admin.api.get(`/v1/admin/stats${query}`), 400, 'validation-failed');
    }
  });

  it('is for admins only', async () => {
    for (const user of [alice, dave]) {
      expectProblem(await user.api.get('/v1/admin/stats'), 403, 'forbidden');
      expectProblem(await user.api.get('/v1/admin/audit'), 403, 'forbidden');
    }
    expectProblem(await admin.api.as(undefined).get('/v1/admin/stats'), 401, 'unauthorized');
  });
});

describe('CSV exports of the history', () => {
  it('/v1/account/transactions?format=csv parses back to the JSON ledger, page by page', async () => {
    const columns = [
      'id',
      'createdAt',
      'kind',
      'amount',
      'balanceAfter',
      'predictionId',
      'batchId',
      'reason',
    ];
    for (const user of [alice, carol]) {
      // Small pages, so the list takes several.
      const json = await listAll(user.api, '/v1/account/transactions', 2);
      expect(json.length).toBeGreaterThan(2);
      const csv = await user.api.get('/v1/account/transactions?format=csv');
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
      expect((csv.body as string).split('\r\n')[0]).toBe(columns.join(','));
      expect(parseCsv(csv.body)).toEqual(json.map((entry) => asCsvRow(entry, columns)));
      const viaAccept = await user.api.get('/v1/account/transactions', { accept: 'text/csv' });
      expect(viaAccept.body).toBe(csv.body);
    }
    // Alice's ledger holds every kind, including the refund, and reasons with spaces survive.
    const kinds = new Set(
      parseCsv((await alice.api.get('/v1/account/transactions?format=csv')).body).map((r) => r.kind),
    );
    expect([...kinds].sort()).toEqual(['charge', 'grant', 'refund', 'top_up']);
    // A filtered export matches the filtered list.
    const charges = await listAll(alice.api, '/v1/account/transactions?kind=charge', 2);
    const chargesCsv = await alice.api.get('/v1/account/transactions?kind=charge&format=csv');
    expect(parseCsv(chargesCsv.body).map((r) => r.id)).toEqual(charges.map((c) => c.id));
  });

  it('/v1/predictions?format=csv parses back to the JSON history, failures and refunds included', async () => {
    const columns = [
      'id',
      'createdAt',
      'modelId',
      'modelName',
      'modelVersion',
      'status',
      'rows',
      'cost',
      'latencyMs',
      'error',
      'refundedAt',
    ];
    for (const user of [alice, bob, carol, dave]) {
      const json = await listAll(user.api, '/v1/predictions', 2);
      const csv = await user.api.get('/v1/predictions?format=csv');
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
      expect((csv.body as string).split('\r\n')[0]).toBe(columns.join(','));
      const expectedRows = json.map((p) =>
        asCsvRow({ ...p, error: p.error ? `${p.error.code}: ${p.error.message}` : '' }, columns),
      );
      expect(parseCsv(csv.body)).toEqual(expectedRows);
    }
    const alices = parseCsv((await alice.api.get('/v1/predictions?format=csv')).body);
    expect(alices).toHaveLength(6);
    const failed = alices.find((p) => p.status === 'failed');
    expect(failed?.error).toMatch(/^model_error: /);
    expect(failed?.cost).toBe('0');
    expect(alices.filter((p) => p.refundedAt !== '')).toHaveLength(1);
    // Filtered by model, by name.
    const iris = parseCsv((await alice.api.get('/v1/predictions?format=csv&modelId=iris')).body);
    expect(iris).toHaveLength(2);
    expect(new Set(iris.map((p) => p.modelName))).toEqual(new Set(['iris']));
  });
});

describe('GET /v1/admin/audit', () => {
  it('lists the grants, the refund and the model changes with their actor, newest first, page by page', async () => {
    const all = await listAll(admin.api, '/v1/admin/audit', 2);
    // Pages do not overlap and are newest first.
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    for (let i = 1; i < all.length; i++) {
      expect(all[i - 1].id > all[i].id, `${all[i - 1].id} before ${all[i].id}`).toBe(true);
      expect(Date.parse(all[i - 1].at)).toBeGreaterThanOrEqual(Date.parse(all[i].at));
    }
    const ours = all.filter((e) => audited.some((a) => a.action === e.action && a.targetId === e.target.id));
    expect(ours.map((e) => [e.action, e.target.id])).toEqual(
      [...audited].reverse().map((a) => [a.action, a.targetId]),
    );
    for (const entry of ours) {
      expect(entry).toMatchObject({
        id: expect.any(String),
        at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        actorId: admin.id,
      });
    }
    const byAction = (action: string) => ours.filter((e) => e.action === action);
    expect(byAction('credits.grant').map((e) => e.target)).toEqual([
      { type: 'user', id: bob.id },
      { type: 'user', id: alice.id },
    ]);
    expect(byAction('credits.grant')[0].details).toMatchObject({ amount: 30, reason: 'report test' });
    expect(byAction('prediction.refund')[0]).toMatchObject({
      target: { type: 'prediction' },
      details: { userId: alice.id, amount: 4, reason: 'report test' },
    });
    expect(byAction('model.create')[0]).toMatchObject({
      target: { type: 'model', id: broken.id },
      details: { name: broken.name, version: 1, price: 2 },
    });
    expect(byAction('model.update')[0]).toMatchObject({
      target: { type: 'model', id: broken.id },
      details: { before: { price: 2 }, after: { price: 3 } },
    });

    // The first page is the newest entries; a cursor continues exactly where it stopped.
    const first = await admin.api.get('/v1/admin/audit?limit=2');
    expect(first.body.items.map((e: any) => e.id)).toEqual(all.slice(0, 2).map((e) => e.id));
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await admin.api.get(`/v1/admin/audit?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((e: any) => e.id)).toEqual(all.slice(2, 4).map((e) => e.id));
    const whole = await admin.api.get('/v1/admin/audit?limit=100');
    expect(whole.body.items.map((e: any) => e.id)).toEqual(all.map((e) => e.id));
    expect(whole.body.nextCursor).toBeNull();
    // A page that holds exactly the rest says there is no more (no empty page after it).
    const exact = await admin.api.get(`/v1/admin/audit?limit=${all.length}`);
    expect(exact.body.items).toHaveLength(all.length);
    expect(exact.body.nextCursor).toBeNull();
    const allButOne = await admin.api.get(`/v1/admin/audit?limit=${all.length - 1}`);
    expect(allButOne.body.nextCursor).toEqual(expect.any(String));
    const rest = await admin.api.get(`/v1/admin/audit?limit=5&cursor=${allButOne.body.nextCursor}`);
    expect(rest.body).toEqual({ items: [all.at(-1)], nextCursor: null });

    expectProblem(await admin.api.get('/v1/admin/audit?cursor=not-a-cursor'), 400, 'validation-failed');
    expectProblem(await admin.api.get('/v1/admin/audit?limit=0'), 400, 'validation-failed');
  });
});
