/**
 * The typed client of the public HTTP API (see /docs). It keeps the session: the access token in
 * memory, the refresh token in localStorage so a reload stays signed in. Access tokens are renewed
 * shortly before they expire and once more after a 401; refresh tokens are single-use, so renewals
 * are serialised (one at a time per tab, and across tabs through the Web Locks API) and always start
 * from the token currently stored. Errors come back as `ApiError`, built from problem+json.
 */
import type { z } from 'zod';
import type {
  AccountSchema,
  AdminStatsSchema,
  ApiKeyCreatedSchema,
  ApiKeySchema,
  BalanceChangeResponseSchema,
  BatchSchema,
  CreateBatchBodySchema,
  CreateBatchResponseSchema,
  CreateModelBodySchema,
  CreateModelResponseSchema,
  LedgerEntrySchema,
  MeSchema,
  ModelSchema,
  PatchModelBodySchema,
  PredictionRecordSchema,
  PredictionResultSchema,
  ProblemSchema,
  TensorSpecSchema,
  TokenPairSchema,
  UploadSchema,
  UsageCountsSchema,
  UsageReportSchema,
  UserSchema,
} from '../../shared/api/schemas.ts';

// ---- Types of the API's resources ----------------------------------------------------------------
// Inferred from the zod schemas that validate and document the API (/openapi.json), so the client
// cannot drift from the service. Types only: no server code reaches the browser bundle.

export type Me = z.output<typeof MeSchema>;
export type User = z.output<typeof UserSchema>;
export type Role = User['role'];
export type TokenPair = z.output<typeof TokenPairSchema>;

/** Every list endpoint's answer (the schemas' `pageOf`). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type Account = z.output<typeof AccountSchema>;
export type LedgerEntry = z.output<typeof LedgerEntrySchema>;
export type LedgerKind = LedgerEntry['kind'];
export type BalanceChange = z.output<typeof BalanceChangeResponseSchema>;
export type ApiKey = z.output<typeof ApiKeySchema>;
export type ApiKeyCreated = z.output<typeof ApiKeyCreatedSchema>;

export type TensorSpec = z.output<typeof TensorSpecSchema>;
export type Model = z.output<typeof ModelSchema>;
export type ModelStatus = Model['status'];
export type PresignedUpload = z.output<typeof UploadSchema>;

/** A prediction's input tensor as nested arrays (the request schema takes any JSON per input). */
export type Tensor = number | boolean | Tensor[];

export type PredictionResult = z.output<typeof PredictionResultSchema>;
export type Prediction = z.output<typeof PredictionRecordSchema>;

export type Batch = z.output<typeof BatchSchema>;
export type BatchFormat = Batch['format'];
export type BatchStatus = Batch['status'];

export type UsageCounts = z.output<typeof UsageCountsSchema>;
export type Usage = z.output<typeof UsageReportSchema>;
export type UsageItem = Usage['items'][number];

/** Service-wide statistics over a date range. */
export type AdminStats = z.output<typeof AdminStatsSchema>;

// ---- Errors ---------------------------------------------------------------------------------------

/** RFC 9457 problem details, as the API answers every error. */
export type Problem = z.output<typeof ProblemSchema>;
export type FieldProblem = NonNullable<Problem['errors']>[number];

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  readonly problem: Problem;

  constructor(problem: Problem, options?: { cause?: unknown }) {
    super(problem.detail || problem.title, options);
    this.status = problem.status;
    this.problem = problem;
  }

  /** The problem type's slug, e.g. `insufficient-credits`; `network` when the service was not reached. */
  get code(): string {
    return this.problem.type.split('/').pop() ?? this.problem.type;
  }

  /** Messages per field, keyed by the JSON pointer without its leading slash (`/email` → `email`). */
  get fieldErrors(): Record<string, string> {
    const byField: Record<string, string> = {};
    for (const { path, message } of this.problem.errors ?? []) {
      const field = path.replace(/^\//, '').replaceAll('/', '.');
      byField[field] = byField[field] ? `${byField[field]}; ${message}` : message;
    }
    return byField;
  }
}

/** Turns anything thrown into an ApiError, so views have one shape to show. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(
    { type: '/problems/client-error', title: 'Something went wrong', status: 0, detail: message },
    { cause: error },
  );
}

/** A problem found before anything was sent (the same shape as the API's validation errors). */
export function invalidInput(
  errors: FieldProblem[],
  detail = 'Please correct the fields marked below.',
): ApiError {
  return new ApiError({
    type: '/problems/validation-failed',
    title: 'Check your input',
    status: 400,
    detail,
    errors,
  });
}

async function problemOf(response: Response): Promise<ApiError> {
  const contentType = response.headers.get('content-type') ?? '';
  let body: unknown;
  try {
    body = contentType.includes('json') ? await response.json() : await response.text();
  } catch {
    body = undefined;
  }
  if (body && typeof body === 'object' && 'status' in body && 'title' in body) {
    const problem = body as Problem;
    return new ApiError({ ...problem, detail: problem.detail ?? problem.title });
  }
  // API Gateway's own answers (its throttling and payload limits) are `{message}`, not problem+json.
  const message =
    body && typeof body === 'object' && 'message' in body ? String(body.message) : response.statusText;
  return new ApiError({
    type: response.status === 429 ? '/problems/rate-limited' : '/problems/http-error',
    title: message || `HTTP ${response.status}`,
    status: response.status,
    detail: message || `The service answered ${response.status}.`,
  });
}

