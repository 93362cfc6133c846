/**
 * Builds the Lambda handler of one API area: a middy chain that parses JSON bodies, dispatches on
 * API Gateway's route key to one thin route handler, and turns every error into problem+json.
 * The route table is the contract: before a handler runs, its caller is authenticated and the
 * request's path, query, body and headers are parsed with the route's schemas (a mismatch is a 400
 * naming each field); what the handler answers is type-checked against the route's responses.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import type { HttpFunctionName } from '../api/functions.ts';
import {
  DEFAULT_ROUTE_KEY,
  type Route,
  type RouteDefinition,
  type RouteKeyOf,
  routeKey,
  routes,
} from '../api/routes.ts';
import { config } from '../config.ts';
import { AppError, ForbiddenError, NotFoundError, ValidationError } from '../domain/errors.ts';
import type { Principal } from '../domain/users.ts';
import { logger } from '../observability/logger.ts';
import { RequestBodyTooLargeError, UnsupportedMediaTypeError } from './errors.ts';
import { internalError, isProblemCode, problem } from './problems.ts';
import type { HttpResult, JsonResult, MediaResult, StatusResult } from './responses.ts';
import { parseRequest } from './validation.ts';

export type HttpEvent = APIGatewayProxyEventV2 & { parsedBody?: unknown };

type RawValues = Record<string, string | undefined>;
type RoutesByKey = { [R in Route as `${R['method']} ${R['path']}`]: R };
type Parsed<R, Part extends 'params' | 'query' | 'headers' | 'body', Otherwise> = R extends {
  [P in Part]: infer S extends z.ZodType;
}
  ? z.output<S>
  : Otherwise;

/** What a route's handler gets: each part of the request parsed by the route's own schemas. */
export interface RouteInput<R extends Route> {
  /** Path parameters; as sent when the route declares no schema for them. */
  params: Parsed<R, 'params', RawValues>;
  /** Query parameters; as sent when the route declares no schema for them. */
  query: Parsed<R, 'query', RawValues>;
  /** The declared headers (names in lower case); all of them when the route declares none. */
  headers: Parsed<R, 'headers', RawValues>;
  /** The parsed JSON body; `unknown` for a route that declares none. */
  body: Parsed<R, 'body', unknown>;
  /** The authenticated caller, for every route whose access is not `public`. */
  principal: R['access'] extends 'public' ? undefined : Principal;
  requestId: string;
  event: HttpEvent;
}

type SuccessStatus = 200 | 201 | 202 | 204;

/** The answer a declared response allows: JSON of its schema, its media type, or any body. */
type ResultFor<S extends number, Spec> =
  | (Spec extends { schema: infer Z extends z.ZodType }
      ? Spec extends { contentType: infer M extends string }
        ? MediaResult<S, M>
        : JsonResult<S, z.input<Z>>
      : Spec extends { contentType: infer M extends string }
        ? MediaResult<S, M>
        : StatusResult<S>)
  | (Spec extends { alsoAs: readonly (infer M extends string)[] } ? MediaResult<S, M> : never);

/** A route's successful answers, as its `responses` declare them. */
export type RouteResult<R extends Route> = {
  [S in keyof R['responses'] & SuccessStatus]: ResultFor<S, R['responses'][S]>;
}[keyof R['responses'] & SuccessStatus];

type RouteFor<K extends string> = K extends keyof RoutesByKey ? RoutesByKey[K] : never;

export type RouteHandler<K extends string> = (
  input: RouteInput<RouteFor<K>>,
) => Promise<RouteResult<RouteFor<K>>>;

/**
 * Tells who sent a request from its Authorization header, or throws UnauthorizedError. Handed in by
 * each function (the HTTP layer knows nothing of how users are stored).
 */
export type Authenticate = (authorization: string | undefined) => Promise<Principal>;

type ProtectedRouteOf<F extends HttpFunctionName> = Extract<Route, { fn: F; access: 'user' | 'admin' }>;

export interface HttpFunctionOptions {
  authenticate?: Authenticate;
  /** Written as EMF after each invocation, when the routes recorded any. */
  metrics?: Metrics;
}

/** A function with routes for users or admins must be given `authenticate`. */
type OptionsOf<F extends HttpFunctionName> = [ProtectedRouteOf<F>] extends [never]
  ? [options?: HttpFunctionOptions]
  : [options: HttpFunctionOptions & { authenticate: Authenticate }];

/** The catch-all gets the raw event: it answers what no route matched. */
export type DefaultRouteHandler = (input: { event: HttpEvent; requestId: string }) => Promise<HttpResult>;

export type RouteHandlers<F extends HttpFunctionName> = { [K in RouteKeyOf<F>]: RouteHandler<K> } & {
  [DEFAULT_ROUTE_KEY]?: DefaultRouteHandler;
};

const jsonMime = /^application\/([\w.+-]+\+)?json\s*(;.*)?$/i;
const methodsWithBody = new Set(['POST', 'PUT', 'PATCH']);

function requestIdOf(event: APIGatewayProxyEventV2): string {
  return event.requestContext?.requestId ?? 'unknown';
}

