import { presentModel } from '#shared/api/presenters.ts';
import {
  CreateModelBodySchema,
  ModelRefParamsSchema,
  PageQuerySchema,
  PatchModelBodySchema,
} from '#shared/api/schemas.ts';
import { services } from '#shared/app/services.ts';
import { httpFunction, principalOf } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';
import { parseRequest } from '#shared/http/validation.ts';

export const handler = httpFunction('models', {
  'GET /v1/models': async (request) => {
    const query = parseRequest(PageQuerySchema, request.query, 'query');
    const page = await services().models.list(principalOf(request), query);
    return json(200, { items: page.items.map(presentModel), nextCursor: page.nextCursor });
  },

  'GET /v1/models/{modelId}': async (request) => {
    const { modelId } = parseRequest(ModelRefParamsSchema, request.params, 'path');
    return json(200, presentModel(await services().models.find(modelId, principalOf(request))));
  },

  'POST /v1/models': async (request) => {
    const input = parseRequest(CreateModelBodySchema, request.body, 'body');
    const { model, upload } = await services().models.create(input, principalOf(request).userId);
    return json(201, { model: presentModel(model), upload }, { Location: `/v1/models/${model.id}` });
  },

  'PATCH /v1/models/{modelId}': async (request) => {
    const { modelId } = parseRequest(ModelRefParamsSchema, request.params, 'path');
    const change = parseRequest(PatchModelBodySchema, request.body, 'body');
    const model = await services().models.find(modelId, principalOf(request));
    return json(
      200,
      presentModel(await services().models.update(model.id, change, principalOf(request).userId)),
    );
  },
});
