/**
 * The messages of the three work queues, declared once: the adapters that send them build them as
 * these types, and each queue's worker (shared/workers/sqs-worker.ts) reads a message body with its
 * queue's schema into the pieces of work the message carries, in order.
 */
import { z } from 'zod';
import { ObjectsCreatedSchema, type StoredObjectEvent } from './s3-events.ts';

/** The model queue: the models bucket's ObjectCreated events (uploaded model files). */
export const ModelQueueMessage = ObjectsCreatedSchema;

/** Sent by the batch worker to its own queue: run the batch on from its checkpoint in a new invocation. */
export const BatchContinuationSchema = z.object({
  kind: z.literal('batch-continuation'),
  userId: z.string(),
  batchId: z.string(),
});
export type BatchContinuation = z.infer<typeof BatchContinuationSchema>;

/** A file that landed in the batch inbox. */
export type InboxObjectWork = { kind: 'inbox-object' } & Pick<StoredObjectEvent, 'key' | 'eTag'>;

/** One run of a batch the batch queue asks for. */
export type BatchWork = BatchContinuation | InboxObjectWork;

/** The batch queue: the batch bucket's ObjectCreated events (files in the inbox) and continuations. */
export const BatchQueueMessage = z.union([
  BatchContinuationSchema.transform((continuation): BatchWork[] => [continuation]),
  ObjectsCreatedSchema.transform((objects): BatchWork[] =>
    objects.map(({ key, eTag }) => ({ kind: 'inbox-object', key, eTag })),
  ),
]);

/** The notification queue: a recorded notification to deliver to the account's webhook. */
export const WebhookDeliverySchema = z.object({ userId: z.string(), notificationId: z.string() });
export type WebhookDelivery = z.infer<typeof WebhookDeliverySchema>;

export const NotificationQueueMessage = WebhookDeliverySchema.transform((delivery) => [delivery]);
