import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type AppError, problemTitles } from '../domain/errors.ts';

export type HttpResult = APIGatewayProxyStructuredResultV2 & { statusCode: number };

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

export function noContent(headers: Record<string, string> = {}): HttpResult {
  return { statusCode: 204, headers };
}

export function text(
  statusCode: number,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
) {
  return { statusCode, headers: { 'Content-Type': contentType, ...headers }, body } satisfies HttpResult;
}

export function problemType(code: string): string {
  return `/problems/${code}`;
}

/** The RFC 9457 problem document for an error of the hierarchy. */
export function problem(error: AppError, requestId: string | undefined): HttpResult {
  return {
    statusCode: error.status,
    headers: { 'Content-Type': 'application/problem+json', ...error.headers },
    body: JSON.stringify({
      type: problemType(error.code),
      title: problemTitles[error.code],
      status: error.status,
      detail: error.message,
      ...(error.errors ? { errors: error.errors } : {}),
      ...error.extensions,
      ...(requestId ? { requestId } : {}),
    }),
  };
}

/** What a client sees for anything unexpected: no message, no stack, just the id to quote. */
export function internalError(requestId: string | undefined): HttpResult {
  return {
    statusCode: 500,
    headers: { 'Content-Type': 'application/problem+json' },
    body: JSON.stringify({
      type: problemType('internal-error'),
      title: problemTitles['internal-error'],
      status: 500,
      detail: 'Something went wrong on our side. Quote the request id if you contact support.',
      ...(requestId ? { requestId } : {}),
    }),
  };
}
