/**
 * The local Lambda runtime itself, with a probe function: containers are processes with their own
 * module state, one event at a time each, more of them for concurrent events up to the limit,
 * timeouts counted from when a container takes the event, and API Gateway's bare 500 for a function
 * that times out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositoryRoot } from '../../infra/local/emulator.ts';
import { bundleFunctions } from '../../infra/local/function-bundles.ts';
import { startGateway } from '../../infra/local/gateway.ts';
import {
  type ContainerSettings,
  type Invocation,
  type LambdaRuntime,
  type RuntimeCode,
  startLambdaRuntime,
} from '../../infra/local/lambda-runtime.ts';

const PROBE = join(repositoryRoot, 'test/fixtures/lambda/probe.ts');
let code: RuntimeCode;
let outdir: string;
const runtimes: LambdaRuntime[] = [];

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'lambda-runtime-'));
  // `public` is the function the gateway routes /v1/health to; here it is the probe.
  code = await bundleFunctions({ probe: PROBE, public: PROBE }, outdir);
});
afterAll(async () => {
  await Promise.all(runtimes.map((runtime) => runtime.stop()));
  rmSync(outdir, { recursive: true, force: true });
});

function runtime(settings: Partial<ContainerSettings> = {}, log?: (line: string) => void): LambdaRuntime {
  const definition = { timeoutSeconds: 5, memoryMb: 128, ...settings };
  const started = startLambdaRuntime({
    bundles: code,
    definitions: { probe: definition, public: definition },
    environment: { PATH: process.env.PATH ?? '' },
    ...(log ? { log } : {}),
  });
  runtimes.push(started);
  return started;
}

type Probe = { pid: number; invocations: number };
const probeOf = (invocation: Invocation): Probe => {
  if (invocation.status !== 'ok') throw new Error(`${invocation.status}: ${invocation.errorMessage}`);
  return invocation.result as Probe;
};

describe('the local Lambda runtime', () => {
  it('cold-starts a container once, logs its init time, and reuses it warm with its module state', async () => {
    const lines: string[] = [];
    const lambda = runtime({}, (line) => lines.push(line));
    const first = await lambda.invoke('probe', {});
    const second = await lambda.invoke('probe', {});
    const third = await lambda.invoke('probe', {});

    expect([first.coldStart, second.coldStart, third.coldStart]).toEqual([true, false, false]);
    expect(new Set([first, second, third].map((i) => probeOf(i).pid)).size).toBe(1);
    expect([first, second, third].map((i) => probeOf(i).invocations)).toEqual([1, 2, 3]);
    expect(probeOf(first).pid).not.toBe(process.pid);
    expect(lines).toEqual([expect.stringMatching(/^probe: container \d+ cold start, init \d+ ms$/)]);
  });

  it('gives concurrent events containers of their own, up to the limit, each with its own state', async () => {
    const lambda = runtime({ maxLocalContainers: 3 });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => lambda.invoke('probe', { sleepMs: 400 })),
    );

    const byPid = new Map<number, number[]>();
    for (const result of results) {
      const probe = probeOf(result);
      byPid.set(probe.pid, [...(byPid.get(probe.pid) ?? []), probe.invocations]);
    }
    expect(byPid.size).toBe(3);
    // Each container counted its own two events: its module state is not shared.
    for (const counts of byPid.values()) expect(counts.sort()).toEqual([1, 2]);
    expect(lambda.containerCounts()).toEqual({ probe: 3 });
  });

  it('counts the timeout from when a container takes the event, not while it waits for one', async () => {
    const lambda = runtime({ maxLocalContainers: 1, timeoutSeconds: 1 });
    const results = await Promise.all([
      lambda.invoke('probe', { sleepMs: 600 }),
      lambda.invoke('probe', { sleepMs: 600 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
  });

  it('stops an invocation at the timeout and replaces its container with a cold one', async () => {
    const lambda = runtime({ timeoutSeconds: 1 });
    const warm = probeOf(await lambda.invoke('probe', {}));
    const started = performance.now();
    const timedOut = await lambda.invoke('probe', { sleepMs: 10_000 });
    const waited = performance.now() - started;

    expect(timedOut).toMatchObject({ status: 'timeout', errorMessage: 'Task timed out after 1 seconds' });
    expect(waited).toBeLessThan(5000);
    const next = await lambda.invoke('probe', {});
    expect(next.coldStart).toBe(true);
    expect(probeOf(next).pid).not.toBe(warm.pid);
  });

  it('answers a thrown error as an error and a dead container as a crash, and carries on', async () => {
    const lambda = runtime();
    expect(await lambda.invoke('probe', { fail: 'throw' })).toMatchObject({
      status: 'error',
      errorType: 'Error',
      errorMessage: 'probe failed on purpose',
    });
    expect(await lambda.invoke('probe', { fail: 'exit' })).toMatchObject({ status: 'crash' });
    expect((await lambda.invoke('probe', {})).status).toBe('ok');
  });
});

describe('the local gateway on the runtime', () => {
  it('answers 503 until the stack is ready, then what the function answers', async () => {
    const gateway = await startGateway({ port: 0, runtime: runtime(), corsOrigins: [] });
    try {
      const starting = await fetch(`${gateway.url}/v1/health`);
      expect(starting.status).toBe(503);
      expect(starting.headers.get('retry-after')).toBe('1');
      expect(await starting.json()).toMatchObject({ type: '/problems/starting', status: 503 });

      gateway.markReady();
      const ready = await fetch(`${gateway.url}/v1/health`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ invocations: 1 });
    } finally {
      await gateway.close();
    }
  });

  it("answers a timed-out invocation as API Gateway does: a bare 500 with no function's words", async () => {
    const gateway = await startGateway({ port: 0, runtime: runtime({ timeoutSeconds: 1 }), corsOrigins: [] });
    gateway.markReady();
    try {
      const response = await fetch(`${gateway.url}/v1/health?sleepMs=5000`);
      expect(response.status).toBe(500);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(await response.json()).toEqual({ message: 'Internal Server Error' });
    } finally {
      await gateway.close();
    }
  });
});
