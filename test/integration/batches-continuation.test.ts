/**
 * A batch that cannot finish in one run: continued through the queue from its checkpoint many
 * times (a tiny BATCH_MAX_RUN_MS), and a run that dies halfway (a crash injected into the results
 * writer of a BatchWorker wired from the real adapters, since the emulator cannot crash a Lambda)
 * and is run again by the redelivered message. Every row is charged exactly once and the results
 * come out complete and in order.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvocationReport } from '../../infra/local/queue-pump.ts';
import { S3BatchFiles } from '../../shared/adapters/batch-files.ts';
import { DynamoAccountStore } from '../../shared/adapters/dynamo/account-store.ts';
import { DynamoBatchStore } from '../../shared/adapters/dynamo/batch-store.ts';
import { DynamoIdempotencyStore } from '../../shared/adapters/dynamo/idempotency-store.ts';
import { DynamoTransactions } from '../../shared/adapters/dynamo/transactions.ts';
import { DynamoUsageStore } from '../../shared/adapters/dynamo/usage-store.ts';
import { OnnxModelRuntime } from '../../shared/adapters/model-runtime.ts';
import { S3Files } from '../../shared/adapters/s3-files.ts';
import { services } from '../../shared/app/services.ts';
import type { BatchFilesPort, ContinuationQueue, SegmentWriter } from '../../shared/batches/ports.ts';
import { BatchBusyError, BatchWorker, type RunContext } from '../../shared/batches/worker.ts';
import type { Batch, BatchFormat } from '../../shared/domain/batches.ts';
import type { DeclaredFile } from '../../shared/domain/uploads.ts';
import { type SignedInUser, signIn } from '../support/api.ts';
import {
  awaitBatch,
  createBatch,
  downloadResults,
  expectChargedOnce,
  expectContiguous,
  irisRows,
  newUser,
  paidChunks,
  parseResultsCsv,
  predictSync,
  queuedBatchRecord,
  toCsv,
  uploadFile,
} from '../support/batches.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const CHUNK = 50;
const local = useLocalStack({
  // One chunk per run: every run checkpoints and continues in a new invocation.
  environment: { SIGNUP_BONUS: '0', BATCH_CHUNK_SIZE: String(CHUNK), BATCH_MAX_RUN_MS: '1' },
});
const ledger = useReconciler(local);

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

/** Results of an all-`ok` iris batch against the sync API's outputs for the same rows. */
function expectMatchesSync(text: string, sync: { outputs: { label: number[]; probabilities: number[][] } }) {
  const results = parseResultsCsv(text);
  expect(results.header).toEqual(IRIS_COLUMNS);
  expect(results.rows).toHaveLength(sync.outputs.label.length);
  results.rows.forEach((line, i) => {
    expect(line.row).toBe(String(i + 1));
    expect(line.status).toBe('ok');
    expect(line.label).toBe(String(sync.outputs.label[i]));
    sync.outputs.probabilities[i]?.forEach((p, k) => {
      expect(Math.abs(Number(line[`probabilities_${k}`]) - p)).toBeLessThanOrEqual(1e-6);
    });
  });
}

async function segmentsLeft(s3: S3Client, userId: string, batchId: string): Promise<number> {
  const listed = await s3.send(
    new ListObjectsV2Command({
      Bucket: local.stack.resources.batchBucket,
      Prefix: `results/${userId}/${batchId}.parts/`,
    }),
  );
  return listed.KeyCount ?? 0;
}

describe('a batch continued over many runs', () => {
  it('1,000 rows in chunks of 50, one chunk per run: every row charged once, results complete and in order', async () => {
    const rows = irisRows(1000, 101);
    const user = await newUser(local.url, admin.api, 2000);
    const sync = await predictSync(user.api, 'iris', rows);

    const reports: InvocationReport[] = [];
    const listener = (report: InvocationReport) => {
      if (report.worker === 'batch-worker') reports.push(report);
    };
    local.stack.pump.events.on('invocation', listener);
    let batch: any;
    try {
      const created = await createBatch(user.api, 'iris', 'csv');
      await uploadFile(created.upload, toCsv(rows));
      batch = await awaitBatch(user.api, created.id, 90_000);
    } finally {
      local.stack.pump.events.off('invocation', listener);
    }
    expect(batch).toMatchObject({
      status: 'succeeded',
      rows: 1000,
      processed: 1000,
      succeeded: 1000,
      failed: 0,
      cost: 1000,
    });

    // The first run came from the S3 event; each later one from a continuation message.
    const continuations = reports.filter((r) =>
      r.event.Records.some((record) => record.body.includes('"batch-continuation"')),
    );
    expect(continuations.length).toBeGreaterThanOrEqual(1000 / CHUNK - 1);
    expect(reports.every((r) => r.failedMessageIds.length === 0)).toBe(true);

    expectMatchesSync(await downloadResults(batch), sync);
    const found = await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, batch, 1);
    expectContiguous(found.chunkRecords.keys());
    expect(found.chunkRecords.size).toBe(1000 / CHUNK);
    for (const record of found.chunkRecords.values()) expect(Number(record.rowsCharged)).toBe(CHUNK);

    const s3 = new S3Client({
      endpoint: local.stack.endpoints.s3,
      region: local.stack.region,
      forcePathStyle: true,
    });
    try {
      expect(await segmentsLeft(s3, user.id, batch.id)).toBe(0);
    } finally {
      s3.destroy();
    }
  }, 120_000);
});

