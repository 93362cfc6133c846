import type { LocalStack } from '../../infra/local/local-stack.ts';
import type { InvocationReport } from '../../infra/local/queue-pump.ts';
import type { QueueWorkerName } from '../../shared/api/functions.ts';
import { objectsCreated } from '../../shared/domain/s3-events.ts';

/** Resolves with the first invocation of `worker` whose S3 event names `key`. */
export function nextInvocationFor(
  stack: LocalStack,
  worker: QueueWorkerName,
  key: string,
  timeoutMs = 20_000,
): Promise<InvocationReport> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stack.pump.events.off('invocation', listener);
      reject(new Error(`${worker} was not invoked for ${key} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (report: InvocationReport) => {
      if (report.worker !== worker) return;
      const keys = report.event.Records.flatMap((r) => objectsCreated(r.body).map((o) => o.key));
      if (!keys.includes(key)) return;
      clearTimeout(timer);
      stack.pump.events.off('invocation', listener);
      resolve(report);
    };
    stack.pump.events.on('invocation', listener);
  });
}

/** Collects every invocation while `during` runs, then waits `settleMs` for stragglers. */
export async function invocationsDuring(stack: LocalStack, during: () => Promise<void>, settleMs = 3000) {
  const seen: InvocationReport[] = [];
  const listener = (report: InvocationReport) => seen.push(report);
  stack.pump.events.on('invocation', listener);
  try {
    await during();
    await new Promise((r) => setTimeout(r, settleMs));
  } finally {
    stack.pump.events.off('invocation', listener);
  }
  return seen;
}
