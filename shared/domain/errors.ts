/**
 * The one error hierarchy of the service. Every error a client may see is an `AppError` with a stable
 * `code` (the slug of its problem type), an HTTP status and a message a person can act on. The HTTP
 * layer turns them into RFC 9457 problem+json in one place; anything else becomes a bare 500.
 */

import type { TransactionPartTag } from './transactions.ts';

export interface FieldError {
  /** JSON pointer-ish path of the offending field, e.g. `/inputs/input/0` or `query.limit`. */
  path: string;
  message: string;
}

export type ProblemCode =
  | 'validation-failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'method-not-allowed'
  | 'conflict'
  | 'idempotency-key-reused'
  | 'insufficient-credits'
  | 'spend-cap-reached'
  | 'rate-limited'
  | 'model-error'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'internal-error';

export const problemTitles: Record<ProblemCode, string> = {
  'validation-failed': 'Your request is not valid',
  unauthorized: 'Authentication is required',
  forbidden: 'You are not allowed to do this',
  'not-found': 'Not found',
  'method-not-allowed': 'Method not allowed',
  conflict: 'Conflict',
  'idempotency-key-reused': 'Idempotency key reused with a different request',
  'insufficient-credits': 'Insufficient credits',
  'spend-cap-reached': 'Daily spend cap reached',
  'rate-limited': 'Too many requests',
  'model-error': 'The model failed to produce a prediction',
  'payload-too-large': 'Payload too large',
  'unsupported-media-type': 'Unsupported media type',
  'internal-error': 'Internal server error',
};

export interface AppErrorOptions {
  cause?: unknown;
  errors?: FieldError[];
  /** Extra members of the problem document (RFC 9457 extension members). */
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly errors: FieldError[] | undefined;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ProblemCode,
    readonly status: number,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.errors = options.errors;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export class ValidationError extends AppError {
  constructor(message: string, errors?: FieldError[], options: Omit<AppErrorOptions, 'errors'> = {}) {
    super('validation-failed', 400, message, { ...options, errors });
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'A valid access token or API key is required.', options: AppErrorOptions = {}) {
    super('unauthorized', 401, message, {
      ...options,
      headers: { 'WWW-Authenticate': 'Bearer', ...options.headers },
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'Your role does not allow this action.', options: AppErrorOptions = {}) {
    super('forbidden', 403, message, options);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'The requested resource does not exist.', options: AppErrorOptions = {}) {
    super('not-found', 404, message, options);
  }
}

export class MethodNotAllowedError extends AppError {
  constructor(method: string, path: string, allowed: string[]) {
    super('method-not-allowed', 405, `${method} is not supported on ${path}.`, {
      headers: { Allow: allowed.join(', ') },
    });
  }
}

export class ConflictError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('conflict', 409, message, options);
  }
}

export class IdempotencyKeyReusedError extends AppError {
  constructor() {
    super(
      'idempotency-key-reused',
      409,
      'This Idempotency-Key was already used with a different request. Use a new key for a new request.',
    );
  }
}

export class InsufficientCreditsError extends AppError {
  constructor(
    readonly balance: number,
    readonly cost: number,
  ) {
    super('insufficient-credits', 402, `This costs ${cost} credits but the balance is ${balance}.`, {
      extensions: { balance, cost },
    });
  }
}

export class SpendCapReachedError extends AppError {
  constructor(
    readonly cap: number,
    readonly spentToday: number,
    readonly cost: number,
  ) {
    super(
      'spend-cap-reached',
      402,
      `This costs ${cost} credits, which would pass your daily spend cap of ${cap} (${spentToday} spent today). Raise the cap with PUT /v1/account/limits or wait until tomorrow (UTC).`,
      { extensions: { cap, spentToday, cost } },
    );
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('payload-too-large', 413, message, options);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message = 'Send the request body as JSON with Content-Type: application/json.') {
    super('unsupported-media-type', 415, message);
  }
}

export class RateLimitedError extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('rate-limited', 429, message, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
      extensions: { retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)) },
    });
  }
}

export class ModelError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('model-error', 422, message, options);
  }
}

/** A misconfiguration found at cold start. Never shown to clients (it is not an AppError). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A part of a transaction whose condition failed and that names no domain error of its own, so
 * nothing was written. `tag` says which part it was.
 */
export class TransactionConditionFailedError extends Error {
  override name = 'TransactionConditionFailedError';
  constructor(
    readonly tag: TransactionPartTag,
    readonly item: Record<string, unknown> | undefined,
  ) {
    super(`The condition of the transaction's ${tag} part failed`);
  }
}

/**
 * A charge's price check failed: the model version it was priced with was repriced or retired
 * after this container looked it up, so nothing was charged.
 */
export class ModelPriceChangedError extends Error {
  override name = 'ModelPriceChangedError';
  constructor(
    readonly modelId: string,
    readonly price: number,
  ) {
    super(`Model ${modelId} is no longer active at price ${price}`);
  }
}

/** A refund of a prediction that was refunded already. */
export class PredictionAlreadyRefundedError extends ConflictError {
  constructor() {
    super('This prediction was already refunded.');
  }
}

/** Why a request cannot have what its idempotency id settled before. */
export type IdempotencyConflictReason =
  /** The id was settled by a request with another fingerprint. */
  | 'different-request'
  /** A balance change was asked for, but the id was settled without one (nothing was charged). */
  | 'settled-without-change'
  /** The response was too large to keep, so it cannot be given again. */
  | 'response-not-kept';

/** An idempotency id settled before cannot be replayed for this request: a conflict. */
export class IdempotencyConflictError extends ConflictError {
  constructor(
    readonly idempotencyId: string,
    readonly reason: IdempotencyConflictReason,
  ) {
    super(
      {
        'different-request': `The idempotency id ${idempotencyId} was already used for a different change.`,
        'settled-without-change': `The idempotency id ${idempotencyId} was already settled without a charge.`,
        'response-not-kept': 'This Idempotency-Key was already used, and its response was too large to keep.',
      }[reason],
    );
  }
}
