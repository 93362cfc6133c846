/** The models bucket, as the model registry and the runtime see it. */

import type { DeclaredFile } from '../domain/uploads.ts';
import type { ModelFiles } from '../models/ports.ts';
import type { S3Files } from './s3-files.ts';

export class S3ModelFiles implements ModelFiles {
  constructor(
    private readonly files: S3Files,
    readonly bucket: string,
    private readonly presignTtlSeconds: number,
  ) {}

  getBytes(key: string): Promise<Uint8Array> {
    return this.files.getBytes(this.bucket, key);
  }

  size(key: string): Promise<number | undefined> {
    return this.files.size(this.bucket, key);
  }

  put(key: string, bytes: Uint8Array): Promise<void> {
    return this.files.put(this.bucket, key, bytes, 'application/octet-stream');
  }

  presignUpload(key: string, contentType: string, declared: DeclaredFile): Promise<string> {
    return this.files.presignPut(this.bucket, key, this.presignTtlSeconds, { contentType, ...declared });
  }
}
