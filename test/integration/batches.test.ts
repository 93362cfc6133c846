/**
 * Batches end to end over the real path on the local emulator: POST /v1/batches, PUT to the
 * presigned URL, S3 → SQS notification, the batch worker run by the queue pump, results through the
 * presigned GET. Results are compared with the sync API's outputs for the same rows, and every test
 * that moves money reconciles the account against the ledger read straight from DynamoDB.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SignedInUser, signIn } from '../support/api.ts';
import {
  awaitBatch,
  balanceOf,
  createBatch,
  downloadResults,
  expectChargedOnce,
  irisRows,
  newUser,
  paidChunks,
  parseResultsCsv,
  parseResultsJsonl,
  predictSync,
  runBatch,
  toCsv,
  toJsonl,
  transactions,
  uploadFile,
  useAwsClients,
} from '../support/batches.ts';
import { nextInvocationFor } from '../support/invocations.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { errorPaths, expectProblem } from '../support/problems.ts';
import { useReconciler } from '../support/reconcile.ts';

const CHUNK = 20;
const MAX_BATCH_BYTES = 1024 * 1024;
const local = useLocalStack({
  environment: {
    SIGNUP_BONUS: '0',
    BATCH_CHUNK_SIZE: String(CHUNK),
    MAX_BATCH_BYTES: String(MAX_BATCH_BYTES),
  },
});
const ledger = useReconciler(local);
const aws = useAwsClients(local);

let admin: SignedInUser;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

const IRIS_COLUMNS = [
  'row',
  'status',
  'label',
  'probabilities_0',
  'probabilities_1',
  'probabilities_2',
  'error',
];
const TOLERANCE = 1e-6;

/** A CSV results line of an `ok` row against the sync API's label and probabilities for that row. */
function expectIrisRow(line: Record<string, string>, row: number, label: number, probabilities: number[]) {
  expect(line.row).toBe(String(row));
  expect(line.status).toBe('ok');
  expect(line.error).toBe('');
  expect(line.label).toBe(String(label));
  probabilities.forEach((p, k) => {
    expect(Math.abs(Number(line[`probabilities_${k}`]) - p)).toBeLessThanOrEqual(TOLERANCE);
  });
}

/** One JSONL result line against a one-row sync response's outputs. */
function expectSameOutputs(actual: any, expected: any) {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  expect(actual.label).toEqual(expected.label);
  expect(actual.probabilities).toHaveLength(expected.probabilities.length);
  actual.probabilities.forEach((row: number[], r: number) => {
    expect(row).toHaveLength(expected.probabilities[r].length);
    row.forEach((p, k) => {
      expect(Math.abs(p - expected.probabilities[r][k])).toBeLessThanOrEqual(TOLERANCE);
    });
  });
}

async function ledgerOfBatch(user: SignedInUser, batchId: string) {
  const entries = await transactions(user.api);
  return entries.filter((e) => e.batchId === batchId);
}

