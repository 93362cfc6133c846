/**
 * Batches that keep failing: the message is retried by the queue, on its last allowed receive the
 * batch is marked failed (and refunded if it had charged anything), and the message lands in the
 * dead-letter queue. And partial batch failure reporting of the worker: only the failing message of
 * an invocation comes back.
 */
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { ulid } from 'ulid';
import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../infra/local/lambda-context.ts';
import type { InvocationReport } from '../../infra/local/queue-pump.ts';
import { DynamoBatchStore } from '../../shared/adapters/dynamo/batch-store.ts';
import { functions } from '../../shared/api/functions.ts';
import { services } from '../../shared/app/services.ts';
import type { Batch } from '../../shared/domain/batches.ts';
import { objectsCreated } from '../../shared/domain/s3-events.ts';
import { type SignedInUser, signIn } from '../support/api.ts';
import {
  awaitBatch,
  balanceOf,
  createBatch,
  downloadResults,
  irisRows,
  newUser,
  parseResultsCsv,
  queuedBatchRecord,
  toCsv,
  uploadFile,
  useAwsClients,
} from '../support/batches.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { modelFile, publishModel } from '../support/models.ts';
import { useReconciler } from '../support/reconcile.ts';

/** The dev stage's maxReceiveCount of the batch queue (infra/stage.ts). */
const MAX_RECEIVES = 3;
const CHUNK = 10;
const local = useLocalStack({
  environment: {
    SIGNUP_BONUS: '0',
    BATCH_CHUNK_SIZE: String(CHUNK),
    // One chunk per run, so a batch charges some chunks before a later run can fail.
    BATCH_MAX_RUN_MS: '1',
    BATCH_MAX_RECEIVES: String(MAX_RECEIVES),
  },
  visibilityTimeoutSeconds: 2,
});
const ledger = useReconciler(local);
const aws = useAwsClients(local);

let admin: SignedInUser;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

/** Every batch-worker invocation from now on, until `stop()`. */
function recordInvocations() {
  const reports: InvocationReport[] = [];
  const listener = (report: InvocationReport) => {
    if (report.worker === 'batch-worker') reports.push(report);
  };
  local.stack.pump.events.on('invocation', listener);
  return { reports, stop: () => local.stack.pump.events.off('invocation', listener) };
}

/** Whether an invocation carried an S3 event for `key` (keys in S3 events are URL-encoded). */
function namesKey(report: InvocationReport, key: string): boolean {
  return report.event.Records.some((record) => {
    try {
      return objectsCreated(record.body).some((o) => o.key === key);
    } catch {
      return false;
    }
  });
}