function networkError(cause: unknown): ApiError {
  return new ApiError(
    {
      type: '/problems/network',
      title: 'The service could not be reached',
      status: 0,
      detail: 'The service could not be reached. Check your connection and try again.',
    },
    { cause },
  );
}

// ---- Session --------------------------------------------------------------------------------------

const REFRESH_TOKEN_KEY = 'credit-predictions.refresh-token';
/** Renew the access token when it has less than this left, so a request never races its expiry. */
const RENEW_MARGIN_MS = 30_000;

interface AccessToken {
  value: string;
  expiresAt: number;
}

let access: AccessToken | null = null;
let renewal: Promise<string> | null = null;
/** Why a session ended: the user signed out here, in another tab, or the service stopped accepting it. */
export type SessionEnd = 'signed-out' | 'elsewhere' | 'expired';
const sessionListeners = new Set<(signedIn: boolean, ended?: SessionEnd) => void>();

function storedRefreshToken(): string | null {
  try {
    return localStorage.getItem(REFRESH_TOKEN_KEY);
  } catch {
    return null;
  }
}

function keep(pair: TokenPair) {
  access = { value: pair.accessToken, expiresAt: Date.now() + pair.expiresIn * 1000 };
  localStorage.setItem(REFRESH_TOKEN_KEY, pair.refreshToken);
}

function forget(reason: SessionEnd) {
  const wasSignedIn = storedRefreshToken() !== null || access !== null;
  access = null;
  localStorage.removeItem(REFRESH_TOKEN_KEY);
  if (wasSignedIn) for (const listener of sessionListeners) listener(false, reason);
}

async function postJson(path: string, body: unknown): Promise<Response> {
  try {
    return await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw networkError(error);
  }
}

async function withRefreshLock<T>(work: () => Promise<T>): Promise<T> {
  if (typeof navigator !== 'undefined' && navigator.locks)
    return navigator.locks.request('credit-predictions.token-refresh', work);
  return work();
}

/** Exchanges the stored refresh token for a new pair; signs out when it is no longer accepted. */
function renew(): Promise<string> {
  renewal ??= withRefreshLock(async () => {
    const refreshToken = storedRefreshToken();
    if (!refreshToken) {
      forget('elsewhere');
      throw signedOutError();
    }
    const response = await postJson('/v1/tokens', { refreshToken });
    if (response.status === 401 || response.status === 400) {
      forget('expired');
      throw signedOutError();
    }
    if (!response.ok) throw await problemOf(response);
    const pair = (await response.json()) as TokenPair;
    keep(pair);
    return pair.accessToken;
  }).finally(() => {
    renewal = null;
  });
  return renewal;
}

function signedOutError(): ApiError {
  return new ApiError({
    type: '/problems/unauthorized',
    title: 'Signed out',
    status: 401,
    detail: 'Your session has ended. Please sign in again.',
  });
}

async function accessToken(): Promise<string> {
  if (access && access.expiresAt - Date.now() > RENEW_MARGIN_MS) return access.value;
  return renew();
}

// Another tab signing out (the refresh token removed) signs this one out too.
if (typeof window !== 'undefined') {
  window.addEventListener('storage', (event) => {
    if (event.key === REFRESH_TOKEN_KEY && event.newValue === null) forget('elsewhere');
  });
}

export const session = {
  /** True when a refresh token is kept (the session may still turn out to have ended). */
  get active(): boolean {
    return storedRefreshToken() !== null;
  },

  onChange(listener: (signedIn: boolean, ended?: SessionEnd) => void): () => void {
    sessionListeners.add(listener);
    return () => sessionListeners.delete(listener);
  },

  async signIn(email: string, password: string): Promise<void> {
    const response = await postJson('/v1/tokens', { email, password });
    if (!response.ok) throw await problemOf(response);
    keep((await response.json()) as TokenPair);
    for (const listener of sessionListeners) listener(true);
  },

  async register(email: string, password: string): Promise<User> {
    const response = await postJson('/v1/users', { email, password });
    if (!response.ok) throw await problemOf(response);
    return (await response.json()) as User;
  },

  /** Revokes the refresh token's family, then forgets the session even if the service was unreachable. */
  async signOut(): Promise<void> {
    const refreshToken = storedRefreshToken();
    try {
      if (refreshToken) await postJson('/v1/tokens/revoke', { refreshToken });
    } finally {
      forget('signed-out');
    }
  },
};

// ---- Requests -------------------------------------------------------------------------------------

type Query = Record<string, string | number | undefined | null>;

interface RequestOptions {
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
}

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query))
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const url = withQuery(path, options.query);
  const send = async (token: string) => {
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      ...options.headers,
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
    } catch (error) {
      throw networkError(error);
    }
  };
  let response = await send(await accessToken());
  // The access token may have been revoked or the signing key rotated: renew once and retry.
  if (response.status === 401) response = await send(await renew());
  if (!response.ok) throw await problemOf(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** A fresh key for one user action, so a retried request is charged once. */
export function idempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(
    '',
  );
}

