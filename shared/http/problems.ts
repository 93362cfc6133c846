/**
 * What each error code means over HTTP: its status, its problem type and title, and the headers that
 * go with it. The domain's errors carry a code and structured fields only; this is the one place
 * that turns them into RFC 9457 problem+json.
 */
import {
  type AppError,
  type ErrorCode,
  type FieldError,
  RateLimitedError,
  UnauthorizedError,
} from '../domain/errors.ts';
import { type HttpErrorCode, MethodNotAllowedError } from './errors.ts';
import type { HttpResult } from './responses.ts';

export type ProblemCode = ErrorCode | HttpErrorCode | 'internal-error';

interface ProblemType {
  status: number;
  title: string;
}

/** Every code has its problem type: a new code does not compile until it is given one here. */
export const problemTypes: Readonly<Record<ProblemCode, ProblemType>> = {
  'validation-failed': { status: 400, title: 'Your request is not valid' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'You are not allowed to do this' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  'idempotency-key-reused': { status: 409, title: 'Idempotency key reused with a different request' },
  'insufficient-credits': { status: 402, title: 'Insufficient credits' },
  'spend-cap-reached': { status: 402, title: 'Daily spend cap reached' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'model-error': { status: 422, title: 'The model failed to produce a prediction' },
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'internal-error': { status: 500, title: 'Internal server error' },
};

export function isProblemCode(code: string): code is ProblemCode {
  return Object.hasOwn(problemTypes, code);
}

export function problemTypeUri(code: ProblemCode): string {
  return `/problems/${code}`;
}

/** Headers that go with a problem: RFC 9110's challenge for a 401, Allow for a 405, Retry-After for a 429. */
function headersOf(error: AppError<string>): Record<string, string> {
  if (error instanceof UnauthorizedError) return { 'WWW-Authenticate': 'Bearer' };
  if (error instanceof MethodNotAllowedError) return { Allow: error.allowed.join(', ') };
  if (error instanceof RateLimitedError) return { 'Retry-After': String(error.retryAfterSeconds) };
  return {};
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  requestId?: string;
  /** Extension members: the facts of the error (a balance and a cost, a limit, ...). */
  [extension: string]: unknown;
}

/** The problem an error of the hierarchy answers with; an unknown code is an internal error. */
export function problemOf(
  error: AppError<string>,
  requestId?: string,
): { status: number; headers: Record<string, string>; body: ProblemDocument } {
  if (!isProblemCode(error.code)) return internalProblem(requestId);
  const { status, title } = problemTypes[error.code];
  return {
    status,
    headers: headersOf(error),
    body: {
      type: problemTypeUri(error.code),
      title,
      status,
      detail: error.message,
      ...(error.errors ? { errors: error.errors } : {}),
      ...error.details,
      ...(requestId ? { requestId } : {}),
    },
  };
}

/** What a client sees for anything unexpected: no message, no stack, just the id to quote. */
function internalProblem(requestId: string | undefined) {
  const { status, title } = problemTypes['internal-error'];
  return {
    status,
    headers: {},
    body: {
      type: problemTypeUri('internal-error'),
      title,
      status,
      detail: 'Something went wrong on our side. Quote the request id if you contact support.',
      ...(requestId ? { requestId } : {}),
    },
  };
}

function asResult({ status, headers, body }: ReturnType<typeof problemOf>): HttpResult {
  return {
    statusCode: status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
    body: JSON.stringify(body),
  };
}

/** The RFC 9457 problem+json answer for an error of the hierarchy. */
export function problem(error: AppError<string>, requestId: string | undefined): HttpResult {
  return asResult(problemOf(error, requestId));
}

/** The bare 500 for anything that is not an error of the hierarchy. */
export function internalError(requestId: string | undefined): HttpResult {
  return asResult(internalProblem(requestId));
}