describe('a batch gives the same outputs as the sync API', () => {
  it('a CSV batch of iris rows returns, in input order, the label and probabilities the sync API gives', async () => {
    const rows = irisRows(57, 11);
    const user = await newUser(local.url, admin.api, 2 * rows.length);
    const sync = await predictSync(user.api, 'iris', rows);

    const { batch } = await runBatch(user.api, 'iris', 'csv', toCsv(rows));
    expect(batch).toMatchObject({
      status: 'succeeded',
      modelName: 'iris',
      format: 'csv',
      rows: 57,
      processed: 57,
      succeeded: 57,
      failed: 0,
      cost: 57,
    });
    expect(batch.finishedAt).toEqual(expect.any(String));

    const results = parseResultsCsv(await downloadResults(batch));
    expect(results.header).toEqual(IRIS_COLUMNS);
    expect(results.rows).toHaveLength(rows.length);
    results.rows.forEach((line, i) => {
      expectIrisRow(line, i + 1, sync.outputs.label[i], sync.outputs.probabilities[i]);
    });

    const charges = await ledgerOfBatch(user, batch.id);
    expect(charges.length).toBeGreaterThan(0);
    expect(charges.every((e) => e.kind === 'charge')).toBe(true);
    expect(charges.reduce((sum, e) => sum + e.amount, 0)).toBe(-57);
    expect(await balanceOf(user.api)).toBe(0);
    const found = await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
    // 57 rows in chunks of 20: three chunks, each charged once.
    expect([...found.chunkRecords.keys()].sort()).toEqual([0, 1, 2]);
  });

  it("a JSONL batch's lines hold, row by row, the outputs a one-row sync prediction gives", async () => {
    const rows = irisRows(15, 12);
    const user = await newUser(local.url, admin.api, 2 * rows.length);
    const expected: any[] = [];
    for (const row of rows) expected.push((await predictSync(user.api, 'iris', [row])).outputs);

    const { batch } = await runBatch(user.api, 'iris', 'jsonl', toJsonl(rows));
    expect(batch).toMatchObject({
      status: 'succeeded',
      format: 'jsonl',
      rows: 15,
      processed: 15,
      succeeded: 15,
      failed: 0,
      cost: 15,
    });
    const lines = parseResultsJsonl(await downloadResults(batch));
    expect(lines).toHaveLength(rows.length);
    lines.forEach((line, i) => {
      expect(Object.keys(line).sort()).toEqual(['outputs', 'row']);
      expect(line.row).toBe(i + 1);
      expectSameOutputs(line.outputs, expected[i]);
    });

    const charges = await ledgerOfBatch(user, batch.id);
    expect(charges.every((e) => e.kind === 'charge' && e.batchId === batch.id)).toBe(true);
    expect(charges.reduce((sum, e) => sum + e.amount, 0)).toBe(-15);
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
  });

  it('a regressor batch (diabetes, price 2) has one column per element of its [N, 1] output and costs price × rows', async () => {
    const random = irisRows(30, 13);
    const rows = random.map((r, i) =>
      [...r, ...r, i % 2, i % 3].map((v) => Math.round((v / 40) * 1e4) / 1e4),
    );
    const user = await newUser(local.url, admin.api, 4 * rows.length);
    const sync = await predictSync(user.api, 'diabetes', rows);

    const { batch } = await runBatch(user.api, 'diabetes', 'csv', toCsv(rows, 'a,b,c,d,e,f,g,h,i,j'));
    expect(batch).toMatchObject({ status: 'succeeded', rows: 30, succeeded: 30, failed: 0, cost: 60 });
    const results = parseResultsCsv(await downloadResults(batch));
    expect(results.header).toEqual(['row', 'status', 'value_0', 'error']);
    results.rows.forEach((line, i) => {
      expect(line).toMatchObject({ row: String(i + 1), status: 'ok', error: '' });
      const want = sync.outputs.value[i][0] as number;
      expect(Math.abs(Number(line.value_0) - want)).toBeLessThanOrEqual(
        Math.max(1e-6, Math.abs(want) * 1e-6),
      );
    });
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 2);
  });
});

describe('a batch the balance pays only part of', () => {
  it('succeeds for the rows paid for and fails every later row with insufficient_credits', async () => {
    const user = await newUser(local.url, admin.api, 30);
    const rows = irisRows(100, 21);
    const { batch } = await runBatch(user.api, 'iris', 'csv', toCsv(rows));
    expect(batch).toMatchObject({
      status: 'succeeded',
      rows: 100,
      processed: 100,
      succeeded: 30,
      failed: 70,
      cost: 30,
    });

    const results = parseResultsCsv(await downloadResults(batch));
    expect(results.rows).toHaveLength(100);
    results.rows.forEach((line, i) => {
      expect(line.row).toBe(String(i + 1));
      if (i < 30) {
        expect(line.status).toBe('ok');
        expect(line.label).toMatch(/^[0-2]$/);
      } else {
        expect(line.status).toBe('error');
        expect(line.label).toBe('');
        expect(line.error).toMatch(/^insufficient_credits\b/);
      }
    });
    expect(await balanceOf(user.api)).toBe(0);
    const found = await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
    // Chunk 0 paid in full (20), chunk 1 in part (10); nothing was charged after that.
    expect(paidChunks(found)).toEqual([
      [0, 20],
      [1, 10],
    ]);
  });
});

