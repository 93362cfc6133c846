/** Samples this process's memory while something runs in it (the batch worker, fed by the queue pump). */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const MB = 1024 * 1024;

export interface MemoryPeak {
  samples: number;
  intervalMs: number;
  baselineRssMb: number;
  baselineHeapUsedMb: number;
  peakRssMb: number;
  peakHeapUsedMb: number;
  /** Peak minus baseline. */
  rssGrowthMb: number;
  heapUsedGrowthMb: number;
}

/** A full garbage collection: `global.gc` when node runs with --expose-gc, else enabled here. */
export function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Collects garbage, takes the baseline, then samples rss and heapUsed every `intervalMs` until stopped. */
export function sampleMemory(intervalMs = 20): { stop(): MemoryPeak } {
  const gc = collector();
  gc();
  gc();
  const baseline = process.memoryUsage();
  let peakRss = baseline.rss;
  let peakHeap = baseline.heapUsed;
  let samples = 0;
  const sample = () => {
    const { rss, heapUsed } = process.memoryUsage();
    samples++;
    if (rss > peakRss) peakRss = rss;
    if (heapUsed > peakHeap) peakHeap = heapUsed;
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return {
        samples,
        intervalMs,
        baselineRssMb: baseline.rss / MB,
        baselineHeapUsedMb: baseline.heapUsed / MB,
        peakRssMb: peakRss / MB,
        peakHeapUsedMb: peakHeap / MB,
        rssGrowthMb: (peakRss - baseline.rss) / MB,
        heapUsedGrowthMb: (peakHeap - baseline.heapUsed) / MB,
      };
    },
  };
}
