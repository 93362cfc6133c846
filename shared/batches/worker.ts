/**
 * Batches, the worker side: stream a batch's file, predict it chunk by chunk, charge each chunk once,
 * write the results in order, and checkpoint and continue in a new invocation before the time runs
 * out; a batch that cannot be processed ends failed with what it was charged refunded. Fed by the
 * batch queue (functions/batch-worker); the API side is shared/batches/service.ts.
 */
import { createHash } from 'node:crypto';
import { ulid } from 'ulid';
import { fingerprint } from '../auth/secrets.ts';
import {
  affordableRows,
  type Batch,
  type BatchCheckpoint,
  batchContentTypes,
  csvHeader,
  emptyCheckpoint,
  formatResult,
  newBatch,
  type RowResult,
  settleChunk,
} from '../domain/batches.ts';
import { utcDay } from '../domain/credits.ts';
import { InsufficientCreditsError } from '../domain/errors.ts';
import { ChangeAlreadySettledError, replayOrConflict } from '../domain/idempotency.ts';
import type { Model } from '../domain/models.ts';
import { parseInboxKey, resultsKey, segmentKey } from '../domain/object-keys.ts';
import type { BatchWork } from '../domain/queue-messages.ts';
import {
  csvRowToInputs,
  type InputTensor,
  jsonLineToInputs,
  splitRows,
  stackRows,
} from '../domain/tensors.ts';
import type { ModelRuntime } from '../models/ports.ts';
import type {
  ChargePort,
  FollowUps,
  IdempotencyPort,
  TransactionPort,
  UsagePort,
} from '../predictions/ports.ts';
import type { BatchFilesPort, BatchProgress, BatchStore, ContinuationQueue, RawRow } from './ports.ts';
import type { ModelFinder } from './service.ts';

export interface BatchWorkerSettings {
  chunkSize: number;
  maxRows: number;
  maxBytes: number;
  /** Stop and checkpoint when less than this much of the invocation's time is left. */
  reserveMs: number;
  /** Stop and checkpoint after this long in one run even with time left (0: only the reserve). */
  maxRunMs: number;
}

export interface RunContext {
  /** Who runs the batch: a redelivery of the same message may take over its own lease. */
  owner: string;
  remainingMs(): number;
}

/** Where a run is: the checkpoint it will save, and whether its next chunk may have been settled by an earlier run. */
type RunState = BatchCheckpoint & { mayBeSettled: boolean };

function checkpointOf({ mayBeSettled: _, ...checkpoint }: RunState): BatchCheckpoint {
  return checkpoint;
}

/** Another run holds the batch; the message should come back later. */
export class BatchBusyError extends Error {
  override name = 'BatchBusyError';
}

/** The batch a piece of work is about, as far as its message tells (for the logs). */
export function batchOfWork(work: BatchWork): { userId: string; batchId: string } {
  if (work.kind === 'batch-continuation') return { userId: work.userId, batchId: work.batchId };
  const inbox = parseInboxKey(work.key);
  return { userId: inbox?.userId ?? '', batchId: inbox?.fileName ?? '' };
}

/** Names a dropped object (key and content): the same object always maps to the same batch. */
function dropIdOf(key: string, eTag: string | undefined): string {
  return createHash('sha256')
    .update(`${key}\n${eTag ?? ''}`)
    .digest('hex')
    .slice(0, 32);
}