/** Receives from the batch dead-letter queue until a message matches, or the time is up. */
async function awaitDeadLetter(matches: (body: string) => boolean, timeoutMs = 40_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { Messages } = await aws.sqs().send(
      new ReceiveMessageCommand({
        QueueUrl: local.stack.resources.batchDeadLetterQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 2,
        VisibilityTimeout: 1,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const found = (Messages ?? []).find((m) => matches(m.Body ?? ''));
    if (found) return found;
  }
  throw new Error(`no matching message reached the dead-letter queue within ${timeoutMs} ms`);
}

describe('a message that keeps failing', () => {
  it('goes to the DLQ after the last receive, and its batch is failed with the reason and charged nothing', async () => {
    // A fresh model version, never run in this process (the runtime caches loaded models), whose
    // file then disappears from the models bucket: every run of the batch throws.
    const published = await publishModel(
      admin.api,
      { name: `iris-vanishing-${ulid().slice(-6).toLowerCase()}`, price: 1 },
      await modelFile('iris/model.onnx'),
    );
    expect(published.model.status).toBe('active');
    await aws.remove(local.stack.resources.modelsBucket, `uploads/${published.model.id}.onnx`);

    const user = await newUser(local.url, admin.api, 50);
    const recorder = recordInvocations();
    let batch: any;
    let key = '';
    try {
      const created = await createBatch(user.api, published.model.id, 'csv');
      key = decodeURIComponent(new URL(created.upload.url).pathname.split('/').slice(2).join('/'));
      await uploadFile(created.upload, toCsv(irisRows(25, 201)));
      batch = await awaitBatch(user.api, created.id, 60_000);
      await awaitDeadLetter((body) => body.includes(created.id));
    } finally {
      recorder.stop();
    }

    expect(batch).toMatchObject({ status: 'failed', rows: 25, succeeded: 0, cost: 0 });
    expect(batch.statusReason).toMatch(/^Processing failed repeatedly: /);
    expect(batch.results).toBeUndefined();

    // The S3 event was received MAX_RECEIVES times, failed each time, then went to the DLQ.
    const runs = recorder.reports.filter((r) => namesKey(r, key));
    expect(runs.map((r) => r.event.Records[0]?.attributes.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(runs.every((r) => r.failedMessageIds.length === 1)).toBe(true);
    expect(new Set(runs.map((r) => r.event.Records[0]?.messageId)).size).toBe(1);

    expect(await balanceOf(user.api)).toBe(50);
    const { entries } = await ledger.read(user.id);
    expect(entries.filter((e) => e.batchId === batch.id)).toEqual([]);
    await ledger.expectReconciled(user.id);
  });

  it('an operator drop that keeps failing is failed on the last receive too (found by its object, not its file name)', async () => {
    const published = await publishModel(
      admin.api,
      { name: `iris-dropped-${ulid().slice(-6).toLowerCase()}`, price: 1 },
      await modelFile('iris/model.onnx'),
    );
    expect(published.model.status).toBe('active');
    await aws.remove(local.stack.resources.modelsBucket, `uploads/${published.model.id}.onnx`);

    const user = await newUser(local.url, admin.api, 50);
    const key = `inbox/${user.id}/${published.model.id}/nightly.csv`;
    const recorder = recordInvocations();
    let listed: any;
    try {
      await aws.drop(key, toCsv(irisRows(12, 205)));
      const deadline = Date.now() + 40_000;
      for (;;) {
        [listed] = (await user.api.get('/v1/batches')).body.items;
        if (listed?.status === 'failed' || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await awaitDeadLetter((body) => {
        try {
          return objectsCreated(body).some((o) => o.key === key);
        } catch {
          return false;
        }
      });
    } finally {
      recorder.stop();
    }
    const runs = recorder.reports.filter((r) => namesKey(r, key));
    expect(runs.map((r) => r.event.Records[0]?.attributes.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(listed).toMatchObject({ modelId: published.model.id, status: 'failed', cost: 0 });
    expect(listed.statusReason).toMatch(/^Processing failed repeatedly: /);
    expect(await balanceOf(user.api)).toBe(50);
    await ledger.expectReconciled(user.id);
  }, 90_000);

  it('a batch whose input vanishes after charging some chunks is failed on the last receive and refunded', async () => {
    const user = await newUser(local.url, admin.api, 200);
    const recorder = recordInvocations();
    let batch: any;
    let inputKey = '';
    const deleted: Promise<void>[] = [];
    const onFirstRun = (report: InvocationReport) => {
      if (report.worker !== 'batch-worker' || deleted.length > 0 || !inputKey) return;
      if (!namesKey(report, inputKey)) return;
      // The first run charged chunk 0 and asked for a continuation; the file goes now.
      deleted.push(aws.remove(local.stack.resources.batchBucket, inputKey));
    };
    local.stack.pump.events.on('invocation', onFirstRun);
    try {
      const created = await createBatch(user.api, 'iris', 'csv');
      inputKey = decodeURIComponent(new URL(created.upload.url).pathname.split('/').slice(2).join('/'));
      await uploadFile(created.upload, toCsv(irisRows(100, 202)));
      batch = await awaitBatch(user.api, created.id, 60_000);
      await Promise.all(deleted);
      await awaitDeadLetter((body) => body.includes('batch-continuation') && body.includes(created.id));
    } finally {
      local.stack.pump.events.off('invocation', onFirstRun);
      recorder.stop();
    }

    expect(deleted).toHaveLength(1);
    expect(batch.status).toBe('failed');
    expect(batch.statusReason).toMatch(/^Processing failed repeatedly: /);
    expect(batch.results).toBeUndefined();

    const { entries } = await ledger.read(user.id);
    const mine = entries.filter((e) => e.batchId === batch.id);
    const charged = -mine.filter((e) => e.kind === 'charge').reduce((sum, e) => sum + e.amount, 0);
    const refunds = mine.filter((e) => e.kind === 'refund');
    expect(charged).toBeGreaterThanOrEqual(CHUNK);
    expect(charged).toBeLessThan(100);
    expect(refunds.map((e) => e.amount)).toEqual([charged]);
    expect(await balanceOf(user.api)).toBe(200);
    await ledger.expectReconciled(user.id);

    // The failing continuation was received MAX_RECEIVES times with the same message id.
    const failing = recorder.reports.filter((r) => r.failedMessageIds.length > 0);
    expect(failing.map((r) => r.event.Records[0]?.attributes.ApproximateReceiveCount)).toEqual([
      '1',
      '2',
      '3',
    ]);
    expect(new Set(failing.map((r) => r.failedMessageIds[0])).size).toBe(1);
  });
});

describe('partial batch failure reporting', () => {
  const record = (messageId: string, body: unknown, receiveCount = 1): SQSRecord => ({
    messageId,
    receiptHandle: `handle-${messageId}`,
    body: JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:batch-queue',
    awsRegion: 'us-east-1',
  });
  const invoke = async (records: SQSRecord[]) => {
    // Imported once the stack has set the environment: the function reads its configuration on load.
    const { handler } = await import('../../functions/batch-worker/handler.ts');
    return (await handler({ Records: records }, lambdaContext('batch-worker', functions['batch-worker']))) as
      | SQSBatchResponse
      | undefined;
  };

  /** A queued batch whose file is outside the inbox (no notification): only a message runs it. */
  async function stagedBatch(user: SignedInUser, rows: number[][]): Promise<Batch> {
    const model = await services().models.findActive('iris');
    if (!model) throw new Error('iris is not active');
    const id = ulid();
    const inputKey = `staging/${user.id}/${id}.csv`;
    await aws.drop(inputKey, toCsv(rows));
    const batch = queuedBatchRecord(
      id,
      user.id,
      { id: model.id, modelName: model.name, modelVersion: model.version, price: model.price },
      inputKey,
    );
    await new DynamoBatchStore(ledger.client(), local.stack.resources.tableName).create(batch);
    return batch;
  }

  it('two messages in one invocation: only the failing one is reported, the other one completes', async () => {
    const user = await newUser(local.url, admin.api, 20);
    const repository = new DynamoBatchStore(ledger.client(), local.stack.resources.tableName);
    // A batch another run holds: its continuation cannot run now and must come back later.
    const busy = await createBatch(user.api, 'iris', 'csv');
    const held = await repository.acquire(user.id, busy.id, 'another-run', Date.now() + 600_000, Date.now());
    expect(held?.status).toBe('running');
    const runnable = await stagedBatch(user, irisRows(CHUNK - 2, 203));

    const response = await invoke([
      record('message-busy', { kind: 'batch-continuation', userId: user.id, batchId: busy.id }),
      record('message-ok', { kind: 'batch-continuation', userId: user.id, batchId: runnable.id }),
    ]);
    expect(response?.batchItemFailures).toEqual([{ itemIdentifier: 'message-busy' }]);

    const done = await awaitBatch(user.api, runnable.id, 10_000);
    expect(done).toMatchObject({
      status: 'succeeded',
      rows: CHUNK - 2,
      succeeded: CHUNK - 2,
      cost: CHUNK - 2,
    });
    const results = parseResultsCsv(await downloadResults(done));
    expect(results.rows.map((r) => r.status)).toEqual(Array(CHUNK - 2).fill('ok'));
    // The busy batch was left alone for its holder.
    expect(await repository.get(user.id, busy.id)).toMatchObject({ status: 'running', cost: 0 });

    // Even on its last allowed receive, a busy batch is not failed: another run is working on it.
    const last = await invoke([
      record('message-busy', { kind: 'batch-continuation', userId: user.id, batchId: busy.id }, MAX_RECEIVES),
      record('message-gone', { kind: 'batch-continuation', userId: user.id, batchId: 'no-such-batch' }),
    ]);
    expect(last?.batchItemFailures).toEqual([{ itemIdentifier: 'message-busy' }]);
    expect(await repository.get(user.id, busy.id)).toMatchObject({ status: 'running' });
    await repository.release(user.id, busy.id, 'another-run');
    await ledger.expectReconciled(user.id);
  });

  it('a message that is not a batch message fails alone; its neighbour in the invocation still runs', async () => {
    const user = await newUser(local.url, admin.api, 20);
    const runnable = await stagedBatch(user, irisRows(3, 204));
    const poison = record('message-poison', {});
    poison.body = 'this is not JSON';
    const response = await invoke([
      poison,
      record('message-ok', { kind: 'batch-continuation', userId: user.id, batchId: runnable.id }),
    ]);
    expect(response?.batchItemFailures).toEqual([{ itemIdentifier: 'message-poison' }]);
    expect(await awaitBatch(user.api, runnable.id, 10_000)).toMatchObject({ status: 'succeeded', cost: 3 });
    await ledger.expectReconciled(user.id);
  });
});
