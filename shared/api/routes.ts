/**
 * The route table, defined once. The CDK stack creates one API Gateway route per entry (plus the
 * `$default` catch-all); the local gateway matches requests against the same entries; the OpenAPI
 * document is generated from them.
 */
import type { z } from 'zod';
import type { HttpFunctionName } from './functions.ts';
import { HealthSchema } from './schemas.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Access = 'public' | 'user' | 'admin';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  contentType?: string;
}

export interface RouteDefinition {
  method: HttpMethod;
  /** API Gateway path syntax, e.g. `/v1/models/{modelId}`. */
  path: string;
  fn: HttpFunctionName;
  access: Access;
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: z.ZodObject;
  params?: z.ZodObject;
  headers?: z.ZodObject;
  responses: Record<number, ResponseSpec>;
  /** Left out of the OpenAPI document (e.g. the document itself). */
  hidden?: boolean;
}

const route = <const R extends RouteDefinition>(definition: R) => definition;

export const routes = [
  route({
    method: 'GET',
    path: '/v1/health',
    fn: 'public',
    access: 'public',
    tag: 'Public',
    summary: 'Check that the service is up',
    responses: { 200: { description: 'The service is up', schema: HealthSchema } },
  }),
  route({
    method: 'GET',
    path: '/openapi.json',
    fn: 'public',
    access: 'public',
    tag: 'Public',
    summary: 'This OpenAPI 3.1 document',
    responses: { 200: { description: 'The OpenAPI document' } },
  }),
  route({
    method: 'GET',
    path: '/docs',
    fn: 'public',
    access: 'public',
    tag: 'Public',
    summary: 'Swagger UI over the OpenAPI document',
    responses: { 200: { description: 'An HTML page', contentType: 'text/html' } },
  }),
  route({
    method: 'GET',
    path: '/docs/{asset}',
    fn: 'public',
    access: 'public',
    tag: 'Public',
    summary: 'Swagger UI assets',
    hidden: true,
    responses: { 200: { description: 'A static asset' } },
  }),
] as const satisfies readonly RouteDefinition[];

export type Route = (typeof routes)[number];
export type RouteKey = `${Route['method']} ${Route['path']}`;
export type RouteKeyOf<F extends HttpFunctionName> = Route extends infer R
  ? R extends { fn: F; method: infer M extends string; path: infer P extends string }
    ? `${M} ${P}`
    : never
  : never;

export const DEFAULT_ROUTE_KEY = '$default';
/** The function that answers the catch-all route. */
export const DEFAULT_ROUTE_FUNCTION: HttpFunctionName = 'public';

export function routeKey(route: Pick<RouteDefinition, 'method' | 'path'>): string {
  return `${route.method} ${route.path}`;
}

export interface RouteMatch {
  route: Route;
  pathParameters: Record<string, string>;
}

const compiled = routes.map((r) => {
  const names: string[] = [];
  const pattern = r.path.replace(/\{([^}/+]+)\}/g, (_match, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { route: r as Route, regex: new RegExp(`^${pattern}$`), names };
});

/**
 * Matches a request the way API Gateway does: a literal path segment wins over a parameter, and the
 * allowed methods of a matching path are reported so the catch-all can answer 405.
 */
export function matchRoute(
  method: string,
  path: string,
): { match: RouteMatch | undefined; allowedMethods: string[] } {
  const candidates = compiled
    .map((c) => ({ c, result: c.regex.exec(path) }))
    .filter((x): x is { c: (typeof compiled)[number]; result: RegExpExecArray } => x.result !== null)
    .sort((a, b) => a.c.names.length - b.c.names.length);
  const allowedMethods = [...new Set(candidates.map((x) => x.c.route.method))];
  const hit = candidates.find((x) => x.c.route.method === method);
  if (!hit) return { match: undefined, allowedMethods };
  const pathParameters: Record<string, string> = {};
  hit.c.names.forEach((name, i) => {
    pathParameters[name] = decodeURIComponent(hit.result[i + 1] ?? '');
  });
  return { match: { route: hit.c.route, pathParameters }, allowedMethods };
}
