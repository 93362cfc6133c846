import type { Model, ModelStatus, TensorSpec } from '../domain/models.ts';
import type { InputTensor, OutputTensor } from '../domain/tensors.ts';
import type { DeclaredFile } from '../domain/uploads.ts';

export type ModelUpdate = Partial<{
  price: number;
  description: string;
  status: ModelStatus;
  statusReason: string | null;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  sha256: string;
  sizeBytes: number;
  updatedAt: string;
}>;

export interface ModelStore {
  nextVersion(name: string): Promise<number>;
  put(model: Model): Promise<void>;
  get(modelId: string): Promise<Model | undefined>;
  /** Every version of a name, newest first. */
  versions(name: string): Promise<Model[]>;
  list(options: {
    limit: number;
    after?: string | undefined;
  }): Promise<{ items: Model[]; last: string | null }>;
  /** Applies the change if the model exists (and is in one of the expected states); undefined otherwise. */
  update(modelId: string, change: ModelUpdate, expectedStatus?: ModelStatus[]): Promise<Model | undefined>;
}

export interface ModelFiles {
  bucket: string;
  getBytes(key: string): Promise<Uint8Array>;
  size(key: string): Promise<number | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** A presigned PUT URL for a file of `contentType`; a declared size and checksum are signed into it. */
  presignUpload(key: string, contentType: string, declared: DeclaredFile): Promise<string>;
}

export interface InspectedModel {
  inputs: { name: string; isTensor: boolean; type?: string; shape?: (number | null)[] }[];
  outputs: { name: string; isTensor: boolean; type?: string; shape?: (number | null)[] }[];
}

export interface Runner {
  run(inputs: InputTensor[]): Promise<OutputTensor[]>;
}

export interface ModelRuntime {
  /** Loads a file only to read its signature (and frees it). */
  inspect(bytes: Uint8Array): Promise<InspectedModel>;
  /** The cached runner of a model version, loading its file on first use. */
  runner(model: Model): Promise<Runner>;
}
