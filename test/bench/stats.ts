/** Latency and throughput of a fixed number of operations run by a fixed number of concurrent callers. */

export interface RunSummary {
  operations: number;
  concurrency: number;
  wallMs: number;
  /** Completed operations per second of wall time. */
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** The nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * Runs `operation(i, caller)` for i = 0 .. total-1 from `concurrency` callers (numbered from 0), each
 * starting its next operation as soon as its previous one finished (a closed loop, as N clients in a
 * row would), and times every operation and the whole run.
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  operation: (index: number, caller: number) => Promise<void>,
): Promise<RunSummary> {
  const latencies = new Float64Array(total);
  let next = 0;
  const caller = async (_: unknown, id: number) => {
    for (let index = next++; index < total; index = next++) {
      const started = performance.now();
      await operation(index, id);
      latencies[index] = performance.now() - started;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, caller));
  const wallMs = performance.now() - started;
  const sorted = latencies.slice().sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    operations: total,
    concurrency,
    wallMs,
    perSecond: (total / wallMs) * 1000,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sum / total,
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}
