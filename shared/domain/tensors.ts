/**
 * Turning JSON into input tensors and output tensors back into JSON, with every check done before
 * anything runs: names, rank, fixed dimensions, ragged arrays, element types, finite numbers and the
 * row limit. The errors say which input, what was expected and what came.
 */
import { type FieldError, ValidationError } from './errors.ts';
import type { ElementType, TensorSpec } from './models.ts';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface InputTensor {
  name: string;
  type: ElementType;
  dims: number[];
  data: TensorData;
}

export interface OutputTensor {
  name: string;
  type: string;
  dims: readonly number[];
  data: ArrayLike<number | bigint | string | boolean>;
}

export interface ParsedInputs {
  tensors: InputTensor[];
  /** The first dimension of the model's first input. */
  rows: number;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Deepest nesting of arrays and objects accepted in inputs; real tensors have far lower ranks. */
export const MAX_INPUT_NESTING = 32;

/**
 * Refuses inputs nested deeper than MAX_INPUT_NESTING, walking them without recursion, so that
 * nothing recursive (shape inference, JSON.stringify for fingerprints) overflows the stack on a
 * small but absurdly deep body.
 */
export function assertInputNesting(inputs: unknown): void {
  const pending: { node: object; depth: number; path: string }[] = [];
  if (inputs !== null && typeof inputs === 'object')
    pending.push({ node: inputs, depth: 0, path: '/inputs' });
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (next.depth >= MAX_INPUT_NESTING) {
      throw new ValidationError(`The inputs are nested more than ${MAX_INPUT_NESTING} levels deep.`, [
        { path: next.path, message: `nests arrays or objects more than ${MAX_INPUT_NESTING} levels deep` },
      ]);
    }
    for (const [key, child] of Object.entries(next.node)) {
      if (child !== null && typeof child === 'object')
        pending.push({ node: child, depth: next.depth + 1, path: `${next.path}/${key}` });
    }
  }
}

