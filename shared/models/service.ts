/** The model registry: publishing versions through presigned uploads, validation, pricing and retirement. */
import { createHash } from 'node:crypto';
import { ulid } from 'ulid';
import type { AuditEntry } from '../domain/audit.ts';
import { modelCursor } from '../domain/cursors.ts';
import { ConflictError, NotFoundError } from '../domain/errors.ts';
import {
  isModelId,
  MODEL_ID_PREFIX,
  type Model,
  type ModelStatus,
  signatureProblem,
  type TensorSpec,
} from '../domain/models.ts';
import { modelIdOfUpload, modelUploadKey } from '../domain/object-keys.ts';
import {
  checkDeclaredSize,
  type DeclaredFile,
  type PresignedUpload,
  uploadHeaders,
} from '../domain/uploads.ts';
import type { Principal } from '../domain/users.ts';
import type { InspectedModel, ModelFiles, ModelRuntime, ModelStore } from './ports.ts';

const MODEL_CONTENT_TYPE = 'application/octet-stream';

export interface ModelServiceSettings {
  maxModelBytes: number;
}

export interface ModelPage {
  items: Model[];
  nextCursor: string | null;
}

function toSpecs(values: InspectedModel['inputs']): TensorSpec[] {
  return values.map((v) => ({ name: v.name, type: v.type ?? 'unknown', shape: v.shape ?? [] }));
}

