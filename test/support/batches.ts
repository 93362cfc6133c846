/**
 * Batches over HTTP for tests: create, upload to the presigned URL, wait for the worker, read the
 * results; deterministic row generators for CSV and JSONL; direct S3/SQS clients for the operator's
 * side of the buckets; and ledger checks of a batch's charges read straight from DynamoDB.
 */
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { parse } from 'csv-parse/sync';
import { afterAll, expect } from 'vitest';
import type { Batch } from '../../shared/domain/batches.ts';
import type { Api, SignedInUser } from './api.ts';
import { signUp } from './api.ts';
import type { StackHandle } from './local-stack.ts';
import type { Reconciler } from './reconcile.ts';

export type BatchFormat = 'csv' | 'jsonl';

export interface BatchUpload {
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
}

export interface CreatedBatch {
  id: string;
  status: string;
  upload: BatchUpload;
  batch: any;
}

export const IRIS_HEADER = 'sepal_length,sepal_width,petal_length,petal_width';

/** `POST /v1/batches`; throws unless 201. */
export async function createBatch(api: Api, modelId: string, format: BatchFormat): Promise<CreatedBatch> {
  const response = await api.post('/v1/batches', { modelId, format });
  if (response.status !== 201)
    throw new Error(`POST /v1/batches: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as CreatedBatch;
}

/** PUTs a file to a batch's presigned URL; returns S3's answer (status and body text). */
export async function putFile(
  upload: BatchUpload,
  body: string | Uint8Array,
): Promise<{ status: number; text: string }> {
  const response = await fetch(upload.url, { method: upload.method, headers: upload.headers, body });
  return { status: response.status, text: await response.text() };
}

/** PUTs a file and throws unless S3 accepted it. */
export async function uploadFile(upload: BatchUpload, body: string | Uint8Array): Promise<void> {
  const { status, text } = await putFile(upload, body);
  if (status < 200 || status >= 300) throw new Error(`batch upload PUT: ${status} ${text}`);
}

const FINISHED = new Set(['succeeded', 'failed']);

/** Polls `GET /v1/batches/{id}` until the batch is `succeeded` or `failed`. */
export async function awaitBatch(api: Api, id: string, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const response = await api.get(`/v1/batches/${id}`);
    if (response.status !== 200)
      throw new Error(`GET /v1/batches/${id}: ${response.status} ${JSON.stringify(response.body)}`);
    last = response.body;
    if (FINISHED.has(response.body.status)) return response.body;
    if (Date.now() > deadline)
      throw new Error(`batch ${id} did not finish within ${timeoutMs} ms: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** Creates a batch, uploads `body` and waits for the worker to finish it. */
export async function runBatch(
  api: Api,
  modelId: string,
  format: BatchFormat,
  body: string | Uint8Array,
  timeoutMs?: number,
): Promise<{ created: CreatedBatch; batch: any }> {
  const created = await createBatch(api, modelId, format);
  await uploadFile(created.upload, body);
  return { created, batch: await awaitBatch(api, created.id, timeoutMs) };
}

/** Downloads a finished batch's results through its presigned link. */
export async function downloadResults(batch: { results?: { url: string } }): Promise<string> {
  const url = batch.results?.url;
  if (!url) throw new Error(`the batch has no results link: ${JSON.stringify(batch)}`);
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) throw new Error(`results GET: ${response.status} ${text}`);
  return text;
}

/** A CSV results file as objects keyed by its header (every value a string). */
export function parseResultsCsv(text: string): { header: string[]; rows: Record<string, string>[] } {
  const records = parse(text, { bom: true }) as string[][];
  const [header = [], ...lines] = records;
  return {
    header,
    rows: lines.map((fields) => Object.fromEntries(header.map((name, i) => [name, fields[i] ?? '']))),
  };
}

/** A JSONL results file, line by line. */
export function parseResultsJsonl(text: string): any[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/** A small deterministic generator (mulberry32), so every run sends the same rows. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Iris-like rows (one decimal, in the ranges of the data set), deterministic for a seed. */
export function irisRows(count: number, seed = 1): number[][] {
  const random = seededRandom(seed);
  const ranges: [number, number][] = [
    [4.3, 7.9],
    [2.0, 4.4],
    [1.0, 6.9],
    [0.1, 2.5],
  ];
  return Array.from({ length: count }, () =>
    ranges.map(([low, high]) => Math.round((low + random() * (high - low)) * 10) / 10),
  );
}

/** Rows as CSV with a header, `\n` line endings and a final newline. */
export function toCsv(rows: (number | string)[][], header = IRIS_HEADER): string {
  return `${header}\n${rows.map((row) => row.join(',')).join('\n')}\n`;
}

/** Rows as JSONL, one `{"inputs": {"input": [...]}}` per line. */
export function toJsonl(rows: number[][], inputName = 'input'): string {
  return `${rows.map((row) => JSON.stringify({ inputs: { [inputName]: row } })).join('\n')}\n`;
}

/** `POST /v1/models/{model}/predictions` for rows (at most MAX_PREDICTION_ROWS); throws unless 201. */
export async function predictSync(api: Api, model: string, rows: number[][]): Promise<any> {
  const response = await api.post(`/v1/models/${model}/predictions`, { inputs: { input: rows } });
  if (response.status !== 201)
    throw new Error(`sync prediction: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Signs up a user and, when `credits` is given, has the admin grant that many. */
export async function newUser(
  baseUrl: string,
  admin: Api,
  credits = 0,
  label = 'batch-user',
): Promise<SignedInUser> {
  const user = await signUp(baseUrl, label);
  if (credits > 0) await grant(admin, user.id, credits);
  return user;
}

export async function grant(admin: Api, userId: string, amount: number): Promise<void> {
  const response = await admin.post(`/v1/admin/users/${userId}/grants`, { amount, reason: 'batch tests' });
  if (response.status !== 201) throw new Error(`grant: ${response.status} ${JSON.stringify(response.body)}`);
}

export async function balanceOf(api: Api): Promise<number> {
  const response = await api.get('/v1/account');
  if (response.status !== 200) throw new Error(`GET /v1/account: ${response.status}`);
  return response.body.balance as number;
}

/** Every page of `GET /v1/account/transactions`, newest first. */
export async function transactions(api: Api): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const response = await api.get(`/v1/account/transactions?limit=100${query}`);
    if (response.status !== 200) throw new Error(`transactions: ${response.status}`);
    items.push(...response.body.items);
    cursor = response.body.nextCursor;
    if (!cursor) break;
  }
  return items;
}

/** S3 and SQS clients of the test itself (the operator's view), destroyed after the file. */
export function useAwsClients(local: StackHandle) {
  let s3: S3Client | undefined;
  let sqs: SQSClient | undefined;
  afterAll(() => {
    s3?.destroy();
    sqs?.destroy();
  });
  const options = (service: 's3' | 'sqs') => ({
    endpoint: local.stack.endpoints[service],
    region: local.stack.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    s3(): S3Client {
      s3 ??= new S3Client({ ...options('s3'), forcePathStyle: true });
      return s3;
    },
    sqs(): SQSClient {
      sqs ??= new SQSClient(options('sqs'));
      return sqs;
    },
    /** Puts an object straight into the batch bucket, as an operator with bucket access would. */
    async drop(key: string, body: string | Uint8Array): Promise<void> {
      await this.s3().send(
        new PutObjectCommand({ Bucket: local.stack.resources.batchBucket, Key: key, Body: body }),
      );
    },
    async remove(bucket: string, key: string): Promise<void> {
      await this.s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}

export interface BatchCharges {
  /** Ledger entries of kind `charge` for the batch. */
  charges: any[];
  refunds: any[];
  /**
   * The batch's chunk records by chunk index: one per chunk settled (`batch#{id}#chunk#{n}`), with
   * `rowsCharged`; a chunk that charged something holds its ledger entry.
   */
  chunkRecords: Map<number, Record<string, unknown>>;
}

/** The batch's ledger entries and chunk records, read straight from DynamoDB. */
export async function batchCharges(
  ledger: Reconciler,
  tableName: string,
  userId: string,
  batchId: string,
): Promise<BatchCharges> {
  const { entries } = await ledger.read(userId);
  const mine = entries.filter((e) => e.batchId === batchId);
  const chunkRecords = new Map<number, Record<string, unknown>>();
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await ledger.client().send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `USER#${userId}`, ':prefix': `TXN#batch#${batchId}#chunk#` },
        ConsistentRead: true,
        ExclusiveStartKey,
      }),
    );
    for (const item of page.Items ?? []) {
      chunkRecords.set(Number(String(item.sk).split('#chunk#')[1]), item);
    }
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return {
    charges: mine.filter((e) => e.kind === 'charge'),
    refunds: mine.filter((e) => e.kind === 'refund'),
    chunkRecords,
  };
}

