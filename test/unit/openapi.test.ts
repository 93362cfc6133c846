/** The OpenAPI document says what the route table validates and answers. */
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../shared/api/openapi.ts';
import { type RouteDefinition, routes } from '../../shared/api/routes.ts';

type Operation = {
  requestBody?: { content: Record<string, { schema: unknown }> };
  parameters?: { in: string; name: string }[];
  responses: Record<string, { content?: Record<string, unknown> }>;
};

const document = openApiDocument() as unknown as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { anyOf?: { $ref: string }[]; oneOf?: { $ref: string }[] }> };
};

const operation = (method: string, path: string): Operation => {
  const found = document.paths[path]?.[method.toLowerCase()];
  if (!found) throw new Error(`${method} ${path} is not in the document`);
  return found;
};

describe('the OpenAPI document', () => {
  it('describes every part of a request that a route validates, and its 400', () => {
    for (const route of routes as readonly RouteDefinition[]) {
      if (route.hidden) continue;
      const op = operation(route.method, route.path);
      expect(Boolean(op.requestBody), `${route.method} ${route.path} body`).toBe(Boolean(route.body));
      const where = new Set((op.parameters ?? []).map((p) => p.in));
      expect(where.has('query'), `${route.method} ${route.path} query`).toBe(Boolean(route.query));
      expect(where.has('path'), `${route.method} ${route.path} path`).toBe(Boolean(route.params));
      expect(where.has('header'), `${route.method} ${route.path} headers`).toBe(Boolean(route.headers));
      const validated = route.body || route.query || route.params || route.headers;
      expect(Boolean(op.responses['400']), `${route.method} ${route.path} 400`).toBe(Boolean(validated));
    }
  });

  it('shows both bodies POST /v1/tokens accepts: a password grant or a refresh grant', () => {
    const body = operation('POST', '/v1/tokens').requestBody?.content['application/json']?.schema;
    expect(body).toEqual({ $ref: '#/components/schemas/TokenRequest' });
    const variants = document.components.schemas.TokenRequest?.anyOf ?? [];
    expect(variants.map((v) => v.$ref)).toEqual([
      '#/components/schemas/PasswordGrant',
      '#/components/schemas/RefreshGrant',
    ]);
  });

  it('lists text/csv beside JSON for the answers that come as CSV too', () => {
    for (const [method, path] of [
      ['GET', '/v1/account/transactions'],
      ['GET', '/v1/predictions'],
      ['GET', '/v1/usage'],
    ] as const) {
      expect(Object.keys(operation(method, path).responses['200']?.content ?? {})).toEqual([
        'application/json',
        'text/csv',
      ]);
    }
  });
});