describe('the same file or message twice', () => {
  it('the S3 event of a finished batch sent to the queue again is ignored and charges nothing', async () => {
    const user = await newUser(local.url, admin.api, 50);
    const created = await createBatch(user.api, 'iris', 'csv');
    const key = new URL(created.upload.url).pathname.split('/').slice(2).join('/');
    const first = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await uploadFile(created.upload, toCsv(irisRows(30, 31)));
    const firstReport = await first;
    const batch = await awaitBatch(user.api, created.id);
    expect(batch).toMatchObject({ status: 'succeeded', succeeded: 30, cost: 30 });
    const before = await ledger.read(user.id);
    const resultsBefore = await downloadResults(batch);

    const body = firstReport.event.Records[0]?.body ?? '';
    expect(body).toContain('ObjectCreated');
    const again = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    const sent = await aws
      .sqs()
      .send(new SendMessageCommand({ QueueUrl: local.stack.resources.batchQueueUrl, MessageBody: body }));
    const report = await again;
    expect(report.event.Records.map((r) => r.messageId)).toEqual([sent.MessageId]);
    expect(report.failedMessageIds).toEqual([]);

    const after = await awaitBatch(user.api, created.id);
    expect(after).toMatchObject({
      status: 'succeeded',
      succeeded: 30,
      cost: 30,
      finishedAt: batch.finishedAt,
    });
    expect(await ledger.read(user.id)).toEqual(before);
    expect(await downloadResults(after)).toBe(resultsBefore);
    expect(await balanceOf(user.api)).toBe(20);
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, after, 1);
  });

  it('the same file PUT twice to the same presigned URL runs once: the second upload is ignored', async () => {
    const user = await newUser(local.url, admin.api, 50);
    const created = await createBatch(user.api, 'iris', 'csv');
    const key = new URL(created.upload.url).pathname.split('/').slice(2).join('/');
    const file = toCsv(irisRows(25, 32));
    const first = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await uploadFile(created.upload, file);
    expect((await first).failedMessageIds).toEqual([]);
    const batch = await awaitBatch(user.api, created.id);
    expect(batch).toMatchObject({ status: 'succeeded', succeeded: 25, cost: 25 });
    const before = await ledger.read(user.id);

    const second = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await uploadFile(created.upload, file);
    expect((await second).failedMessageIds).toEqual([]);

    const after = await awaitBatch(user.api, created.id);
    expect(after).toMatchObject({
      status: 'succeeded',
      succeeded: 25,
      cost: 25,
      finishedAt: batch.finishedAt,
    });
    expect(await ledger.read(user.id)).toEqual(before);
    // No second batch appeared for the same object (an operator-drop batch would).
    const list = await user.api.get('/v1/batches');
    expect(list.body.items.map((b: any) => b.id)).toEqual([created.id]);
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, after, 1);
  });
});

describe('an operator drop', () => {
  it('a file put straight into inbox/{userId}/iris/ becomes a batch of that user, listed and succeeded', async () => {
    const user = await newUser(local.url, admin.api, 40);
    const rows = irisRows(40, 41);
    const key = `inbox/${user.id}/iris/anything.csv`;
    const invoked = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await aws.drop(key, toCsv(rows));
    expect((await invoked).failedMessageIds).toEqual([]);

    const list = await user.api.get('/v1/batches');
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    const listed = list.body.items[0];
    expect(listed).toMatchObject({ modelName: 'iris', format: 'csv' });
    const batch = await awaitBatch(user.api, listed.id);
    expect(batch).toMatchObject({ status: 'succeeded', rows: 40, succeeded: 40, failed: 0, cost: 40 });
    const results = parseResultsCsv(await downloadResults(batch));
    expect(results.rows.map((r) => [r.row, r.status])).toEqual(rows.map((_, i) => [String(i + 1), 'ok']));
    expect(await balanceOf(user.api)).toBe(0);
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
  });
});