/** `[chunk, rowsCharged]` of the chunks that charged something, in chunk order. */
export function paidChunks(found: BatchCharges): [number, number][] {
  return [...found.chunkRecords.entries()]
    .filter(([, record]) => record.entry !== undefined)
    .map(([chunk, record]): [number, number] => [chunk, Number(record.rowsCharged)])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * Asserts that a batch was charged exactly once per chunk: every ledger charge of the batch is the
 * entry of exactly one chunk record (the idempotency record keyed by batch and chunk), each for
 * `rowsCharged × price`, the charges sum to `succeeded × price` = the batch's cost, and the account
 * reconciles.
 */
export async function expectChargedOnce(
  ledger: Reconciler,
  tableName: string,
  userId: string,
  batch: { id: string; succeeded: number; cost: number },
  price: number,
): Promise<BatchCharges> {
  const found = await batchCharges(ledger, tableName, userId, batch.id);
  const total = found.charges.reduce((sum, e) => sum + e.amount, 0);
  expect(-total).toBe(batch.succeeded * price);
  expect(batch.cost).toBe(batch.succeeded * price);
  const paid = [...found.chunkRecords.values()].filter((record) => record.entry !== undefined);
  const recordedEntries = paid.map((record) => (record.entry as { id: string }).id);
  expect(new Set(recordedEntries).size).toBe(recordedEntries.length);
  expect(found.charges.map((e) => e.id).sort()).toEqual([...recordedEntries].sort());
  for (const record of found.chunkRecords.values()) {
    if (record.entry === undefined) {
      expect(Number(record.rowsCharged ?? 0)).toBe(0);
      continue;
    }
    expect((record.entry as { amount: number }).amount).toBe(-Number(record.rowsCharged) * price);
  }
  await ledger.expectReconciled(userId);
  return found;
}

/** Sorted chunk indexes 0..n-1 check. */
export function expectContiguous(indexes: Iterable<number>): void {
  const sorted = [...indexes].sort((a, b) => a - b);
  expect(sorted).toEqual(sorted.map((_, i) => i));
}

/** A batch record queued for the worker, as the API would write it, for tests that drive the service directly. */
export function queuedBatchRecord(
  id: string,
  userId: string,
  model: Pick<Batch, 'modelName' | 'modelVersion' | 'price'> & { id: string },
  inputKey: string,
): Batch {
  return {
    id,
    userId,
    modelId: model.id,
    modelName: model.modelName,
    modelVersion: model.modelVersion,
    price: model.price,
    format: 'csv',
    status: 'queued',
    rows: null,
    processed: 0,
    succeeded: 0,
    failed: 0,
    cost: 0,
    inputKey,
    createdAt: new Date().toISOString(),
  };
}
