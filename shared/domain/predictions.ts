/** Prediction records: what ran, on which model version, for how much, and how it ended. */

export type PredictionStatus = 'succeeded' | 'failed';

export interface Prediction {
  id: string;
  userId: string;
  modelId: string;
  modelName: string;
  modelVersion: number;
  status: PredictionStatus;
  rows: number;
  cost: number;
  /** Present when small enough to keep inline (see the retention settings). */
  outputs?: Record<string, unknown>;
  error?: { code: string; message: string };
  latencyMs: number;
  createdAt: string;
  refundedAt?: string;
}

/** Sliding one-minute window of request times per user: cheap, in memory, per container. */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Seconds to wait before the next request is allowed; 0 when it may go now (and is counted). */
  take(key: string): number {
    const now = this.now();
    const windowStart = now - 60_000;
    const recent = (this.hits.get(key) ?? []).filter((t) => t > windowStart);
    if (recent.length >= this.perMinute) {
      this.hits.set(key, recent);
      return Math.ceil(((recent[0] ?? now) + 60_000 - now) / 1000);
    }
    recent.push(now);
    this.hits.set(key, recent);
    if (this.hits.size > 10_000) this.hits.clear();
    return 0;
  }
}
