/**
 * The ModelRuntime port on onnxruntime-node and S3: model files fetched once per container per
 * version.
 */
import { createHash } from 'node:crypto';
import type { Model } from '../domain/models.ts';
import type { InspectedModel, ModelRuntime, Runner } from '../models/ports.ts';
import { loadModel, ModelCache } from './onnx-runtime.ts';
import type { S3Files } from './s3-files.ts';

export class OnnxModelRuntime implements ModelRuntime {
  private readonly cache: ModelCache;

  constructor(
    private readonly files: S3Files,
    private readonly bucket: string,
    options: { capacity: number; threads: number },
  ) {
    this.cache = new ModelCache(options.capacity, options.threads);
  }

  async inspect(bytes: Uint8Array): Promise<InspectedModel> {
    const runner = await loadModel(bytes, 1);
    try {
      return { inputs: runner.inputs, outputs: runner.outputs };
    } finally {
      await runner.release();
    }
  }

  async runner(model: Model): Promise<Runner> {
    return this.cache.get(model.id, async () => {
      const bytes = await this.files.getBytes(this.bucket, model.s3Key);
      // The upload URL may be used again after validation: serve only the bytes that were validated.
      if (model.sha256 && createHash('sha256').update(bytes).digest('hex') !== model.sha256) {
        throw new Error('the model file changed after it was validated; publish a new version instead');
      }
      return bytes;
    });
  }
}
