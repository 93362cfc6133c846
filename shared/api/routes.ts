/**
 * The route table, defined once. The CDK stack creates one API Gateway route per entry (plus the
 * `$default` catch-all); the local gateway matches requests against the same entries; the OpenAPI
 * document is generated from them.
 */
import type { z } from 'zod';
import type { HttpFunctionName } from './functions.ts';
import {
  AccountSchema,
  AdminStatsSchema,
  ApiKeyCreatedSchema,
  ApiKeyCreateSchema,
  ApiKeyListSchema,
  AssetParamsSchema,
  AuditEntrySchema,
  BalanceChangeResponseSchema,
  BatchIdParamsSchema,
  BatchSchema,
  CreateBatchBodySchema,
  CreateBatchResponseSchema,
  CreateModelBodySchema,
  CreateModelResponseSchema,
  GrantBodySchema,
  HealthSchema,
  IdempotencyHeadersSchema,
  IdParamsSchema,
  JwksSchema,
  LedgerEntrySchema,
  LimitsBodySchema,
  LimitsResponseSchema,
  MeSchema,
  ModelRefParamsSchema,
  ModelSchema,
  PageQuerySchema,
  PatchModelBodySchema,
  PredictionBodySchema,
  PredictionIdParamsSchema,
  PredictionRecordSchema,
  PredictionResultSchema,
  PredictionsQuerySchema,
  pageOf,
  RefundBodySchema,
  RegisterBodySchema,
  RevokeBodySchema,
  StatsQuerySchema,
  TokenPairSchema,
  TokenRequestSchema,
  TopUpBodySchema,
  TransactionsQuerySchema,
  UsageQuerySchema,
  UsageReportSchema,
  UserIdParamsSchema,
  UserSchema,
} from './schemas.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Access = 'public' | 'user' | 'admin';

export interface ResponseSpec {
  description: string;
  /** The JSON body (or, with `contentType`, the body of that media type). */
  schema?: z.ZodType;
  contentType?: string;
  /** Other media types the same answer may come as, e.g. `text/csv` for `?format=csv`. */
  alsoAs?: readonly string[];
}

