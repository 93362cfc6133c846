/** The one mapping from the error hierarchy to RFC 9457 problem+json. */
import { describe, expect, it } from 'vitest';
import { ProblemSchema } from '../../shared/api/schemas.ts';
import {
  AppError,
  ConflictError,
  ForbiddenError,
  IdempotencyKeyReusedError,
  InsufficientCreditsError,
  ModelError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  SpendCapReachedError,
  UnauthorizedError,
  ValidationError,
} from '../../shared/domain/errors.ts';
import {
  MethodNotAllowedError,
  RequestBodyTooLargeError,
  UnsupportedMediaTypeError,
} from '../../shared/http/errors.ts';
import { internalError, problem, problemOf, problemTypes } from '../../shared/http/problems.ts';

describe('domain errors', () => {
  it('carry a code, a name, a cause and their facts, and nothing of HTTP', () => {
    const cause = new Error('the store said no');
    const error = new InsufficientCreditsError(3, 10);
    const withCause = new ConflictError('taken', { cause });
    expect(error).toBeInstanceOf(AppError);
    expect({ name: error.name, code: error.code, balance: error.balance, cost: error.cost }).toEqual({
      name: 'InsufficientCreditsError',
      code: 'insufficient-credits',
      balance: 3,
      cost: 10,
    });
    expect(withCause.cause).toBe(cause);
    for (const field of ['status', 'headers', 'extensions']) expect(error).not.toHaveProperty(field);
  });
});

describe('the problem of an error', () => {
  const cases: [AppError<string>, number, Record<string, string>, Record<string, unknown>][] = [
    [
      new ValidationError('bad', [{ path: '/email', message: 'no' }]),
      400,
      {},
      { errors: [{ path: '/email', message: 'no' }] },
    ],
    [new UnauthorizedError(), 401, { 'WWW-Authenticate': 'Bearer' }, {}],
    [new ForbiddenError(), 403, {}, {}],
    [new NotFoundError(), 404, {}, {}],
    [new MethodNotAllowedError('DELETE', '/v1/health', ['GET', 'HEAD']), 405, { Allow: 'GET, HEAD' }, {}],
    [new ConflictError('taken'), 409, {}, {}],
    [new IdempotencyKeyReusedError(), 409, {}, {}],
    [new InsufficientCreditsError(3, 10), 402, {}, { balance: 3, cost: 10 }],
    [new SpendCapReachedError(100, 95, 10), 402, {}, { cap: 100, spentToday: 95, cost: 10 }],
    [new RateLimitedError('slow down', 1.2), 429, { 'Retry-After': '2' }, { retryAfter: 2 }],
    [new ModelError('failed', { details: { predictionId: 'p1' } }), 422, {}, { predictionId: 'p1' }],
    [new PayloadTooLargeError('too big', 100), 413, {}, { limit: 100 }],
    [new RequestBodyTooLargeError(1024), 413, {}, {}],
    [new UnsupportedMediaTypeError(), 415, {}, {}],
  ];

  it.each(cases)(
    '%s: its status, type, title, headers and extension members',
    (error, status, headers, members) => {
      const result = problem(error, 'req-1');
      expect(result.statusCode).toBe(status);
      expect(result.headers).toEqual({ 'Content-Type': 'application/problem+json', ...headers });
      const body = JSON.parse(result.body ?? '');
      expect(body).toEqual({
        type: `/problems/${error.code}`,
        title: problemTypes[error.code as keyof typeof problemTypes].title,
        status,
        detail: error.message,
        ...members,
        requestId: 'req-1',
      });
      expect(ProblemSchema.safeParse(body).success).toBe(true);
    },
  );

  it('gives every code a status and a title, and an unknown code nothing but a bare 500', () => {
    for (const [code, type] of Object.entries(problemTypes)) {
      expect(type.title.length, code).toBeGreaterThan(0);
      expect(type.status, code).toBeGreaterThanOrEqual(400);
    }
    const stray = problemOf(new AppError('made-up' as never, 'internal detail'), 'req-2');
    expect(stray).toEqual(problemOf(new AppError('made-up' as never, 'something else'), 'req-2'));
    expect(stray.status).toBe(500);
    expect(JSON.stringify(stray.body)).not.toContain('internal detail');
    expect(JSON.parse(internalError('req-2').body ?? '')).toEqual(stray.body);
  });
});
