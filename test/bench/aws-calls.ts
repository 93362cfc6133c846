/**
 * Counts the AWS requests the in-process functions send, per service and command, by adding a
 * middleware to the container's singleton clients (the ones `shared/adapters/aws-clients.ts` hands
 * to every adapter). The middleware sits in the deserialize step, inside the SDK's retry loop and
 * after the presigners stop: it counts each HTTP request that really goes to the emulator (a retry
 * counts again), and never a presigned URL.
 */
export type AwsService = 'dynamodb' | 's3' | 'sqs';

/** Requests per `service:Command`. */
export type CallCounts = Record<string, number>;

type Handler = (args: any) => Promise<any>;

/** What the counter needs of a client (the SDK's clients all fit): its middleware stack's deserialize step. */
interface CountableClient {
  middlewareStack: {
    add(
      middleware: (next: Handler, context: { commandName?: string }) => Handler,
      options: { step: 'deserialize'; name: string; priority: 'low'; override: boolean },
    ): void;
  };
}

export class AwsCallCounter {
  private counts = new Map<string, number>();
  private times = new Map<string, number>();
  private counting = false;

  /** Counts the client's requests from now on (while `start`ed). */
  attach(service: AwsService, client: CountableClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (!this.counting) return next(args);
        const key = `${service}:${(context.commandName ?? 'unknown').replace(/Command$/, '')}`;
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
        const started = performance.now();
        try {
          return await next(args);
        } finally {
          this.times.set(key, (this.times.get(key) ?? 0) + performance.now() - started);
        }
      },
      { step: 'deserialize', name: 'benchAwsCallCounter', priority: 'low', override: true },
    );
  }

  /** Clears the counts and starts counting. */
  start(): void {
    this.counts.clear();
    this.times.clear();
    this.counting = true;
  }

  /** Stops counting and returns what was counted since `start`. */
  stop(): CallCounts {
    this.counting = false;
    return sorted(this.counts);
  }

  /** Milliseconds spent waiting for each command's answers since `start` (overlapping calls add up). */
  waited(): CallCounts {
    return sorted(this.times);
  }
}

function sorted(map: Map<string, number>): CallCounts {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

export function totalOf(counts: CallCounts, service: AwsService): number {
  let total = 0;
  for (const [key, value] of Object.entries(counts)) if (key.startsWith(`${service}:`)) total += value;
  return total;
}

/** `a - b × times`, command by command (what remains once a known share of calls is taken out). */
export function subtractCounts(a: CallCounts, b: CallCounts, times: number): CallCounts {
  const result: CallCounts = { ...a };
  for (const [key, value] of Object.entries(b)) result[key] = (result[key] ?? 0) - value * times;
  return Object.fromEntries(Object.entries(result).filter(([, value]) => value !== 0));
}

/** `dynamodb:TransactWriteItems 300, dynamodb:GetItem 2` */
export function describeCounts(counts: CallCounts, per = 1): string {
  const entries = Object.entries(counts);
  if (entries.length === 0) return '(none)';
  return entries.map(([key, value]) => `${key} ${per === 1 ? value : (value / per).toFixed(3)}`).join(', ');
}