export class ModelService {
  constructor(
    private readonly store: ModelStore,
    private readonly files: ModelFiles,
    private readonly runtime: ModelRuntime,
    private readonly settings: ModelServiceSettings,
    private readonly audit: {
      entry(input: Omit<AuditEntry, 'id' | 'at'>): AuditEntry;
      record(entry: AuditEntry): Promise<void>;
    },
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Starts a new version of `name` awaiting its file; the answer carries the presigned upload. A
   * declared size over the limit is refused before anything is created (not even a version number).
   */
  async create(
    input: { name: string; description: string; price: number } & DeclaredFile,
    actorId: string,
  ): Promise<{ model: Model; upload: PresignedUpload }> {
    const declared: DeclaredFile = { size: input.size, checksumSha256: input.checksumSha256 };
    checkDeclaredSize(declared, this.settings.maxModelBytes, 'models');
    const version = await this.store.nextVersion(input.name);
    const id = `${MODEL_ID_PREFIX}${ulid()}`;
    const at = this.now().toISOString();
    const model: Model = {
      id,
      name: input.name,
      version,
      description: input.description,
      price: input.price,
      status: 'pending_upload',
      inputs: [],
      outputs: [],
      s3Key: modelUploadKey(id),
      createdAt: at,
      updatedAt: at,
    };
    await this.store.put(model);
    await this.audit.record(
      this.audit.entry({
        actorId,
        action: 'model.create',
        target: { type: 'model', id },
        details: { name: model.name, version, price: model.price },
      }),
    );
    const url = await this.files.presignUpload(model.s3Key, MODEL_CONTENT_TYPE, declared);
    return { model, upload: { url, method: 'PUT', headers: uploadHeaders(MODEL_CONTENT_TYPE, declared) } };
  }

  /**
   * Validates an uploaded file by loading it with onnxruntime: the version becomes `active` with
   * its signature, or `invalid` with a reason a person can act on. A version is validated once.
   */
  async validateUpload(key: string): Promise<Model | undefined> {
    const id = modelIdOfUpload(key);
    const model = id ? await this.store.get(id) : undefined;
    if (model?.status !== 'pending_upload') return undefined;
    const invalid = (statusReason: string, extra: { sha256?: string; sizeBytes?: number } = {}) =>
      this.store.update(
        model.id,
        { status: 'invalid', statusReason, updatedAt: this.now().toISOString(), ...extra },
        ['pending_upload'],
      );

    const size = await this.files.size(key);
    if (size === undefined) return invalid('The uploaded file could not be found.');
    if (size > this.settings.maxModelBytes) {
      return invalid(
        `The file is ${size} bytes; models may be at most ${this.settings.maxModelBytes} bytes.`,
        { sizeBytes: size },
      );
    }
    const bytes = await this.files.getBytes(key);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let inspected: InspectedModel;
    try {
      inspected = await this.runtime.inspect(bytes);
    } catch (error) {
      return invalid(`The file is not an ONNX model onnxruntime can load: ${(error as Error).message}`, {
        sha256,
        sizeBytes: size,
      });
    }
    const problem = signatureProblem(
      inspected.inputs.map((i) => ({
        name: i.name,
        isTensor: i.isTensor,
        ...(i.type ? { type: i.type } : {}),
      })),
      inspected.outputs.map((o) => ({
        name: o.name,
        isTensor: o.isTensor,
        ...(o.type ? { type: o.type } : {}),
      })),
    );
    if (problem) return invalid(problem, { sha256, sizeBytes: size });
    return this.store.update(
      model.id,
      {
        status: 'active',
        statusReason: null,
        inputs: toSpecs(inspected.inputs),
        outputs: toSpecs(inspected.outputs),
        sha256,
        sizeBytes: size,
        updatedAt: this.now().toISOString(),
      },
      ['pending_upload'],
    );
  }

  /** Registers a model from a file we already trust (the demo models at first local start). */
  async registerBundled(input: {
    name: string;
    description: string;
    price: number;
    bytes: Uint8Array;
  }): Promise<Model> {
    const existing = await this.store.versions(input.name);
    const current = existing.find((m) => m.status === 'active');
    if (current) return current;
    const inspected = await this.runtime.inspect(input.bytes);
    const version = await this.store.nextVersion(input.name);
    const id = `${MODEL_ID_PREFIX}${ulid()}`;
    const at = this.now().toISOString();
    const s3Key = `bundled/${input.name}/${version}/model.onnx`;
    await this.files.put(s3Key, input.bytes);
    const model: Model = {
      id,
      name: input.name,
      version,
      description: input.description,
      price: input.price,
      status: 'active',
      inputs: toSpecs(inspected.inputs),
      outputs: toSpecs(inspected.outputs),
      sha256: createHash('sha256').update(input.bytes).digest('hex'),
      sizeBytes: input.bytes.byteLength,
      s3Key,
      createdAt: at,
      updatedAt: at,
    };
    await this.store.put(model);
    return model;
  }

  /** A model by id, or by name meaning its newest active version. Users see active models only. */
  async find(reference: string, principal?: Principal): Promise<Model> {
    const seeAll = principal?.role === 'admin';
    let model: Model | undefined;
    if (isModelId(reference)) {
      model = await this.store.get(reference);
    } else {
      const versions = await this.store.versions(reference);
      model = versions.find((m) => m.status === 'active') ?? (seeAll ? versions[0] : undefined);
    }
    if (!model || (!seeAll && model.status !== 'active')) {
      throw new NotFoundError(`There is no active model "${reference}".`);
    }
    return model;
  }

  /** The newest active version for a name, or the version for an id, ignoring the caller's role. */
  async findActive(reference: string): Promise<Model | undefined> {
    if (isModelId(reference)) {
      const model = await this.store.get(reference);
      return model?.status === 'active' ? model : undefined;
    }
    return (await this.store.versions(reference)).find((m) => m.status === 'active');
  }

  async list(
    principal: Principal,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<ModelPage> {
    const seeAll = principal.role === 'admin';
    // One more than the page is collected, so a cursor is given only when another page exists.
    const wanted = query.limit + 1;
    const items: Model[] = [];
    let after = query.cursor ? modelCursor.decode(query.cursor) : undefined;
    // Users see active versions only; keep reading until the page is full or the list ends.
    do {
      const page = await this.store.list({ limit: wanted, after });
      for (const model of page.items) {
        if ((seeAll || model.status === 'active') && items.length < wanted) items.push(model);
      }
      after = page.last ?? undefined;
    } while (after && items.length < wanted);
    const pageItems = items.slice(0, query.limit);
    const last = pageItems.at(-1);
    return {
      items: pageItems,
      nextCursor:
        items.length > query.limit && last
          ? modelCursor.encode(`${last.name}#${String(last.version).padStart(6, '0')}|${last.id}`)
          : null,
    };
  }

  async update(
    modelId: string,
    change: {
      price?: number | undefined;
      description?: string | undefined;
      status?: 'active' | 'retired' | undefined;
    },
    actorId: string,
  ) {
    const current = await this.store.get(modelId);
    if (!current) throw new NotFoundError(`There is no model version ${modelId}.`);
    if (change.status && !['active', 'retired'].includes(current.status)) {
      throw new ConflictError(`A model that is ${current.status} cannot be made ${change.status}.`);
    }
    const allowed: ModelStatus[] | undefined = change.status ? ['active', 'retired'] : undefined;
    const updated = await this.store.update(
      modelId,
      {
        ...(change.price !== undefined ? { price: change.price } : {}),
        ...(change.description !== undefined ? { description: change.description } : {}),
        ...(change.status ? { status: change.status } : {}),
        updatedAt: this.now().toISOString(),
      },
      allowed,
    );
    if (!updated) throw new ConflictError('The model changed while updating it; try again.');
    await this.audit.record(
      this.audit.entry({
        actorId,
        action: 'model.update',
        target: { type: 'model', id: modelId },
        details: {
          name: current.name,
          version: current.version,
          before: { price: current.price, status: current.status },
          after: { price: updated.price, status: updated.status },
          ...(change.description !== undefined ? { description: change.description } : {}),
        },
      }),
    );
    return updated;
  }
}
