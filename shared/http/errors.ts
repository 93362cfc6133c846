/**
 * Errors of the HTTP layer itself: a method a path does not have, a body that is not JSON or is too
 * large to read. They belong to the one hierarchy (AppError: `name`, `cause`, a stable `code`) and
 * are mapped to problem+json like any other (shared/http/problems.ts).
 */
import { AppError } from '../domain/errors.ts';

/** Codes only the HTTP layer raises. */
export type HttpErrorCode = 'method-not-allowed' | 'unsupported-media-type';

export class MethodNotAllowedError extends AppError<'method-not-allowed'> {
  constructor(
    method: string,
    path: string,
    readonly allowed: string[],
  ) {
    super('method-not-allowed', `${method} is not supported on ${path}.`);
  }
}

export class UnsupportedMediaTypeError extends AppError<'unsupported-media-type'> {
  constructor(message = 'Send the request body as JSON with Content-Type: application/json.') {
    super('unsupported-media-type', message);
  }
}

/** A request body over the size the chain reads (MAX_BODY_BYTES). */
export class RequestBodyTooLargeError extends AppError<'payload-too-large'> {
  constructor(readonly limit: number) {
    super('payload-too-large', `The request body is larger than the limit of ${limit} bytes.`);
  }
}