/** Faults injected into the real S3 batch files: a crash at the Nth segment write, or in assembling. */
class CrashingFiles implements BatchFilesPort {
  writes = 0;
  crashOnWrite: number | undefined;
  crashOnAssemble = false;

  constructor(private readonly inner: S3BatchFiles) {}

  get bucket() {
    return this.inner.bucket;
  }

  size(key: string) {
    return this.inner.size(key);
  }

  rows(key: string, format: BatchFormat) {
    return this.inner.rows(key, format);
  }

  startSegment(key: string, contentType: string): SegmentWriter {
    const writer = this.inner.startSegment(key, contentType);
    return {
      write: async (text) => {
        this.writes += 1;
        if (this.writes === this.crashOnWrite) {
          this.crashOnWrite = undefined;
          throw new Error('injected crash while writing results');
        }
        await writer.write(text);
      },
      finish: () => writer.finish(),
      abort: () => writer.abort(),
    };
  }

  async assemble(segments: string[], key: string, contentType: string) {
    if (this.crashOnAssemble) {
      this.crashOnAssemble = false;
      throw new Error('injected crash while assembling results');
    }
    await this.inner.assemble(segments, key, contentType);
  }

  presignUpload(key: string, ttlSeconds: number, contentType: string, declared: DeclaredFile) {
    return this.inner.presignUpload(key, ttlSeconds, contentType, declared);
  }

  presignDownload(key: string, ttlSeconds: number, downloadName: string) {
    return this.inner.presignDownload(key, ttlSeconds, downloadName);
  }
}

/** Continuations asked for, kept here: the test plays the queue, one message id per run. */
class RecordingQueue implements ContinuationQueue {
  readonly asked: { userId: string; batchId: string }[] = [];
  async continueLater(userId: string, batchId: string) {
    this.asked.push({ userId, batchId });
  }
}

