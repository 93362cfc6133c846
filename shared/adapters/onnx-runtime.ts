/**
 * onnxruntime-node behind a small port: load a session from bytes, read its signature, run it.
 * One session per model version per container, created on first use and kept in a bounded LRU
 * (sessions leak memory when churned, so they are never made per request).
 */
import type * as Ort from 'onnxruntime-node';

// Loaded on first use: in AWS only the functions that run models carry onnxruntime (as a layer).
let runtime: Promise<typeof Ort> | undefined;
const ortModule = () => {
  runtime ??= import('onnxruntime-node');
  return runtime;
};

import type { InputTensor, OutputTensor } from '../domain/tensors.ts';

export interface ValueDescription {
  name: string;
  isTensor: boolean;
  type?: string;
  /** null for a dynamic dimension. */
  shape?: (number | null)[];
}

export interface ModelRunner {
  inputs: ValueDescription[];
  outputs: ValueDescription[];
  run(inputs: InputTensor[]): Promise<OutputTensor[]>;
  release(): Promise<void>;
}

function describe(metadata: readonly Ort.InferenceSession.ValueMetadata[]): ValueDescription[] {
  return metadata.map((m) =>
    m.isTensor
      ? {
          name: m.name,
          isTensor: true,
          type: m.type,
          shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : null)),
        }
      : { name: m.name, isTensor: false },
  );
}

export async function loadModel(bytes: Uint8Array, threads = 1): Promise<ModelRunner> {
  const ort = await ortModule();
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  return {
    inputs: describe(session.inputMetadata),
    outputs: describe(session.outputMetadata),
    async run(inputs) {
      const feeds: Record<string, Ort.Tensor> = {};
      for (const input of inputs) feeds[input.name] = new ort.Tensor(input.type, input.data, input.dims);
      const results = await session.run(feeds);
      return Object.entries(results).map(([name, tensor]) => ({
        name,
        type: tensor.type,
        dims: tensor.dims,
        data: tensor.data as OutputTensor['data'],
      }));
    },
    release: () => session.release(),
  };
}

/** A bounded cache of loaded models, keyed by model version id. */
export class ModelCache {
  private readonly entries = new Map<string, Promise<ModelRunner>>();

  constructor(
    private readonly capacity: number,
    private readonly threads: number,
  ) {}

  get(key: string, loadBytes: () => Promise<Uint8Array>): Promise<ModelRunner> {
    const hit = this.entries.get(key);
    if (hit) {
      // Re-insert to mark as most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const loading = loadBytes().then((bytes) => loadModel(bytes, this.threads));
    loading.catch(() => this.entries.delete(key));
    this.entries.set(key, loading);
    while (this.entries.size > this.capacity) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Promise<ModelRunner>];
      this.entries.delete(oldestKey);
      void oldest.then((runner) => runner.release()).catch(() => undefined);
    }
    return loading;
  }

  get size(): number {
    return this.entries.size;
  }
}
