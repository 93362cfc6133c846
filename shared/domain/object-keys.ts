/**
 * Where things are kept in the two buckets, defined once: the prefixes that the stateful stack's
 * bucket notifications and lifecycle rules name (infra/stateful-stack.ts), and the keys the service
 * makes under them.
 */
import type { BatchFormat } from './batches.ts';

/** Models bucket: uploaded model files; each one created is validated (the model queue). */
export const MODEL_UPLOAD_PREFIX = 'uploads/';
/** Batch bucket: the files to run, `inbox/{userId}/{modelId}/{file}.{csv|jsonl}`; each one created runs. */
export const BATCH_INBOX_PREFIX = 'inbox/';
/** Batch bucket: the results files and the segments they are assembled from. */
export const BATCH_RESULTS_PREFIX = 'results/';

export function modelUploadKey(modelId: string): string {
  return `${MODEL_UPLOAD_PREFIX}${modelId}.onnx`;
}

const modelUploadKeyPattern = new RegExp(`^${MODEL_UPLOAD_PREFIX}(mdl_[A-Za-z0-9]+)\\.onnx$`);

/** The model version id named by an uploaded file's key, `uploads/{modelId}.onnx`. */
export function modelIdOfUpload(key: string): string | undefined {
  return modelUploadKeyPattern.exec(key)?.[1];
}

export function inboxKey(userId: string, modelId: string, batchId: string, format: BatchFormat): string {
  return `${BATCH_INBOX_PREFIX}${userId}/${modelId}/${batchId}.${format}`;
}

export function resultsKey(userId: string, batchId: string, format: BatchFormat): string {
  return `${BATCH_RESULTS_PREFIX}${userId}/${batchId}.${format}`;
}

export function segmentKey(userId: string, batchId: string, segment: number): string {
  return `${BATCH_RESULTS_PREFIX}${userId}/${batchId}.parts/${String(segment).padStart(6, '0')}`;
}

export interface InboxObject {
  userId: string;
  modelRef: string;
  fileName: string;
  format: BatchFormat;
}

const inboxKeyPattern = new RegExp(`^${BATCH_INBOX_PREFIX}([^/]+)/([^/]+)/([^/]+)\\.(csv|jsonl)$`, 'i');

/** Reads `inbox/{userId}/{modelId}/{file}.{csv|jsonl}`; undefined for anything else. */
export function parseInboxKey(key: string): InboxObject | undefined {
  const match = inboxKeyPattern.exec(key);
  if (!match) return undefined;
  const [, userId = '', modelRef = '', fileName = '', extension = ''] = match;
  return { userId, modelRef, fileName, format: extension.toLowerCase() as BatchFormat };
}
