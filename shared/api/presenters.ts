/** What clients see of domain records: internal fields (sequences, actors, keys) stay inside. */
import type { Batch } from '../domain/batches.ts';
import type { LedgerEntry } from '../domain/credits.ts';
import type { Model } from '../domain/models.ts';
import type { Prediction } from '../domain/predictions.ts';

export const presentLedgerEntry = ({
  id,
  kind,
  amount,
  balanceAfter,
  predictionId,
  batchId,
  reason,
  createdAt,
}: LedgerEntry) => ({
  id,
  kind,
  amount,
  balanceAfter,
  ...(predictionId ? { predictionId } : {}),
  ...(batchId ? { batchId } : {}),
  ...(reason ? { reason } : {}),
  createdAt,
});

export const presentModel = (model: Model) => ({
  id: model.id,
  name: model.name,
  version: model.version,
  description: model.description,
  price: model.price,
  status: model.status,
  ...(model.statusReason ? { statusReason: model.statusReason } : {}),
  inputs: model.inputs,
  outputs: model.outputs,
  ...(model.sha256 ? { sha256: model.sha256 } : {}),
  ...(model.sizeBytes !== undefined ? { sizeBytes: model.sizeBytes } : {}),
  createdAt: model.createdAt,
  updatedAt: model.updatedAt,
});

export const presentPrediction = (p: Prediction) => ({
  id: p.id,
  modelId: p.modelId,
  modelName: p.modelName,
  modelVersion: p.modelVersion,
  status: p.status,
  rows: p.rows,
  cost: p.cost,
  ...(p.outputs ? { outputs: p.outputs } : {}),
  ...(p.error ? { error: p.error } : {}),
  latencyMs: p.latencyMs,
  createdAt: p.createdAt,
  ...(p.refundedAt ? { refundedAt: p.refundedAt } : {}),
});

export const presentBatch = (b: Batch & { resultsUrl?: string }) => ({
  id: b.id,
  modelId: b.modelId,
  modelName: b.modelName,
  modelVersion: b.modelVersion,
  format: b.format,
  status: b.status,
  ...(b.statusReason ? { statusReason: b.statusReason } : {}),
  rows: b.rows,
  processed: b.processed,
  succeeded: b.succeeded,
  failed: b.failed,
  cost: b.cost,
  ...(b.resultsUrl ? { results: { url: b.resultsUrl } } : {}),
  createdAt: b.createdAt,
  ...(b.finishedAt ? { finishedAt: b.finishedAt } : {}),
});
