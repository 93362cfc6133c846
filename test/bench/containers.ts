/**
 * Which of a function's containers served a stretch of the bench, and the cold starts it saw: from
 * the local runtime's `invocation` records and the runtime's log lines
 * (`<fn>: container N cold start, init X ms`, see infra/local/lambda-runtime.ts).
 */
import type { InvocationRecord, LambdaRuntime } from '../../infra/local/lambda-runtime.ts';
import { median } from './stats.ts';

export interface ContainerUse {
  function: string;
  /** Distinct containers that served the measured part (all of it when there was no `measure`). */
  served: number;
  /** Invocations of the function in the measured part. */
  invocations: number;
  /** The function's containers (busy or idle) when the stretch ended. */
  running: number;
  /** Cold starts in the whole stretch, warm-up included, and in the measured part alone. */
  coldStarts: number;
  coldStartsMeasured: number;
  /** Median init (the bundle's import) of the stretch's cold starts, from the runtime's log. */
  medianInitMs: number | null;
  /** Median duration of the cold invocations (init included: timed from when a container took the event). */
  medianColdInvocationMs: number | null;
  /** Invocations that did not end `ok`. */
  failed: number;
}

const COLD_START = /^(\S+): container (\d+) cold start, init (\d+) ms/;

/** Cold starts in log lines, per function: init milliseconds in order. */
export function coldStartsInLog(lines: readonly string[]): Map<string, number[]> {
  const found = new Map<string, number[]>();
  for (const line of lines) {
    const match = COLD_START.exec(line);
    if (!match) continue;
    const [, name = '', , ms = '0'] = match;
    const list = found.get(name) ?? [];
    list.push(Number(ms));
    found.set(name, list);
  }
  return found;
}

const medianOrNull = (values: number[]) => (values.length ? median(values) : null);

/** Watches one function from `begin` (warm-up) over `measure` (the measured part) to `end`. */
export class ContainerWatch {
  private records: { record: InvocationRecord; measured: boolean }[] = [];
  private measuring = false;
  private logStart = 0;
  private readonly listener = (record: InvocationRecord) => {
    if (record.name === this.functionName) this.records.push({ record, measured: this.measuring });
  };

  constructor(
    private readonly runtime: LambdaRuntime,
    private readonly log: readonly string[],
    private readonly functionName: string,
  ) {
    this.logStart = log.length;
    runtime.events.on('invocation', this.listener);
  }

  measure(): void {
    this.measuring = true;
  }

  end(): ContainerUse {
    this.runtime.events.off('invocation', this.listener);
    const anyMeasured = this.measuring;
    const measured = this.records.filter((r) => r.measured || !anyMeasured).map((r) => r.record);
    const all = this.records.map((r) => r.record);
    const cold = all.filter((r) => r.coldStart);
    const inits = coldStartsInLog(this.log.slice(this.logStart)).get(this.functionName) ?? [];
    return {
      function: this.functionName,
      served: new Set(measured.map((r) => r.container)).size,
      invocations: measured.length,
      running: this.runtime.containerCounts()[this.functionName] ?? 0,
      coldStarts: cold.length,
      coldStartsMeasured: measured.filter((r) => r.coldStart).length,
      medianInitMs: medianOrNull(inits),
      medianColdInvocationMs: medianOrNull(cold.map((r) => r.durationMs)),
      failed: all.filter((r) => r.status !== 'ok').length,
    };
  }
}
