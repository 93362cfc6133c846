/**
 * Usage and statistics: what was predicted, failed and charged, per user per day per model, and
 * service-wide. The counters are kept up to date inside the same transactions that charge, so the
 * reports agree with the ledger exactly without scanning it.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';

export interface UsageCounts {
  /** Rows predicted successfully (sync and batch alike). */
  predictions: number;
  /** Rows that failed (invalid input in a batch, model errors, unpaid rows). */
  failed: number;
  /** Credits charged. */
  credits: number;
}

export interface UsageRecord extends UsageCounts {
  day: string;
  modelId: string;
}

/** Rows of one charge or failure, to be added to the counters. */
export interface UsageDelta extends UsageCounts {
  userId: string;
  modelId: string;
  day: string;
  /** Model latency of a sync prediction, for the latency percentiles. */
  latencyMs?: number;
}

export const zeroCounts = (): UsageCounts => ({ predictions: 0, failed: 0, credits: 0 });

export function addCounts(into: UsageCounts, from: UsageCounts): UsageCounts {
  into.predictions += from.predictions;
  into.failed += from.failed;
  into.credits += from.credits;
  return into;
}

/** Upper bounds (ms) of the latency histogram's buckets; the last one is open. */
export const latencyBuckets = [
  1,
  2,
  5,
  10,
  20,
  50,
  100,
  200,
  500,
  1000,
  2000,
  5000,
  10_000,
  30_000,
  Number.POSITIVE_INFINITY,
];

export function latencyBucket(ms: number): number {
  return latencyBuckets.findIndex((bound) => ms <= bound);
}

/** A percentile from histogram counts: the upper bound of the bucket it falls in (null for no data). */
export function percentileFromHistogram(counts: number[], percentile: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil((percentile / 100) * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] ?? 0;
    if (seen >= rank) {
      const bound = latencyBuckets[i] ?? Number.POSITIVE_INFINITY;
      return Number.isFinite(bound) ? bound : (latencyBuckets.at(-2) ?? 0);
    }
  }
  return null;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MAX_RANGE_DAYS = 366;

export const DateRangeQuerySchema = z.object({
  from: z.string().regex(DAY, { message: 'must be a UTC date YYYY-MM-DD' }).optional(),
  to: z.string().regex(DAY, { message: 'must be a UTC date YYYY-MM-DD' }).optional(),
});

/** The inclusive day range of a report: the last 30 days by default, at most a year. */
export function dayRange(
  query: { from?: string | undefined; to?: string | undefined },
  today: Date,
): { from: string; to: string; days: string[] } {
  const to = query.to ?? today.toISOString().slice(0, 10);
  const end = Date.parse(`${to}T00:00:00Z`);
  // The default start is 29 days before `to`; when `to` is no date at all, only `to` is reported.
  const from =
    query.from ?? (Number.isNaN(end) ? to : new Date(end - 29 * 86_400_000).toISOString().slice(0, 10));
  const start = Date.parse(`${from}T00:00:00Z`);
  const problems = [];
  if (
    query.from !== undefined &&
    (Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== from)
  )
    problems.push({ path: 'query.from', message: 'is not a real date' });
  if (Number.isNaN(end) || new Date(end).toISOString().slice(0, 10) !== to)
    problems.push({ path: 'query.to', message: 'is not a real date' });
  if (problems.length) throw new ValidationError('The date range is not valid.', problems);
  if (end < start)
    throw new ValidationError('`from` must not be after `to`.', [
      { path: 'query.from', message: 'is after to' },
    ]);
  const count = Math.round((end - start) / 86_400_000) + 1;
  if (count > MAX_RANGE_DAYS) {
    throw new ValidationError(`A report covers at most ${MAX_RANGE_DAYS} days.`, [
      { path: 'query.from', message: `the range is ${count} days` },
    ]);
  }
  const days = Array.from({ length: count }, (_, i) =>
    new Date(start + i * 86_400_000).toISOString().slice(0, 10),
  );
  return { from, to, days };
}

export type UsageGroup = 'day' | 'model';

export interface UsageReportItem extends UsageCounts {
  period?: string;
  modelId?: string;
}

/** Groups a user's (day, model) counters by day (every day of the range, zeros included) or by model. */
export function groupUsage(
  records: UsageRecord[],
  groupBy: UsageGroup,
  days: string[],
): { items: UsageReportItem[]; totals: UsageCounts } {
  const totals = zeroCounts();
  for (const r of records) addCounts(totals, r);
  if (groupBy === 'day') {
    const byDay = new Map(days.map((d) => [d, zeroCounts()]));
    for (const r of records) {
      const counts = byDay.get(r.day);
      if (counts) addCounts(counts, r);
    }
    return { items: days.map((day) => ({ period: day, ...(byDay.get(day) ?? zeroCounts()) })), totals };
  }
  const byModel = new Map<string, UsageCounts>();
  for (const r of records)
    addCounts(
      byModel.get(r.modelId) ?? byModel.set(r.modelId, zeroCounts()).get(r.modelId) ?? zeroCounts(),
      r,
    );
  const items = [...byModel.entries()]
    .map(([modelId, counts]) => ({ modelId, ...counts }))
    .sort((a, b) => b.credits - a.credits || a.modelId.localeCompare(b.modelId));
  return { items, totals };
}

/** CSV of a report or a history; fields quoted as RFC 4180 asks. */
export function toCsv(columns: string[], rows: object[]): string {
  const field = (value: unknown) => {
    const text =
      value === undefined || value === null
        ? ''
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return `${[
    columns.join(','),
    ...rows.map((row) => columns.map((c) => field((row as Record<string, unknown>)[c])).join(',')),
  ].join('\r\n')}\r\n`;
}
