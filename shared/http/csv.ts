import type { HttpRequest } from './http-function.ts';
import { type HttpResult, text } from './responses.ts';

/** CSV when asked with `?format=csv` or `Accept: text/csv`. */
export function wantsCsv(request: HttpRequest, format: string | undefined): boolean {
  if (format) return format === 'csv';
  return /\btext\/csv\b/i.test(request.headers.accept ?? '');
}

export function csvResponse(body: string, fileName: string): HttpResult {
  return text(200, body, 'text/csv; charset=utf-8', {
    'Content-Disposition': `attachment; filename="${fileName}"`,
  });
}
