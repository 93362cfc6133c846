/**
 * One local Lambda container: a child process of the local runtime (lambda-runtime.ts) that imports
 * one function's bundle at start (its cold start), then handles one event at a time, as Lambda's
 * Node.js runtime does. Module state (caches, rate limiters, a store's last-seen revision) is this
 * container's own. Everything it writes to stdout and stderr goes to the runtime over the IPC
 * channel, in order with its answers, the way Lambda's runtime captures a function's console.
 */
import { pathToFileURL } from 'node:url';
import { lambdaContext } from './lambda-context.ts';

export type ToContainer = { type: 'invoke'; id: number; event: unknown };
export type FromContainer =
  | { type: 'ready'; initMs: number }
  | { type: 'init-error'; errorType: string; errorMessage: string }
  | { type: 'log'; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; errorType: string; errorMessage: string; stack?: string };

// biome-ignore lint/suspicious/noExplicitAny: handlers of different event types share this loader
type AnyHandler = (event: any, context: any) => Promise<any>;

const send = (message: FromContainer) =>
  new Promise<void>((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });

for (const stream of ['stdout', 'stderr'] as const) {
  process[stream].write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    void send({
      type: 'log',
      stream,
      text: typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(),
    });
    const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof process.stdout.write;
}

// The runtime that started this container is gone: so is the container.
process.on('disconnect', () => process.exit(0));

const [entry, name, timeoutSeconds, memoryMb] = process.argv.slice(2);
if (!entry || !name)
  throw new Error('usage: lambda-container <bundle> <function name> <timeout s> <memory MB>');
const definition = { timeoutSeconds: Number(timeoutSeconds), memoryMb: Number(memoryMb) };

const errorFields = (error: unknown) => ({
  errorType: error instanceof Error ? error.name : 'Error',
  errorMessage: error instanceof Error ? error.message : String(error),
});

let handler: AnyHandler;
const started = performance.now();
try {
  const module = (await import(pathToFileURL(entry).href)) as { handler?: unknown };
  if (typeof module.handler !== 'function') throw new Error(`${entry} exports no handler`);
  handler = module.handler as AnyHandler;
} catch (error) {
  await send({ type: 'init-error', ...errorFields(error) });
  process.exit(1);
}
await send({ type: 'ready', initMs: Math.round(performance.now() - started) });

process.on('message', async (message: ToContainer) => {
  if (message.type !== 'invoke') return;
  try {
    const result = await handler(message.event, lambdaContext(name, definition));
    await send({ type: 'result', id: message.id, result });
  } catch (error) {
    await send({
      type: 'error',
      id: message.id,
      ...errorFields(error),
      ...(error instanceof Error && error.stack ? { stack: error.stack } : {}),
    });
  }
});
