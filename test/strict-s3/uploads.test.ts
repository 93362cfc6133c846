/**
 * Every URL the service hands out, used against SeaweedFS: an S3 that verifies presigned signatures,
 * expiry, the signed Content-Length and `x-amz-checksum-*` against the body, as AWS S3 does (and as
 * moto and LocalStack do not). S3 is SeaweedFS here; DynamoDB and SQS stay on the run's emulator.
 * SeaweedFS sends no bucket notifications, so the tests hand the worker the S3 event S3 would send.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SignedInUser, signIn, signUp } from '../support/api.ts';
import {
  awaitBatch,
  type BatchUpload,
  createBatch,
  downloadResults,
  irisRows,
  parseResultsCsv,
  parseResultsJsonl,
  putFile,
  toCsv,
  toJsonl,
} from '../support/batches.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { awaitValidation, createModel, modelFile } from '../support/models.ts';
import { strictS3, strictS3Environment, useStrictS3 } from '../support/strict-s3.ts';

const strict = strictS3();
const local = useLocalStack({
  endpoints: { s3: strict.endpoint },
  bucketNotifications: false,
  environment: {
    ...strictS3Environment(),
    // The shortest link the configuration allows, so the expiry test waits as little as it can.
    PRESIGNED_URL_TTL_SECONDS: '60',
  },
});
const seaweed = useStrictS3(() => local.stack);

let user: SignedInUser;
let admin: SignedInUser;
/** Handed out first and used last, so its expiry is waited for while the other tests run. */
let expiring: { upload: BatchUpload; handedOutAt: number };
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
  user = await signUp(local.url, 'strict');
  expiring = { upload: (await createBatch(user.api, 'iris', 'csv')).upload, handedOutAt: Date.now() };
});

const notifyCreated = seaweed.notifyCreated;
const objectExists = seaweed.exists;
const keyOf = (upload: BatchUpload) =>
  decodeURIComponent(new URL(upload.url).pathname.split('/').slice(2).join('/'));
const sha256 = (body: string | Uint8Array) => createHash('sha256').update(body).digest('base64');

describe('model uploads on a strict S3', () => {
  it('accepts the ONNX file at the URL as handed out, with its declared size and checksum, and the validator reads it', async () => {
    const bytes = await modelFile('iris/model.onnx');
    const { model, upload } = await createModel(admin.api, {
      name: `strict-${Date.now()}`,
      price: 1,
      size: bytes.length,
      checksumSha256: sha256(bytes),
    });
    const response = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: bytes });
    expect(response.status).toBe(200);
    const key = decodeURIComponent(new URL(upload.url).pathname.split('/').slice(2).join('/'));
    await notifyCreated(local.stack.resources.modelQueueUrl, local.stack.resources.modelsBucket, key);
    expect(await awaitValidation(admin.api, model.id)).toMatchObject({
      status: 'active',
      sha256: expect.any(String),
    });
  });

  it('refuses a model file that is not the one whose checksum was signed', async () => {
    const bytes = await modelFile('iris/model.onnx');
    const { upload } = await createModel(admin.api, {
      name: `strict-bad-${Date.now()}`,
      price: 1,
      size: bytes.length,
      checksumSha256: sha256(bytes),
    });
    const other = new Uint8Array(bytes);
    other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 0xff;
    const response = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: other });
    expect(response.status).toBeGreaterThanOrEqual(400);
  });
});

describe('batch uploads on a strict S3', () => {
  it.each([
    ['csv', (rows: number[][]) => toCsv(rows)],
    ['jsonl', (rows: number[][]) => toJsonl(rows)],
  ] as const)(
    'accepts the real %s file at the URL as handed out, and the results link downloads',
    async (format, render) => {
      const rows = irisRows(30, 7);
      const created = await createBatch(user.api, 'iris', format);
      expect((await putFile(created.upload, render(rows))).status).toBe(200);

      const bucket = local.stack.resources.batchBucket;
      await notifyCreated(local.stack.resources.batchQueueUrl, bucket, keyOf(created.upload));
      const batch = await awaitBatch(user.api, created.id);
      expect(batch).toMatchObject({ status: 'succeeded', rows: 30 });
      const results = await downloadResults(batch);
      const count =
        format === 'csv' ? parseResultsCsv(results).rows.length : parseResultsJsonl(results).length;
      expect(count).toBe(30);
    },
  );

  it('accepts a declared size and checksum with the body they describe', async () => {
    const file = toCsv(irisRows(10, 3));
    const response = await user.api.post('/v1/batches', {
      modelId: 'iris',
      format: 'csv',
      size: Buffer.byteLength(file),
      checksumSha256: sha256(file),
    });
    expect(response.status).toBe(201);
    expect((await putFile(response.body.upload, file)).status).toBe(200);
  });

  it('refuses a body whose SHA-256 is not the one signed, and a body longer than the signed size', async () => {
    const file = toCsv(irisRows(10, 3));
    const declared = {
      modelId: 'iris',
      format: 'csv',
      size: Buffer.byteLength(file),
      checksumSha256: sha256(file),
    };
    const first = (await user.api.post('/v1/batches', declared)).body;
    // Same length, other bytes: only the checksum can tell.
    const tampered = file.replace('5.', '6.');
    expect(Buffer.byteLength(tampered)).toBe(Buffer.byteLength(file));
    const wrongChecksum = await putFile(first.upload, tampered);
    expect(wrongChecksum.status).toBeGreaterThanOrEqual(400);
    expect(wrongChecksum.text).toMatch(
      /BadDigest|XAmzContentChecksumMismatch|InvalidDigest|SignatureDoesNotMatch/,
    );

    const second = (await user.api.post('/v1/batches', { ...declared, checksumSha256: undefined })).body;
    // A client sends the length of what it sends; the length signed into the URL is another.
    const { 'Content-Length': _signed, ...headers } = second.upload.headers as Record<string, string>;
    const longer = await putFile({ ...second.upload, headers }, `${file}5,3,1,0\n`);
    expect(longer.status).toBeGreaterThanOrEqual(400);
    for (const upload of [first.upload, second.upload])
      expect(await objectExists(local.stack.resources.batchBucket, keyOf(upload))).toBe(false);
  });

  it("refuses a URL whose key was changed to another user's prefix, or whose signature was altered", async () => {
    const created = await createBatch(user.api, 'iris', 'csv');
    const url = new URL(created.upload.url);
    const other = await signUp(local.url, 'victim');
    url.pathname = url.pathname.replace(user.id, other.id);
    const moved = await putFile({ ...created.upload, url: url.toString() }, toCsv(irisRows(2)));
    expect(moved.status).toBe(403);
    expect(moved.text).toMatch(/SignatureDoesNotMatch|AccessDenied/);

    const signed = new URL(created.upload.url);
    const signature = signed.searchParams.get('X-Amz-Signature') ?? '';
    signed.searchParams.set(
      'X-Amz-Signature',
      `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`,
    );
    const forged = await putFile({ ...created.upload, url: signed.toString() }, toCsv(irisRows(2)));
    expect(forged.status).toBe(403);
  });

  it('refuses an upload URL after it expires', { timeout: 120_000 }, async () => {
    expect(new URL(expiring.upload.url).searchParams.get('X-Amz-Expires')).toBe('60');
    const left = expiring.handedOutAt + 62_000 - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    const late = await putFile(expiring.upload, toCsv(irisRows(2)));
    expect(late.status).toBe(403);
    expect(late.text).toMatch(/expired|AccessDenied/i);
  });
});
