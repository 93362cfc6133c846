/**
 * Presigned uploads: what a client may declare about its file (size, SHA-256), the size rule checked
 * before anything is created, the headers the PUT must carry, and the URLs S3Files signs: no
 * checksum the caller did not supply (even from a client left at the SDK's WHEN_SUPPORTED default),
 * and a declared size and checksum signed as headers.
 */
import { createHash } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { S3Files } from '../../shared/adapters/s3-files.ts';
import { PayloadTooLargeError } from '../../shared/domain/errors.ts';
import {
  ChecksumSha256Schema,
  checkDeclaredSize,
  FileSizeSchema,
  uploadHeaders,
} from '../../shared/domain/uploads.ts';
import { problemOf } from '../../shared/http/problems.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64');

describe('a declared checksum', () => {
  it('is accepted when it is the base64 of a 32-byte digest', () => {
    for (const text of ['', 'a', 'sepal_length,sepal_width\n5.1,3.5\n', 'x'.repeat(10_000)]) {
      expect(ChecksumSha256Schema.safeParse(sha256(text)).success).toBe(true);
    }
  });

  it('is refused in any other form: hex, URL-safe, unpadded, too short or long, or non-canonical', () => {
    const digest = sha256('hello');
    const hex = createHash('sha256').update('hello').digest('hex');
    // 'B' leaves a padding bit set: it decodes to the same 32 bytes as the canonical 'A', 'E', ...
    const nonCanonical = `${digest.slice(0, 42)}B=`;
    const cases = [
      hex,
      digest.replace(/\+/g, '-').replace(/\//g, '_'),
      digest.slice(0, 43),
      digest.slice(0, 40),
      `${digest}A`,
      `${digest.slice(0, 43)}A`,
      createHash('sha1').update('hello').digest('base64'),
      createHash('sha512').update('hello').digest('base64'),
      nonCanonical,
      ` ${digest.slice(1)}`,
      '',
    ];
    for (const value of cases) {
      expect(ChecksumSha256Schema.safeParse(value).success, JSON.stringify(value)).toBe(false);
    }
  });
});

describe('a declared size', () => {
  it('is a whole number of bytes, at least 1', () => {
    expect(FileSizeSchema.safeParse(1).success).toBe(true);
    expect(FileSizeSchema.safeParse(5 * 1024 ** 3).success).toBe(true);
    for (const value of [0, -1, 1.5, '12', Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(FileSizeSchema.safeParse(value).success, String(value)).toBe(false);
    }
  });

  it('over the limit is refused with a 413 naming the field and the limit', () => {
    expect(() => checkDeclaredSize({}, 100, 'batch files')).not.toThrow();
    expect(() => checkDeclaredSize({ size: 100 }, 100, 'batch files')).not.toThrow();
    let refused: unknown;
    try {
      checkDeclaredSize({ size: 101 }, 100, 'batch files');
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(PayloadTooLargeError);
    const error = refused as PayloadTooLargeError;
    expect(error.code).toBe('payload-too-large');
    expect(error.limit).toBe(100);
    expect(error.errors).toEqual([{ path: '/size', message: 'must be at most 100 bytes' }]);
    expect(error.message).toContain('101');
    expect(error.message).toContain('100');
    const { status, body } = problemOf(error);
    expect(status).toBe(413);
    expect(body).toMatchObject({ limit: 100, errors: error.errors });
  });
});

describe('the headers of an upload', () => {
  it('are the content type, plus whatever was declared', () => {
    expect(uploadHeaders('text/csv', {})).toEqual({ 'Content-Type': 'text/csv' });
    const digest = sha256('x');
    expect(uploadHeaders('text/csv', { size: 12, checksumSha256: digest })).toEqual({
      'Content-Type': 'text/csv',
      'Content-Length': '12',
      'x-amz-checksum-sha256': digest,
    });
  });
});

describe('URLs signed by S3Files', () => {
  // The SDK's defaults (requestChecksumCalculation and responseChecksumValidation WHEN_SUPPORTED):
  // the presign code alone must keep checksums the caller did not supply out of the URL.
  const client = new S3Client({
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });
  afterAll(() => client.destroy());
  const files = new S3Files(client);

  const checksumParameters = (url: URL) =>
    [...url.searchParams.keys()].filter((name) => /^x-amz-(checksum-|sdk-checksum-algorithm$)/i.test(name));
  const signedHeaders = (url: URL) => url.searchParams.get('X-Amz-SignedHeaders')?.split(';');

  it('a PUT with nothing declared carries no checksum parameter and signs only the host', async () => {
    const url = new URL(await files.presignPut('inbox', 'a/b.csv', 60, { contentType: 'text/csv' }));
    expect(checksumParameters(url)).toEqual([]);
    expect(signedHeaders(url)).toEqual(['host']);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
  });

  it('a PUT with a size and a checksum signs them as the headers content-length and x-amz-checksum-sha256', async () => {
    const digest = sha256('sepal_length\n5.1\n');
    const url = new URL(
      await files.presignPut('inbox', 'a/b.csv', 60, {
        contentType: 'text/csv',
        size: 17,
        checksumSha256: digest,
      }),
    );
    expect(signedHeaders(url)).toEqual(['content-length', 'host', 'x-amz-checksum-sha256']);
    // Headers, not query parameters: the uploader sends them and S3 checks the body against them.
    expect(checksumParameters(url)).toEqual([]);
  });

  it('a PUT with only a size signs content-length and adds no checksum', async () => {
    const url = new URL(await files.presignPut('models', 'uploads/m.onnx', 60, { size: 2048 }));
    expect(signedHeaders(url)).toEqual(['content-length', 'host']);
    expect(checksumParameters(url)).toEqual([]);
  });

  it('the signature covers the declared size and checksum', async () => {
    // One signing time for every URL, so that only the declared values can change the signature.
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-01-02T03:04:05Z') });
    try {
      const signature = async (declared: { size?: number; checksumSha256?: string }) =>
        new URL(await files.presignPut('inbox', 'a/b.csv', 60, declared)).searchParams.get('X-Amz-Signature');
      const base = { size: 17, checksumSha256: sha256('one') };
      const first = await signature(base);
      expect(await signature({ ...base })).toBe(first);
      expect(await signature({ ...base, size: 18 })).not.toBe(first);
      expect(await signature({ ...base, checksumSha256: sha256('two') })).not.toBe(first);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a GET of results carries no checksum parameter', async () => {
    const url = new URL(await files.presignGet('results', 'r.csv', 60, 'r.csv'));
    expect(checksumParameters(url)).toEqual([]);
    expect(url.searchParams.get('response-content-disposition')).toBe('attachment; filename="r.csv"');
  });
});
