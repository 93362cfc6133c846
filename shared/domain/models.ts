/** Models: versions of ONNX files with a price and the tensor signature read from the file. */
import { z } from 'zod';

/** Element types we accept at the API and know how to convert JSON numbers into. */
export const elementTypes = ['float32', 'float64', 'int32', 'int64', 'bool'] as const;
export type ElementType = (typeof elementTypes)[number];

export interface TensorSpec {
  name: string;
  /** Inputs are always one of `elementTypes`; outputs may be any ONNX type (e.g. string labels). */
  type: string;
  /** `null` for a dynamic dimension. */
  shape: (number | null)[];
}

export type ModelStatus = 'pending_upload' | 'active' | 'invalid' | 'retired';

export interface Model {
  id: string;
  name: string;
  version: number;
  description: string;
  /** Credits per row. */
  price: number;
  status: ModelStatus;
  statusReason?: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** SHA-256 of the ONNX file, hex; set once validated. */
  sha256?: string;
  sizeBytes?: number;
  s3Key: string;
  createdAt: string;
  updatedAt: string;
}

export const MODEL_ID_PREFIX = 'mdl_';

export const ModelNameSchema = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, {
  message: 'must be 1-64 lower-case letters, digits and dashes, starting and ending with a letter or digit',
});

export const PriceSchema = z
  .number({ message: 'must be a number of credits' })
  .int({ message: 'must be a whole number of credits' })
  .min(0, { message: 'must be 0 or more' })
  .max(1_000_000, { message: 'must be at most 1000000' });

/** A path segment names a model version by id, or a model by name (meaning its newest active version). */
export function isModelId(reference: string): boolean {
  return reference.startsWith(MODEL_ID_PREFIX);
}

/** Why an ONNX file cannot be served, in words a person can act on; undefined when it can. */
export function signatureProblem(
  inputs: { name: string; isTensor: boolean; type?: string }[],
  outputs: typeof inputs,
): string | undefined {
  const nonTensorOutputs = outputs.filter((o) => !o.isTensor).map((o) => o.name);
  if (nonTensorOutputs.length) {
    return `Outputs ${nonTensorOutputs.join(', ')} are not tensors (sequences or maps, e.g. scikit-learn's ZipMap). Export the model with ZipMap off (skl2onnx: options={'zipmap': False}) so every output is a tensor.`;
  }
  const nonTensorInputs = inputs.filter((i) => !i.isTensor).map((i) => i.name);
  if (nonTensorInputs.length)
    return `Inputs ${nonTensorInputs.join(', ')} are not tensors; only tensor inputs are supported.`;
  const unsupported = inputs.filter((i) => !elementTypes.includes(i.type as ElementType));
  if (unsupported.length) {
    return `Input ${unsupported.map((i) => `${i.name} (${i.type})`).join(', ')} has an element type the API cannot send; supported: ${elementTypes.join(', ')}.`;
  }
  if (inputs.length === 0) return 'The model has no inputs.';
  if (outputs.length === 0) return 'The model has no outputs.';
  return undefined;
}
