/**
 * Presigned uploads: what a client may declare about the file it is about to PUT (its size and
 * SHA-256), the headers it must then send, and the size rule checked before anything is created.
 * A declared size and checksum are signed into the upload URL, so the storage service itself
 * refuses a body of another length or content.
 */
import { z } from 'zod';
import { PayloadTooLargeError } from './errors.ts';

/** What the client says about the file it will upload; both optional. */
export interface DeclaredFile {
  /** Bytes; signed as `Content-Length`. */
  size?: number | undefined;
  /** Base64 of the file's SHA-256 digest; signed as `x-amz-checksum-sha256`. */
  checksumSha256?: string | undefined;
}

/** A presigned PUT as the API hands it out. */
export interface PresignedUpload {
  url: string;
  method: 'PUT';
  /** Every header the PUT must carry, exactly as given (those that were signed among them). */
  headers: Record<string, string>;
}

/** The header S3 checks a SHA-256 checksum in (lower case, as SigV4 signs it). */
export const CHECKSUM_SHA256_HEADER = 'x-amz-checksum-sha256';

/**
 * Canonical base64 of 32 bytes: 43 characters and one `=`. The 43rd character carries the last 4
 * bits of the digest and 2 padding bits, which must be zero, so it is one of 16 characters; any
 * other string decodes to something else than 32 bytes, or to 32 bytes written another way.
 */
const SHA256_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export const FileSizeSchema = z
  .int({ message: 'must be a whole number of bytes' })
  .min(1, { message: 'must be at least 1 byte' })
  .max(Number.MAX_SAFE_INTEGER, { message: 'is too large' });

export const ChecksumSha256Schema = z.string().regex(SHA256_BASE64, {
  message: 'must be the base64 of a 32-byte SHA-256 digest (44 characters ending in "=")',
});

/**
 * Refuses a declared size over `limit`, naming the field and the limit, so a file that would
 * be refused after its upload is refused before anything is created or sent.
 */
export function checkDeclaredSize(declared: DeclaredFile, limit: number, what: string): void {
  if (declared.size === undefined || declared.size <= limit) return;
  throw new PayloadTooLargeError(
    `The declared size is ${declared.size} bytes; ${what} may be at most ${limit} bytes.`,
    limit,
    { errors: [{ path: '/size', message: `must be at most ${limit} bytes` }] },
  );
}

/** The headers the PUT must carry: the content type, and whatever was declared (and so signed). */
export function uploadHeaders(contentType: string, declared: DeclaredFile): Record<string, string> {
  return {
    'Content-Type': contentType,
    ...(declared.size !== undefined ? { 'Content-Length': String(declared.size) } : {}),
    ...(declared.checksumSha256 !== undefined ? { [CHECKSUM_SHA256_HEADER]: declared.checksumSha256 } : {}),
  };
}
