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

/** What a successful prediction answers (and what an Idempotency-Key replays). */
export interface PredictionResponse {
  id: string;
  modelId: string;
  modelVersion: number;
  outputs: Record<string, unknown>;
  rows: number;
  cost: number;
  balance: number;
  createdAt: string;
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

/** Charges tried for one prediction while the model version keeps changing under it. */
export const CHARGE_ATTEMPTS = 3;

export type AfterPriceChange<M> =
  | { next: 'charge'; model: M; cost: number }
  | { next: 'not-found' }
  | { next: 'give-up' };

/**
 * A prediction's charge failed its price check: the model version was repriced or retired after
 * this container looked it up, and nothing was charged. Given how many charges were tried and the
 * version as it is now (undefined once it is no longer active), decide what comes next: charge
 * again at the price that holds now, answer that the model is gone, or give up (a version that
 * keeps changing under a charge is not a race worth chasing).
 */
export function afterPriceChange<M extends { price: number }>(
  attempts: number,
  current: M | undefined,
  rows: number,
): AfterPriceChange<M> {
  if (attempts >= CHARGE_ATTEMPTS) return { next: 'give-up' };
  if (!current) return { next: 'not-found' };
  return { next: 'charge', model: current, cost: current.price * rows };
}
