import { PageQuerySchema, StatsQuerySchema, UsageQuerySchema } from '#shared/api/schemas.ts';
import { services } from '#shared/app/services.ts';
import { toCsv } from '#shared/domain/usage.ts';
import { csvResponse, wantsCsv } from '#shared/http/csv.ts';
import { httpFunction, principalOf } from '#shared/http/http-function.ts';
import { json } from '#shared/http/responses.ts';
import { parseRequest } from '#shared/http/validation.ts';

export const handler = httpFunction('reports', {
  'GET /v1/usage': async (request) => {
    const query = parseRequest(UsageQuerySchema, request.query, 'query');
    const report = await services().reports.userUsage(principalOf(request).userId, query);
    if (!wantsCsv(request, query.format)) return json(200, report);
    const key = report.groupBy === 'day' ? 'period' : 'modelId';
    return csvResponse(
      toCsv([key, 'predictions', 'failed', 'credits'], report.items),
      `usage-${report.groupBy}-${report.from}-${report.to}.csv`,
    );
  },

  'GET /v1/admin/stats': async (request) => {
    const query = parseRequest(StatsQuerySchema, request.query, 'query');
    return json(200, await services().reports.adminStats(query));
  },

  'GET /v1/admin/audit': async (request) => {
    const query = parseRequest(PageQuerySchema, request.query, 'query');
    return json(200, await services().reports.auditTrail(query));
  },
});
