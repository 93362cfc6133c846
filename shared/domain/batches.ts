/**
 * Batches: a file of rows predicted chunk by chunk, each chunk's successful rows charged in one
 * idempotent transaction keyed by (batch, chunk), results written in input order.
 */
import type { TensorSpec } from './models.ts';

export type BatchFormat = 'csv' | 'jsonl';
export type BatchStatus = 'awaiting_upload' | 'queued' | 'running' | 'succeeded' | 'failed';
export type RowErrorCode = 'invalid_input' | 'insufficient_credits' | 'model_error';

/** Where a batch is in its file, saved whenever a run stops before the end. */
export interface BatchCheckpoint {
  /** Rows (data lines) already done and written to a results segment. */
  rowsDone: number;
  /** The next chunk's index (chunk n covers rows n*chunkSize ... ). */
  nextChunk: number;
  /** Results segments written so far, in order. */
  segments: number;
  succeeded: number;
  failed: number;
  cost: number;
  /** Once a chunk could not be paid in full, every later row fails without running. */
  creditsExhausted: boolean;
}

export interface Batch {
  id: string;
  userId: string;
  modelId: string;
  modelName: string;
  modelVersion: number;
  price: number;
  format: BatchFormat;
  status: BatchStatus;
  statusReason?: string;
  rows: number | null;
  processed: number;
  succeeded: number;
  failed: number;
  cost: number;
  inputKey: string;
  resultsKey?: string;
  checkpoint?: BatchCheckpoint;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

/** The Content-Type of a batch's input and results files. */
export const batchContentTypes: Record<BatchFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/x-ndjson; charset=utf-8',
};

/** A batch as it starts: nothing processed, its file (`inputKey`) not yet looked at. */
export function newBatch(input: {
  id: string;
  userId: string;
  model: { id: string; name: string; version: number; price: number };
  format: BatchFormat;
  inputKey: string;
  status: Extract<BatchStatus, 'awaiting_upload' | 'queued'>;
  createdAt: string;
}): Batch {
  return {
    id: input.id,
    userId: input.userId,
    modelId: input.model.id,
    modelName: input.model.name,
    modelVersion: input.model.version,
    price: input.model.price,
    format: input.format,
    status: input.status,
    rows: null,
    processed: 0,
    succeeded: 0,
    failed: 0,
    cost: 0,
    inputKey: input.inputKey,
    createdAt: input.createdAt,
  };
}

export const emptyCheckpoint = (): BatchCheckpoint => ({
  rowsDone: 0,
  nextChunk: 0,
  segments: 0,
  succeeded: 0,
  failed: 0,
  cost: 0,
  creditsExhausted: false,
});

/** One line of the results: the row's outputs, or why it has none. */
export type RowResult =
  | { row: number; outputs: Record<string, unknown> }
  | { row: number; error: { code: RowErrorCode; message: string } };

/** The CSV results header: `row,status,<output columns>,error`; an [N, K] output is K columns. */
export function csvResultColumns(outputs: TensorSpec[]): string[] {
  const columns: string[] = [];
  for (const output of outputs) {
    const width =
      output.shape.length >= 2 ? output.shape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1) : 1;
    if (output.shape.length <= 1) columns.push(output.name);
    else for (let k = 0; k < width; k++) columns.push(`${output.name}_${k}`);
  }
  return columns;
}

function csvField(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvHeader(outputs: TensorSpec[]): string {
  return `${['row', 'status', ...csvResultColumns(outputs), 'error'].map(csvField).join(',')}\n`;
}

export function formatResult(result: RowResult, format: BatchFormat, outputs: TensorSpec[]): string {
  if (format === 'jsonl') return `${JSON.stringify(result)}\n`;
  const width = csvResultColumns(outputs).length;
  if ('error' in result) {
    return `${[result.row, 'error', ...Array.from({ length: width }, () => ''), `${result.error.code}: ${result.error.message}`].map(csvField).join(',')}\n`;
  }
  const values: unknown[] = [];
  for (const output of outputs) {
    const value = result.outputs[output.name];
    if (Array.isArray(value)) values.push(...(value.flat(Number.POSITIVE_INFINITY) as unknown[]));
    else values.push(value);
  }
  return `${[result.row, 'ok', ...values, ''].map(csvField).join(',')}\n`;
}

/** How many of `wanted` rows at `price` a balance pays for. */
export function affordableRows(balance: number, price: number, wanted: number): number {
  if (price <= 0) return wanted;
  return Math.max(0, Math.min(wanted, Math.floor(balance / price)));
}

/** One chunk of a batch, once settled: its rows, how many ran, and how many of those were paid for. */
export interface SettledChunk {
  index: number;
  /** Rows in the chunk (lines of the file). */
  rows: number;
  /** Rows the model predicted, each to be paid for. */
  wanted: number;
  /** Rows paid for (the first `paid` of `wanted`); every other row of the chunk failed. */
  paid: number;
}

/**
 * Where a batch is once a chunk is settled. Fewer rows paid than wanted means the credits (or
 * today's spend cap) ran out: every later row fails without running. A chunk settled by an earlier
 * run is replayed from its record through here too, so a redone chunk moves the checkpoint exactly
 * as its first run did.
 */
export function settleChunk(
  checkpoint: BatchCheckpoint,
  chunk: SettledChunk,
  price: number,
): BatchCheckpoint {
  return {
    ...checkpoint,
    rowsDone: checkpoint.rowsDone + chunk.rows,
    nextChunk: chunk.index + 1,
    succeeded: checkpoint.succeeded + chunk.paid,
    failed: checkpoint.failed + chunk.rows - chunk.paid,
    cost: checkpoint.cost + chunk.paid * price,
    creditsExhausted: checkpoint.creditsExhausted || chunk.paid < chunk.wanted,
  };
}
