import { authenticate, services } from '#shared/app/services.ts';
import { toCsv } from '#shared/domain/usage.ts';
import { csvResponse, wantsCsv } from '#shared/http/csv.ts';
import { httpFunction } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';

export const handler = httpFunction(
  'reports',
  {
    'GET /v1/usage': async ({ principal, query, event }) => {
      const report = await services().reports.userUsage(principal.userId, query);
      if (!wantsCsv(event.headers, query.format)) return json(200, report);
      const key = report.groupBy === 'day' ? 'period' : 'modelId';
      return csvResponse(
        toCsv([key, 'predictions', 'failed', 'credits'], report.items),
        `usage-${report.groupBy}-${report.from}-${report.to}.csv`,
      );
    },

    'GET /v1/admin/stats': async ({ query }) => json(200, await services().reports.adminStats(query)),

    'GET /v1/admin/audit': async ({ query }) => json(200, await services().reports.auditTrail(query)),
  },
  { authenticate },
);
