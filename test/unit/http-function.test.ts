/**
 * The HTTP chain on its own, fed API Gateway events built by the local gateway: each route's
 * request is parsed by the route table's schemas before its handler runs, and bad input never
 * reaches a handler.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { toEvent } from '../../infra/local/gateway.ts';
import { httpFunction } from '../../shared/http/http-function.ts';
import { json, noContent } from '../../shared/http/responses.ts';

function eventFor(
  method: string,
  url: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): APIGatewayProxyEventV2 {
  const raw = options.body === undefined ? '' : JSON.stringify(options.body);
  const message = Readable.from([]) as unknown as IncomingMessage;
  Object.assign(message, {
    method,
    url,
    headers: { ...(raw ? { 'content-type': 'application/json' } : {}), ...options.headers },
    httpVersion: '1.1',
    socket: { remoteAddress: '127.0.0.9' },
  });
  return toEvent(message, Buffer.from(raw), 'localhost');
}

const context = {
  functionName: 'unit',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:unit',
  memoryLimitInMB: '128',
  awsRequestId: 'unit-request',
  getRemainingTimeInMillis: () => 10_000,
} as Context;

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: any;
}

async function call(
  handler: (event: any, context: Context) => Promise<unknown>,
  event: APIGatewayProxyEventV2,
) {
  const result = (await handler(event, context)) as { statusCode: number; headers: any; body?: string };
  return { ...result, body: result.body ? JSON.parse(result.body) : undefined } as Answer;
}

const notCalled = async (): Promise<never> => {
  throw new Error('this handler must not run');
};

/** The auth function with its public routes recording what they were handed. */
function authFunction() {
  const seen: unknown[] = [];
  const handler = httpFunction('auth', {
    'GET /.well-known/jwks.json': notCalled,
    'POST /v1/users': notCalled,
    'POST /v1/tokens': async ({ body, principal }) => {
      seen.push({ body, principal });
      return json(200, { accessToken: 'a', tokenType: 'Bearer', expiresIn: 60, refreshToken: 'r' });
    },
    'POST /v1/tokens/revoke': async ({ body }) => {
      seen.push({ body });
      return noContent();
    },
    'GET /v1/users/me': notCalled,
    'POST /v1/api-keys': notCalled,
    'GET /v1/api-keys': notCalled,
    'DELETE /v1/api-keys/{id}': notCalled,
  });
  return { handler, seen };
}

describe('a route that validates itself', () => {
  it("hands its handler the body as the route's schema parsed it, for either variant of a union", async () => {
    const { handler, seen } = authFunction();
    const signIn = await call(
      handler,
      eventFor('POST', '/v1/tokens', { body: { email: '  Someone@Example.COM ', password: 'pw' } }),
    );
    expect(signIn.statusCode).toBe(200);
    const refresh = await call(handler, eventFor('POST', '/v1/tokens', { body: { refreshToken: 'rt_x' } }));
    expect(refresh.statusCode).toBe(200);
    expect(seen).toEqual([
      { body: { email: 'someone@example.com', password: 'pw' }, principal: undefined },
      { body: { refreshToken: 'rt_x' }, principal: undefined },
    ]);
  });

  it('answers a body that fits no variant with the field errors of the variant the client meant', async () => {
    const { handler, seen } = authFunction();
    const cases: [unknown, string[]][] = [
      [{}, ['/email', '/password']],
      [{ email: 'someone@example.com' }, ['/password']],
      [{ email: 'someone@example.com', password: 'pw', role: 'admin' }, ['/role']],
      [{ refreshToken: '' }, ['/refreshToken']],
      [{ refreshToken: 5, email: 'someone@example.com' }, ['/refreshToken', '/email']],
    ];
    for (const [body, paths] of cases) {
      const answer = await call(handler, eventFor('POST', '/v1/tokens', { body }));
      expect(answer.statusCode, JSON.stringify(body)).toBe(400);
      expect(answer.headers['Content-Type']).toBe('application/problem+json');
      expect(answer.body).toMatchObject({ type: '/problems/validation-failed', status: 400 });
      expect(answer.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([...paths].sort());
    }
    expect(seen).toEqual([]);
  });

  it('refuses a missing body of a route that declares one before its handler runs', async () => {
    const { handler, seen } = authFunction();
    const answer = await call(handler, eventFor('POST', '/v1/tokens/revoke'));
    expect(answer.statusCode).toBe(400);
    expect(answer.body.detail).toMatch(/body/);
    expect(seen).toEqual([]);
  });

  it('refuses a function built without a handler for one of its routes', () => {
    expect(() =>
      httpFunction('public', {
        'GET /v1/health': async () => json(200, { status: 'ok' }),
      } as never),
    ).toThrow(/no handler for GET \/openapi.json/);
  });
});
