/**
 * The demo models over HTTP against scikit-learn's own outputs (models/<name>/golden.json): labels
 * exactly, probabilities within 1e-5 absolute, regression values within 1e-5 relative. Also the
 * shape of a prediction's answer and its cost, and the flat-row form.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SignedInUser, signIn, signUp } from '../support/api.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { MODELS_DIRECTORY } from '../support/models.ts';
import { useReconciler } from '../support/reconcile.ts';

const local = useLocalStack();
const ledger = useReconciler(local);

interface GoldenCase {
  input: number[][];
  label?: number[];
  probabilities?: number[][];
  value?: number[][];
}

const DEMO = [
  { name: 'iris', price: 1, features: 4, classes: 3 },
  { name: 'breast-cancer', price: 2, features: 30, classes: 2 },
  { name: 'diabetes', price: 2, features: 10, classes: 0 },
  { name: 'digits', price: 3, features: 64, classes: 10 },
] as const;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

async function golden(name: string): Promise<GoldenCase[]> {
  const text = await readFile(join(MODELS_DIRECTORY, name, 'golden.json'), 'utf8');
  return (JSON.parse(text) as { cases: GoldenCase[] }).cases;
}

/** Compares one answer's outputs with scikit-learn's, with the tolerances of the contract. */
function expectGoldenOutputs(outputs: Record<string, unknown>, expected: GoldenCase, where: string) {
  const rows = expected.input.length;
  if (expected.value) {
    expect(Object.keys(outputs), where).toEqual(['value']);
    const value = outputs.value as number[][];
    expect(value, where).toHaveLength(rows);
    value.forEach((row, i) => {
      expect(row, `${where} row ${i}`).toHaveLength(1);
      const want = expected.value?.[i]?.[0] as number;
      const got = row[0] as number;
      expect(typeof got).toBe('number');
      expect(Math.abs(got - want), `${where} row ${i}: ${got} vs ${want}`).toBeLessThanOrEqual(
        1e-5 * Math.max(Math.abs(want), 1e-6),
      );
    });
    return;
  }
  expect(Object.keys(outputs).sort(), where).toEqual(['label', 'probabilities']);
  const label = outputs.label as unknown[];
  // int64 labels come back as plain JSON numbers.
  expect(
    label.every((v) => typeof v === 'number' && Number.isInteger(v)),
    where,
  ).toBe(true);
  expect(label, where).toEqual(expected.label);
  const probabilities = outputs.probabilities as number[][];
  expect(probabilities, where).toHaveLength(rows);
  probabilities.forEach((row, i) => {
    const want = expected.probabilities?.[i] ?? [];
    expect(row, `${where} row ${i}`).toHaveLength(want.length);
    row.forEach((p, k) => {
      expect(
        Math.abs(p - (want[k] as number)),
        `${where} row ${i} class ${k}: ${p} vs ${want[k]}`,
      ).toBeLessThanOrEqual(1e-5);
    });
  });
}

let user: SignedInUser;
const modelIds = new Map<string, string>();

beforeAll(async () => {
  await ensureTestAdmin();
  const admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  user = await signUp(local.url, 'golden');
  const grant = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
    amount: 1000,
    reason: 'golden tests',
  });
  expect(grant.status).toBe(201);
  for (const { name } of DEMO) {
    const model = await user.api.get(`/v1/models/${name}`);
    expect(model.status).toBe(200);
    modelIds.set(name, model.body.id);
  }
});

async function balance(): Promise<number> {
  const account = await user.api.get('/v1/account');
  expect(account.status).toBe(200);
  return account.body.balance as number;
}

describe('the demo models over HTTP', () => {
  it('are registered with the documented signature and price', async () => {
    for (const { name, price, features, classes } of DEMO) {
      const { status, body } = await user.api.get(`/v1/models/${name}`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ name, price, status: 'active', version: 1 });
      expect(body.inputs).toEqual([{ name: 'input', type: 'float32', shape: [null, features] }]);
      expect(body.outputs).toEqual(
        classes
          ? [
              { name: 'label', type: 'int64', shape: [null] },
              { name: 'probabilities', type: 'float32', shape: [null, classes] },
            ]
          : [{ name: 'value', type: 'float32', shape: [null, 1] }],
      );
    }
  });

  for (const { name, price } of DEMO) {
    it(`${name}: every golden case matches scikit-learn, and costs price × rows`, async () => {
      const cases = await golden(name);
      expect(cases.length).toBeGreaterThanOrEqual(21);
      expect(cases.some((c) => c.input.length > 1)).toBe(true);
      let expectedBalance = await balance();
      const ids = new Set<string>();
      for (const [index, golden] of cases.entries()) {
        const response = await user.api.post(`/v1/models/${name}/predictions`, {
          inputs: { input: golden.input },
        });
        const where = `${name} case ${index}`;
        expect(response.status, `${where}: ${JSON.stringify(response.body)}`).toBe(201);
        const body = response.body;
        const rows = golden.input.length;
        expectedBalance -= price * rows;
        expect(Object.keys(body).sort()).toEqual(
          ['balance', 'cost', 'createdAt', 'id', 'modelId', 'modelVersion', 'outputs', 'rows'].sort(),
        );
        expect(body).toMatchObject({
          modelId: modelIds.get(name),
          modelVersion: 1,
          rows,
          cost: price * rows,
          balance: expectedBalance,
        });
        expect(body.id).toEqual(expect.any(String));
        expect(ids.has(body.id)).toBe(false);
        ids.add(body.id);
        expect(body.createdAt).toMatch(ISO);
        expect(response.headers.get('location')).toBe(`/v1/predictions/${body.id}`);
        expectGoldenOutputs(body.outputs, golden, where);
      }
      expect(await balance()).toBe(expectedBalance);
    });
  }

  it('answers the flat-row form as one row with the same outputs as the nested form', async () => {
    for (const { name, price } of DEMO) {
      const cases = await golden(name);
      for (const golden of [cases[0], cases[cases.length - 2]]) {
        const row = golden?.input[0] as number[];
        const flat = await user.api.post(`/v1/models/${name}/predictions`, { inputs: { input: row } });
        expect(flat.status, JSON.stringify(flat.body)).toBe(201);
        expect(flat.body).toMatchObject({ rows: 1, cost: price, modelId: modelIds.get(name) });
        const nested = await user.api.post(`/v1/models/${name}/predictions`, { inputs: { input: [row] } });
        expect(nested.status).toBe(201);
        expect(flat.body.outputs).toEqual(nested.body.outputs);
        expect(flat.body.balance).toBe(nested.body.balance + price);
        expectGoldenOutputs(flat.body.outputs, { ...(golden as GoldenCase), input: [row] }, `${name} flat`);
      }
    }
  });

  it("keeps the user's ledger reconciled: one charge per prediction", async () => {
    const result = await ledger.expectReconciled(user.id);
    const { entries } = await ledger.read(user.id);
    const charges = entries.filter((e) => e.kind === 'charge');
    expect(charges.length).toBeGreaterThan(80);
    expect(charges.every((e) => e.amount < 0 && e.predictionId)).toBe(true);
    expect(result.balance).toBe(await balance());
  });
});
