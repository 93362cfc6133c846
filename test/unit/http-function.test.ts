/**
 * The HTTP chain on its own, fed API Gateway events built by the local gateway and handed a fake
 * `authenticate`: the caller is known before anything else, each route's request is parsed by the
 * route table's schemas before its handler runs, and bad input never reaches a handler.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { toEvent } from '../../infra/local/gateway.ts';
import { UnauthorizedError } from '../../shared/domain/errors.ts';
import type { Principal } from '../../shared/domain/users.ts';
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

const callers: Record<string, Principal> = {
  'Bearer user-token': { userId: 'u1', role: 'user', via: 'access-token' },
  'Bearer admin-token': { userId: 'a1', role: 'admin', via: 'api-key' },
};

/** Knows two bearer tokens; counts its calls. */
function fakeAuthentication() {
  const calls: (string | undefined)[] = [];
  const authenticate = async (authorization: string | undefined) => {
    calls.push(authorization);
    const principal = authorization ? callers[authorization] : undefined;
    if (!principal) throw new UnauthorizedError();
    return principal;
  };
  return { authenticate, calls };
}

const asUser = { authorization: 'Bearer user-token' };
const asAdmin = { authorization: 'Bearer admin-token' };

/** The auth function with its routes recording what they were handed. */
function authFunction() {
  const seen: unknown[] = [];
  const { authenticate, calls } = fakeAuthentication();
  const handler = httpFunction(
    'auth',
    {
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
      'POST /v1/api-keys': async ({ body, principal }) => {
        seen.push({ body, principal });
        return json(201, {
          id: 'k1',
          name: body.name,
          prefix: 'cpk_x',
          createdAt: '2026-01-01T00:00:00Z',
          key: 'cpk_x',
        });
      },
      'GET /v1/api-keys': notCalled,
      'DELETE /v1/api-keys/{id}': async ({ params, principal }) => {
        seen.push({ params, principal });
        return noContent();
      },
    },
    { authenticate },
  );
  return { handler, seen, calls };
}

/** The account function (query, headers, an admin route) recording what its routes were handed. */
function accountFunction() {
  const seen: unknown[] = [];
  const { authenticate } = fakeAuthentication();
  const entry = {
    id: 'l1',
    kind: 'grant',
    amount: 5,
    balanceAfter: 5,
    createdAt: '2026-01-01T00:00:00Z',
  } as const;
  const handler = httpFunction(
    'account',
    {
      'GET /v1/account': notCalled,
      'PUT /v1/account/limits': notCalled,
      'POST /v1/account/top-ups': notCalled,
      'GET /v1/account/transactions': async ({ query }) => {
        seen.push({ query });
        return json(200, { items: [], nextCursor: null });
      },
      'POST /v1/admin/users/{userId}/grants': async ({ params, body, headers, principal }) => {
        seen.push({ params, body, headers, principal });
        return json(201, { transaction: entry, balance: 5 });
      },
    },
    { authenticate },
  );
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

  it('hands a signed-in route its caller and its path parameters', async () => {
    const { handler, seen } = authFunction();
    const answer = await call(handler, eventFor('DELETE', '/v1/api-keys/k-42', { headers: asUser }));
    expect(answer.statusCode).toBe(204);
    expect(seen).toEqual([{ params: { id: 'k-42' }, principal: callers[asUser.authorization] }]);
  });

  it('authenticates before it validates: no credential is a 401 whatever the body, and a public route asks nobody', async () => {
    const { handler, seen, calls } = authFunction();
    const anonymous = await call(handler, eventFor('POST', '/v1/api-keys', { body: { nope: true } }));
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['WWW-Authenticate']).toBe('Bearer');
    expect(anonymous.body).toMatchObject({ type: '/problems/unauthorized' });
    const invalid = await call(
      handler,
      eventFor('POST', '/v1/api-keys', { body: { nope: true }, headers: asUser }),
    );
    expect(invalid.statusCode).toBe(400);
    expect(invalid.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['/name', '/nope']);
    expect(seen).toEqual([]);
    const calledBefore = calls.length;
    await call(handler, eventFor('POST', '/v1/tokens/revoke', { body: { refreshToken: 'rt_x' } }));
    expect(calls.length).toBe(calledBefore);
  });

  it("parses the query with the route's schema: coerced, defaulted, and refused naming query.<field>", async () => {
    const { handler, seen } = accountFunction();
    expect(
      (await call(handler, eventFor('GET', '/v1/account/transactions', { headers: asUser }))).statusCode,
    ).toBe(200);
    await call(handler, eventFor('GET', '/v1/account/transactions?limit=5&kind=grant', { headers: asUser }));
    expect(seen).toEqual([{ query: { limit: 20 } }, { query: { limit: 5, kind: 'grant' } }]);
    const refused = await call(
      handler,
      eventFor('GET', '/v1/account/transactions?limit=0&color=red', { headers: asUser }),
    );
    expect(refused.statusCode).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'query.color',
      'query.limit',
    ]);
  });

  it('keeps admin routes to admins (403), and hands them path, body and declared headers parsed', async () => {
    const { handler, seen } = accountFunction();
    const grant = (headers: Record<string, string>) =>
      eventFor('POST', '/v1/admin/users/u9/grants', { body: { amount: 5, reason: ' welcome ' }, headers });
    const forbidden = await call(handler, grant(asUser));
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.body).toMatchObject({ type: '/problems/forbidden' });
    const granted = await call(handler, grant({ ...asAdmin, 'idempotency-key': 'k1' }));
    expect(granted.statusCode).toBe(201);
    expect(seen).toEqual([
      {
        params: { userId: 'u9' },
        body: { amount: 5, reason: 'welcome' },
        headers: { 'idempotency-key': 'k1' },
        principal: callers[asAdmin.authorization],
      },
    ]);
    const badKey = await call(handler, grant({ ...asAdmin, 'idempotency-key': 'k'.repeat(300) }));
    expect(badKey.statusCode).toBe(400);
    expect(badKey.body.errors).toEqual([{ path: 'header.idempotency-key', message: expect.any(String) }]);
  });

  it('refuses a function built without a handler for one of its routes', () => {
    expect(() =>
      httpFunction('public', {
        'GET /v1/health': async () => json(200, { status: 'ok' }),
      } as never),
    ).toThrow(/no handler for GET \/openapi.json/);
  });

  it('refuses a function with routes for signed-in callers but no authenticate', () => {
    expect(() =>
      httpFunction(
        'batches',
        { 'POST /v1/batches': notCalled, 'GET /v1/batches': notCalled, 'GET /v1/batches/{id}': notCalled },
        {} as never,
      ),
    ).toThrow(/no authenticate/);
  });
});
