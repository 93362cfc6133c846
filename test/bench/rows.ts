/**
 * The bench's inputs: the demo models' golden inputs (real rows from their data sets) and, for the
 * batches, deterministic rows made by cycling those with small seeded perturbations, so every run
 * and every side of a comparison sees exactly the same numbers.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repositoryRoot } from '../../infra/local/emulator.ts';

export type BenchModel = 'iris' | 'digits';

interface ModelShape {
  /** Values per row. */
  width: number;
  /** Keeps a perturbed value within what the data set holds. */
  clamp: (value: number) => number;
  /** Size of a perturbation step. */
  step: number;
  header: string;
}

export const MODEL_SHAPES: Record<BenchModel, ModelShape> = {
  iris: {
    width: 4,
    clamp: (v) => Math.max(0.1, Math.round(v * 10) / 10),
    step: 0.1,
    header: 'sepal_length,sepal_width,petal_length,petal_width',
  },
  digits: {
    width: 64,
    clamp: (v) => Math.min(16, Math.max(0, Math.round(v))),
    step: 1,
    header: Array.from({ length: 64 }, (_, i) => `pixel_${i}`).join(','),
  },
};

export interface GoldenCase {
  /** One row of F numbers. */
  row: number[];
  /** The label the model gives it. */
  label: number;
}

/** A model's golden cases: real rows of its data set, each with the label the model gives it. */
export async function goldenCases(model: BenchModel): Promise<GoldenCase[]> {
  const text = await readFile(join(repositoryRoot, 'models', model, 'golden.json'), 'utf8');
  const { cases } = JSON.parse(text) as { cases: { input: number[][]; label: number[] }[] };
  return cases.map((c) => ({ row: c.input[0] ?? [], label: c.label[0] ?? Number.NaN }));
}

export async function modelBytes(model: BenchModel): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(repositoryRoot, 'models', model, 'model.onnx')));
}

/** mulberry32: a small deterministic generator. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` rows: the golden rows in turn, each value moved by -1, 0 or +1 step (seeded). */
export function perturbedRows(
  model: BenchModel,
  golden: number[][],
  count: number,
  seed: number,
): number[][] {
  const { clamp, step } = MODEL_SHAPES[model];
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => {
    const base = golden[i % golden.length] as number[];
    return base.map((value) => clamp(value + (Math.floor(random() * 3) - 1) * step));
  });
}

/** The rows as a CSV file (header, `\n` line ends, final newline), as a user would upload it. */
export function toCsvFile(model: BenchModel, rows: number[][]): Buffer {
  const lines = [MODEL_SHAPES[model].header];
  for (const row of rows) lines.push(row.join(','));
  lines.push('');
  return Buffer.from(lines.join('\n'), 'utf8');
}
