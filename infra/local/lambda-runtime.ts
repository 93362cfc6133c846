/**
 * The local stand-in for Lambda's execution model. A container is a child process with its own
 * module state (lambda-container.ts) that handles one event at a time; concurrent events for a
 * function go to more containers, up to its `maxLocalContainers`. A new container cold-starts (its
 * init time is logged) and an idle one is reused. Each invocation gets the function's timeout,
 * counted from when a container takes the event; a container that times out or crashes is thrown
 * away, as Lambda does.
 *
 * Kinder than AWS in one way: an event beyond the container limit waits for a free container, where
 * Lambda would start another one or throttle.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { type FunctionDefinition, functions } from '../../shared/api/functions.ts';
import type { FromContainer, ToContainer } from './lambda-container.ts';

/** Containers per function unless its definition or the runtime's options say otherwise. */
export const DEFAULT_MAX_LOCAL_CONTAINERS = 8;

export type Invocation =
  | { status: 'ok'; result: unknown; container: number; coldStart: boolean }
  | {
      /** The handler threw (`error`), ran past its timeout, or its container died or failed to start. */
      status: 'error' | 'timeout' | 'crash';
      errorType: string;
      errorMessage: string;
      container: number;
      coldStart: boolean;
    };

/** What the runtime needs of a function: how long it may run, its memory, its container limit. */
export type ContainerSettings = Pick<
  FunctionDefinition,
  'timeoutSeconds' | 'memoryMb' | 'maxLocalContainers'
>;

/** Where the code is: the container bootstrap and each function's bundle (see function-bundles.ts). */
export interface RuntimeCode {
  container: string;
  entry(name: string): string;
}

/** Told after every invocation, for logs and tests. */
export interface InvocationRecord {
  name: string;
  container: number;
  coldStart: boolean;
  status: Invocation['status'];
  /** From when a container took the event to its answer. */
  durationMs: number;
}

export interface LambdaRuntimeOptions {
  bundles: RuntimeCode;
  /** The functions it can run (default: the service's function table). */
  definitions?: Record<string, ContainerSettings>;
  /** Every container's environment (the variables its stack would give the function). */
  environment: Record<string, string | undefined>;
  /** Raises or lowers every function's container limit (the bench raises it). */
  maxContainers?: number;
  log?: (line: string) => void;
}

export interface LambdaRuntime {
  invoke(name: string, event: unknown): Promise<Invocation>;
  /** How many containers each function has now (busy or idle). */
  containerCounts(): Record<string, number>;
  events: EventEmitter<{ invocation: [InvocationRecord] }>;
  stop(): Promise<void>;
}

interface Container {
  id: number;
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
  invoked: boolean;
  /** Killed or exited: never handed another event. */
  dead: boolean;
  exited: Promise<void>;
}

interface Pool {
  containers: Container[];
  waiting: ((container: Container) => void)[];
}

