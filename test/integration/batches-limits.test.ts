/**
 * Files a batch cannot process at all: over the byte or row limit (set low here), empty, unreadable,
 * or for a model that does not exist. Each fails the batch on its first run (no retries), with a
 * reason a person can act on, and charges nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { InvocationReport } from '../../infra/local/queue-pump.ts';
import { DynamoBatchStore } from '../../shared/adapters/dynamo/batch-store.ts';
import { type SignedInUser, signIn } from '../support/api.ts';
import {
  awaitBatch,
  balanceOf,
  createBatch,
  downloadResults,
  expectChargedOnce,
  irisRows,
  newUser,
  parseResultsCsv,
  toCsv,
  toJsonl,
  uploadFile,
  useAwsClients,
} from '../support/batches.ts';
import { nextInvocationFor } from '../support/invocations.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { modelFile, publishModel } from '../support/models.ts';
import { useReconciler } from '../support/reconcile.ts';

const MAX_BYTES = 4000;
const MAX_ROWS = 50;
const local = useLocalStack({
  environment: {
    SIGNUP_BONUS: '0',
    MAX_BATCH_BYTES: String(MAX_BYTES),
    MAX_BATCH_ROWS: String(MAX_ROWS),
    BATCH_CHUNK_SIZE: '20',
  },
});
const ledger = useReconciler(local);
const aws = useAwsClients(local);

let admin: SignedInUser;
let user: SignedInUser;
const CREDITS = 500;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  user = await newUser(local.url, admin.api, CREDITS);
});

const keyOf = (url: string) => decodeURIComponent(new URL(url).pathname.split('/').slice(2).join('/'));

/**
 * Uploads a file through a new batch and checks that its first run failed it: the worker's
 * invocation reported no failure (nothing to retry), the batch is `failed` with a reason, and the
 * user's money and ledger did not move.
 */
async function expectFailsAtOnce(format: 'csv' | 'jsonl', body: string | Uint8Array): Promise<any> {
  const balance = await balanceOf(user.api);
  const before = await ledger.read(user.id);
  const created = await createBatch(user.api, 'iris', format);
  const invoked = nextInvocationFor(local.stack, 'batch-worker', keyOf(created.upload.url), 30_000);
  await uploadFile(created.upload, body);
  const report: InvocationReport = await invoked;
  expect(report.failedMessageIds).toEqual([]);
  // Decided in that one run: no waiting for a retry.
  const batch = (await user.api.get(`/v1/batches/${created.id}`)).body;
  expect(batch).toMatchObject({ status: 'failed', succeeded: 0, cost: 0 });
  expect(batch.statusReason).toEqual(expect.any(String));
  expect(batch.results).toBeUndefined();
  expect(batch.finishedAt).toEqual(expect.any(String));
  expect(await balanceOf(user.api)).toBe(balance);
  expect(await ledger.read(user.id)).toEqual(before);
  await ledger.expectReconciled(user.id);
  return batch;
}

describe('files over the limits', () => {
  it(`a file over MAX_BATCH_BYTES (${MAX_BYTES}) fails with its size in the reason`, async () => {
    // Few rows but long numbers: over the byte limit while under the row limit.
    const rows = irisRows(30, 301).map((row) => row.map((v) => v.toFixed(40)));
    const file = toCsv(rows);
    expect(file.length).toBeGreaterThan(MAX_BYTES);
    const batch = await expectFailsAtOnce('csv', file);
    expect(batch.statusReason).toBe(
      `The file is ${Buffer.byteLength(file)} bytes; batch files may be at most ${MAX_BYTES} bytes.`,
    );
  });

  it(`a file over MAX_BATCH_ROWS (${MAX_ROWS}) fails with the limit in the reason`, async () => {
    const file = toCsv(irisRows(MAX_ROWS + 1, 302));
    expect(file.length).toBeLessThan(MAX_BYTES);
    const batch = await expectFailsAtOnce('csv', file);
    expect(batch.statusReason).toBe(`The file has more than ${MAX_ROWS} rows, the limit per batch.`);
    expect(batch.processed).toBe(0);
  });

  it('a JSONL file over the row limit fails the same way', async () => {
    const batch = await expectFailsAtOnce('jsonl', toJsonl(irisRows(MAX_ROWS + 5, 303)));
    expect(batch.statusReason).toBe(`The file has more than ${MAX_ROWS} rows, the limit per batch.`);
  });

  it('a file of exactly MAX_BATCH_ROWS rows is within the limit and runs', async () => {
    const created = await createBatch(user.api, 'iris', 'csv');
    await uploadFile(created.upload, toCsv(irisRows(MAX_ROWS, 304)));
    const batch = await awaitBatch(user.api, created.id);
    expect(batch).toMatchObject({ status: 'succeeded', rows: MAX_ROWS, succeeded: MAX_ROWS, cost: MAX_ROWS });
    expect(parseResultsCsv(await downloadResults(batch)).rows).toHaveLength(MAX_ROWS);
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
  });
});

