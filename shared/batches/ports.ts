import type { Batch, BatchCheckpoint, BatchFormat, BatchStatus } from '../domain/batches.ts';
import type { TransactionPart } from '../domain/transactions.ts';
import type { DeclaredFile } from '../domain/uploads.ts';

export interface RawRow {
  /** A CSV row's fields. */
  fields?: string[];
  /** A JSONL line. */
  line?: string;
}

export interface SegmentWriter {
  write(text: string | Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

export interface BatchFilesPort {
  bucket: string;
  size(key: string): Promise<number | undefined>;
  rows(key: string, format: BatchFormat): AsyncIterable<RawRow>;
  startSegment(key: string, contentType: string): SegmentWriter;
  assemble(segments: string[], key: string, contentType: string): Promise<void>;
  /** A presigned PUT URL; a declared size and checksum are signed into it. */
  presignUpload(
    key: string,
    ttlSeconds: number,
    contentType: string,
    declared: DeclaredFile,
  ): Promise<string>;
  presignDownload(key: string, ttlSeconds: number, downloadName: string): Promise<string>;
}

export interface BatchProgress {
  processed: number;
  succeeded: number;
  failed: number;
  cost: number;
}

export interface BatchStore {
  create(batch: Batch): Promise<boolean>;
  /**
   * Creates the batch of a file an operator dropped into the inbox, once per dropped object
   * (`dropId` names it): a later call for the same object creates nothing and answers the id of
   * the batch made the first time.
   */
  createForDrop(batch: Batch, dropId: string): Promise<{ id: string; created: boolean }>;
  /** The id of the batch made for a dropped object, if one was. */
  findDrop(userId: string, dropId: string): Promise<string | undefined>;
  get(userId: string, batchId: string): Promise<Batch | undefined>;
  list(
    userId: string,
    options: { limit: number; before?: string | undefined },
  ): Promise<{ items: Batch[]; last: string | null }>;
  /**
   * Takes the batch for one worker run: moves it to `running` from `awaiting_upload`/`queued`/`running`
   * when no other run holds an unexpired lease. False when it is finished or held by another run.
   */
  acquire(
    userId: string,
    batchId: string,
    owner: string,
    leaseUntil: number,
    nowMs: number,
  ): Promise<Batch | undefined>;
  setRows(userId: string, batchId: string, rows: number): Promise<void>;
  /** The write that records progress, to go in a chunk's charge transaction. */
  progressPart(userId: string, batchId: string, progress: BatchProgress): TransactionPart;
  saveProgress(userId: string, batchId: string, progress: BatchProgress): Promise<void>;
  saveCheckpoint(
    userId: string,
    batchId: string,
    checkpoint: BatchCheckpoint,
    progress: BatchProgress,
  ): Promise<void>;
  finish(
    userId: string,
    batchId: string,
    outcome: {
      status: Extract<BatchStatus, 'succeeded' | 'failed'>;
      statusReason?: string;
      resultsKey?: string;
      finishedAt: string;
    },
  ): Promise<void>;
  release(userId: string, batchId: string, owner: string): Promise<void>;
}

export interface ContinuationQueue {
  /** Asks for another run of the batch (from its checkpoint) in a new invocation. */
  continueLater(userId: string, batchId: string): Promise<void>;
}
