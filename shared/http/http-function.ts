/**
 * Builds the Lambda handler of one API area: a middy chain that parses JSON bodies, dispatches on
 * API Gateway's route key to one thin route handler, and turns every error into problem+json.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { HttpFunctionName } from '../api/functions.ts';
import { type Access, DEFAULT_ROUTE_KEY, type RouteKeyOf, routes } from '../api/routes.ts';
import { services } from '../app/services.ts';
import { config } from '../config.ts';
import {
  AppError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../domain/errors.ts';
import type { Principal } from '../domain/users.ts';
import { logger } from '../observability/logger.ts';
import { type HttpResult, internalError, problem } from './responses.ts';

export type HttpEvent = APIGatewayProxyEventV2 & { parsedBody?: unknown };

export interface HttpRequest {
  event: HttpEvent;
  routeKey: string;
  requestId: string;
  /** Header names are lower case, as API Gateway delivers them. */
  headers: Record<string, string | undefined>;
  params: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  /** The parsed JSON body; `undefined` when the request had none. */
  body: unknown;
  /** The authenticated caller; set for every route whose access is not `public`. */
  principal: Principal | undefined;
}

/** The caller of a route that requires authentication (the chain has verified it already). */
export function principalOf(request: HttpRequest): Principal {
  if (!request.principal) throw new UnauthorizedError();
  return request.principal;
}

export type RouteHandler = (request: HttpRequest) => Promise<HttpResult>;

export type RouteHandlers<F extends HttpFunctionName> = { [K in RouteKeyOf<F>]: RouteHandler } & {
  [DEFAULT_ROUTE_KEY]?: RouteHandler;
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
        throw new PayloadTooLargeError(`The request body is larger than the limit of ${maxBytes} bytes.`);
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

/** Maps the error hierarchy to problem+json; anything else is logged and becomes a bare 500. */
function problemDetails(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: (request) => {
      const { error, event } = request;
      const requestId = requestIdOf(event);
      if (error instanceof AppError) {
        if (error.status >= 500) logger.error('request failed', { error });
        else logger.info('request refused', { code: error.code, status: error.status });
        request.response = problem(error, requestId);
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

export function httpFunction<F extends HttpFunctionName>(
  fn: F,
  handlers: RouteHandlers<F>,
  options: { metrics?: Metrics } = {},
) {
  const table = handlers as Record<string, RouteHandler | undefined>;
  const expected = routes.filter((r) => r.fn === fn).map((r) => `${r.method} ${r.path}`);
  const missing = expected.filter((key) => !table[key]);
  if (missing.length > 0) throw new Error(`Function ${fn} has no handler for ${missing.join(', ')}`);

  const access = new Map<string, Access>(
    routes.filter((r) => r.fn === fn).map((r) => [`${r.method} ${r.path}`, r.access]),
  );

  const dispatch = async (event: HttpEvent, _context: Context): Promise<HttpResult> => {
    const handle = table[event.routeKey] ?? table[DEFAULT_ROUTE_KEY];
    if (!handle) {
      throw new NotFoundError(`No route matches ${event.requestContext.http.method} ${event.rawPath}.`);
    }
    const required = access.get(event.routeKey) ?? 'public';
    let principal: Principal | undefined;
    if (required !== 'public') {
      principal = await services().users.authenticate(event.headers?.authorization);
      logger.appendKeys({ userId: principal.userId });
      if (required === 'admin' && principal.role !== 'admin') {
        throw new ForbiddenError('Only admins may do this.');
      }
    }
    return handle({
      event,
      routeKey: event.routeKey,
      requestId: requestIdOf(event),
      headers: event.headers ?? {},
      params: event.pathParameters ?? {},
      query: event.queryStringParameters ?? {},
      body: event.parsedBody,
      principal,
    });
  };

  const chain = middy<HttpEvent, HttpResult>().use(injectLambdaContext(logger, { resetKeys: true }));
  if (options.metrics) chain.use(flushMetrics(options.metrics));
  return chain
    .use(requestContext())
    .use(standardHeaders())
    .use(problemDetails())
    .use(jsonBodyParser())
    .handler(dispatch);
}