describe('empty and unreadable files', () => {
  it('a CSV with only its header fails: the file has no rows', async () => {
    const batch = await expectFailsAtOnce('csv', 'sepal_length,sepal_width,petal_length,petal_width\n');
    expect(batch.statusReason).toBe('The file has no rows.');
  });

  it('a zero-byte CSV fails: the file has no rows', async () => {
    const batch = await expectFailsAtOnce('csv', new Uint8Array(0));
    expect(batch.statusReason).toBe('The file has no rows.');
  });

  it('a zero-byte or blank-lines-only JSONL fails: the file has no rows', async () => {
    expect((await expectFailsAtOnce('jsonl', new Uint8Array(0))).statusReason).toBe('The file has no rows.');
    expect((await expectFailsAtOnce('jsonl', '\n\r\n  \n')).statusReason).toBe('The file has no rows.');
  });

  it('a CSV that is not CSV at all (a quote never closed) fails as unreadable', async () => {
    const file =
      'sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"5.1,3.5,1.4,0.2\n6.1,2.8,4.7,1.2\n';
    const batch = await expectFailsAtOnce('csv', file);
    expect(batch.statusReason).toMatch(/^The file could not be read as CSV: /);
  });
});

describe('unknown models', () => {
  it('a file dropped under inbox/{userId}/no-such-model/ makes a failed batch of that user, charging nothing', async () => {
    const balance = await balanceOf(user.api);
    const before = await ledger.read(user.id);
    const key = `inbox/${user.id}/no-such-model/x.csv`;
    const invoked = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await aws.drop(key, toCsv(irisRows(5, 305)));
    expect((await invoked).failedMessageIds).toEqual([]);

    const list = await user.api.get('/v1/batches');
    const dropped = list.body.items.find((b: any) => b.modelId === 'no-such-model');
    expect(dropped).toMatchObject({
      status: 'failed',
      statusReason: 'There is no active model "no-such-model".',
      cost: 0,
      succeeded: 0,
    });
    expect(dropped.finishedAt).toEqual(expect.any(String));
    expect(await balanceOf(user.api)).toBe(balance);
    expect(await ledger.read(user.id)).toEqual(before);

    // The same object again is the same (failed) batch, not a new one.
    const again = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await aws.drop(key, toCsv(irisRows(5, 305)));
    expect((await again).failedMessageIds).toEqual([]);
    const after = await user.api.get('/v1/batches');
    expect(after.body.items.filter((b: any) => b.modelId === 'no-such-model')).toHaveLength(1);
  });

  it('a batch whose model version is retired before its file arrives fails with a clear reason', async () => {
    const published = await publishModel(
      admin.api,
      { name: `iris-retiring-${Date.now().toString(36)}`, price: 1 },
      await modelFile('iris/model.onnx'),
    );
    expect(published.model.status).toBe('active');
    const created = await createBatch(user.api, published.model.id, 'csv');
    const retired = await admin.api.patch(`/v1/models/${published.model.id}`, { status: 'retired' });
    expect(retired.status).toBe(200);
    const balance = await balanceOf(user.api);
    const invoked = nextInvocationFor(local.stack, 'batch-worker', keyOf(created.upload.url), 30_000);
    await uploadFile(created.upload, toCsv(irisRows(5, 306)));
    expect((await invoked).failedMessageIds).toEqual([]);
    const batch = (await user.api.get(`/v1/batches/${created.id}`)).body;
    expect(batch).toMatchObject({ status: 'failed', cost: 0 });
    expect(batch.statusReason).toBe(`The model ${published.model.name} v1 is no longer active.`);
    expect(await balanceOf(user.api)).toBe(balance);
  });

  it('a file dropped for a user who does not exist fails at once, with nobody to charge', async () => {
    const ghost = `ghost-${Date.now().toString(36)}`;
    const key = `inbox/${ghost}/iris/orphan.csv`;
    const invoked = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await aws.drop(key, toCsv(irisRows(3, 307)));
    expect((await invoked).failedMessageIds).toEqual([]);
    const repository = new DynamoBatchStore(ledger.client(), local.stack.resources.tableName);
    const { items } = await repository.list(ghost, { limit: 10 });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      status: 'failed',
      statusReason: `There is no user ${ghost} to charge.`,
      cost: 0,
    });
  });

  it('POST /v1/batches for a model that does not exist is 404 and makes no batch', async () => {
    const response = await user.api.post('/v1/batches', { modelId: 'no-such-model', format: 'csv' });
    expect(response.status).toBe(404);
    expect(response.body.type).toBe('/problems/not-found');
    const list = await user.api.get('/v1/batches');
    expect(
      list.body.items.filter((b: any) => b.modelId === 'no-such-model' && b.status !== 'failed'),
    ).toEqual([]);
  });
});
