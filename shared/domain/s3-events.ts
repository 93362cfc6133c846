/** Reads the S3 event notifications that arrive as SQS message bodies. */
import { z } from 'zod';

const S3EventRecord = z.object({
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({ key: z.string(), size: z.number().optional(), eTag: z.string().optional() }),
  }),
});

const S3EventBody = z.union([
  z.object({ Records: z.array(S3EventRecord) }),
  // S3 sends one of these when a notification is configured; there is nothing to do for it.
  z.object({ Event: z.literal('s3:TestEvent') }),
]);

export interface StoredObjectEvent {
  bucket: string;
  /** Decoded: S3 URL-encodes keys in notifications, with `+` for spaces. */
  key: string;
  size: number | undefined;
  eTag: string | undefined;
}

export class UnreadableEventError extends Error {
  override name = 'UnreadableEventError';
}

export function decodeS3Key(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

/** The objects created according to one SQS message body; empty for S3's test event. */
export function objectsCreated(messageBody: string): StoredObjectEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(messageBody);
  } catch {
    throw new UnreadableEventError('The message body is not JSON.');
  }
  const parsed = S3EventBody.safeParse(json);
  if (!parsed.success) throw new UnreadableEventError('The message is not an S3 event notification.');
  if (!('Records' in parsed.data)) return [];
  return parsed.data.Records.filter((r) => r.eventName.startsWith('ObjectCreated')).map((r) => ({
    bucket: r.s3.bucket.name,
    key: decodeS3Key(r.s3.object.key),
    size: r.s3.object.size,
    eTag: r.s3.object.eTag,
  }));
}
