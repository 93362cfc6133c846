/**
 * Generates the OpenAPI 3.1 document from the route table: the zod schemas that validate each request
 * and type its answers.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { problemTypes, problemTypeUri } from '../http/problems.ts';
import { type ResponseSpec, type RouteDefinition, routes } from './routes.ts';
import { ProblemSchema } from './schemas.ts';

type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
});

let cached: OpenApiDocument | undefined;

export function openApiDocument(): OpenApiDocument {
  if (cached) return cached;
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An access token (JWT from POST /v1/tokens) or an API key',
  });
  for (const r of routes as readonly RouteDefinition[]) {
    const definition = r;
    if (r.hidden) continue;
    const responses: RouteConfig['responses'] = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      const response: ResponseSpec = spec;
      const content = {
        ...(response.schema
          ? { [response.contentType ?? 'application/json']: { schema: response.schema } }
          : {}),
        ...Object.fromEntries((response.alsoAs ?? []).map((type) => [type, { schema: z.string() }])),
      };
      responses[status] =
        Object.keys(content).length > 0
          ? { description: response.description, content }
          : { description: response.description };
    }
    if (r.access !== 'public') {
      responses['401'] = problemResponse('Missing, invalid or expired credential');
    }
    if (r.access === 'admin') responses['403'] = problemResponse('The caller is not an admin');
    if (definition.body || definition.query || definition.params || definition.headers) {
      responses['400'] = problemResponse('The request is not valid; `errors` names each field');
    }
    responses.default = problemResponse('Any other problem');
    registry.registerPath({
      method: r.method.toLowerCase() as RouteConfig['method'],
      path: r.path,
      summary: r.summary,
      tags: [r.tag],
      ...(r.access === 'public' ? {} : { security: [{ bearer: [] }] }),
      request: {
        ...(definition.body
          ? { body: { required: true, content: { 'application/json': { schema: definition.body } } } }
          : {}),
        ...(definition.query ? { query: definition.query } : {}),
        ...(definition.params ? { params: definition.params } : {}),
        ...(definition.headers ? { headers: definition.headers } : {}),
      },
      responses,
    });
  }
  cached = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Credit predictions API',
      version: '1.0.0',
      description: [
        'Run predictions on ONNX models and pay per successful prediction with credits.',
        '',
        'Authenticate with `Authorization: Bearer <access token or API key>`. Money is integer credits.',
        'Lists take `?limit=` (1..100) and `?cursor=` and answer `{items, nextCursor}`, newest first.',
        '',
        'Errors are RFC 9457 problem details (`application/problem+json`): `{type, title, status, detail, errors?}`,',
        'where `errors[]` names each offending field (a JSON pointer into the body, or `query.x` / `path.x` / `header.x`).',
        'The `type` is one of:',
        '',
        ...(Object.keys(problemTypes) as (keyof typeof problemTypes)[]).map(
          (code) => `- \`${problemTypeUri(code)}\`: ${problemTypes[code].title}`,
        ),
      ].join('\n'),
    },
    servers: [{ url: '/' }],
  });
  return cached;
}