const enc = encodeURIComponent;

export const api = {
  me: () => request<Me>('GET', '/v1/users/me'),
  account: () => request<Account>('GET', '/v1/account'),
  topUp: (amount: number, key = idempotencyKey()) =>
    request<BalanceChange>('POST', '/v1/account/top-ups', {
      body: { amount },
      headers: { 'idempotency-key': key },
    }),
  transactions: (query: { limit?: number; cursor?: string | null; kind?: LedgerKind | '' }) =>
    request<Page<LedgerEntry>>('GET', '/v1/account/transactions', { query }),

  apiKeys: () => request<Page<ApiKey>>('GET', '/v1/api-keys'),
  createApiKey: (name: string) => request<ApiKeyCreated>('POST', '/v1/api-keys', { body: { name } }),
  deleteApiKey: (id: string) => request<void>('DELETE', `/v1/api-keys/${enc(id)}`),

  models: (query: { limit?: number; cursor?: string | null } = {}) =>
    request<Page<Model>>('GET', '/v1/models', { query }),
  /** Every page of the model list (it is short: one record per version). */
  async allModels(): Promise<Model[]> {
    const all: Model[] = [];
    let cursor: string | null = null;
    do {
      const page: Page<Model> = await api.models({ limit: 100, cursor });
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  },
  model: (ref: string) => request<Model>('GET', `/v1/models/${enc(ref)}`),
  createModel: (body: z.input<typeof CreateModelBodySchema>) =>
    request<z.output<typeof CreateModelResponseSchema>>('POST', '/v1/models', { body }),
  updateModel: (id: string, body: z.input<typeof PatchModelBodySchema>) =>
    request<Model>('PATCH', `/v1/models/${enc(id)}`, { body }),

  predict: (modelRef: string, inputs: Record<string, Tensor>, key = idempotencyKey()) =>
    request<PredictionResult>('POST', `/v1/models/${enc(modelRef)}/predictions`, {
      body: { inputs },
      headers: { 'idempotency-key': key },
    }),
  predictions: (query: { limit?: number; cursor?: string | null; modelId?: string }) =>
    request<Page<Prediction>>('GET', '/v1/predictions', { query }),

  createBatch: (body: z.input<typeof CreateBatchBodySchema>) =>
    request<z.output<typeof CreateBatchResponseSchema>>('POST', '/v1/batches', { body }),
  batch: (id: string) => request<Batch>('GET', `/v1/batches/${enc(id)}`),
  batches: (query: { limit?: number; cursor?: string | null } = {}) =>
    request<Page<Batch>>('GET', '/v1/batches', { query }),

  usage: (query: { from?: string; to?: string; groupBy: 'day' | 'model' }) =>
    request<Usage>('GET', '/v1/usage', { query }),

  adminStats: (query: { from?: string; to?: string } = {}) =>
    request<AdminStats>('GET', '/v1/admin/stats', { query }),
  grant: (userId: string, amount: number, reason: string, key = idempotencyKey()) =>
    request<BalanceChange>('POST', `/v1/admin/users/${enc(userId)}/grants`, {
      body: { amount, reason },
      headers: { 'idempotency-key': key },
    }),
};

// ---- Uploads --------------------------------------------------------------------------------------

/** Files up to this size are hashed in the browser, so their SHA-256 is signed into the upload. */
export const CHECKSUM_MAX_BYTES = 64 * 1024 * 1024;

/**
 * What to tell the API about a file before uploading it: its size, and the base64 of its SHA-256
 * when it is not huge (and the page may use WebCrypto). Both are signed into the upload URL, so
 * the storage service refuses the file if it changed or arrives cut short.
 */
export async function declareFile(file: Blob): Promise<{ size?: number; checksumSha256?: string }> {
  // An empty file has nothing to declare (the API takes sizes from 1 byte); it fails on its own.
  if (file.size === 0) return {};
  if (file.size > CHECKSUM_MAX_BYTES || !globalThis.crypto?.subtle) return { size: file.size };
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return { size: file.size, checksumSha256: btoa(binary) };
}

/**
 * Headers a browser sets itself and refuses from a page: Content-Length is the body's length,
 * which is what a declared size signed.
 */
const BROWSER_SET_HEADERS = new Set(['content-length']);

/**
 * PUTs a file to a presigned URL with the headers the API gave. XMLHttpRequest rather than fetch,
 * because only it reports upload progress.
 */
export function uploadFile(
  upload: PresignedUpload,
  file: Blob,
  onProgress: (fraction: number) => void = () => {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers)) {
      if (!BROWSER_SET_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        reject(
          new ApiError({
            type: '/problems/upload-failed',
            title: 'The upload failed',
            status: xhr.status,
            detail: `The storage service refused the file (HTTP ${xhr.status}). Try again.`,
          }),
        );
      }
    };
    xhr.onerror = () => reject(networkError(new Error('upload failed')));
    xhr.send(file);
  });
}