export class BatchWorker {
  constructor(
    private readonly batches: BatchStore,
    private readonly files: BatchFilesPort,
    private readonly models: ModelFinder,
    private readonly runtime: ModelRuntime,
    private readonly credits: ChargePort,
    private readonly idempotency: IdempotencyPort,
    private readonly usage: UsagePort,
    private readonly transactions: TransactionPort,
    private readonly followUps: Pick<FollowUps, 'notifyLowBalance'>,
    private readonly queue: ContinuationQueue,
    private readonly settings: BatchWorkerSettings,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Runs what a message of the batch queue asks for; returns the rows this run processed. */
  run(work: BatchWork, context: RunContext): Promise<number> {
    return work.kind === 'batch-continuation'
      ? this.continueBatch(work.userId, work.batchId, context)
      : this.handleInboxObject(work.key, work.eTag, context);
  }

  /**
   * The message asking for `work` failed on its last receive: its batch is marked failed (and
   * refunded), unless another run holds it (that run finishes it). Whether it was marked failed.
   */
  async giveUp(work: BatchWork, error: unknown): Promise<boolean> {
    if (error instanceof BatchBusyError) return false;
    const reason = `Processing failed repeatedly: ${(error as Error).message}`;
    // An operator's drop has a batch id of its own: its batch is found by the object.
    if (work.kind === 'inbox-object') await this.failInboxObject(work.key, work.eTag, reason);
    else await this.failById(work.userId, work.batchId, reason);
    return true;
  }

  /**
   * A file landed in the inbox: run the batch it belongs to (making one for an operator's drop).
   * Returns the rows processed by this run.
   */
  async handleInboxObject(key: string, eTag: string | undefined, context: RunContext): Promise<number> {
    const inbox = parseInboxKey(key);
    if (!inbox) return 0;
    let batch = await this.batches.get(inbox.userId, inbox.fileName);
    if (!batch || batch.inputKey !== key) {
      // No prior POST: an operator copied the file in. The same object (key and content) always
      // maps to the same batch, so a second event for it is ignored. The batch id is a ULID like
      // any other, so the batch takes its place by age in the user's list (newest first).
      const dropId = dropIdOf(key, eTag);
      const model = await this.models.findActive(inbox.modelRef);
      const created = newBatch({
        id: ulid(),
        userId: inbox.userId,
        model: model ?? { id: inbox.modelRef, name: inbox.modelRef, version: 0, price: 0 },
        format: inbox.format,
        inputKey: key,
        status: 'queued',
        createdAt: this.now().toISOString(),
      });
      const { id, created: isNew } = await this.batches.createForDrop(created, dropId);
      if (isNew && !model) {
        await this.fail(created, `There is no active model "${inbox.modelRef}".`);
        return 0;
      }
      batch = await this.batches.get(inbox.userId, id);
      if (!batch) return 0;
    }
    return this.runBatch(batch.userId, batch.id, context);
  }

  /**
   * Marks the batch of an inbox object as failed: the batch a POST made for that key, or the one
   * made for an operator's drop of that object (whose id is not in the key).
   */
  async failInboxObject(key: string, eTag: string | undefined, reason: string): Promise<void> {
    const inbox = parseInboxKey(key);
    if (!inbox) return;
    let batch = await this.batches.get(inbox.userId, inbox.fileName);
    if (!batch || batch.inputKey !== key) {
      const id = await this.batches.findDrop(inbox.userId, dropIdOf(key, eTag));
      batch = id ? await this.batches.get(inbox.userId, id) : undefined;
    }
    if (batch) await this.fail(batch, reason);
  }

  continueBatch(userId: string, batchId: string, context: RunContext): Promise<number> {
    return this.runBatch(userId, batchId, context);
  }

  /** Marks a batch that cannot be processed as failed, giving back anything it was charged. */
  async fail(batch: Batch, reason: string): Promise<void> {
    const current = (await this.batches.get(batch.userId, batch.id)) ?? batch;
    if (current.status === 'succeeded' || current.status === 'failed') return;
    if (current.cost > 0) {
      await this.credits.apply({
        userId: current.userId,
        kind: 'refund',
        amount: current.cost,
        idempotencyId: `batch-refund#${current.id}`,
        requestHash: fingerprint({ batchRefund: current.id }),
        batchId: current.id,
        reason: `batch failed: ${reason}`,
      });
      // A failed batch costs nothing: what it was charged has just been refunded.
      await this.batches.saveProgress(current.userId, current.id, {
        processed: current.processed,
        succeeded: 0,
        failed: current.processed,
        cost: 0,
      });
    }
    await this.batches.finish(current.userId, current.id, {
      status: 'failed',
      statusReason: reason,
      finishedAt: this.now().toISOString(),
    });
  }

  async failById(userId: string, batchId: string, reason: string): Promise<void> {
    const batch = await this.batches.get(userId, batchId);
    if (batch) await this.fail(batch, reason);
  }

  private async runBatch(userId: string, batchId: string, context: RunContext): Promise<number> {
    const started = Date.now();
    const leaseUntil = started + context.remainingMs() + 30_000;
    const batch = await this.batches.acquire(userId, batchId, context.owner, leaseUntil, started);
    if (!batch) {
      const current = await this.batches.get(userId, batchId);
      if (!current || current.status === 'succeeded' || current.status === 'failed') return 0;
      throw new BatchBusyError(`Batch ${batchId} is being processed by another run`);
    }
    const model = await this.models.findActive(batch.modelId);
    if (!model) {
      await this.fail(batch, `The model ${batch.modelName} v${batch.modelVersion} is no longer active.`);
      return 0;
    }

    if (batch.rows === null) {
      const problem = await this.preflight(batch);
      if (problem) {
        await this.fail(batch, problem);
        return 0;
      }
    }

    const checkpoint = batch.checkpoint ?? emptyCheckpoint();
    const state: RunState = { ...checkpoint, mayBeSettled: true };
    const writer = this.files.startSegment(
      segmentKey(userId, batchId, state.segments),
      batchContentTypes[batch.format],
    );
    try {
      if (state.segments === 0 && batch.format === 'csv') await writer.write(csvHeader(model.outputs));
      let skipped = 0;
      let chunk: RawRow[] = [];
      let stoppedEarly = false;
      const flush = async () => {
        const lines = await this.processChunk(batch, model, state, chunk);
        await writer.write(lines);
        chunk = [];
      };
      for await (const row of this.files.rows(batch.inputKey, batch.format)) {
        if (skipped < checkpoint.rowsDone) {
          skipped++;
          continue;
        }
        chunk.push(row);
        if (chunk.length < this.settings.chunkSize) continue;
        await flush();
        if (this.shouldStop(started, context)) {
          stoppedEarly = true;
          break;
        }
      }
      if (!stoppedEarly && chunk.length > 0) await flush();
      await writer.finish();
      state.segments += 1;
      if (stoppedEarly) {
        await this.batches.saveCheckpoint(userId, batchId, checkpointOf(state), this.progressOf(state));
        await this.batches.release(userId, batchId, context.owner);
        await this.queue.continueLater(userId, batchId);
        return state.rowsDone - checkpoint.rowsDone;
      }
      const segments = Array.from({ length: state.segments }, (_, i) => segmentKey(userId, batchId, i));
      const finalKey = resultsKey(userId, batchId, batch.format);
      await this.files.assemble(segments, finalKey, batchContentTypes[batch.format]);
      await this.batches.saveCheckpoint(userId, batchId, checkpointOf(state), this.progressOf(state));
      await this.batches.finish(userId, batchId, {
        status: 'succeeded',
        resultsKey: finalKey,
        finishedAt: this.now().toISOString(),
      });
      return state.rowsDone - checkpoint.rowsDone;
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  private shouldStop(started: number, context: RunContext): boolean {
    if (context.remainingMs() < this.settings.reserveMs) return true;
    return this.settings.maxRunMs > 0 && Date.now() - started >= this.settings.maxRunMs;
  }

  /** Checks what can be checked before charging anything; returns why the batch cannot run. */
  private async preflight(batch: Batch): Promise<string | undefined> {
    if (!(await this.credits.getAccount(batch.userId))) return `There is no user ${batch.userId} to charge.`;
    const size = await this.files.size(batch.inputKey);
    if (size === undefined) return 'The uploaded file could not be found.';
    if (size > this.settings.maxBytes)
      return `The file is ${size} bytes; batch files may be at most ${this.settings.maxBytes} bytes.`;
    let rows = 0;
    try {
      for await (const _ of this.files.rows(batch.inputKey, batch.format)) {
        rows++;
        if (rows > this.settings.maxRows)
          return `The file has more than ${this.settings.maxRows} rows, the limit per batch.`;
      }
    } catch (error) {
      return `The file could not be read as ${batch.format.toUpperCase()}: ${(error as Error).message}`;
    }
    if (rows === 0) return 'The file has no rows.';
    await this.batches.setRows(batch.userId, batch.id, rows);
    return undefined;
  }

  private progressOf(state: BatchCheckpoint): BatchProgress {
    return { processed: state.rowsDone, succeeded: state.succeeded, failed: state.failed, cost: state.cost };
  }

  /** Predicts one chunk, charges its successful rows once, and returns its result lines. */
  private async processChunk(batch: Batch, model: Model, state: RunState, rows: RawRow[]): Promise<string> {
    const chunkIndex = state.nextChunk;
    const firstRow = state.rowsDone + 1;
    const results: (RowResult | undefined)[] = new Array(rows.length);
    const valid: { index: number; inputs: InputTensor[] }[] = [];
    rows.forEach((row, index) => {
      const inputs = row.fields
        ? csvRowToInputs(row.fields, model.inputs)
        : jsonLineToInputs(row.line ?? '', model.inputs);
      if (typeof inputs === 'string') {
        results[index] = { row: firstRow + index, error: { code: 'invalid_input', message: inputs } };
      } else valid.push({ index, inputs });
    });

    const predicted: { index: number; outputs: Record<string, unknown> }[] = [];
    if (state.creditsExhausted) {
      for (const { index } of valid) results[index] = this.unpaid(firstRow + index);
    } else if (valid.length > 0) {
      const runner = await this.runtime.runner(model);
      try {
        const outputs = await runner.run(stackRows(valid.map((v) => v.inputs)));
        splitRows(outputs, valid.length).forEach((o, i) => {
          predicted.push({ index: valid[i]?.index ?? 0, outputs: o });
        });
      } catch {
        // Find the rows the model fails on by running them one at a time.
        for (const v of valid) {
          try {
            const [outputs] = splitRows(await runner.run(v.inputs), 1);
            predicted.push({ index: v.index, outputs: outputs ?? {} });
          } catch (error) {
            results[v.index] = {
              row: firstRow + v.index,
              error: { code: 'model_error', message: (error as Error).message },
            };
          }
        }
      }
    }

    const paid = await this.chargeChunk(batch, chunkIndex, predicted.length, state, rows.length);
    predicted.forEach((p, i) => {
      results[p.index] =
        i < paid ? { row: firstRow + p.index, outputs: p.outputs } : this.unpaid(firstRow + p.index);
    });
    return results.map((r) => formatResult(r as RowResult, batch.format, model.outputs)).join('');
  }

  private unpaid(row: number): RowResult {
    return {
      row,
      error: {
        code: 'insufficient_credits',
        message: 'the balance (or the daily spend cap) ran out before this row',
      },
    };
  }

  /**
   * Charges for up to `wanted` rows of chunk `chunkIndex`, once: the idempotency id is (batch,
   * chunk), so a redelivered or restarted chunk replays the first charge instead of paying again.
   * Returns how many rows were paid for, and moves the state past the chunk.
   */
  private async chargeChunk(
    batch: Batch,
    chunkIndex: number,
    wanted: number,
    state: RunState,
    chunkRows: number,
  ): Promise<number> {
    const settled = (paid: number) =>
      settleChunk(checkpointOf(state), { index: chunkIndex, rows: chunkRows, wanted, paid }, batch.price);
    const advance = (paid: number) => {
      Object.assign(state, settled(paid));
      return paid;
    };
    const progressAfter = (paid: number) => this.progressOf(settled(paid));
    const usageOf = (paid: number) =>
      this.usage.usageParts({
        userId: batch.userId,
        modelId: batch.modelId,
        day: utcDay(this.now()),
        predictions: paid,
        failed: chunkRows - paid,
        credits: paid * batch.price,
      });
    const idempotencyId = `batch#${batch.id}#chunk#${chunkIndex}`;
    const requestHash = fingerprint({ batch: batch.id, chunk: chunkIndex });

    // A chunk redone after a crash or a redelivery was settled by an earlier run: reuse its outcome.
    // Chunks are settled in order, so once one is new, the rest of this run is new too.
    if (state.mayBeSettled) {
      const record = await this.idempotency.get(batch.userId, idempotencyId);
      if (record) return advance(replayOrConflict(record, { requestHash, wants: 'batch-chunk' }).rowsCharged);
      state.mayBeSettled = false;
    }

    const settleWithoutCharge = async (paid: number) => {
      try {
        await this.transactions.write([
          // The same key a charge of this chunk would use: a chunk is settled once, paid or not.
          this.idempotency.part(batch.userId, {
            kind: 'batch-chunk',
            idempotencyId,
            requestHash,
            expiresAt: null,
            entry: null,
            balance: null,
            rowsCharged: paid,
          }),
          this.batches.progressPart(batch.userId, batch.id, progressAfter(paid)),
          ...usageOf(paid),
        ]);
      } catch (error) {
        // Settled concurrently by another run of the same chunk: the counters were written then.
        if (!(error instanceof ChangeAlreadySettledError)) throw error;
      }
      return advance(paid);
    };
    if (wanted === 0 || batch.price === 0) return settleWithoutCharge(wanted);

    let rowsToCharge = wanted;
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await this.credits.apply(
        {
          userId: batch.userId,
          kind: 'charge',
          amount: -rowsToCharge * batch.price,
          idempotencyId,
          requestHash,
          batchId: batch.id,
          modelId: batch.modelId,
        },
        {
          with: [
            this.batches.progressPart(batch.userId, batch.id, progressAfter(rowsToCharge)),
            ...usageOf(rowsToCharge),
          ],
          outcome: { kind: 'batch-chunk', rowsCharged: rowsToCharge },
        },
      );
      if (result.outcome === 'applied') {
        if (result.lowBalance?.deliver)
          await this.followUps.notifyLowBalance(batch.userId, result.lowBalance.notificationId);
        // A chunk charged by an earlier run replays the rows that run paid for.
        const charged =
          result.replayed && result.record
            ? replayOrConflict(result.record, { requestHash, wants: 'batch-chunk' }).rowsCharged
            : rowsToCharge;
        return advance(charged);
      }
      // Pay for what the balance (and today's spend cap) still allows; the rest of the file fails.
      const available =
        result.outcome === 'spend-cap-reached'
          ? Math.min(result.balance, Math.max(0, result.cap - result.spentToday))
          : result.balance;
      const affordable = affordableRows(available, batch.price, wanted);
      if (affordable === 0) return settleWithoutCharge(0);
      rowsToCharge = affordable;
    }
    throw new InsufficientCreditsError(0, wanted * batch.price);
  }
}