class Problems {
  readonly list: FieldError[] = [];
  add(path: string, message: string) {
    if (this.list.length < 20) this.list.push({ path, message });
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)}`;
  return `${typeof value} ${String(value)}`.trim();
}

/** Infers the shape of a nested array, checking that it is not ragged. */
function shapeOf(value: unknown, path: string, problems: Problems): number[] | undefined {
  if (!Array.isArray(value)) return [];
  if (value.length === 0) {
    problems.add(path, 'is an empty array; every dimension needs at least one element');
    return undefined;
  }
  const first = shapeOf(value[0], `${path}/0`, problems);
  if (!first) return undefined;
  for (let i = 1; i < value.length; i++) {
    const other = shapeOf(value[i], `${path}/${i}`, problems);
    if (!other) return undefined;
    if (other.length !== first.length || other.some((d, k) => d !== first[k])) {
      problems.add(
        `${path}/${i}`,
        `has shape [${other.join(', ')}] but ${path}/0 has [${first.join(', ')}]; nested arrays must not be ragged`,
      );
      return undefined;
    }
  }
  return [value.length, ...first];
}

function allocate(type: ElementType, size: number): TensorData {
  switch (type) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'int64':
      return new BigInt64Array(size);
    case 'bool':
      return new Uint8Array(size);
  }
}

function fill(
  value: unknown,
  spec: TensorSpec & { type: ElementType },
  data: TensorData,
  path: string,
  problems: Problems,
): void {
  let index = 0;
  /** Stores one scalar; returns what is wrong with it, if anything. */
  const store = (node: unknown, position: number): string | undefined => {
    if (spec.type === 'bool') {
      if (typeof node !== 'boolean') return `must be true or false, got ${describe(node)}`;
      data[position] = node ? 1 : 0;
      return undefined;
    }
    if (typeof node !== 'number') return `must be a number, got ${describe(node)}`;
    if (!Number.isFinite(node)) return 'must be a finite number';
    if (spec.type === 'int64' || spec.type === 'int32') {
      if (!Number.isInteger(node)) return `must be an integer (${spec.type}), got ${node}`;
      if (spec.type === 'int32' && (node < -(2 ** 31) || node >= 2 ** 31))
        return 'is outside the int32 range';
      if (Math.abs(node) > MAX_SAFE) return 'must be within ±2^53 to be exact in JSON';
      if (spec.type === 'int64') (data as BigInt64Array)[position] = BigInt(node);
      else (data as Int32Array)[position] = node;
      return undefined;
    }
    if (spec.type === 'float32' && Math.abs(node) > 3.4028234663852886e38) return 'is too large for float32';
    (data as Float32Array | Float64Array)[position] = node;
    return undefined;
  };
  const visit = (node: unknown, at: string): void => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) visit(node[i], `${at}/${i}`);
      return;
    }
    const problem = store(node, index++);
    if (problem) problems.add(at, problem);
  };
  visit(value, path);
}

/**
 * Validates `{inputs}` against a model's input signature and builds the tensors. A flat array of F
 * numbers for a model whose only input is [N, F] is one row.
 */
export function parseInputs(inputs: unknown, signature: TensorSpec[], maxRows: number): ParsedInputs {
  assertInputNesting(inputs);
  const problems = new Problems();
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw new ValidationError('`inputs` must be an object keyed by input name.', [
      {
        path: '/inputs',
        message: `must be an object with ${signature.map((s) => `"${s.name}"`).join(', ')}`,
      },
    ]);
  }
  const given = inputs as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!signature.some((s) => s.name === name)) {
      problems.add(
        `/inputs/${name}`,
        `is not an input of this model; its inputs are ${signature.map((s) => s.name).join(', ')}`,
      );
    }
  }
  const tensors: InputTensor[] = [];
  for (const spec of signature) {
    const path = `/inputs/${spec.name}`;
    let value = given[spec.name];
    if (value === undefined) {
      problems.add(
        path,
        `is required: a ${spec.type} tensor of shape [${spec.shape.map((d) => d ?? 'N').join(', ')}]`,
      );
      continue;
    }
    // The flat-row form: one row of a [N, F] input.
    if (
      signature.length === 1 &&
      spec.shape.length === 2 &&
      Array.isArray(value) &&
      value.length > 0 &&
      !value.some(Array.isArray)
    ) {
      value = [value];
    }
    const shape = shapeOf(value, path, problems);
    if (!shape) continue;
    if (shape.length !== spec.shape.length) {
      problems.add(
        path,
        `must have rank ${spec.shape.length} (shape [${spec.shape.map((d) => d ?? 'N').join(', ')}]), got rank ${shape.length} (shape [${shape.join(', ')}])`,
      );
      continue;
    }
    const mismatch = spec.shape.findIndex((d, i) => d !== null && d !== shape[i]);
    if (mismatch >= 0) {
      problems.add(
        path,
        `dimension ${mismatch} must be ${spec.shape[mismatch]}, got ${shape[mismatch]} (shape [${shape.join(', ')}])`,
      );
      continue;
    }
    const size = shape.reduce((a, b) => a * b, 1);
    const type = spec.type as ElementType;
    const data = allocate(type, size);
    fill(value, { ...spec, type }, data, path, problems);
    tensors.push({ name: spec.name, type, dims: shape, data });
  }
  if (problems.list.length > 0) {
    const first = problems.list[0];
    throw new ValidationError(
      `The inputs do not match the model (${first?.path}: ${first?.message}).`,
      problems.list,
    );
  }
  const rows = tensors[0]?.dims[0] ?? 1;
  if (rows > maxRows) {
    throw new ValidationError(
      `A request may hold at most ${maxRows} rows; this one has ${rows}. Use a batch for more.`,
      [{ path: `/inputs/${signature[0]?.name}`, message: `has ${rows} rows, the limit is ${maxRows}` }],
    );
  }
  return { tensors, rows };
}

/** A tensor as nested JSON arrays, int64 as numbers (exact below 2^53). */
export function toJsonTensor(tensor: OutputTensor): unknown {
  const flat = Array.from(tensor.data as ArrayLike<unknown>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  const dims = tensor.dims.length ? tensor.dims : [];
  if (dims.length === 0) return flat[0];
  const build = (offset: number, depth: number): unknown[] => {
    const size = dims[depth] ?? 0;
    if (depth === dims.length - 1) return flat.slice(offset, offset + size);
    const stride = dims.slice(depth + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: size }, (_, i) => build(offset + i * stride, depth + 1));
  };
  return build(0, 0);
}

export function outputsToJson(outputs: OutputTensor[]): Record<string, unknown> {
  return Object.fromEntries(outputs.map((o) => [o.name, toJsonTensor(o)]));
}

/** Inputs of one CSV row for a model whose only input is [N, F]: F numbers. */
export function csvRowToInputs(fields: string[], signature: TensorSpec[]): InputTensor[] | string {
  const spec = signature[0];
  if (signature.length !== 1 || !spec || spec.shape.length !== 2) {
    return 'CSV input needs a model with exactly one [N, F] input; send JSONL for this model';
  }
  const width = spec.shape[1];
  if (width !== null && width !== undefined && fields.length !== width) {
    return `has ${fields.length} values, the model takes ${width}`;
  }
  const values: number[] = [];
  for (let i = 0; i < fields.length; i++) {
    const text = (fields[i] ?? '').trim();
    // Plain decimal notation only: Number() would also take '0x10', '0b1' or 'Infinity'.
    const value = DECIMAL.test(text) ? Number(text) : Number.NaN;
    if (!Number.isFinite(value))
      return `column ${i + 1} must be a finite number, got ${JSON.stringify(fields[i] ?? '')}`;
    values.push(value);
  }
  try {
    return parseInputs({ [spec.name]: values }, signature, 1).tensors;
  } catch (error) {
    const first = (error as ValidationError).errors?.[0];
    return first
      ? `${first.path.replace(`/inputs/${spec.name}`, 'value')}: ${first.message}`
      : (error as Error).message;
  }
}

/** Inputs of one JSONL line `{"inputs": {...}}`, which must hold exactly one row. */
export function jsonLineToInputs(line: string, signature: TensorSpec[]): InputTensor[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return 'is not valid JSON';
  }
  if (!parsed || typeof parsed !== 'object' || !('inputs' in parsed))
    return 'must be an object {"inputs": {...}}';
  try {
    const { tensors, rows } = parseInputs((parsed as { inputs: unknown }).inputs, signature, 1);
    if (rows !== 1) return `must hold exactly one row, got ${rows}`;
    return tensors;
  } catch (error) {
    const first = (error as ValidationError).errors?.[0];
    return first ? `${first.path}: ${first.message}` : (error as Error).message;
  }
}

/** Stacks single-row inputs along the first dimension, input by input. */
export function stackRows(rows: InputTensor[][]): InputTensor[] {
  const first = rows[0];
  if (!first) return [];
  return first.map((template, index) => {
    const parts = rows.map((r) => r[index] as InputTensor);
    const length = parts.reduce((n, p) => n + p.data.length, 0);
    const data = new (template.data.constructor as new (n: number) => TensorData)(length);
    let offset = 0;
    for (const part of parts) {
      (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(
        part.data as ArrayLike<unknown>,
        offset,
      );
      offset += part.data.length;
    }
    return {
      name: template.name,
      type: template.type,
      dims: [parts.length, ...template.dims.slice(1)],
      data,
    };
  });
}

/** Splits outputs whose first dimension is `count` into per-row outputs shaped like a one-row prediction. */
export function splitRows(outputs: OutputTensor[], count: number): Record<string, unknown>[] {
  const perRow: Record<string, unknown>[] = Array.from({ length: count }, () => ({}));
  for (const output of outputs) {
    const rowSize = output.dims.length ? output.dims.slice(1).reduce((a, b) => a * b, 1) : 1;
    for (let r = 0; r < count; r++) {
      const slice = Array.prototype.slice.call(
        output.data,
        r * rowSize,
        (r + 1) * rowSize,
      ) as OutputTensor['data'];
      const row = perRow[r] as Record<string, unknown>;
      row[output.name] = toJsonTensor({ ...output, dims: [1, ...output.dims.slice(1)], data: slice });
    }
  }
  return perRow;
}