export function startLambdaRuntime(options: LambdaRuntimeOptions): LambdaRuntime {
  const log = options.log ?? (() => {});
  const definitions: Record<string, ContainerSettings> = options.definitions ?? functions;
  const definitionOf = (name: string): ContainerSettings => {
    const definition = definitions[name];
    if (!definition) throw new Error(`No function ${name}`);
    return definition;
  };
  const events = new EventEmitter<{ invocation: [InvocationRecord] }>();
  const pools = new Map<string, Pool>();
  let nextContainerId = 1;
  let nextInvocationId = 1;
  let stopped = false;

  const poolOf = (name: string) => {
    let pool = pools.get(name);
    if (!pool) {
      pool = { containers: [], waiting: [] };
      pools.set(name, pool);
    }
    return pool;
  };

  const limitOf = (name: string) =>
    options.maxContainers ?? definitionOf(name).maxLocalContainers ?? DEFAULT_MAX_LOCAL_CONTAINERS;

  const startContainer = (name: string): Container => {
    const definition = definitionOf(name);
    const child = fork(
      options.bundles.container,
      [options.bundles.entry(name), name, String(definition.timeoutSeconds), String(definition.memoryMb)],
      {
        env: options.environment,
        // Not the parent's flags (a test runner's loaders); source maps make stack traces readable.
        execArgv: ['--enable-source-maps'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      },
    );
    const id = nextContainerId++;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromContainer) => {
        if (message.type === 'ready') {
          log(`${name}: container ${id} cold start, init ${message.initMs} ms`);
          child.off('message', onMessage);
          resolve();
        } else if (message.type === 'init-error') {
          child.off('message', onMessage);
          reject(Object.assign(new Error(message.errorMessage), { name: message.errorType }));
        }
      };
      child.on('message', onMessage);
      child.once('exit', (code) =>
        reject(
          Object.assign(new Error(`container exited during init (code ${code})`), {
            name: 'Runtime.ExitError',
          }),
        ),
      );
    });
    ready.catch(() => {});
    child.on('message', (message: FromContainer) => {
      if (message.type === 'log') process[message.stream].write(message.text);
    });
    const container: Container = { id, child, ready, busy: false, invoked: false, dead: false, exited };
    void exited.then(() => {
      container.dead = true;
      const pool = poolOf(name);
      pool.containers = pool.containers.filter((c) => c !== container);
    });
    return container;
  };

  /** An idle container, a new one, or the next one to come free. */
  const acquire = (name: string): Promise<Container> => {
    const pool = poolOf(name);
    const idle = pool.containers.find((c) => !c.busy && !c.dead);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    if (pool.containers.length < limitOf(name)) {
      const container = startContainer(name);
      container.busy = true;
      pool.containers.push(container);
      return Promise.resolve(container);
    }
    return new Promise((resolve) => pool.waiting.push(resolve));
  };

  const release = (name: string, container: Container) => {
    const pool = poolOf(name);
    if (container.dead || !container.child.connected) {
      pool.containers = pool.containers.filter((c) => c !== container);
      const next = pool.waiting.shift();
      if (next) {
        // The dead container's place goes to a new one for whoever waits longest.
        const fresh = startContainer(name);
        fresh.busy = true;
        pool.containers.push(fresh);
        next(fresh);
      }
      return;
    }
    const next = pool.waiting.shift();
    if (next) next(container);
    else container.busy = false;
  };

  const kill = (container: Container) => {
    container.dead = true;
    if (container.child.exitCode === null && container.child.signalCode === null)
      container.child.kill('SIGKILL');
  };

  const run = async (name: string, container: Container, event: unknown): Promise<Invocation> => {
    const coldStart = !container.invoked;
    container.invoked = true;
    const failed = (status: 'error' | 'timeout' | 'crash', errorType: string, errorMessage: string) =>
      ({ status, errorType, errorMessage, container: container.id, coldStart }) as const;
    try {
      await container.ready;
    } catch (error) {
      kill(container);
      const e = error as Error;
      return failed('crash', e.name, e.message);
    }
    const id = nextInvocationId++;
    const { timeoutSeconds } = definitionOf(name);
    return new Promise<Invocation>((resolve) => {
      const { child } = container;
      const finish = (invocation: Invocation) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(invocation);
      };
      const onMessage = (message: FromContainer) => {
        if (message.type === 'result' && message.id === id)
          finish({ status: 'ok', result: message.result, container: container.id, coldStart });
        else if (message.type === 'error' && message.id === id)
          finish(failed('error', message.errorType, message.errorMessage));
      };
      const onExit = (code: number | null, signal: string | null) =>
        finish(failed('crash', 'Runtime.ExitError', `container exited (${signal ?? `code ${code}`})`));
      const timer = setTimeout(() => {
        log(`${name}: container ${container.id} timed out after ${timeoutSeconds} s`);
        kill(container);
        finish(failed('timeout', 'Sandbox.Timedout', `Task timed out after ${timeoutSeconds} seconds`));
      }, timeoutSeconds * 1000);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ type: 'invoke', id, event } satisfies ToContainer);
    });
  };

  return {
    async invoke(name, event) {
      if (stopped) throw new Error('The local Lambda runtime is stopped.');
      definitionOf(name);
      const container = await acquire(name);
      const started = performance.now();
      let invocation: Invocation | undefined;
      try {
        invocation = await run(name, container, event);
        return invocation;
      } finally {
        release(name, container);
        if (invocation) {
          events.emit('invocation', {
            name,
            container: invocation.container,
            coldStart: invocation.coldStart,
            status: invocation.status,
            durationMs: performance.now() - started,
          });
        }
      }
    },
    events,
    containerCounts() {
      return Object.fromEntries([...pools].map(([name, pool]) => [name, pool.containers.length]));
    },
    async stop() {
      stopped = true;
      const all = [...pools.values()].flatMap((pool) => pool.containers);
      for (const container of all) {
        if (container.child.connected) container.child.disconnect();
      }
      const timer = setTimeout(() => all.forEach(kill), 2000);
      await Promise.all(all.map((c) => c.exited));
      clearTimeout(timer);
    },
  };
}
