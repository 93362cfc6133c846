/**
 * Samples the memory of a function's container processes (children of this process, see
 * infra/local/lambda-runtime.ts) while something runs in them: the resident set size (VmRSS) from
 * `/proc/<pid>/status`, the whole process's, not V8's heap, which lives in the container and which
 * this process cannot see. Besides the samples, the kernel's own peak (VmHWM) is reset at the
 * baseline where it can be (writing 5 to `/proc/<pid>/clear_refs`), so the peak misses nothing
 * between samples. Linux only.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const MB = 1024 * 1024;

export interface ContainerMemory {
  pid: number;
  /** VmRSS at the baseline (0 for a container started during the run). */
  baselineRssMb: number;
  /** The largest sampled VmRSS. */
  peakRssMb: number;
  /** The kernel's peak RSS (VmHWM): since the baseline when it could be reset, else since the start. */
  hwmMb: number;
  hwmReset: boolean;
}

export interface MemoryPeak {
  samples: number;
  intervalMs: number;
  /** Every container of the function seen during the run. */
  containers: ContainerMemory[];
  /** Of the container that grew most: its baseline, peak (sampled and VmHWM) and growth. */
  baselineRssMb: number;
  peakRssMb: number;
  hwmMb: number;
  /** Peak minus baseline, sampled. */
  rssGrowthMb: number;
  /** VmHWM minus baseline (only meaningful when VmHWM was reset at the baseline). */
  hwmGrowthMb: number;
}

/** The pids of this process's children whose command line holds `argument` (a function's name). */
export function containerPids(argument: string, parent = process.pid): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.includes(argument)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** VmRSS and VmHWM in bytes, or undefined once the process is gone. */
function status(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return undefined;
  }
}

function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

interface Tracked {
  pid: number;
  baseline: number;
  peak: number;
  hwm: number;
  hwmReset: boolean;
}

/**
 * Takes the baseline of every container of `functionName` now, then samples them every
 * `intervalMs` (looking for new containers every `rescanMs`) until stopped.
 */
export function sampleContainerMemory(
  functionName: string,
  intervalMs = 20,
  rescanMs = 250,
): { stop(): MemoryPeak } {
  const tracked = new Map<number, Tracked>();
  const track = (pid: number, atBaseline: boolean) => {
    if (tracked.has(pid)) return;
    const hwmReset = resetPeak(pid);
    const now = status(pid);
    if (!now) return;
    tracked.set(pid, {
      pid,
      baseline: atBaseline ? now.rss : 0,
      peak: now.rss,
      hwm: now.hwm,
      hwmReset: atBaseline && hwmReset,
    });
  };
  for (const pid of containerPids(functionName)) track(pid, true);
  let samples = 0;
  let lastScan = performance.now();
  const sample = () => {
    if (performance.now() - lastScan >= rescanMs) {
      lastScan = performance.now();
      for (const pid of containerPids(functionName)) track(pid, false);
    }
    samples++;
    for (const t of tracked.values()) {
      const now = status(t.pid);
      if (!now) continue;
      if (now.rss > t.peak) t.peak = now.rss;
      if (now.hwm > t.hwm) t.hwm = now.hwm;
    }
  };
  const timer = setInterval(sample, intervalMs);
  let result: MemoryPeak | undefined;
  return {
    stop() {
      if (result) return result;
      clearInterval(timer);
      sample();
      const containers = [...tracked.values()];
      const top = containers.reduce<Tracked | undefined>(
        (best, t) => (!best || t.peak - t.baseline > best.peak - best.baseline ? t : best),
        undefined,
      );
      result = {
        samples,
        intervalMs,
        containers: containers.map((t) => ({
          pid: t.pid,
          baselineRssMb: t.baseline / MB,
          peakRssMb: t.peak / MB,
          hwmMb: t.hwm / MB,
          hwmReset: t.hwmReset,
        })),
        baselineRssMb: (top?.baseline ?? Number.NaN) / MB,
        peakRssMb: (top?.peak ?? Number.NaN) / MB,
        hwmMb: (top?.hwm ?? Number.NaN) / MB,
        rssGrowthMb: top ? (top.peak - top.baseline) / MB : Number.NaN,
        hwmGrowthMb: top?.hwmReset ? (top.hwm - top.baseline) / MB : Number.NaN,
      };
      return result;
    },
  };
}
