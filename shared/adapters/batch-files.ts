/**
 * Batch files in S3, streamed both ways: input rows are parsed as they arrive (a real CSV parser:
 * quoting, CRLF, BOM; or JSON lines), results are uploaded as they are produced. Nothing holds a
 * whole file in memory.
 */
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import { CopyObjectCommand, DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parse } from 'csv-parse';
import type { BatchFilesPort, RawRow, SegmentWriter } from '../batches/ports.ts';
import type { BatchFormat } from '../domain/batches.ts';
import type { DeclaredFile } from '../domain/uploads.ts';
import { logger } from '../observability/logger.ts';
import type { S3Files } from './s3-files.ts';

export class S3BatchFiles implements BatchFilesPort {
  constructor(
    private readonly client: S3Client,
    private readonly files: S3Files,
    readonly bucket: string,
  ) {}

  size(key: string): Promise<number | undefined> {
    return this.files.size(this.bucket, key);
  }

  async *rows(key: string, format: BatchFormat): AsyncGenerator<RawRow> {
    const body = await this.files.getStream(this.bucket, key);
    if (format === 'csv') {
      // The first line is the header; data rows follow. Wrong column counts are reported per row.
      const parser = body.pipe(
        parse({ bom: true, relax_column_count: true, skip_empty_lines: true, from_line: 2, trim: true }),
      );
      for await (const fields of parser as AsyncIterable<string[]>) yield { fields };
      return;
    }
    const lines = createInterface({ input: body as Readable, crlfDelay: Number.POSITIVE_INFINITY });
    let first = true;
    for await (let line of lines) {
      if (first) {
        line = line.replace(/^\uFEFF/, '');
        first = false;
      }
      if (line.trim() === '') continue;
      yield { line };
    }
  }

  startSegment(key: string, contentType: string): SegmentWriter {
    const stream = new PassThrough();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: stream, ContentType: contentType },
      queueSize: 2,
      partSize: 5 * 1024 * 1024,
    });
    const done = upload.done();
    // Surface upload failures on the next write instead of as an unhandled rejection.
    let failure: unknown;
    done.catch((error) => {
      failure = error;
    });
    return {
      async write(text: string | Uint8Array) {
        if (failure) throw failure;
        if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', resolve));
      },
      async finish() {
        stream.end();
        await done;
      },
      async abort() {
        stream.destroy();
        await upload.abort().catch(() => undefined);
      },
    };
  }

  /** Joins the segments, in order, into the results file, then removes them. */
  async assemble(segments: string[], key: string, contentType: string): Promise<void> {
    const [only] = segments;
    if (segments.length === 1 && only) {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: `${this.bucket}/${encodeURIComponent(only).replaceAll('%2F', '/')}`,
          ContentType: contentType,
          MetadataDirective: 'REPLACE',
        }),
      );
    } else {
      const writer = this.startSegment(key, contentType);
      try {
        for (const segment of segments) {
          const body = await this.files.getStream(this.bucket, segment);
          for await (const chunk of body) await writer.write(chunk as Uint8Array);
        }
        await writer.finish();
      } catch (error) {
        await writer.abort();
        throw error;
      }
    }
    if (segments.length) await this.deleteSegments(segments);
  }

  /**
   * Removes assembled segments. DeleteObjects answers 200 even when keys were not deleted (each one
   * AccessDenied, say, in `Errors`): those are logged, with their count, and left to the bucket's
   * lifecycle rule. The results file is complete by then, so the run does not fail for them.
   * Returns how many were not deleted.
   */
  async deleteSegments(segments: string[]): Promise<number> {
    const answer = await this.client.send(
      new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: segments.map((Key) => ({ Key })), Quiet: true },
      }),
    );
    const failed = answer.Errors ?? [];
    if (failed.length > 0) {
      logger.warn('Batch segments not deleted', {
        bucket: this.bucket,
        notDeleted: failed.length,
        of: segments.length,
        errors: failed
          .slice(0, 10)
          .map(({ Key, Code, Message }) => ({ key: Key, code: Code, message: Message })),
      });
    }
    return failed.length;
  }

  presignUpload(key: string, ttlSeconds: number, contentType: string, declared: DeclaredFile) {
    return this.files.presignPut(this.bucket, key, ttlSeconds, { contentType, ...declared });
  }

  presignDownload(key: string, ttlSeconds: number, downloadName: string) {
    return this.files.presignGet(this.bucket, key, ttlSeconds, downloadName);
  }
}
