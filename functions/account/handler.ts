import { presentLedgerEntry } from '#shared/api/presenters.ts';
import { authenticate, services } from '#shared/app/services.ts';
import { toCsv } from '#shared/domain/usage.ts';
import { csvResponse, wantsCsv } from '#shared/http/csv.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';

export const handler = httpFunction(
  'account',
  {
    'GET /v1/account': async ({ principal }) => {
      const account = await services().credits.account(principal.userId);
      return json(200, { balance: account.balance, updatedAt: account.updatedAt, limits: account.limits });
    },

    'PUT /v1/account/limits': async ({ principal, body }) => {
      const { account, webhookSecret } = await services().credits.setLimits(principal.userId, body);
      return json(200, { ...account.limits, ...(webhookSecret ? { webhookSecret } : {}) });
    },

    'POST /v1/account/top-ups': async ({ principal, body, headers }) => {
      const result = await services().credits.topUp(principal, body.amount, headers['idempotency-key']);
      return json(201, { transaction: presentLedgerEntry(result.entry), balance: result.balance });
    },

    'GET /v1/account/transactions': async ({ principal, query, event }) => {
      if (wantsCsv(event.headers, query.format)) {
        const entries = await services().credits.exportLedger(principal.userId, query.kind);
        return csvResponse(
          toCsv(
            ['id', 'createdAt', 'kind', 'amount', 'balanceAfter', 'predictionId', 'batchId', 'reason'],
            entries.map(presentLedgerEntry),
          ),
          'transactions.csv',
        );
      }
      const page = await services().credits.transactions(principal.userId, query);
      return json(200, { items: page.items.map(presentLedgerEntry), nextCursor: page.nextCursor });
    },

    'POST /v1/admin/users/{userId}/grants': async ({ principal, params, body, headers }) => {
      const result = await services().credits.grant(
        principal,
        params.userId,
        body.amount,
        body.reason,
        headers['idempotency-key'],
      );
      return json(201, { transaction: presentLedgerEntry(result.entry), balance: result.balance });
    },
  },
  { authenticate },
);
