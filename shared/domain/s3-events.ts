/** Reads the S3 event notifications that arrive as SQS message bodies. */
import { z } from 'zod';

const S3EventRecord = z.object({
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({ key: z.string(), size: z.number().optional(), eTag: z.string().optional() }),
  }),
});

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

/**
 * An S3 event notification's JSON body, read as the objects it reports created; none for S3's test
 * event (sent when a notification is configured: there is nothing to do for it).
 */
export const ObjectsCreatedSchema = z
  .union([z.object({ Records: z.array(S3EventRecord) }), z.object({ Event: z.literal('s3:TestEvent') })])
  .transform((body): StoredObjectEvent[] =>
    'Records' in body
      ? body.Records.filter((r) => r.eventName.startsWith('ObjectCreated')).map((r) => ({
          bucket: r.s3.bucket.name,
          key: decodeS3Key(r.s3.object.key),
          size: r.s3.object.size,
          eTag: r.s3.object.eTag,
        }))
      : [],
  );

/**
 * Reads one SQS message body with the schema of its queue; a body that is not JSON, or not what the
 * queue carries, is an UnreadableEventError.
 */
export function readMessage<T>(schema: z.ZodType<T>, messageBody: string): T {
  let json: unknown;
  try {
    json = JSON.parse(messageBody);
  } catch {
    throw new UnreadableEventError('The message body is not JSON.');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new UnreadableEventError(
      `The message is not one this queue carries: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/** The objects created according to one SQS message body; empty for S3's test event. */
export function objectsCreated(messageBody: string): StoredObjectEvent[] {
  return readMessage(ObjectsCreatedSchema, messageBody);
}