describe('a run that crashes halfway and is run again', () => {
  let dynamo: DynamoDBDocumentClient;
  let s3: S3Client;
  beforeAll(() => {
    dynamo = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: local.stack.endpoints.dynamodb, region: local.stack.region }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
    s3 = new S3Client({
      endpoint: local.stack.endpoints.s3,
      region: local.stack.region,
      forcePathStyle: true,
    });
  });
  afterAll(() => {
    dynamo?.destroy();
    s3?.destroy();
  });

  /** A BatchWorker of its own, as another worker container would have, over the real adapters. */
  function worker(settings: { maxRunMs: number }) {
    const { tableName, batchBucket, modelsBucket } = local.stack.resources;
    const files = new CrashingFiles(new S3BatchFiles(s3, new S3Files(s3), batchBucket));
    const queue = new RecordingQueue();
    const repository = new DynamoBatchStore(dynamo, tableName);
    const service = new BatchWorker(
      repository,
      files,
      services().models,
      new OnnxModelRuntime(new S3Files(s3), modelsBucket, { capacity: 2, threads: 1 }),
      new DynamoAccountStore(dynamo, tableName),
      new DynamoIdempotencyStore(dynamo, tableName),
      new DynamoUsageStore(dynamo, tableName),
      new DynamoTransactions(dynamo),
      // Low-balance notifications are not under test here.
      { notifyLowBalance: async () => {} },
      queue,
      {
        chunkSize: CHUNK,
        maxRows: 100_000,
        maxBytes: 10_000_000,
        reserveMs: 0,
        maxRunMs: settings.maxRunMs,
      },
    );
    return { service, files, queue, repository };
  }

  /** A queued iris batch whose file sits outside the inbox, so only this test's worker runs it. */
  async function stagedBatch(user: SignedInUser, rows: number[][]): Promise<Batch> {
    const model = await services().models.findActive('iris');
    if (!model) throw new Error('iris is not active');
    const id = ulid();
    const inputKey = `staging/${user.id}/${id}.csv`;
    await s3.send(
      new PutObjectCommand({ Bucket: local.stack.resources.batchBucket, Key: inputKey, Body: toCsv(rows) }),
    );
    const batch = queuedBatchRecord(
      id,
      user.id,
      { id: model.id, modelName: model.name, modelVersion: model.version, price: model.price },
      inputKey,
    );
    await new DynamoBatchStore(dynamo, local.stack.resources.tableName).create(batch);
    return batch;
  }

  const run = (owner: string): RunContext => ({ owner, remainingMs: () => 900_000 });

  it('dies after charging three chunks; the same message again charges each chunk once and completes', async () => {
    const rows = irisRows(230, 102);
    const user = await newUser(local.url, admin.api, 2 * rows.length);
    const sync = await predictSync(user.api, 'iris', rows);
    const batch = await stagedBatch(user, rows);
    const { service, files, repository } = worker({ maxRunMs: 0 });

    // Writes: the CSV header, then one per chunk. The 4th is chunk 2's lines, after its charge.
    files.crashOnWrite = 4;
    await expect(service.continueBatch(user.id, batch.id, run('message-1'))).rejects.toThrow(
      'injected crash',
    );
    const midway = await repository.get(user.id, batch.id);
    expect(midway).toMatchObject({ status: 'running', rows: 230, processed: 150, succeeded: 150, cost: 150 });
    expect(midway?.checkpoint).toBeUndefined();
    const charged = await ledger.read(user.id);
    expect(charged.entries.filter((e) => e.batchId === batch.id).map((e) => e.amount)).toEqual([
      -50, -50, -50,
    ]);
    await ledger.expectReconciled(user.id);

    // Another message cannot take over while the crashed run's lease lasts.
    await expect(service.continueBatch(user.id, batch.id, run('message-2'))).rejects.toBeInstanceOf(
      BatchBusyError,
    );

    // The redelivery of the same message (same id) takes its own lease back and finishes.
    await service.continueBatch(user.id, batch.id, run('message-1'));
    const done = await repository.get(user.id, batch.id);
    expect(done).toMatchObject({
      status: 'succeeded',
      rows: 230,
      processed: 230,
      succeeded: 230,
      failed: 0,
      cost: 230,
    });
    const finished = (await user.api.get(`/v1/batches/${batch.id}`)).body;
    expectMatchesSync(await downloadResults(finished), sync);
    const found = await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, finished, 1);
    expect(paidChunks(found)).toEqual([
      [0, 50],
      [1, 50],
      [2, 50],
      [3, 50],
      [4, 30],
    ]);
    expect(await segmentsLeft(s3, user.id, batch.id)).toBe(0);

    // A finished batch runs no more, whoever asks.
    await service.continueBatch(user.id, batch.id, run('message-3'));
    expect((await ledger.read(user.id)).entries).toHaveLength(charged.entries.length + 2);
  });

  it('crashes in a continuation after a checkpoint and again while assembling: still charged once', async () => {
    const rows = irisRows(260, 103);
    const user = await newUser(local.url, admin.api, 2 * rows.length);
    const sync = await predictSync(user.api, 'iris', rows);
    const batch = await stagedBatch(user, rows);
    // One chunk per run, as in a Lambda that keeps running out of time.
    const { service, files, queue, repository } = worker({ maxRunMs: 1 });

    await service.continueBatch(user.id, batch.id, run('event-message'));
    expect(queue.asked).toHaveLength(1);
    expect(await repository.get(user.id, batch.id)).toMatchObject({
      status: 'running',
      processed: 50,
      checkpoint: { rowsDone: 50, nextChunk: 1, segments: 1 },
    });

    // The first continuation dies after charging chunk 1, before its lines are written.
    files.crashOnWrite = files.writes + 1;
    await expect(service.continueBatch(user.id, batch.id, run('continuation-1'))).rejects.toThrow(
      'injected crash',
    );
    expect(queue.asked).toHaveLength(1);
    const afterCrash = await ledger.read(user.id);
    expect(afterCrash.entries.filter((e) => e.batchId === batch.id).map((e) => e.amount)).toEqual([-50, -50]);

    // Its redelivery carries on from the checkpoint; then each new continuation message runs once.
    files.crashOnAssemble = true;
    let owner = 'continuation-1';
    let crashes = 0;
    for (let runs = 0; runs < 20; runs++) {
      try {
        await service.continueBatch(user.id, batch.id, run(owner));
      } catch (error) {
        expect((error as Error).message).toContain('injected crash while assembling');
        crashes += 1;
        continue; // redelivered: the same message id again
      }
      const current = await repository.get(user.id, batch.id);
      if (current?.status === 'succeeded') break;
      owner = `continuation-${queue.asked.length}`;
    }
    expect(crashes).toBe(1);
    const finished = (await user.api.get(`/v1/batches/${batch.id}`)).body;
    expect(finished).toMatchObject({ status: 'succeeded', rows: 260, succeeded: 260, failed: 0, cost: 260 });
    expect(queue.asked.length).toBe(Math.ceil(260 / CHUNK) - 1);

    expectMatchesSync(await downloadResults(finished), sync);
    const found = await expectChargedOnce(ledger, local.stack.resources.tableName, user.id, finished, 1);
    expectContiguous(found.chunkRecords.keys());
    expect(found.chunkRecords.size).toBe(Math.ceil(260 / CHUNK));
    expect(await segmentsLeft(s3, user.id, batch.id)).toBe(0);
  });
});