/** Parses a JSON body once, before any route handler runs, with a precise problem for each failure. */
export function jsonBodyParser(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: ({ event }) => {
      const unrouted = event.routeKey === DEFAULT_ROUTE_KEY;
      if (
        unrouted ||
        !methodsWithBody.has(event.requestContext.http.method) ||
        event.body === undefined ||
        event.body === ''
      ) {
        return;
      }
      const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
      const maxBytes = config().maxBodyBytes;
      if (Buffer.byteLength(raw, 'utf8') > maxBytes) {
        throw new RequestBodyTooLargeError(maxBytes);
      }
      const contentType = event.headers?.['content-type'];
      if (!contentType || !jsonMime.test(contentType)) {
        throw new UnsupportedMediaTypeError(
          `Send the body as JSON with Content-Type: application/json (got ${contentType ?? 'no Content-Type'}).`,
        );
      }
      try {
        event.parsedBody = JSON.parse(raw);
      } catch (error) {
        throw new ValidationError(`The request body is not valid JSON: ${(error as Error).message}.`, [
          { path: '/', message: 'must be a valid JSON document' },
        ]);
      }
    },
  };
}

/** Every answer carries its request id and is never cached by intermediaries unless it says so. */
function standardHeaders(): MiddlewareObj<HttpEvent, HttpResult> {
  const decorate = (response: HttpResult | undefined, event: HttpEvent) => {
    if (!response) return;
    response.headers = {
      'X-Request-Id': requestIdOf(event),
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
      ...response.headers,
    };
  };
  return {
    after: (request) => decorate(request.response ?? undefined, request.event),
    onError: (request) => decorate(request.response ?? undefined, request.event),
  };
}

/** Maps the error hierarchy to problem+json (shared/http/problems.ts); anything else is logged and becomes a bare 500. */
function problemDetails(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: (request) => {
      const { error, event } = request;
      const requestId = requestIdOf(event);
      if (error instanceof AppError && isProblemCode(error.code)) {
        const response = problem(error, requestId);
        if (response.statusCode >= 500) logger.error('request failed', { error });
        else logger.info('request refused', { code: error.code, status: response.statusCode });
        request.response = response;
        return;
      }
      logger.error('unexpected error', { error: error as Error });
      request.response = internalError(requestId);
    },
  };
}

/** Writes the invocation's metrics as EMF log lines, when the route recorded any (no empty warnings). */
function flushMetrics(metrics: Metrics): MiddlewareObj<HttpEvent, HttpResult> {
  const flush = () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: flush, onError: flush };
}

function requestContext(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: ({ event }) => {
      logger.appendKeys({ requestId: requestIdOf(event), routeKey: event.routeKey });
    },
  };
}

/** Validates each part of a request the route declares a schema for, in the order clients fix them. */
function parseInput(route: RouteDefinition, event: HttpEvent) {
  const params = event.pathParameters ?? {};
  const query = event.queryStringParameters ?? {};
  const headers = event.headers ?? {};
  return {
    params: route.params ? parseRequest(route.params, params, 'path') : params,
    query: route.query ? parseRequest(route.query, query, 'query') : query,
    body: route.body ? parseRequest(route.body, event.parsedBody, 'body') : event.parsedBody,
    headers: route.headers ? parseRequest(route.headers, headers, 'header') : headers,
  };
}

export function httpFunction<F extends HttpFunctionName>(
  fn: F,
  handlers: RouteHandlers<F>,
  ...[options = {}]: OptionsOf<F>
) {
  const { authenticate, metrics } = options as HttpFunctionOptions;
  type AnyHandler = (input: unknown) => Promise<HttpResult>;
  const table = handlers as unknown as Record<string, AnyHandler | undefined>;
  const own = new Map<string, RouteDefinition>(
    (routes as readonly RouteDefinition[]).filter((r) => r.fn === fn).map((r) => [routeKey(r), r]),
  );
  const missing = [...own.keys()].filter((key) => !table[key]);
  if (missing.length > 0) throw new Error(`Function ${fn} has no handler for ${missing.join(', ')}`);
  if (!authenticate && [...own.values()].some((r) => r.access !== 'public')) {
    throw new Error(`Function ${fn} has routes for signed-in callers but no authenticate`);
  }

  const dispatch = async (event: HttpEvent, _context: Context): Promise<HttpResult> => {
    const requestId = requestIdOf(event);
    const route = own.get(event.routeKey);
    const handle = route ? table[event.routeKey] : table[DEFAULT_ROUTE_KEY];
    if (!handle) {
      throw new NotFoundError(`No route matches ${event.requestContext.http.method} ${event.rawPath}.`);
    }
    if (!route) return handle({ event, requestId });
    let principal: Principal | undefined;
    if (route.access !== 'public') {
      if (!authenticate) throw new Error(`Function ${fn} cannot authenticate`); // refused at construction
      principal = await authenticate(event.headers?.authorization);
      logger.appendKeys({ userId: principal.userId });
      if (route.access === 'admin' && principal.role !== 'admin') {
        throw new ForbiddenError('Only admins may do this.');
      }
    }
    return handle({ ...parseInput(route, event), principal, requestId, event });
  };

  const chain = middy<HttpEvent, HttpResult>().use(injectLambdaContext(logger, { resetKeys: true }));
  if (metrics) chain.use(flushMetrics(metrics));
  return chain
    .use(requestContext())
    .use(standardHeaders())
    .use(problemDetails())
    .use(jsonBodyParser())
    .handler(dispatch);
}
