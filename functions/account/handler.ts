import { presentLedgerEntry } from '#shared/api/presenters.ts';
import {
  GrantBodySchema,
  IdempotencyHeadersSchema,
  LimitsBodySchema,
  TopUpBodySchema,
  TransactionsQuerySchema,
  UserIdParamsSchema,
} from '#shared/api/schemas.ts';
import { services } from '#shared/app/services.ts';
import { toCsv } from '#shared/domain/usage.ts';
import { csvResponse, wantsCsv } from '#shared/http/csv.ts';
import { httpFunction, principalOf } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';
import { parseRequest } from '#shared/http/validation.ts';

export const handler = httpFunction('account', {
  'GET /v1/account': async (request) => {
    const account = await services().credits.account(principalOf(request).userId);
    return json(200, { balance: account.balance, updatedAt: account.updatedAt, limits: account.limits });
  },

  'PUT /v1/account/limits': async (request) => {
    const change = parseRequest(LimitsBodySchema, request.body, 'body');
    const { account, webhookSecret } = await services().credits.setLimits(
      principalOf(request).userId,
      change,
    );
    return json(200, { ...account.limits, ...(webhookSecret ? { webhookSecret } : {}) });
  },

  'POST /v1/account/top-ups': async (request) => {
    const { amount } = parseRequest(TopUpBodySchema, request.body, 'body');
    const headers = parseRequest(IdempotencyHeadersSchema, request.headers, 'header');
    const result = await services().credits.topUp(principalOf(request), amount, headers['idempotency-key']);
    return json(201, { transaction: presentLedgerEntry(result.entry), balance: result.balance });
  },

  'GET /v1/account/transactions': async (request) => {
    const query = parseRequest(TransactionsQuerySchema, request.query, 'query');
    const userId = principalOf(request).userId;
    if (wantsCsv(request, query.format)) {
      const entries = await services().credits.exportLedger(userId, query.kind);
      return csvResponse(
        toCsv(
          ['id', 'createdAt', 'kind', 'amount', 'balanceAfter', 'predictionId', 'batchId', 'reason'],
          entries.map(presentLedgerEntry),
        ),
        'transactions.csv',
      );
    }
    const page = await services().credits.transactions(userId, query);
    return json(200, { items: page.items.map(presentLedgerEntry), nextCursor: page.nextCursor });
  },

  'POST /v1/admin/users/{userId}/grants': async (request) => {
    const { userId } = parseRequest(UserIdParamsSchema, request.params, 'path');
    const { amount, reason } = parseRequest(GrantBodySchema, request.body, 'body');
    const headers = parseRequest(IdempotencyHeadersSchema, request.headers, 'header');
    const result = await services().credits.grant(
      principalOf(request),
      userId,
      amount,
      reason,
      headers['idempotency-key'],
    );
    return json(201, { transaction: presentLedgerEntry(result.entry), balance: result.balance });
  },
});
