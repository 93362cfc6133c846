import { openApiDocument } from '#shared/api/openapi.ts';
import { matchRoute } from '#shared/api/routes.ts';
import { NotFoundError } from '#shared/domain/errors.ts';
import { docsAsset, docsPage } from '#shared/http/docs.ts';
import { MethodNotAllowedError } from '#shared/http/errors.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';

export const handler = httpFunction('public', {
  'GET /v1/health': async () => json(200, { status: 'ok' }),
  'GET /openapi.json': async () => json(200, openApiDocument(), { 'Cache-Control': 'public, max-age=300' }),
  'GET /docs': async () => docsPage(),
  'GET /docs/{asset}': async ({ params }) => docsAsset(params.asset),
  // API Gateway sends every unmatched method and path here, so they get problem+json too.
  $default: async ({ event }) => {
    const { method, path } = event.requestContext.http;
    const { allowedMethods } = matchRoute(method, path);
    if (allowedMethods.length > 0) throw new MethodNotAllowedError(method, path, allowedMethods);
    throw new NotFoundError(`No route matches ${method} ${path}. See /docs for the API.`);
  },
});
