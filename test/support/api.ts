/** A small HTTP client for tests: JSON in and out, with users made on the fly. */
import { randomBytes } from 'node:crypto';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export class Api {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  as(token: string | undefined): Api {
    return new Api(this.baseUrl, token);
  }

  async request<T = any>(
    method: string,
    path: string,
    options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.token) headers.authorization ??= `Bearer ${this.token}`;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await response.text();
    let parsed: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: response.status, headers: response.headers, body: parsed as T };
  }

  get<T = any>(path: string, headers?: Record<string, string>) {
    return this.request<T>('GET', path, headers ? { headers } : {});
  }

  post<T = any>(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, { body, ...(headers ? { headers } : {}) });
  }

  put<T = any>(path: string, body?: unknown) {
    return this.request<T>('PUT', path, { body });
  }

  patch<T = any>(path: string, body?: unknown) {
    return this.request<T>('PATCH', path, { body });
  }

  delete<T = any>(path: string) {
    return this.request<T>('DELETE', path);
  }
}

export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomBytes(5).toString('hex')}@example.com`;
}

export interface SignedInUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  api: Api;
}

/** Registers a new user and signs them in. */
export async function signUp(baseUrl: string, label = 'user'): Promise<SignedInUser> {
  const api = new Api(baseUrl);
  const email = uniqueEmail(label);
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const created = await api.post('/v1/users', { email, password });
  if (created.status !== 201)
    throw new Error(`sign-up failed: ${created.status} ${JSON.stringify(created.body)}`);
  return signIn(baseUrl, email, password, created.body.id);
}

export async function signIn(
  baseUrl: string,
  email: string,
  password: string,
  id?: string,
): Promise<SignedInUser> {
  const api = new Api(baseUrl);
  const tokens = await api.post('/v1/tokens', { email, password });
  if (tokens.status !== 200)
    throw new Error(`sign-in failed: ${tokens.status} ${JSON.stringify(tokens.body)}`);
  const authed = api.as(tokens.body.accessToken);
  const userId = id ?? (await authed.get('/v1/users/me')).body.id;
  return {
    id: userId,
    email,
    password,
    accessToken: tokens.body.accessToken,
    refreshToken: tokens.body.refreshToken,
    api: authed,
  };
}
