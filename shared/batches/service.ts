/**
 * Batches, the API side: create one with a presigned upload of its file, show its progress and a
 * link to its results, list them. The worker side (running the file) is shared/batches/worker.ts.
 */
import { ulid } from 'ulid';
import { type Batch, type BatchFormat, batchContentTypes, newBatch } from '../domain/batches.ts';
import { batchCursor } from '../domain/cursors.ts';
import { NotFoundError } from '../domain/errors.ts';
import type { Model } from '../domain/models.ts';
import { inboxKey } from '../domain/object-keys.ts';
import {
  checkDeclaredSize,
  type DeclaredFile,
  type PresignedUpload,
  uploadHeaders,
} from '../domain/uploads.ts';
import type { Principal } from '../domain/users.ts';
import type { BatchFilesPort, BatchStore } from './ports.ts';

export interface BatchSettings {
  maxBytes: number;
  presignTtlSeconds: number;
}

export interface ModelFinder {
  findActive(reference: string): Promise<Model | undefined>;
}

export class BatchService {
  constructor(
    private readonly batches: Pick<BatchStore, 'create' | 'get' | 'list'>,
    private readonly files: Pick<BatchFilesPort, 'presignUpload' | 'presignDownload'>,
    private readonly models: ModelFinder,
    private readonly settings: BatchSettings,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A declared size over the limit is refused before anything is created. */
  async create(
    principal: Principal,
    input: { modelId: string; format: BatchFormat } & DeclaredFile,
  ): Promise<{ batch: Batch; upload: PresignedUpload }> {
    const declared: DeclaredFile = { size: input.size, checksumSha256: input.checksumSha256 };
    checkDeclaredSize(declared, this.settings.maxBytes, 'batch files');
    const model = await this.models.findActive(input.modelId);
    if (!model) throw new NotFoundError(`There is no active model "${input.modelId}".`);
    const id = ulid();
    const key = inboxKey(principal.userId, model.id, id, input.format);
    const batch = newBatch({
      id,
      userId: principal.userId,
      model,
      format: input.format,
      inputKey: key,
      status: 'awaiting_upload',
      createdAt: this.now().toISOString(),
    });
    await this.batches.create(batch);
    const contentType = batchContentTypes[input.format];
    const url = await this.files.presignUpload(key, this.settings.presignTtlSeconds, contentType, declared);
    return { batch, upload: { url, method: 'PUT', headers: uploadHeaders(contentType, declared) } };
  }

  async get(principal: Principal, batchId: string): Promise<Batch & { resultsUrl?: string }> {
    const batch = await this.batches.get(principal.userId, batchId);
    if (!batch) throw new NotFoundError('There is no such batch.');
    if (batch.status === 'succeeded' && batch.resultsKey) {
      const name = `${batch.id}-results.${batch.format}`;
      return {
        ...batch,
        resultsUrl: await this.files.presignDownload(batch.resultsKey, this.settings.presignTtlSeconds, name),
      };
    }
    return batch;
  }

  async list(principal: Principal, query: { limit: number; cursor?: string | undefined }) {
    const before = query.cursor ? batchCursor.decode(query.cursor) : undefined;
    const page = await this.batches.list(principal.userId, { limit: query.limit, before });
    return { items: page.items, nextCursor: page.last ? batchCursor.encode(page.last) : null };
  }
}
