/** Reports: a user's usage, the service's statistics for admins, and the audit trail. */
import type { AuditEntry } from '../domain/audit.ts';
import { auditCursor } from '../domain/cursors.ts';
import {
  addCounts,
  dayRange,
  groupUsage,
  percentileFromHistogram,
  type UsageCounts,
  type UsageGroup,
  type UsageRecord,
  zeroCounts,
} from '../domain/usage.ts';

export interface UsageQueryPort {
  userUsage(userId: string, from: string, to: string): Promise<UsageRecord[]>;
  userCount(): Promise<number>;
  dayStats(days: string[]): Promise<
    {
      day: string;
      users: Map<string, UsageCounts>;
      models: Map<string, UsageCounts & { latency: number[] }>;
      creditsAdded: number;
    }[]
  >;
}

export interface NameLookups {
  userEmail(userId: string): Promise<string | undefined>;
  modelName(modelId: string): Promise<{ name: string; version: number } | undefined>;
}

export interface AuditQueryPort {
  list(limit: number, before: string | undefined): Promise<{ items: AuditEntry[]; last: string | null }>;
}

const errorRate = (c: UsageCounts) =>
  c.predictions + c.failed === 0 ? 0 : c.failed / (c.predictions + c.failed);
const TOP_USERS = 10;

export class ReportsService {
  constructor(
    private readonly usage: UsageQueryPort,
    private readonly names: NameLookups,
    private readonly audit: AuditQueryPort,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async userUsage(
    userId: string,
    query: { from?: string | undefined; to?: string | undefined; groupBy: UsageGroup },
  ) {
    const range = dayRange(query, this.now());
    const records = await this.usage.userUsage(userId, range.from, range.to);
    const { items, totals } = groupUsage(records, query.groupBy, range.days);
    return { from: range.from, to: range.to, groupBy: query.groupBy, items, totals };
  }

  async adminStats(query: { from?: string | undefined; to?: string | undefined }) {
    const range = dayRange(query, this.now());
    const [users, days] = await Promise.all([this.usage.userCount(), this.usage.dayStats(range.days)]);
    const totals = zeroCounts();
    let creditsAdded = 0;
    const activeUsers = new Set<string>();
    const perUser = new Map<string, UsageCounts>();
    const perModel = new Map<string, UsageCounts & { latency: number[] }>();
    const byDay = days.map((day) => {
      const dayTotals = zeroCounts();
      for (const [userId, counts] of day.users) {
        addCounts(dayTotals, counts);
        if (counts.predictions + counts.failed > 0) activeUsers.add(userId);
        addCounts(
          perUser.get(userId) ?? perUser.set(userId, zeroCounts()).get(userId) ?? zeroCounts(),
          counts,
        );
      }
      for (const [modelId, counts] of day.models) {
        const current = perModel.get(modelId) ?? { ...zeroCounts(), latency: counts.latency.map(() => 0) };
        addCounts(current, counts);
        counts.latency.forEach((n, i) => {
          current.latency[i] = (current.latency[i] ?? 0) + n;
        });
        perModel.set(modelId, current);
      }
      addCounts(totals, dayTotals);
      creditsAdded += day.creditsAdded;
      const active = [...day.users.values()].filter((c) => c.predictions + c.failed > 0).length;
      return { period: day.day, ...dayTotals, creditsAdded: day.creditsAdded, activeUsers: active };
    });
    const byModel = await Promise.all(
      [...perModel.entries()]
        .sort(([, a], [, b]) => b.credits - a.credits || b.predictions - a.predictions)
        .map(async ([modelId, counts]) => {
          const model = await this.names.modelName(modelId);
          return {
            modelId,
            ...(model ? { modelName: model.name, modelVersion: model.version } : {}),
            predictions: counts.predictions,
            failed: counts.failed,
            credits: counts.credits,
            errorRate: errorRate(counts),
            p50LatencyMs: percentileFromHistogram(counts.latency, 50),
            p95LatencyMs: percentileFromHistogram(counts.latency, 95),
          };
        }),
    );
    const topUsers = await Promise.all(
      [...perUser.entries()]
        .sort(([, a], [, b]) => b.credits - a.credits || b.predictions - a.predictions)
        .slice(0, TOP_USERS)
        .map(async ([userId, counts]) => ({
          userId,
          email: (await this.names.userEmail(userId)) ?? null,
          ...counts,
        })),
    );
    return {
      from: range.from,
      to: range.to,
      users,
      activeUsers: activeUsers.size,
      predictions: totals.predictions,
      failed: totals.failed,
      creditsCharged: totals.credits,
      creditsAdded,
      errorRate: errorRate(totals),
      byModel,
      byDay,
      topUsers,
    };
  }

  async auditTrail(query: { limit: number; cursor?: string | undefined }) {
    const before = query.cursor ? auditCursor.decode(query.cursor) : undefined;
    const page = await this.audit.list(query.limit, before);
    return { items: page.items, nextCursor: page.last ? auditCursor.encode(page.last) : null };
  }
}
