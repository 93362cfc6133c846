import { type MediaResult, text } from './responses.ts';

/** CSV when asked with `?format=csv` or `Accept: text/csv`. */
export function wantsCsv(
  headers: Record<string, string | undefined> | undefined,
  format: string | undefined,
) {
  if (format) return format === 'csv';
  return /\btext\/csv\b/i.test(headers?.accept ?? '');
}

export function csvResponse(body: string, fileName: string): MediaResult<200, 'text/csv'> {
  return text(200, body, 'text/csv; charset=utf-8', {
    'Content-Disposition': `attachment; filename="${fileName}"`,
  });
}
