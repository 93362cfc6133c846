import { authenticate, services } from '#shared/app/services.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json, noContent } from '#shared/http/responses.ts';
import type { ApiKeyRecord } from '#shared/users/ports.ts';

const publicKey = ({ id, name, prefix, createdAt }: ApiKeyRecord) => ({ id, name, prefix, createdAt });

export const handler = httpFunction(
  'auth',
  {
    'GET /.well-known/jwks.json': async () => {
      const keys = await services().users.publicKeys();
      return json(200, { keys }, { 'Cache-Control': 'public, max-age=300' });
    },

    'POST /v1/users': async ({ body }) => {
      const user = await services().users.register(body);
      return json(201, user, { Location: '/v1/users/me' });
    },

    'POST /v1/tokens': async ({ body, event }) => {
      if ('refreshToken' in body) return json(200, await services().users.refresh(body.refreshToken));
      const source = event.requestContext.http.sourceIp;
      return json(200, await services().users.signIn({ email: body.email, password: body.password, source }));
    },

    'POST /v1/tokens/revoke': async ({ body }) => {
      await services().users.revoke(body.refreshToken);
      return noContent();
    },

    'GET /v1/users/me': async ({ principal }) => {
      const { userId } = principal;
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

    'POST /v1/api-keys': async ({ principal, body }) => {
      const { record, key } = await services().users.createApiKey(principal, body.name);
      return json(201, { ...publicKey(record), key });
    },

    'GET /v1/api-keys': async ({ principal }) => {
      const keys = await services().users.listApiKeys(principal);
      return json(200, { items: keys.map(publicKey), nextCursor: null });
    },

    'DELETE /v1/api-keys/{id}': async ({ principal, params }) => {
      await services().users.deleteApiKey(principal, params.id);
      return noContent();
    },
  },
  { authenticate },
);
