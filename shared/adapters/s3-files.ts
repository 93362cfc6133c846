/** Objects in the buckets: bytes, streams, presigned URLs. */
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { CHECKSUM_SHA256_HEADER, type DeclaredFile } from '../domain/uploads.ts';

/** Checksum headers and parameters of S3: `x-amz-checksum-{algorithm}`, `-mode`, `-type`, and the SDK's algorithm hint. */
const CHECKSUM_HEADER = /^x-amz-(checksum-|sdk-checksum-algorithm$)/;

/**
 * A middleware that drops from a request about to be presigned every checksum header the caller
 * did not put in it (`supplied` names those it did). From 3.729 the SDK adds checksums "when
 * supported" by default: to a presigned PutObject, which has no body, the CRC32 of the empty body
 * (`AAAAAA==`), and to a GetObject `x-amz-checksum-mode`. Signed into the URL, the first makes the
 * S3s that verify it (R2, MinIO, SeaweedFS) refuse every non-empty upload. Done here and not only
 * in the client's configuration, so that no client setting brings it back.
 */
function dropAddedChecksums(supplied: ReadonlySet<string>) {
  return <A extends { request: unknown }, R>(next: (args: A) => Promise<R>) =>
    async (args: A): Promise<R> => {
      const { headers } = args.request as { headers?: Record<string, string> };
      for (const name of Object.keys(headers ?? {})) {
        const lower = name.toLowerCase();
        if (headers && CHECKSUM_HEADER.test(lower) && !supplied.has(lower)) delete headers[name];
      }
      return next(args);
    };
}

/** Late in the build step: after the SDK's flexibleChecksumsMiddleware has added its headers, before signing. */
const DROP_ADDED_CHECKSUMS = {
  step: 'build',
  priority: 'low',
  name: 'dropAddedChecksumsMiddleware',
} as const;

export class S3Files {
  constructor(private readonly client: S3Client) {}

  async getBytes(bucket: string, key: string): Promise<Uint8Array> {
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!Body) throw new Error(`s3://${bucket}/${key} has no body`);
    return Body.transformToByteArray();
  }

  async getStream(bucket: string, key: string): Promise<Readable> {
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!Body) throw new Error(`s3://${bucket}/${key} has no body`);
    return Body as Readable;
  }

  async size(bucket: string, key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return head.ContentLength;
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFound') return undefined;
      throw error;
    }
  }

  async put(bucket: string, key: string, body: Uint8Array | string, contentType?: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ...(contentType ? { ContentType: contentType } : {}),
      }),
    );
  }

  /**
   * A presigned PUT. A declared size and checksum are signed as the headers `Content-Length` and
   * `x-amz-checksum-sha256` (kept as headers, not hoisted into the query, so the uploader must send
   * them and S3 checks the body against them); nothing else about checksums is in the URL.
   */
  presignPut(
    bucket: string,
    key: string,
    expiresIn: number,
    upload: { contentType?: string | undefined } & DeclaredFile = {},
  ): Promise<string> {
    const { contentType, size, checksumSha256 } = upload;
    const command = new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      ...(contentType ? { ContentType: contentType } : {}),
      ...(size !== undefined ? { ContentLength: size } : {}),
      ...(checksumSha256 !== undefined ? { ChecksumSHA256: checksumSha256 } : {}),
    });
    const supplied = new Set(checksumSha256 !== undefined ? [CHECKSUM_SHA256_HEADER] : []);
    command.middlewareStack.add(dropAddedChecksums(supplied), DROP_ADDED_CHECKSUMS);
    return getSignedUrl(this.client, command, { expiresIn, unhoistableHeaders: supplied });
  }

  presignGet(bucket: string, key: string, expiresIn: number, downloadName?: string): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ...(downloadName ? { ResponseContentDisposition: `attachment; filename="${downloadName}"` } : {}),
    });
    command.middlewareStack.add(dropAddedChecksums(new Set()), DROP_ADDED_CHECKSUMS);
    return getSignedUrl(this.client, command, { expiresIn });
  }
}

export { Readable };
