import { presentModel } from '#shared/api/presenters.ts';
import { authenticate, services } from '#shared/app/services.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';

export const handler = httpFunction(
  'models',
  {
    'GET /v1/models': async ({ principal, query }) => {
      const page = await services().models.list(principal, query);
      return json(200, { items: page.items.map(presentModel), nextCursor: page.nextCursor });
    },

    'GET /v1/models/{modelId}': async ({ principal, params }) =>
      json(200, presentModel(await services().models.find(params.modelId, principal))),

    'POST /v1/models': async ({ principal, body }) => {
      const { model, upload } = await services().models.create(body, principal.userId);
      return json(201, { model: presentModel(model), upload }, { Location: `/v1/models/${model.id}` });
    },

    'PATCH /v1/models/{modelId}': async ({ principal, params, body }) => {
      const model = await services().models.find(params.modelId, principal);
      return json(200, presentModel(await services().models.update(model.id, body, principal.userId)));
    },
  },
  { authenticate },
);
