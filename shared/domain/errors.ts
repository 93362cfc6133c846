/**
 * The one error hierarchy of the service. Every error a client may see is an `AppError` with a stable
 * `code` (the slug of its problem type), a message a person can act on, and the structured fields of
 * its kind: the offending fields, a balance and a cost, a limit. The domain says nothing about HTTP:
 * shared/http/problems.ts maps each code to its status, title and headers, in one place; anything that
 * is not an AppError becomes a bare 500.
 */

import type { TransactionPartTag } from './transactions.ts';

export interface FieldError {
  /** JSON pointer-ish path of the offending field, e.g. `/inputs/input/0` or `query.limit`. */
  path: string;
  message: string;
}

/** The codes of the domain's errors (the HTTP layer adds its own for what only it can refuse). */
export type ErrorCode =
  | 'validation-failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'idempotency-key-reused'
  | 'insufficient-credits'
  | 'spend-cap-reached'
  | 'rate-limited'
  | 'model-error'
  | 'payload-too-large';

export interface AppErrorOptions {
  cause?: unknown;
  /** Each offending field and what is wrong with it. */
  errors?: FieldError[];
  /** Facts a client can act on (a balance and a cost, a limit), shown beside the message. */
  details?: Record<string, unknown>;
}

export class AppError<C extends string = ErrorCode> extends Error {
  readonly errors: FieldError[] | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: C,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.errors = options.errors;
    this.details = options.details ?? {};
  }
}

export class ValidationError extends AppError {
  constructor(message: string, errors?: FieldError[], options: Omit<AppErrorOptions, 'errors'> = {}) {
    super('validation-failed', message, { ...options, errors });
  }
}

/** No credential, or one that is not valid (any more). */
export class UnauthorizedError extends AppError {
  constructor(message = 'A valid access token or API key is required.', options: AppErrorOptions = {}) {
    super('unauthorized', message, options);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'Your role does not allow this action.', options: AppErrorOptions = {}) {
    super('forbidden', message, options);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'The requested resource does not exist.', options: AppErrorOptions = {}) {
    super('not-found', message, options);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('conflict', message, options);
  }
}

export class IdempotencyKeyReusedError extends AppError {
  constructor() {
    super(
      'idempotency-key-reused',
      'This Idempotency-Key was already used with a different request. Use a new key for a new request.',
    );
  }
}

export class InsufficientCreditsError extends AppError {
  constructor(
    readonly balance: number,
    readonly cost: number,
  ) {
    super('insufficient-credits', `This costs ${cost} credits but the balance is ${balance}.`, {
      details: { balance, cost },
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
      `This costs ${cost} credits, which would pass your daily spend cap of ${cap} (${spentToday} spent today). Raise the cap with PUT /v1/account/limits or wait until tomorrow (UTC).`,
      { details: { cap, spentToday, cost } },
    );
  }
}

/** A declared file larger than its kind may be (`limit` bytes): refused before anything is created. */
export class PayloadTooLargeError extends AppError {
  constructor(
    message: string,
    readonly limit: number,
    options: Omit<AppErrorOptions, 'details'> = {},
  ) {
    super('payload-too-large', message, { ...options, details: { limit } });
  }
}

export class RateLimitedError extends AppError {
  /** Whole seconds, at least 1, until a new attempt may succeed. */
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super('rate-limited', message, { details: { retryAfter: seconds } });
    this.retryAfterSeconds = seconds;
  }
}

export class ModelError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('model-error', message, options);
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