describe('malformed rows among good ones', () => {
  it('CSV with a BOM, CRLF, quoted fields and bad rows: each bad row fails on its own, the good ones run', async () => {
    const user = await newUser(local.url, admin.api, 20);
    const good = irisRows(4, 51);
    const [g1 = [], g2 = [], g3 = [], g4 = []] = good;
    const lines = [
      'sepal_length,sepal_width,petal_length,petal_width',
      g1.join(','), // 1 ok
      '5.1,3.5,1.4', // 2 three values
      '5.1,abc,1.4,0.2', // 3 text where a number goes
      '5.1,,1.4,0.2', // 4 an empty field
      g2.map((v) => `"${v}"`).join(','), // 5 quoted numbers: fine
      '"5,1",3.5,1.4,0.2', // 6 a quoted comma: one field "5,1", not a number
      '6.2,2.9,4.3,1.3,9.9', // 7 five values
      ',,,', // 8 every field empty
      g3.join(','), // 9 ok
      '"5.1","3,5",1.4', // 10 three fields, one of them "3,5"
      'NaN,1,1,1', // 11 not a finite number
      g4.join(','), // 12 ok
    ];
    const file = `\uFEFF${lines.join('\r\n')}\r\n`;
    const sync = await predictSync(user.api, 'iris', good);
    const { batch } = await runBatch(user.api, 'iris', 'csv', file);
    expect(batch).toMatchObject({
      status: 'succeeded',
      rows: 12,
      processed: 12,
      succeeded: 4,
      failed: 8,
      cost: 4,
    });

    const results = parseResultsCsv(await downloadResults(batch));
    expect(results.header).toEqual(IRIS_COLUMNS);
    expect(results.rows.map((r) => r.row)).toEqual(lines.slice(1).map((_, i) => String(i + 1)));
    const okRows = [1, 5, 9, 12];
    okRows.forEach((row, i) => {
      expectIrisRow(results.rows[row - 1] ?? {}, row, sync.outputs.label[i], sync.outputs.probabilities[i]);
    });
    const errors = results.rows.filter((r) => !okRows.includes(Number(r.row)));
    expect(errors).toHaveLength(8);
    for (const line of errors) {
      expect(line.status).toBe('error');
      expect([line.label, line.probabilities_0, line.probabilities_1, line.probabilities_2]).toEqual([
        '',
        '',
        '',
        '',
      ]);
      expect(line.error).toMatch(/^invalid_input: /);
    }
    const byRow = (row: number) => results.rows[row - 1]?.error ?? '';
    expect(byRow(2)).toContain('has 3 values, the model takes 4');
    expect(byRow(3)).toContain('column 2 must be a finite number, got "abc"');
    expect(byRow(4)).toContain('column 2 must be a finite number, got ""');
    expect(byRow(6)).toContain('column 1 must be a finite number, got "5,1"');
    expect(byRow(7)).toContain('has 5 values, the model takes 4');
    expect(byRow(8)).toContain('column 1 must be a finite number');
    expect(byRow(10)).toContain('has 3 values, the model takes 4');
    expect(byRow(11)).toContain('column 1 must be a finite number, got "NaN"');
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
  });

  it('JSONL with bad JSON, a wrong input name, wrong lengths and text values: each bad line fails on its own', async () => {
    const user = await newUser(local.url, admin.api, 20);
    const good = irisRows(3, 52);
    const [g1 = [], g2 = [], g3 = []] = good;
    const lines = [
      JSON.stringify({ inputs: { input: g1 } }), // 1 ok
      '{"inputs": {"input": [5.1, 3.5, 1.4', // 2 not JSON
      JSON.stringify({ inputs: { features: [5.1, 3.5, 1.4, 0.2] } }), // 3 wrong input name
      JSON.stringify({ inputs: { input: [5.1, 3.5, 1.4] } }), // 4 three values
      JSON.stringify({ inputs: { input: [5.1, '3.5', 1.4, 0.2] } }), // 5 a string
      JSON.stringify({ inputs: { input: g2 } }), // 6 ok
      JSON.stringify([5.1, 3.5, 1.4, 0.2]), // 7 not an object with inputs
      JSON.stringify({ inputs: { input: [g1, g2] } }), // 8 two rows in one line
      JSON.stringify({ inputs: { input: [[...g3]] } }), // 9 ok: one row as [1, 4]
    ];
    // A BOM, CRLF line endings and a blank line (not a row).
    const file = `\uFEFF${lines.slice(0, 5).join('\r\n')}\r\n\r\n${lines.slice(5).join('\r\n')}\r\n`;
    const expected: any[] = [];
    for (const row of good) expected.push((await predictSync(user.api, 'iris', [row])).outputs);

    const { batch } = await runBatch(user.api, 'iris', 'jsonl', file);
    expect(batch).toMatchObject({
      status: 'succeeded',
      rows: 9,
      processed: 9,
      succeeded: 3,
      failed: 6,
      cost: 3,
    });
    const results = parseResultsJsonl(await downloadResults(batch));
    expect(results.map((r) => r.row)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expectSameOutputs(results[0].outputs, expected[0]);
    expectSameOutputs(results[5].outputs, expected[1]);
    expectSameOutputs(results[8].outputs, expected[2]);
    for (const index of [1, 2, 3, 4, 6, 7]) {
      expect(Object.keys(results[index]).sort()).toEqual(['error', 'row']);
      expect(results[index].error).toEqual({ code: 'invalid_input', message: expect.any(String) });
    }
    expect(results[1].error.message).toContain('not valid JSON');
    expect(results[2].error.message).toMatch(/input/);
    expect(results[3].error.message).toMatch(/4/);
    expect(results[4].error.message).toContain('must be a number');
    expect(results[6].error.message).toContain('{"inputs"');
    expect(results[7].error.message).toContain('has 2 rows, the limit is 1');
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
  });
});

describe("another user's batches", () => {
  it("a user gets 404 for another user's batch, and never sees it in their list", async () => {
    const owner = await newUser(local.url, admin.api, 10);
    const stranger = await newUser(local.url, admin.api, 10);
    const { batch } = await runBatch(owner.api, 'iris', 'csv', toCsv(irisRows(5, 61)));
    expect(batch.status).toBe('succeeded');
    expect(batch.results.url).toEqual(expect.any(String));

    expectProblem(await stranger.api.get(`/v1/batches/${batch.id}`), 404, 'not-found');
    const list = await stranger.api.get('/v1/batches');
    expect(list.body.items.map((b: any) => b.id)).not.toContain(batch.id);
    // Without a credential there is nothing at all.
    expect((await owner.api.as(undefined).get(`/v1/batches/${batch.id}`)).status).toBe(401);
    // The owner still reads it, and the stranger was charged nothing.
    expect((await owner.api.get(`/v1/batches/${batch.id}`)).status).toBe(200);
    expect(await balanceOf(stranger.api)).toBe(10);
  });

  it("the upload URL is always under the caller's own prefix and its signature covers the key", async () => {
    const owner = await newUser(local.url, admin.api, 10);
    const stranger = await newUser(local.url, admin.api, 10);
    // No way to name another prefix in the request.
    expectProblem(
      await stranger.api.post('/v1/batches', { modelId: 'iris', format: 'csv', userId: owner.id }),
      400,
      'validation-failed',
    );
    const created = await createBatch(stranger.api, 'iris', 'csv');
    const url = new URL(created.upload.url);
    const bucket = local.stack.resources.batchBucket;
    const key = decodeURIComponent(url.pathname.split('/').slice(2).join('/'));
    expect(url.pathname.split('/')[1]).toBe(bucket);
    expect(key).toBe(`inbox/${stranger.id}/${created.batch.modelId}/${created.id}.csv`);
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).toContain('host');

    // The embedded emulator (moto) does not verify presigned signatures, so the check S3 makes is
    // made here: signing the same request again (same credentials, date and expiry) reproduces the
    // URL's signature for its own key, and gives a different one for the same URL with the owner's
    // id in the key. S3 answers such a tampered URL 403 SignatureDoesNotMatch.
    const signer = new S3Client({
      endpoint: local.stack.endpoints.s3,
      region: local.stack.region,
      forcePathStyle: true,
      // As the service signs: no checksum in the URL that the caller did not supply.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      credentials: {
        accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
      },
    });
    try {
      const amzDate = url.searchParams.get('X-Amz-Date') ?? '';
      const signingDate = new Date(
        `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
      );
      const expiresIn = Number(url.searchParams.get('X-Amz-Expires'));
      const signatureFor = async (forKey: string) =>
        new URL(
          await getSignedUrl(
            signer,
            new PutObjectCommand({
              Bucket: bucket,
              Key: forKey,
              ContentType: created.upload.headers['Content-Type'],
            }),
            { expiresIn, signingDate },
          ),
        ).searchParams.get('X-Amz-Signature');
      expect(await signatureFor(key)).toBe(url.searchParams.get('X-Amz-Signature'));
      const tamperedKey = key.replace(stranger.id, owner.id);
      expect(tamperedKey).not.toBe(key);
      expect(await signatureFor(tamperedKey)).not.toBe(url.searchParams.get('X-Amz-Signature'));
    } finally {
      signer.destroy();
    }

    // The genuine URL writes into the caller's own prefix only.
    await uploadFile(created.upload, toCsv(irisRows(3, 62)));
    const batch = await awaitBatch(stranger.api, created.id);
    expect(batch).toMatchObject({ status: 'succeeded', cost: 3 });
    const stored = await aws.s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await stored.Body?.transformToString()).toBe(toCsv(irisRows(3, 62)));
    expect((await owner.api.get('/v1/batches')).body.items).toEqual([]);
    expect(await balanceOf(owner.api)).toBe(10);
  });
});

/** Query parameters of a presigned URL that carry a checksum or ask for one. */
function checksumParameters(url: string): string[] {
  return [...new URL(url).searchParams.keys()].filter((name) =>
    /^x-amz-(checksum-|sdk-checksum-algorithm$)/i.test(name),
  );
}

function signedHeaders(url: string): string[] {
  return new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';') ?? [];
}

describe('presigned uploads every S3 accepts', () => {
  const CSV_TYPE = 'text/csv; charset=utf-8';

  it('without a declared size or checksum, the upload URL carries no checksum and signs only the host', async () => {
    const user = await newUser(local.url, admin.api, 10);
    const created = await createBatch(user.api, 'iris', 'csv');
    expect(checksumParameters(created.upload.url)).toEqual([]);
    expect(signedHeaders(created.upload.url)).toEqual(['host']);
    expect(created.upload.headers).toEqual({ 'Content-Type': CSV_TYPE });

    await uploadFile(created.upload, toCsv(irisRows(4, 81)));
    const batch = await awaitBatch(user.api, created.id);
    expect(batch).toMatchObject({ status: 'succeeded', rows: 4, succeeded: 4, cost: 4 });
    // The results link (a presigned GET) asks for no checksum either.
    expect(checksumParameters(batch.results.url)).toEqual([]);
    expect(parseResultsCsv(await downloadResults(batch)).rows).toHaveLength(4);
  });

  it('a declared size and SHA-256 are signed in as headers, handed back to send, and the batch runs', async () => {
    const user = await newUser(local.url, admin.api, 10);
    const file = toCsv(irisRows(6, 82));
    const size = Buffer.byteLength(file);
    const checksumSha256 = createHash('sha256').update(file).digest('base64');
    const response = await user.api.post('/v1/batches', {
      modelId: 'iris',
      format: 'csv',
      size,
      checksumSha256,
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const { upload } = response.body;
    expect(signedHeaders(upload.url)).toEqual(
      expect.arrayContaining(['content-length', 'host', 'x-amz-checksum-sha256']),
    );
    // Headers the uploader sends, not query parameters: nothing about checksums is in the URL.
    expect(checksumParameters(upload.url)).toEqual([]);
    expect(upload.headers).toEqual({
      'Content-Type': CSV_TYPE,
      'Content-Length': String(size),
      'x-amz-checksum-sha256': checksumSha256,
    });

    await uploadFile(upload, file);
    const batch = await awaitBatch(user.api, response.body.id);
    expect(batch).toMatchObject({ status: 'succeeded', rows: 6, succeeded: 6, failed: 0, cost: 6 });
    expect(checksumParameters(batch.results.url)).toEqual([]);
    const results = parseResultsCsv(await downloadResults(batch));
    expect(results.rows.map((r) => r.status)).toEqual(Array(6).fill('ok'));
    await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
  });

  it(`a declared size over MAX_BATCH_BYTES (${MAX_BATCH_BYTES}) is refused with 413 naming size and the limit; nothing is created`, async () => {
    const user = await newUser(local.url, admin.api, 10);
    for (const size of [MAX_BATCH_BYTES + 1, 5 * 1024 ** 3]) {
      const response = await user.api.post('/v1/batches', { modelId: 'iris', format: 'csv', size });
      const problem = expectProblem(response, 413, 'payload-too-large');
      expect(errorPaths(problem)).toEqual(['/size']);
      expect(problem.limit).toBe(MAX_BATCH_BYTES);
      expect(problem.detail).toContain(String(MAX_BATCH_BYTES));
      expect(problem.detail).toContain(String(size));
    }
    // Exactly at the limit is fine.
    const atLimit = await user.api.post('/v1/batches', {
      modelId: 'iris',
      format: 'csv',
      size: MAX_BATCH_BYTES,
    });
    expect(atLimit.status, JSON.stringify(atLimit.body)).toBe(201);
    expect(atLimit.body.upload.headers['Content-Length']).toBe(String(MAX_BATCH_BYTES));
    const list = await user.api.get('/v1/batches');
    expect(list.body.items.map((b: any) => b.id)).toEqual([atLimit.body.id]);
    expect(await balanceOf(user.api)).toBe(10);
  });

  it('a malformed checksum or size is refused with 400 naming the field; nothing is created', async () => {
    const user = await newUser(local.url, admin.api, 10);
    const text = 'sepal_length\n5.1\n';
    const digest = createHash('sha256').update(text).digest('base64');
    const cases: [Record<string, unknown>, string][] = [
      [{ checksumSha256: createHash('sha256').update(text).digest('hex') }, '/checksumSha256'],
      [{ checksumSha256: digest.slice(0, 43) }, '/checksumSha256'],
      [{ checksumSha256: `${digest.slice(0, 42)}B=` }, '/checksumSha256'],
      [{ checksumSha256: digest.replace(/=$/, 'A') }, '/checksumSha256'],
      [{ checksumSha256: createHash('sha1').update(text).digest('base64') }, '/checksumSha256'],
      [{ checksumSha256: createHash('sha512').update(text).digest('base64') }, '/checksumSha256'],
      [{ checksumSha256: 32 }, '/checksumSha256'],
      [{ size: 0 }, '/size'],
      [{ size: -5 }, '/size'],
      [{ size: 10.5 }, '/size'],
      [{ size: '100' }, '/size'],
    ];
    for (const [extra, path] of cases) {
      const response = await user.api.post('/v1/batches', { modelId: 'iris', format: 'csv', ...extra });
      const problem = expectProblem(response, 400, 'validation-failed');
      expect(errorPaths(problem), JSON.stringify(extra)).toEqual([path]);
    }
    expect((await user.api.get('/v1/batches')).body.items).toEqual([]);
  });
});

describe('GET /v1/batches', () => {
  it("lists only the caller's batches, newest first, page by page", async () => {
    const user = await newUser(local.url, admin.api, 0);
    const other = await newUser(local.url, admin.api, 0);
    await createBatch(other.api, 'iris', 'csv');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createBatch(user.api, i % 2 ? 'iris' : 'digits', i % 2 ? 'jsonl' : 'csv')).id);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const newestFirst = [...ids].reverse();

    const seen: any[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    for (let page = 0; page < 10; page++) {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const response = await user.api.get(`/v1/batches?limit=2${query}`);
      expect(response.status).toBe(200);
      sizes.push(response.body.items.length);
      seen.push(...response.body.items);
      cursor = response.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen.map((b) => b.id)).toEqual(newestFirst);
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen.every((b) => b.status === 'awaiting_upload' && b.rows === null && b.cost === 0)).toBe(true);
    expect(seen.map((b) => b.createdAt)).toEqual([...seen.map((b) => b.createdAt)].sort().reverse());

    const all = await user.api.get('/v1/batches');
    expect(all.body.items.map((b: any) => b.id)).toEqual(newestFirst);
    expect(all.body.nextCursor).toBeNull();
    expectProblem(await user.api.get('/v1/batches?limit=0'), 400, 'validation-failed');
    expectProblem(await user.api.get('/v1/batches?cursor=not-a-cursor!'), 400, 'validation-failed');
  });

  it('an operator-drop batch takes its place among the others by age, newest first', async () => {
    const user = await newUser(local.url, admin.api, 10);
    const key = `inbox/${user.id}/iris/dropped.csv`;
    const invoked = nextInvocationFor(local.stack, 'batch-worker', key, 30_000);
    await aws.drop(key, toCsv(irisRows(2, 71)));
    await invoked;
    const [dropped] = (await user.api.get('/v1/batches')).body.items;
    expect(dropped).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = await createBatch(user.api, 'iris', 'csv');

    const list = await user.api.get('/v1/batches');
    expect(list.body.items.map((b: any) => b.id)).toEqual([later.id, dropped.id]);
  });
});
