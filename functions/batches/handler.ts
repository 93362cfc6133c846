import { presentBatch } from '#shared/api/presenters.ts';
import { authenticate, services } from '#shared/app/services.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';

export const handler = httpFunction(
  'batches',
  {
    'POST /v1/batches': async ({ principal, body }) => {
      const { batch, upload } = await services().batches.create(principal, body);
      return json(
        201,
        // A new batch awaits its upload.
        { id: batch.id, status: 'awaiting_upload', upload, batch: presentBatch(batch) },
        { Location: `/v1/batches/${batch.id}` },
      );
    },

    'GET /v1/batches': async ({ principal, query }) => {
      const page = await services().batches.list(principal, query);
      return json(200, { items: page.items.map(presentBatch), nextCursor: page.nextCursor });
    },

    'GET /v1/batches/{id}': async ({ principal, params }) =>
      json(200, presentBatch(await services().batches.get(principal, params.id))),
  },
  { authenticate },
);
