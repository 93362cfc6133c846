/**
 * Request and response schemas of the public API. The same zod objects validate requests in the
 * handlers and generate the OpenAPI document, so the two cannot drift apart.
 */
import { z } from 'zod';

export const ProblemSchema = z
  .object({
    type: z.string().describe('URI of the problem type, `/problems/<slug>`'),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('One entry per offending field'),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

/** `?limit=&cursor=` of every list endpoint. */
export const PageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(2048).optional(),
});

export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z
    .object({ items: z.array(item), nextCursor: z.string().nullable() })
    .meta({ id, description: 'A page of results, newest first' });
}
