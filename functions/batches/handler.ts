import { presentBatch } from '#shared/api/presenters.ts';
import { BatchIdParamsSchema, CreateBatchBodySchema, PageQuerySchema } from '#shared/api/schemas.ts';
import { services } from '#shared/app/services.ts';
import { httpFunction, principalOf } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';
import { parseRequest } from '#shared/http/validation.ts';

export const handler = httpFunction('batches', {
  'POST /v1/batches': async (request) => {
    const input = parseRequest(CreateBatchBodySchema, request.body, 'body');
    const { batch, upload } = await services().batches.create(principalOf(request), input);
    return json(
      201,
      { id: batch.id, status: batch.status, upload, batch: presentBatch(batch) },
      { Location: `/v1/batches/${batch.id}` },
    );
  },

  'GET /v1/batches': async (request) => {
    const query = parseRequest(PageQuerySchema, request.query, 'query');
    const page = await services().batches.list(principalOf(request), query);
    return json(200, { items: page.items.map(presentBatch), nextCursor: page.nextCursor });
  },

  'GET /v1/batches/{id}': async (request) => {
    const { id } = parseRequest(BatchIdParamsSchema, request.params, 'path');
    return json(200, presentBatch(await services().batches.get(principalOf(request), id)));
  },
});