export interface RouteDefinition {
  method: HttpMethod;
  /** API Gateway path syntax, e.g. `/v1/models/{modelId}`. */
  path: string;
  fn: HttpFunctionName;
  access: Access;
  summary: string;
  tag: string;
  /** The parts of a request, validated before the route's handler runs; it receives their output. */
  body?: z.ZodType;
  query?: z.ZodObject;
  params?: z.ZodObject;
  headers?: z.ZodObject;
  /** What each status answers; the handler's 2xx results are type-checked against these. */
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
    params: AssetParamsSchema,
    responses: { 200: { description: 'A static asset' } },
  }),
  route({
    method: 'GET',
    path: '/.well-known/jwks.json',
    fn: 'auth',
    access: 'public',
    tag: 'Users and sessions',
    summary: 'The public keys that verify access tokens',
    responses: { 200: { description: 'A JSON Web Key Set', schema: JwksSchema } },
  }),
  route({
    method: 'POST',
    path: '/v1/users',
    fn: 'auth',
    access: 'public',
    tag: 'Users and sessions',
    summary: 'Register a user',
    body: RegisterBodySchema,
    responses: {
      201: { description: 'The new user', schema: UserSchema },
      409: { description: 'The email is taken' },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/tokens',
    fn: 'auth',
    access: 'public',
    tag: 'Users and sessions',
    summary: 'Sign in with a password, or exchange a refresh token for a new pair',
    body: TokenRequestSchema,
    responses: {
      200: { description: 'An access token and a refresh token', schema: TokenPairSchema },
      429: { description: 'Too many failed sign-ins; see Retry-After' },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/tokens/revoke',
    fn: 'auth',
    access: 'public',
    tag: 'Users and sessions',
    summary: "Sign out: the refresh token's whole family stops working",
    body: RevokeBodySchema,
    responses: { 204: { description: 'Signed out' } },
  }),
  route({
    method: 'GET',
    path: '/v1/users/me',
    fn: 'auth',
    access: 'user',
    tag: 'Users and sessions',
    summary: 'The caller, with their balance',
    responses: { 200: { description: 'The caller', schema: MeSchema } },
  }),
  route({
    method: 'POST',
    path: '/v1/api-keys',
    fn: 'auth',
    access: 'user',
    tag: 'Users and sessions',
    summary: 'Create an API key (the secret is shown once)',
    body: ApiKeyCreateSchema,
    responses: { 201: { description: 'The key with its secret', schema: ApiKeyCreatedSchema } },
  }),
  route({
    method: 'GET',
    path: '/v1/api-keys',
    fn: 'auth',
    access: 'user',
    tag: 'Users and sessions',
    summary: "The caller's API keys, without secrets",
    responses: { 200: { description: 'The keys', schema: ApiKeyListSchema } },
  }),
  route({
    method: 'DELETE',
    path: '/v1/api-keys/{id}',
    fn: 'auth',
    access: 'user',
    tag: 'Users and sessions',
    summary: 'Delete an API key; it stops working at once',
    params: IdParamsSchema,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'No such key' } },
  }),
  route({
    method: 'GET',
    path: '/v1/account',
    fn: 'account',
    access: 'user',
    tag: 'Credits',
    summary: "The caller's balance and limits",
    responses: { 200: { description: 'The account', schema: AccountSchema } },
  }),
  route({
    method: 'POST',
    path: '/v1/account/top-ups',
    fn: 'account',
    access: 'user',
    tag: 'Credits',
    summary: 'Add credits (self-service; stands in for a payment provider; off in production by default)',
    body: TopUpBodySchema,
    headers: IdempotencyHeadersSchema,
    responses: {
      201: { description: 'The ledger entry and the new balance', schema: BalanceChangeResponseSchema },
      403: { description: 'Self-service top-ups are turned off' },
      409: { description: 'The Idempotency-Key was used with another body' },
    },
  }),
  route({
    method: 'GET',
    path: '/v1/account/transactions',
    fn: 'account',
    access: 'user',
    tag: 'Credits',
    summary: "The caller's ledger, newest first",
    query: TransactionsQuerySchema,
    responses: {
      200: {
        description: 'A page of ledger entries (with ?format=csv: the whole filtered ledger)',
        schema: pageOf(LedgerEntrySchema, 'LedgerPage'),
        alsoAs: ['text/csv'],
      },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/admin/users/{userId}/grants',
    fn: 'account',
    access: 'admin',
    tag: 'Admin',
    summary: 'Grant credits to a user',
    params: UserIdParamsSchema,
    body: GrantBodySchema,
    headers: IdempotencyHeadersSchema,
    responses: {
      201: { description: 'The ledger entry and the new balance', schema: BalanceChangeResponseSchema },
      404: { description: 'No such user' },
    },
  }),
  route({
    method: 'GET',
    path: '/v1/models',
    fn: 'models',
    access: 'user',
    tag: 'Models',
    summary: 'Models: active ones for users, every version for admins',
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of models', schema: pageOf(ModelSchema, 'ModelPage') } },
  }),
  route({
    method: 'GET',
    path: '/v1/models/{modelId}',
    fn: 'models',
    access: 'user',
    tag: 'Models',
    summary: 'A model version by id, or the newest active version of a name',
    params: ModelRefParamsSchema,
    responses: {
      200: { description: 'The model', schema: ModelSchema },
      404: { description: 'Unknown or retired' },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/models',
    fn: 'models',
    access: 'admin',
    tag: 'Models',
    summary: 'Publish a model version: answers with a presigned upload for the ONNX file',
    body: CreateModelBodySchema,
    responses: {
      201: { description: 'The pending version and its upload', schema: CreateModelResponseSchema },
      413: { description: 'The declared `size` is over the limit for model files' },
    },
  }),
  route({
    method: 'PATCH',
    path: '/v1/models/{modelId}',
    fn: 'models',
    access: 'admin',
    tag: 'Models',
    summary: 'Reprice, describe, retire or reactivate a model version',
    params: ModelRefParamsSchema,
    body: PatchModelBodySchema,
    responses: {
      200: { description: 'The model', schema: ModelSchema },
      404: { description: 'Unknown model' },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/models/{modelId}/predictions',
    fn: 'predict',
    access: 'user',
    tag: 'Predictions',
    summary: 'Run a prediction; charged price × rows on success only',
    params: ModelRefParamsSchema,
    body: PredictionBodySchema,
    headers: IdempotencyHeadersSchema,
    responses: {
      201: { description: 'The outputs, the cost and the new balance', schema: PredictionResultSchema },
      402: { description: 'The balance does not cover the cost; nothing charged' },
      404: { description: 'Unknown or retired model' },
      409: { description: 'The Idempotency-Key was used with another body' },
      422: { description: 'The model failed; nothing charged' },
      429: { description: 'Too many predictions; see Retry-After' },
    },
  }),
  route({
    method: 'GET',
    path: '/v1/predictions',
    fn: 'predict',
    access: 'user',
    tag: 'Predictions',
    summary: "The caller's predictions, newest first",
    query: PredictionsQuerySchema,
    responses: {
      200: {
        description: 'A page of predictions (with ?format=csv: the whole filtered history)',
        schema: pageOf(PredictionRecordSchema, 'PredictionPage'),
        alsoAs: ['text/csv'],
      },
    },
  }),
  route({
    method: 'GET',
    path: '/v1/predictions/{predictionId}',
    fn: 'predict',
    access: 'user',
    tag: 'Predictions',
    summary: 'One of your predictions',
    params: PredictionIdParamsSchema,
    responses: {
      200: { description: 'The prediction', schema: PredictionRecordSchema },
      404: { description: 'Not yours or unknown' },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/admin/predictions/{predictionId}/refunds',
    fn: 'predict',
    access: 'admin',
    tag: 'Admin',
    summary: "Refund a prediction's cost, once",
    params: PredictionIdParamsSchema,
    body: RefundBodySchema,
    responses: {
      201: {
        description: 'The refund ledger entry and the new balance',
        schema: BalanceChangeResponseSchema,
      },
      409: { description: 'Already refunded, or nothing to refund' },
    },
  }),
  route({
    method: 'POST',
    path: '/v1/batches',
    fn: 'batches',
    access: 'user',
    tag: 'Batches',
    summary: 'Create a batch: answers with a presigned upload for the CSV or JSONL file',
    body: CreateBatchBodySchema,
    responses: {
      201: { description: 'The batch and its upload', schema: CreateBatchResponseSchema },
      413: { description: 'The declared `size` is over the limit for batch files' },
    },
  }),
  route({
    method: 'GET',
    path: '/v1/batches',
    fn: 'batches',
    access: 'user',
    tag: 'Batches',
    summary: "The caller's batches, newest first",
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of batches', schema: pageOf(BatchSchema, 'BatchPage') } },
  }),
  route({
    method: 'GET',
    path: '/v1/batches/{id}',
    fn: 'batches',
    access: 'user',
    tag: 'Batches',
    summary: 'A batch with its progress, and a link to its results once done',
    params: BatchIdParamsSchema,
    responses: {
      200: { description: 'The batch', schema: BatchSchema },
      404: { description: 'Not yours or unknown' },
    },
  }),
  route({
    method: 'PUT',
    path: '/v1/account/limits',
    fn: 'account',
    access: 'user',
    tag: 'Credits',
    summary: 'Set the daily spend cap, the low-balance threshold and the webhook',
    body: LimitsBodySchema,
    responses: { 200: { description: 'The limits now in force', schema: LimitsResponseSchema } },
  }),
  route({
    method: 'GET',
    path: '/v1/usage',
    fn: 'reports',
    access: 'user',
    tag: 'Reports',
    summary: "The caller's predictions, failures and credits per day or per model (JSON or CSV)",
    query: UsageQuerySchema,
    responses: {
      200: { description: 'The usage report', schema: UsageReportSchema, alsoAs: ['text/csv'] },
    },
  }),
  route({
    method: 'GET',
    path: '/v1/admin/stats',
    fn: 'reports',
    access: 'admin',
    tag: 'Admin',
    summary: 'Service statistics: users, predictions, credits, per model and per day, top users, latency',
    query: StatsQuerySchema,
    responses: { 200: { description: 'The statistics', schema: AdminStatsSchema } },
  }),
  route({
    method: 'GET',
    path: '/v1/admin/audit',
    fn: 'reports',
    access: 'admin',
    tag: 'Admin',
    summary: 'The audit trail of admin actions (grants, refunds, model changes), newest first',
    query: PageQuerySchema,
    responses: {
      200: { description: 'A page of audit entries', schema: pageOf(AuditEntrySchema, 'AuditPage') },
    },
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
