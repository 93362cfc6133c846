import { signingKeys } from '#shared/adapters/signing-key-source.ts';
import {
  ApiKeyCreateSchema,
  IdParamsSchema,
  PasswordGrantSchema,
  RefreshGrantSchema,
  RegisterBodySchema,
  RevokeBodySchema,
} from '#shared/api/schemas.ts';
import { services } from '#shared/app/services.ts';
import { httpFunction, principalOf } from '#shared/http/http-function.ts';
import { json, noContent } from '#shared/http/responses.ts';
import { parseRequest } from '#shared/http/validation.ts';
import type { ApiKeyRecord } from '#shared/users/ports.ts';

const publicKey = ({ id, name, prefix, createdAt }: ApiKeyRecord) => ({ id, name, prefix, createdAt });

export const handler = httpFunction('auth', {
  'GET /.well-known/jwks.json': async () => {
    const keys = await signingKeys();
    return json(200, { keys: keys.all.map((k) => k.publicJwk) }, { 'Cache-Control': 'public, max-age=300' });
  },

  'POST /v1/users': async ({ body }) => {
    const input = parseRequest(RegisterBodySchema, body, 'body');
    const user = await services().users.register(input);
    return json(201, user, { Location: '/v1/users/me' });
  },

  'POST /v1/tokens': async ({ body, event }) => {
    if (body && typeof body === 'object' && 'refreshToken' in body) {
      const { refreshToken } = parseRequest(RefreshGrantSchema, body, 'body');
      return json(200, await services().users.refresh(refreshToken));
    }
    const { email, password } = parseRequest(PasswordGrantSchema, body, 'body');
    const source = event.requestContext.http.sourceIp;
    return json(200, await services().users.signIn({ email, password, source }));
  },

  'POST /v1/tokens/revoke': async ({ body }) => {
    const { refreshToken } = parseRequest(RevokeBodySchema, body, 'body');
    await services().users.revoke(refreshToken);
    return noContent();
  },

  'GET /v1/users/me': async (request) => {
    const { userId } = principalOf(request);
    const [user, account, notifications] = await Promise.all([
      services().users.me(userId),
      services().credits.account(userId),
      services().notifications.recent(userId, 10),
    ]);
    return json(200, {
      ...user,
      balance: account.balance,
      notifications: notifications.map(({ id, type, balance, threshold, delivery, createdAt }) => ({
        id,
        type,
        balance,
        threshold,
        delivery,
        createdAt,
      })),
    });
  },

  'POST /v1/api-keys': async (request) => {
    const { name } = parseRequest(ApiKeyCreateSchema, request.body, 'body');
    const { record, key } = await services().users.createApiKey(principalOf(request), name);
    return json(201, { ...publicKey(record), key });
  },

  'GET /v1/api-keys': async (request) => {
    const keys = await services().users.listApiKeys(principalOf(request));
    return json(200, { items: keys.map(publicKey), nextCursor: null });
  },

  'DELETE /v1/api-keys/{id}': async (request) => {
    const { id } = parseRequest(IdParamsSchema, request.params, 'path');
    await services().users.deleteApiKey(principalOf(request), id);
    return noContent();
  },
});
