/**
 * The local stand-in for API Gateway's HTTP API: turns each HTTP request into a payload-2.0 event,
 * invokes the function that owns the route through the local Lambda runtime (a container of its
 * own, see lambda-runtime.ts), and writes the function's answer back as API Gateway would (status,
 * headers, cookies, base64 bodies; a bare 500 when the function throws, times out or crashes).
 * Until the stack says it is ready (the admin and the demo models exist), API routes answer 503.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DEFAULT_ROUTE_FUNCTION, DEFAULT_ROUTE_KEY, matchRoute } from '../../shared/api/routes.ts';
import type { LambdaRuntime } from './lambda-runtime.ts';

/** API Gateway's own payload limit; larger requests never reach a function. */
const API_GATEWAY_MAX_PAYLOAD = 10 * 1024 * 1024;
const textual = /^(text\/|application\/([\w.+-]+\+)?(json|xml|javascript|x-www-form-urlencoded))/i;

export interface GatewayOptions {
  port: number;
  runtime: LambdaRuntime;
  corsOrigins: string[];
  /** Called once per request with a one-line summary. */
  onRequest?: (line: string) => void;
  /** Serves paths that are not API routes (the web UI); returns false to fall through. */
  staticFiles?: (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;
}

export interface Gateway {
  url: string;
  /** From now on API routes reach the functions (until then they answer 503 "starting"). */
  markReady(): void;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > API_GATEWAY_MAX_PAYLOAD) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function toEvent(request: IncomingMessage, body: Buffer, host: string): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://local');
  const method = (request.method ?? 'GET').toUpperCase();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name === 'cookie') continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const cookies = request.headers.cookie
    ?.split(';')
    .map((c) => c.trim())
    .filter(Boolean);
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = name in query ? `${query[name]},${value}` : value;
  const { match } = matchRoute(method, url.pathname);
  const routeKey = match ? `${match.route.method} ${match.route.path}` : DEFAULT_ROUTE_KEY;
  const isText = textual.test(headers['content-type'] ?? 'text/plain');
  const now = new Date();
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(match && Object.keys(match.pathParameters).length ? { pathParameters: match.pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0 && !isText,
  };
}

/** Interprets a function's answer the way API Gateway does for payload format 2.0. */
export function fromResult(result: unknown): {
  statusCode: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
} {
  if (result === undefined || result === null)
    return { statusCode: 200, headers: {}, cookies: [], body: Buffer.alloc(0) };
  const structured = result as APIGatewayProxyStructuredResultV2;
  if (typeof result !== 'object' || structured.statusCode === undefined) {
    const body = typeof result === 'string' ? result : JSON.stringify(result);
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      cookies: [],
      body: Buffer.from(body),
    };
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(structured.headers ?? {})) headers[name] = String(value);
  const raw = structured.body ?? '';
  return {
    statusCode: structured.statusCode,
    headers,
    cookies: structured.cookies ?? [],
    body: structured.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8'),
  };
}

function corsHeaders(origin: string | undefined, allowed: string[]): Record<string, string> {
  if (!origin || !(allowed.includes(origin) || allowed.includes('*'))) return {};
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': 'x-request-id, retry-after, location',
    vary: 'origin',
  };
}

function sendPlain(response: ServerResponse, status: number, message: string) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ message }));
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  let ready = false;
  const server: Server = createServer(async (request, response) => {
    const started = performance.now();
    const origin = request.headers.origin;
    response.on('finish', () => {
      const ms = (performance.now() - started).toFixed(1);
      options.onRequest?.(`${request.method} ${request.url} ${response.statusCode} ${ms}ms`);
    });
    try {
      if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
        // API Gateway answers CORS preflights itself when CORS is configured.
        response.writeHead(204, {
          ...corsHeaders(origin, options.corsOrigins),
          'access-control-allow-methods': 'GET,POST,PUT,PATCH,DELETE',
          'access-control-allow-headers': 'authorization,content-type,idempotency-key',
          'access-control-max-age': '600',
        });
        response.end();
        return;
      }
      const pathname = new URL(request.url ?? '/', 'http://local').pathname;
      const isApi =
        pathname.startsWith('/v1/') ||
        pathname === '/v1' ||
        pathname.startsWith('/docs') ||
        pathname === '/openapi.json' ||
        pathname.startsWith('/.well-known/');
      if (!isApi && options.staticFiles && (await options.staticFiles(request, response))) return;

      if (!ready) {
        response.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
        response.end(
          JSON.stringify({
            type: '/problems/starting',
            title: 'Starting',
            status: 503,
            detail: 'The local stack is still starting (creating the admin and the demo models).',
          }),
        );
        return;
      }
      const body = await readBody(request);
      if (body === 'too-large') {
        sendPlain(response, 413, 'Request Entity Too Large');
        return;
      }
      const event = toEvent(request, body, request.headers.host ?? 'localhost');
      const { match } = matchRoute(event.requestContext.http.method, event.rawPath);
      const fnName = match?.route.fn ?? DEFAULT_ROUTE_FUNCTION;
      const invocation = await options.runtime.invoke(fnName, event);
      if (invocation.status !== 'ok') {
        // A function that threw, timed out or crashed is API Gateway's bare 500.
        sendPlain(response, 500, 'Internal Server Error');
        return;
      }
      const answer = fromResult(invocation.result);
      const headers: Record<string, string | string[]> = {
        ...answer.headers,
        ...corsHeaders(origin, options.corsOrigins),
      };
      if (answer.cookies.length) headers['set-cookie'] = answer.cookies;
      headers['content-length'] = String(answer.body.length);
      response.writeHead(answer.statusCode, headers);
      response.end(answer.body);
    } catch (error) {
      if (!response.headersSent) sendPlain(response, 500, 'Internal Server Error');
      else response.destroy(error as Error);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    markReady() {
      ready = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
