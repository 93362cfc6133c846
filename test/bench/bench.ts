/**
 * The service's benchmark (`npm run bench`): starts the whole service on the local runtime (the
 * gateway and the queue pump in this process, each function in Lambda-like child-process containers,
 * up to MAX_CONTAINERS per function) on an emulator of its own (the project's moto, with transactions
 * that do not copy whole tables: see infra/local/moto_server.py) behind a counting proxy
 * (aws-calls.ts), and measures
 * 1. sync predictions over HTTP (iris and digits; 1 caller, and 16 concurrent callers each paying
 *    from an account of its own) beside the same model's raw onnxruntime `session.run` on the same
 *    single-row inputs (in this process), the AWS requests the functions make per prediction (with
 *    an access token, and with an API key), the containers that served each case and the cold
 *    starts seen; then, briefly, 16 callers charging one account (containers racing on it);
 * 2. 100,000-row CSV batches from the PUT of the file to the results file, beside (a) the model
 *    alone on the same rows in the worker's chunks and (b) a bare stream-parse-predict-upload
 *    pipeline on the same file, and the peak RSS of the batch worker's container.
 * Prints a report (tables on stdout) and writes test-artifacts/bench.json. Speed and memory goals
 * live here only, never in timed unit tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { type Emulator, repositoryRoot, startEmulator } from '../../infra/local/emulator.ts';
import type { InvocationRecord } from '../../infra/local/lambda-runtime.ts';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { loadModel, type ModelRunner } from '../../shared/adapters/onnx-runtime.ts';
import { inboxKey } from '../../shared/domain/object-keys.ts';
import { signIn, signUp } from '../support/api.ts';
import { AwsCallCounter, type CallCounts, describeCounts, subtractCounts, totalOf } from './aws-calls.ts';
import { barePipeline, type PipelineRun, rawModelRows } from './batch-pipelines.ts';
import { type ContainerUse, ContainerWatch, coldStartsInLog } from './containers.ts';
import { BenchHttpClient, type HttpAnswer, putTo } from './http-client.ts';
import { type MemoryPeak, sampleContainerMemory } from './memory.ts';
import { heading, num, table } from './report.ts';
import {
  type BenchModel,
  type GoldenCase,
  goldenCases,
  MODEL_SHAPES,
  modelBytes,
  perturbedRows,
  toCsvFile,
} from './rows.ts';
import { closedLoop, median, type RunSummary } from './stats.ts';

const MODELS: BenchModel[] = ['iris', 'digits'];

interface SyncPlan {
  concurrency: number;
  warmup: number;
  requests: number;
  /**
   * Whose credits pay: the bench user's (`one`), or each caller its own user's (`per-caller`). One
   * account charged from many containers at once is a different workload: the containers race on
   * the account's revision (see ONE_ACCOUNT_PLAN).
   */
  accounts: 'one' | 'per-caller';
  /** Count answers other than 201 instead of stopping the bench. */
  tolerateFailures?: boolean;
}

const SYNC_PLAN: SyncPlan[] = [
  { concurrency: 1, warmup: 50, requests: 300, accounts: 'one' },
  { concurrency: 16, warmup: 200, requests: 2000, accounts: 'per-caller' },
];
const API_KEY_PLAN: SyncPlan = { concurrency: 1, warmup: 30, requests: 300, accounts: 'one' };
/**
 * 16 callers charging one account, each in a container of its own (iris only, after the other
 * cases, so the containers are warm): a container that lost the race for the account's revision
 * retries at once, and a container can lose for longer than the function's 29 s timeout, which
 * the gateway answers with a bare 500. Short, and its failures are counted, not fatal.
 */
const ONE_ACCOUNT_PLAN: SyncPlan = {
  concurrency: 16,
  warmup: 0,
  requests: 160,
  accounts: 'one',
  tolerateFailures: true,
};
const BATCH_ROWS = 100_000;
const WARMUP_BATCH_ROWS = 1_000;
/** Runs of each reference pipeline per model; the report takes the median. */
const BARE_RUNS = 3;
const RAW_RUNS = 5;
const POLL_MS = 100;
const MEMORY_SAMPLE_MS = 20;
const BATCH_TIMEOUT_MS = 10 * 60_000;
/** Containers per function: as many as the most concurrent callers, so each gets one. */
const MAX_CONTAINERS = Math.max(...SYNC_PLAN.map((plan) => plan.concurrency));

/** Configuration of the functions, read at their containers' cold start (and by this process's own copy). */
const FUNCTION_ENV: Record<string, string> = {
  LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  PREDICTIONS_PER_MINUTE: '100000000',
  SCRYPT_LOG2_N: '12',
  SIGNUP_BONUS: '0',
  // The bench's tokens must outlive the run (a slow machine takes more than the default 15 min).
  ACCESS_TOKEN_TTL_SECONDS: '7200',
};
const ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password' };
const CREDITS = 50_000_000;
/** Credits for each per-caller user. */
const CALLER_CREDITS = 5_000_000;

interface SyncResult {
  model: BenchModel;
  credential: 'access-token' | 'api-key';
  concurrency: number;
  /** Users whose accounts were charged (1, or one per caller). */
  accounts: number;
  warmup: number;
  /** Latency and throughput of every request, failed ones included. */
  service: RunSummary;
  /** Measured requests answered with another status than 201, per status. */
  failures: Record<string, number>;
  raw?: RunSummary;
  awsCalls: CallCounts;
  /** Milliseconds waited per request, command by command (the emulator's share of the latency). */
  awsMsPerCall: CallCounts;
  perPrediction: { dynamodb: number; s3: number; sqs: number };
  /** The predict function's containers: those that served the measured requests, cold starts. */
  containers: ContainerUse;
}

interface BatchResult {
  model: BenchModel;
  rows: number;
  chunkSize: number;
  fileBytes: number;
  service: {
    batchId: string;
    status: string;
    succeeded: number;
    failed: number;
    cost: number;
    putMs: number;
    /** From the start of the PUT to the poll that saw `succeeded`. */
    endToEndMs: number;
    /** From the start of the PUT to the worker's invocation returning. */
    workerDoneMs: number | undefined;
    rowsPerSecond: number;
    polls: number;
    /** RSS of the batch worker's container process(es), not a V8 heap. */
    memory: MemoryPeak;
    /** The batch worker's containers during the run. */
    containers: ContainerUse;
    /** Every AWS request during the run, the bench's polls included. */
    awsCalls: CallCounts;
    /** The same without the polls' share (the worker's, and the API side's create-less part). */
    workerAwsCalls: CallCounts;
    /** Milliseconds the worker waited on DynamoDB (its calls are awaited one after another). */
    workerDynamoWaitMs: number;
    labelsMatchRaw: boolean;
    labelMismatches: number;
  };
  bare: { runs: PipelineRun[]; medianRowsPerSecond: number };
  raw: { runs: PipelineRun[]; medianRowsPerSecond: number };
  ratios: { serviceOverBare: number; serviceOverRaw: number };
}

/** Cold starts per function over the whole run. */
type ColdStarts = Record<
  string,
  {
    count: number;
    medianInitMs: number | null;
    maxInitMs: number | null;
    medianColdInvocationMs: number | null;
    containersAtEnd: number;
  }
>;

const log: string[] = [];
const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function environment() {
  const ortPackage = JSON.parse(
    await readFile(join(repositoryRoot, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'),
  ) as { version: string };
  const moto = (await readFile(join(repositoryRoot, 'infra', 'local', 'emulator-requirements.txt'), 'utf8'))
    .split('\n')
    .find((line) => line.includes('moto'))
    ?.trim();
  const cpu = cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpuModel: cpu[0]?.model ?? 'unknown',
    cpuCount: cpu.length,
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    onnxruntimeNode: ortPackage.version,
    emulator: `${moto ?? 'moto'} via infra/local/moto_server.py (serialised DynamoDB, transactions without whole-table copies), behind the bench's counting proxy`,
  };
}

/** The user's side of the service over HTTP. */
class Caller {
  constructor(
    readonly http: BenchHttpClient,
    readonly credential: string,
  ) {}

  async json(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const answer = await this.http.send(method, path, body === undefined ? undefined : JSON.stringify(body), {
      authorization: `Bearer ${this.credential}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    });
    return { status: answer.status, body: answer.body ? JSON.parse(answer.body) : undefined };
  }

  /** One prediction from a ready JSON body, whatever the answer. */
  send(model: BenchModel, body: string): Promise<HttpAnswer> {
    return this.http.send('POST', `/v1/models/${model}/predictions`, body, {
      authorization: `Bearer ${this.credential}`,
      'content-type': 'application/json',
    });
  }

  /** One prediction from a ready JSON body; throws unless 201. */
  async predict(model: BenchModel, body: string): Promise<string> {
    const answer = await this.send(model, body);
    if (answer.status !== 201) throw new Error(`prediction on ${model}: ${answer.status} ${answer.body}`);
    return answer.body;
  }
}

// 1. Sync predictions.

/** `3 containers served 300 invocations (4 running); 2 cold starts, init 480 ms, first invocation 510 ms` */
function describeContainers(use: ContainerUse): string {
  const ms = (value: number | null) => (value === null ? '–' : `${num(value, 0)} ms`);
  return (
    `${use.served} container${use.served === 1 ? '' : 's'} served ${use.invocations} invocations (${use.running} running); ` +
    `${use.coldStarts} cold start${use.coldStarts === 1 ? '' : 's'}${use.coldStartsMeasured ? ` (${use.coldStartsMeasured} while measured)` : ''}` +
    (use.coldStarts
      ? `, median init ${ms(use.medianInitMs)}, cold invocation ${ms(use.medianColdInvocationMs)}`
      : '') +
    (use.failed ? `; ${use.failed} FAILED invocations` : '')
  );
}

function predictionBodies(cases: GoldenCase[], inputName: string): string[] {
  return cases.map((c) => JSON.stringify({ inputs: { [inputName]: [c.row] } }));
}

/** The golden labels come back from the service (so both sides really run the same inputs). */
async function checkLabels(caller: Caller, model: BenchModel, cases: GoldenCase[], bodies: string[]) {
  for (const [i, c] of cases.entries()) {
    const answer = JSON.parse(await caller.predict(model, bodies[i] as string)) as {
      outputs: { label: number[] };
    };
    if (answer.outputs.label[0] !== c.label)
      throw new Error(
        `${model} golden case ${i}: the service says ${answer.outputs.label[0]}, expected ${c.label}`,
      );
  }
}

async function rawSync(runner: ModelRunner, cases: GoldenCase[], plan: SyncPlan): Promise<RunSummary> {
  const inputName = runner.inputs[0]?.name ?? 'input';
  const call = async (i: number) => {
    const row = (cases[i % cases.length] as GoldenCase).row;
    await runner.run([
      { name: inputName, type: 'float32', dims: [1, row.length], data: Float32Array.from(row) },
    ]);
  };
  await closedLoop(plan.warmup, plan.concurrency, call);
  return closedLoop(plan.requests, plan.concurrency, call);
}

/** Caller number `caller` of the closed loop sends with `callers[caller]` (so one user's requests come one after another). */
async function serviceSync(
  callers: Caller[],
  model: BenchModel,
  bodies: string[],
  plan: SyncPlan,
  counter: AwsCallCounter,
  stack: LocalStack,
): Promise<{
  summary: RunSummary;
  failures: Record<string, number>;
  awsCalls: CallCounts;
  awsMsPerCall: CallCounts;
  containers: ContainerUse;
}> {
  let failures: Record<string, number> = {};
  const call = async (i: number, worker: number) => {
    const caller = callers[worker % callers.length] as Caller;
    const answer = await caller.send(model, bodies[i % bodies.length] as string);
    if (answer.status === 201) return;
    if (!plan.tolerateFailures)
      throw new Error(`prediction on ${model}: ${answer.status} ${answer.body.slice(0, 500)}`);
    failures[answer.status] = (failures[answer.status] ?? 0) + 1;
  };
  const watch = new ContainerWatch(stack.runtime, log, 'predict');
  let containers: ContainerUse | undefined;
  try {
    await closedLoop(plan.warmup, plan.concurrency, call);
    failures = {};
    watch.measure();
    counter.start();
    const summary = await closedLoop(plan.requests, plan.concurrency, call);
    const awsCalls = counter.stop();
    const waited = counter.waited();
    containers = watch.end();
    const awsMsPerCall = Object.fromEntries(
      Object.entries(waited).map(([command, ms]) => [command, ms / (awsCalls[command] ?? 1)]),
    );
    return { summary, failures, awsCalls, awsMsPerCall, containers };
  } finally {
    counter.stop();
    if (!containers) watch.end();
  }
}

function perPrediction(calls: CallCounts, predictions: number) {
  return {
    dynamodb: totalOf(calls, 'dynamodb') / predictions,
    s3: totalOf(calls, 's3') / predictions,
    sqs: totalOf(calls, 'sqs') / predictions,
  };
}

async function benchSync(
  token: Caller,
  perCaller: Caller[],
  apiKey: Caller,
  runners: Map<BenchModel, ModelRunner>,
  counter: AwsCallCounter,
  stack: LocalStack,
): Promise<SyncResult[]> {
  const results: SyncResult[] = [];
  const run = async (
    model: BenchModel,
    credential: SyncResult['credential'],
    plan: SyncPlan,
    bodies: string[],
    raw?: { runner: ModelRunner; cases: GoldenCase[] },
  ) => {
    const callers = credential === 'api-key' ? [apiKey] : plan.accounts === 'one' ? [token] : perCaller;
    const what = `${model} ${credential} c=${plan.concurrency}, ${callers.length} account${callers.length === 1 ? '' : 's'}`;
    progress(`sync ${what}: ${plan.requests} requests over HTTP`);
    const service = await serviceSync(callers, model, bodies, plan, counter, stack);
    let rawSummary: RunSummary | undefined;
    if (raw) {
      progress(`sync ${what}: ${plan.requests} raw session.run calls`);
      rawSummary = await rawSync(raw.runner, raw.cases, plan);
    }
    results.push({
      model,
      credential,
      concurrency: plan.concurrency,
      accounts: callers.length,
      warmup: plan.warmup,
      service: service.summary,
      failures: service.failures,
      ...(rawSummary ? { raw: rawSummary } : {}),
      awsCalls: service.awsCalls,
      awsMsPerCall: service.awsMsPerCall,
      perPrediction: perPrediction(service.awsCalls, plan.requests),
      containers: service.containers,
    });
    const failed = Object.values(service.failures).reduce((a, b) => a + b, 0);
    progress(
      `sync ${what}: ${num(service.summary.perSecond, 1)}/s, p50 ${num(service.summary.p50Ms, 1)} ms` +
        `${failed ? `, ${failed} FAILED (${JSON.stringify(service.failures)})` : ''}; ${describeContainers(service.containers)}`,
    );
  };
  for (const model of MODELS) {
    const runner = runners.get(model) as ModelRunner;
    const cases = await goldenCases(model);
    const bodies = predictionBodies(cases, runner.inputs[0]?.name ?? 'input');
    await checkLabels(token, model, cases, bodies);
    for (const plan of SYNC_PLAN) await run(model, 'access-token', plan, bodies, { runner, cases });
    await run(model, 'api-key', API_KEY_PLAN, bodies);
  }
  const probeModel = MODELS[0] as BenchModel;
  const probeRunner = runners.get(probeModel) as ModelRunner;
  const probeBodies = predictionBodies(await goldenCases(probeModel), probeRunner.inputs[0]?.name ?? 'input');
  await run(probeModel, 'access-token', ONE_ACCOUNT_PLAN, probeBodies);
  return results;
}

// 2. Batches.

interface ServiceBatchRun {
  batch: any;
  putMs: number;
  endToEndMs: number;
  workerDoneMs: number | undefined;
  polls: number;
  awsCalls: CallCounts;
  awsWaitMs: CallCounts;
  memory: MemoryPeak | undefined;
  containers: ContainerUse;
}

async function runServiceBatch(
  caller: Caller,
  stack: LocalStack,
  model: BenchModel,
  file: Buffer,
  counter: AwsCallCounter,
  measureMemory: boolean,
): Promise<ServiceBatchRun> {
  const created = await caller.json('POST', '/v1/batches', { modelId: model, format: 'csv' });
  if (created.status !== 201)
    throw new Error(`POST /v1/batches: ${created.status} ${JSON.stringify(created.body)}`);
  const { id, upload } = created.body as {
    id: string;
    upload: { url: string; headers: Record<string, string> };
  };

  let workerDoneAt: number | undefined;
  const onInvocation = (report: { worker: string; error?: unknown }) => {
    if (report.worker !== 'batch-worker') return;
    workerDoneAt = performance.now();
    if (report.error) log.push(`batch worker failed: ${(report.error as Error).message}`);
  };
  stack.pump.events.on('invocation', onInvocation);

  const watch = new ContainerWatch(stack.runtime, log, 'batch-worker');
  let containers: ContainerUse | undefined;
  const memory = measureMemory ? sampleContainerMemory('batch-worker', MEMORY_SAMPLE_MS) : undefined;
  counter.start();
  const started = performance.now();
  try {
    await putTo(upload.url, upload.headers, file);
    const putMs = performance.now() - started;
    let polls = 0;
    for (;;) {
      const answer = await caller.json('GET', `/v1/batches/${id}`);
      polls++;
      if (answer.status !== 200) throw new Error(`GET /v1/batches/${id}: ${answer.status}`);
      if (answer.body.status === 'succeeded' || answer.body.status === 'failed') {
        const endToEndMs = performance.now() - started;
        const awsCalls = counter.stop();
        const awsWaitMs = counter.waited();
        const peak = memory?.stop();
        // The worker's invocation ends just after the status changes (the pump deletes the message).
        for (let i = 0; i < 50 && workerDoneAt === undefined; i++) await sleep(20);
        containers = watch.end();
        return {
          batch: answer.body,
          putMs,
          endToEndMs,
          workerDoneMs: workerDoneAt === undefined ? undefined : workerDoneAt - started,
          polls,
          awsCalls,
          awsWaitMs,
          memory: peak,
          containers,
        };
      }
      if (performance.now() - started > BATCH_TIMEOUT_MS)
        throw new Error(`batch ${id} did not finish in time: ${JSON.stringify(answer.body)}`);
      await sleep(POLL_MS);
    }
  } finally {
    // After a failure too (both stops are idempotent).
    counter.stop();
    memory?.stop();
    if (!containers) watch.end();
    stack.pump.events.off('invocation', onInvocation);
  }
}

/** The label column (the first output) of a CSV results file, row by row. */
async function resultLabels(url: string): Promise<number[]> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`results GET: ${response.status}`);
  const lines = (await response.text()).split('\n');
  const labels: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const fields = line.split(',', 3);
    labels.push(fields[1] === 'ok' ? Number(fields[2]) : Number.NaN);
  }
  return labels;
}

async function benchBatches(
  caller: Caller,
  userId: string,
  stack: LocalStack,
  runners: Map<BenchModel, ModelRunner>,
  counter: AwsCallCounter,
  chunkSize: number,
): Promise<BatchResult[]> {
  const s3 = new S3Client({
    endpoint: stack.endpoints.s3,
    region: stack.region,
    forcePathStyle: true,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const bucket = stack.resources.batchBucket;
  const results: BatchResult[] = [];
  try {
    // What one `GET /v1/batches/{id}` costs in AWS requests, to take the polls out of the worker's count.
    const perPoll = async (batchId: string) => {
      counter.start();
      for (let i = 0; i < 5; i++) await caller.json('GET', `/v1/batches/${batchId}`);
      const counts = counter.stop();
      const perCall = (values: CallCounts) =>
        Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v / 5]));
      return { calls: perCall(counts), waitMs: perCall(counter.waited()) };
    };

    for (const model of MODELS) {
      const runner = runners.get(model) as ModelRunner;
      const { width } = MODEL_SHAPES[model];
      const golden = (await goldenCases(model)).map((c) => c.row);
      const keyOf = (batch: { id: string; modelId: string }) =>
        inboxKey(userId, batch.modelId, batch.id, 'csv');
      const bare = (inputKey: string, run: string) =>
        barePipeline({
          s3,
          bucket,
          inputKey,
          outputKey: `bench/bare/${model}-${run}.csv`,
          runner,
          width,
          chunkSize,
        });

      progress(`batch ${model}: warm-up batch of ${WARMUP_BATCH_ROWS} rows`);
      const warmRows = perturbedRows(model, golden, WARMUP_BATCH_ROWS, 7);
      const warm = await runServiceBatch(caller, stack, model, toCsvFile(model, warmRows), counter, false);
      if (warm.batch.status !== 'succeeded') throw new Error(`warm-up batch: ${JSON.stringify(warm.batch)}`);
      const pollCalls = await perPoll(warm.batch.id);
      await bare(keyOf(warm.batch), 'warmup');
      await rawModelRows(runner, warmRows, width, chunkSize);

      const file = toCsvFile(model, perturbedRows(model, golden, BATCH_ROWS, 11));
      progress(
        `batch ${model}: ${BATCH_ROWS} rows (${num(file.length / 1024 / 1024, 1)} MB) through the service`,
      );
      const run = await runServiceBatch(caller, stack, model, file, counter, true);
      const { batch } = run;
      if (batch.status !== 'succeeded' || batch.succeeded !== BATCH_ROWS)
        throw new Error(`the ${model} batch did not succeed in full: ${JSON.stringify(batch)}`);

      progress(`batch ${model}: bare pipeline ×${BARE_RUNS}`);
      const bareRuns: PipelineRun[] = [];
      for (let i = 0; i < BARE_RUNS; i++) bareRuns.push(await bare(keyOf(batch), String(i)));
      if (bareRuns.some((r) => r.rows !== BATCH_ROWS)) throw new Error(`the bare pipeline lost rows`);

      progress(`batch ${model}: raw model ×${RAW_RUNS}`);
      const rows = perturbedRows(model, golden, BATCH_ROWS, 11);
      const labelled = await rawModelRows(runner, rows, width, chunkSize, true);
      const rawRuns: PipelineRun[] = [];
      for (let i = 0; i < RAW_RUNS; i++) rawRuns.push(await rawModelRows(runner, rows, width, chunkSize));

      const served = await resultLabels(batch.results.url);
      const expected = labelled.labels ?? [];
      let mismatches = Math.abs(served.length - expected.length);
      for (let i = 0; i < Math.min(served.length, expected.length); i++)
        if (served[i] !== expected[i]) mismatches++;

      const serviceRate = (BATCH_ROWS / run.endToEndMs) * 1000;
      const bareRate = median(bareRuns.map((r) => r.rowsPerSecond));
      const rawRate = median(rawRuns.map((r) => r.rowsPerSecond));
      results.push({
        model,
        rows: BATCH_ROWS,
        chunkSize,
        fileBytes: file.length,
        service: {
          batchId: batch.id,
          status: batch.status,
          succeeded: batch.succeeded,
          failed: batch.failed,
          cost: batch.cost,
          putMs: run.putMs,
          endToEndMs: run.endToEndMs,
          workerDoneMs: run.workerDoneMs,
          rowsPerSecond: serviceRate,
          polls: run.polls,
          memory: run.memory as MemoryPeak,
          containers: run.containers,
          awsCalls: run.awsCalls,
          workerAwsCalls: subtractCounts(run.awsCalls, pollCalls.calls, run.polls),
          workerDynamoWaitMs: totalOf(subtractCounts(run.awsWaitMs, pollCalls.waitMs, run.polls), 'dynamodb'),
          labelsMatchRaw: mismatches === 0,
          labelMismatches: mismatches,
        },
        bare: { runs: bareRuns, medianRowsPerSecond: bareRate },
        raw: { runs: rawRuns, medianRowsPerSecond: rawRate },
        ratios: { serviceOverBare: serviceRate / bareRate, serviceOverRaw: serviceRate / rawRate },
      });
    }
  } finally {
    s3.destroy();
  }
  return results;
}

// The report.

/** A ratio with two significant digits: 0.0012×, 0.17×, 850×. */
function ratio(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return `${value >= 100 ? num(value, 0) : Number(value.toPrecision(2)).toString()}×`;
}

/** `iris access-token c=16, 16 accounts` */
function caseName(r: SyncResult): string {
  return `${r.model} ${r.credential} c=${r.concurrency}, ${r.accounts} account${r.accounts === 1 ? '' : 's'}`;
}

function failuresOf(r: SyncResult): number {
  return Object.values(r.failures).reduce((a, b) => a + b, 0);
}

/**
 * What the hot path promises, checked against what was counted. Served by one warm container, a
 * prediction is one transaction (plus the key read with an API key) and no S3 request. Served by
 * several, a container's view of an account can be stale (the user's previous prediction ran in
 * another container) or contested (several containers charge one account at once): the transaction
 * is cancelled on the account's revision and tried again from the state the cancellation returns.
 * There the line reports the attempts and every other call instead of checking them.
 */
function checks(sync: SyncResult[]): string[] {
  const lines: string[] = [];
  for (const r of sync) {
    const perCommand = (command: string) => (r.awsCalls[command] ?? 0) / r.service.operations;
    const transactions = perCommand('dynamodb:TransactWriteItems');
    const others = Object.entries(r.awsCalls)
      .filter(([command]) => command.startsWith('dynamodb:') && command !== 'dynamodb:TransactWriteItems')
      .map(
        ([command, count]) => `${command.slice('dynamodb:'.length)} ${num(count / r.service.operations, 3)}`,
      );
    const besides = others.length ? `; besides the transactions, per prediction: ${others.join(', ')}` : '';
    const keyReads = r.credential === 'api-key' ? 1 : 0;
    const expected = 1 + keyReads;
    const failed = failuresOf(r);
    const failedText = failed
      ? `; ${failed} of ${r.service.operations} requests FAILED ${JSON.stringify(r.failures)}`
      : '';
    const where = `${r.containers.served} container${r.containers.served === 1 ? '' : 's'}`;
    if (r.containers.served <= 1) {
      const ok =
        failed === 0 &&
        transactions === 1 &&
        Math.abs(r.perPrediction.dynamodb - expected) < 0.01 &&
        r.perPrediction.s3 === 0 &&
        (r.credential === 'api-key' ? perCommand('dynamodb:GetItem') === 1 : true);
      lines.push(
        `  ${ok ? 'ok  ' : 'FAIL'} ${caseName(r)} (${where}): DynamoDB ${num(r.perPrediction.dynamodb, 3)}/prediction (expected ${expected}${keyReads ? ': the transaction + the key read' : ': the transaction'}), ` +
          `TransactWriteItems ${num(transactions, 3)}, S3 ${num(r.perPrediction.s3, 3)}${besides}${failedText}`,
      );
    } else {
      const why =
        r.accounts === 1
          ? `${where} charging one account at once race on its revision`
          : `each caller's requests can move between ${where}, and one whose view of the account is stale loses a race`;
      lines.push(
        `  ${failed === 0 && r.perPrediction.s3 === 0 ? 'info' : 'FAIL'} ${caseName(r)}: ${why}: ` +
          `${num(transactions, 3)} transaction attempts per prediction (${num(transactions - 1, 3)} cancelled and retried), ` +
          `DynamoDB ${num(r.perPrediction.dynamodb, 3)}, S3 ${num(r.perPrediction.s3, 3)}${besides}${failedText}`,
      );
    }
  }
  return lines;
}

function printReport(report: {
  environment: Awaited<ReturnType<typeof environment>> & { loadAverageAtEnd: number[] };
  settings: Record<string, unknown>;
  sync: SyncResult[];
  batches: BatchResult[];
  coldStarts: ColdStarts;
  totalSeconds: number;
}) {
  const env = report.environment;
  const out: string[] = [];
  out.push(heading('Environment'));
  out.push(
    `node ${env.node} (${env.platform}) · ${env.cpuModel} × ${env.cpuCount} · ${env.memoryGb} GB RAM · onnxruntime-node ${env.onnxruntimeNode}`,
  );
  out.push(`emulator: ${env.emulator}`);
  out.push(
    `load average (1/5/15 min) at start ${env.loadAverageAtStart.join(' / ')}, at end ${env.loadAverageAtEnd.join(' / ')}`,
  );
  out.push(
    `Each function runs in child-process containers (up to ${MAX_CONTAINERS} per function, as \`npm run dev\` runs them); ` +
      "the load generator, the raw and bare references, the gateway, the queue pump and the counting proxy share the bench's Node process; moto runs in another.",
  );
  out.push(
    `Settings: ${Object.entries(report.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  );

  out.push(
    heading('1. Sync predictions: HTTP service vs raw onnxruntime session.run, same single-row inputs'),
  );
  const tokenRuns = report.sync.filter((r) => r.credential === 'access-token' && r.raw);
  out.push(
    table(
      [
        'model',
        'conc',
        'accounts',
        'requests',
        'service pred/s',
        'p50 ms',
        'p99 ms',
        'raw ops/s',
        'raw p50 ms',
        'raw p99 ms',
        'service/raw pred/s',
        'service/raw p50',
      ],
      tokenRuns.map((r) => [
        r.model,
        r.concurrency,
        r.accounts,
        r.service.operations,
        num(r.service.perSecond, 0),
        num(r.service.p50Ms, 2),
        num(r.service.p99Ms, 2),
        num(r.raw?.perSecond ?? Number.NaN, 0),
        num(r.raw?.p50Ms ?? Number.NaN, 3),
        num(r.raw?.p99Ms ?? Number.NaN, 3),
        ratio(r.service.perSecond / (r.raw?.perSecond ?? Number.NaN)),
        ratio(r.service.p50Ms / (r.raw?.p50Ms ?? Number.NaN)),
      ]),
    ),
  );
  out.push(
    `Above: at c>1 each caller is a user of its own (an account per caller). ${ONE_ACCOUNT_PLAN.requests} requests from ${ONE_ACCOUNT_PLAN.concurrency} callers charging one account are in the tables below.`,
  );

  out.push('\nContainers of the predict function per case (cold starts include the warm-up):');
  for (const r of report.sync) out.push(`  ${caseName(r)}: ${describeContainers(r.containers)}`);

  out.push(
    "\nAWS requests per prediction: the containers' requests, counted at a proxy in front of the emulator during the measured requests (failed requests included in the divisor):",
  );
  out.push(
    table(
      [
        'model',
        'credential',
        'conc',
        'accounts',
        'requests',
        'failed',
        'pred/s',
        'p50 ms',
        'p99 ms',
        'mean ms',
        'AWS wait ms/pred',
        'DynamoDB/pred',
        'S3/pred',
        'SQS/pred',
      ],
      report.sync.map((r) => [
        r.model,
        r.credential,
        r.concurrency,
        r.accounts,
        r.service.operations,
        failuresOf(r),
        num(r.service.perSecond, 0),
        num(r.service.p50Ms, 2),
        num(r.service.p99Ms, 2),
        num(r.service.meanMs, 2),
        num(
          Object.entries(r.awsCalls).reduce(
            (sum, [command, count]) => sum + count * (r.awsMsPerCall[command] ?? 0),
            0,
          ) / r.service.operations,
          2,
        ),
        num(r.perPrediction.dynamodb, 3),
        num(r.perPrediction.s3, 3),
        num(r.perPrediction.sqs, 3),
      ]),
    ),
  );
  out.push(
    'By command: requests per prediction [ms from arrival at the proxy to the last byte of the answer]:',
  );
  for (const r of report.sync) {
    const commands = Object.entries(r.awsCalls).map(
      ([command, count]) =>
        `${command} ${num(count / r.service.operations, 3)} [${num(r.awsMsPerCall[command] ?? Number.NaN, 1)} ms]`,
    );
    out.push(`  ${caseName(r)}: ${commands.join(', ') || '(none)'}`);
  }
  out.push('Checks (warm containers):');
  out.push(...checks(report.sync));

  out.push(heading(`2. Batches: ${num(BATCH_ROWS)}-row CSV, from the PUT of the file to "succeeded"`));
  out.push(
    table(
      [
        'model',
        'file MB',
        'service rows/s',
        'e2e s',
        'DynamoDB wait s',
        '(b) bare rows/s',
        '(a) raw model rows/s',
        'service/(b)',
        'service/(a)',
        'worker RSS Δ MB',
        'worker VmHWM Δ MB',
      ],
      report.batches.map((b) => [
        b.model,
        num(b.fileBytes / 1024 / 1024, 1),
        num(b.service.rowsPerSecond, 0),
        num(b.service.endToEndMs / 1000, 2),
        num(b.service.workerDynamoWaitMs / 1000, 2),
        num(b.bare.medianRowsPerSecond, 0),
        num(b.raw.medianRowsPerSecond, 0),
        ratio(b.ratios.serviceOverBare),
        ratio(b.ratios.serviceOverRaw),
        num(b.service.memory.rssGrowthMb, 1),
        num(b.service.memory.hwmGrowthMb, 1),
      ]),
    ),
  );
  for (const b of report.batches) {
    const chunks = Math.ceil(b.rows / b.chunkSize);
    out.push(
      `  ${b.model}: ${num(b.service.succeeded)} ok / ${b.service.failed} failed, cost ${num(b.service.cost)}; the results' labels ${b.service.labelsMatchRaw ? 'match' : `DIFFER from (${b.service.labelMismatches} rows)`} the raw model's. ` +
        `PUT ${num(b.service.putMs / 1000, 2)} s, worker returned at ${b.service.workerDoneMs === undefined ? '?' : num(b.service.workerDoneMs / 1000, 2)} s (polls every ${POLL_MS} ms). ` +
        `Runs (median taken): bare ${b.bare.runs.map((r) => num(r.ms / 1000, 2)).join(' / ')} s, raw ${b.raw.runs.map((r) => num(r.ms / 1000, 3)).join(' / ')} s.`,
    );
    const m = b.service.memory;
    out.push(
      `    worker container memory (the process's RSS from /proc, not a V8 heap; no GC forced at the baseline): baseline ${num(m.baselineRssMb, 0)} MB, ` +
        `peak ${num(m.peakRssMb, 0)} MB sampled (${m.samples} samples every ${m.intervalMs} ms), VmHWM ${num(m.hwmMb, 0)} MB ` +
        `(${m.containers.some((c) => c.hwmReset) ? 'reset at the baseline' : 'since the container started'}); ` +
        `${m.containers.length} batch-worker container${m.containers.length === 1 ? '' : 's'} watched. ${describeContainers(b.service.containers)}.`,
    );
    out.push(
      `    AWS requests of the run (the ${b.service.polls} status polls taken out) per ${b.chunkSize}-row chunk, ${chunks} chunks: ${describeCounts(b.service.workerAwsCalls, chunks)}`,
    );
  }
  out.push(
    '\nservice/(b): the service (queue, per-row validation, billing, checkpoints, segments) against a bare stream-parse-predict-upload',
  );
  out.push(
    'pipeline on the same file: what the machinery costs. service/(a): against the model alone on the same rows in the same chunks',
  );
  out.push('(far below 1: parsing and I/O, not the model, set the pace).');
  out.push(
    "worker RSS Δ: the batch-worker container's peak resident set over its RSS when the PUT began (sampled); VmHWM Δ: the kernel's peak over the same baseline.",
  );

  out.push(heading('Cold starts (the whole run)'));
  out.push(
    table(
      [
        'function',
        'cold starts',
        'median init ms',
        'max init ms',
        'median cold invocation ms',
        'containers at end',
      ],
      Object.entries(report.coldStarts).map(([name, c]) => [
        name,
        c.count,
        num(c.medianInitMs ?? Number.NaN, 0),
        num(c.maxInitMs ?? Number.NaN, 0),
        num(c.medianColdInvocationMs ?? Number.NaN, 0),
        c.containersAtEnd,
      ]),
    ),
  );
  out.push(
    'init: the import of the bundle in a new container (from its log line); cold invocation: the first event of a container, from when it took the event to its answer (init included).',
  );
  out.push(`\nTotal bench time ${num(report.totalSeconds, 0)} s.`);
  if (log.length) out.push(`\nLocal stack log (${log.length} lines):\n${log.slice(-20).join('\n')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main() {
  const started = performance.now();
  Object.assign(process.env, FUNCTION_ENV);
  const env = await environment();
  progress('starting the emulator, the counting proxy and the local stack');
  const emulator: Emulator = await startEmulator();
  let counter: AwsCallCounter;
  let stack: LocalStack;
  try {
    counter = await AwsCallCounter.listen(emulator.endpoint);
  } catch (error) {
    await emulator.stop();
    throw error;
  }
  // Cold starts and every invocation of the run, from the first container on.
  const invocations: InvocationRecord[] = [];
  try {
    const local = counter.localEndpoint;
    stack = await startLocalStack({
      port: 0,
      // This process's clients (provisioning, seeding, the queue pump, the bench's S3 client) use the
      // proxy's uncounted port; the containers get the counted one through their environment.
      endpoints: { dynamodb: local, s3: local, sqs: local },
      prefix: `bench${randomBytes(3).toString('hex')}`,
      environment: {
        ...FUNCTION_ENV,
        AWS_ENDPOINT_URL_DYNAMODB: counter.endpoint,
        AWS_ENDPOINT_URL_S3: counter.endpoint,
        AWS_ENDPOINT_URL_SQS: counter.endpoint,
      },
      maxContainers: MAX_CONTAINERS,
      log: (line) => log.push(line),
    });
    stack.runtime.events.on('invocation', (record) => invocations.push(record));
  } catch (error) {
    await counter.close();
    await emulator.stop();
    throw error;
  }
  const runners = new Map<BenchModel, ModelRunner>();
  let http: BenchHttpClient | undefined;
  try {
    // This process's copy of the functions' modules (for the admin), loaded now that the stack has set their environment.
    const { services } = await import('../../shared/app/services.ts');
    const { config } = await import('../../shared/config.ts');
    const settings = config();

    await services().users.ensureAdmin(ADMIN.email, ADMIN.password);
    const admin = await signIn(stack.url, ADMIN.email, ADMIN.password);
    const user = await signUp(stack.url, 'bench');
    const granted = await admin.api.post(`/v1/admin/users/${user.id}/grants`, {
      amount: CREDITS,
      reason: 'bench',
    });
    if (granted.status !== 201) throw new Error(`grant: ${granted.status} ${JSON.stringify(granted.body)}`);
    const key = await user.api.post('/v1/api-keys', { name: 'bench' });
    if (key.status !== 201) throw new Error(`api key: ${key.status} ${JSON.stringify(key.body)}`);
    // A user per concurrent caller, for the cases whose callers each pay for themselves.
    const callerUsers = [];
    for (let i = 0; i < MAX_CONTAINERS; i++) {
      const callerUser = await signUp(stack.url, `bench-caller-${i}`);
      const grant = await admin.api.post(`/v1/admin/users/${callerUser.id}/grants`, {
        amount: CALLER_CREDITS,
        reason: 'bench',
      });
      if (grant.status !== 201) throw new Error(`grant: ${grant.status} ${JSON.stringify(grant.body)}`);
      callerUsers.push(callerUser);
    }

    http = new BenchHttpClient(stack.url, 64);
    const token = new Caller(http, user.accessToken);
    const apiKey = new Caller(http, key.body.key as string);
    const perCaller = callerUsers.map((u) => new Caller(http as BenchHttpClient, u.accessToken));
    // The raw side: the same model files, loaded the way the service's cache loads them.
    for (const model of MODELS)
      runners.set(model, await loadModel(await modelBytes(model), settings.models.intraOpThreads));

    const sync = await benchSync(token, perCaller, apiKey, runners, counter, stack);
    const batches = await benchBatches(token, user.id, stack, runners, counter, settings.batches.chunkSize);

    const report = {
      environment: { ...env, loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
      settings: {
        ORT_INTRA_OP_THREADS: settings.models.intraOpThreads,
        BATCH_CHUNK_SIZE: settings.batches.chunkSize,
        MODEL_NAME_CACHE_SECONDS: settings.models.nameCacheSeconds,
        PREDICTIONS_PER_MINUTE: settings.predictions.perMinute,
        MAX_CONTAINERS,
      },
      sync,
      batches,
      coldStarts: coldStartsOf(invocations, stack),
      totalSeconds: (performance.now() - started) / 1000,
      localStackLog: log,
      generatedAt: new Date().toISOString(),
    };
    printReport(report);
    const artifacts = join(repositoryRoot, 'test-artifacts');
    await mkdir(artifacts, { recursive: true });
    await writeFile(join(artifacts, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
    progress(`wrote ${join('test-artifacts', 'bench.json')}`);
  } finally {
    http?.close();
    for (const runner of runners.values()) await runner.release();
    await stack.stop();
    await counter.close();
    await emulator.stop();
  }
}

function coldStartsOf(invocations: InvocationRecord[], stack: LocalStack): ColdStarts {
  const inits = coldStartsInLog(log);
  const counts = stack.runtime.containerCounts();
  const names = [...new Set([...inits.keys(), ...invocations.map((r) => r.name)])].sort();
  return Object.fromEntries(
    names.map((name) => {
      const initMs = inits.get(name) ?? [];
      const cold = invocations.filter((r) => r.name === name && r.coldStart).map((r) => r.durationMs);
      return [
        name,
        {
          count: initMs.length,
          medianInitMs: initMs.length ? median(initMs) : null,
          maxInitMs: initMs.length ? Math.max(...initMs) : null,
          medianColdInvocationMs: cold.length ? median(cold) : null,
          containersAtEnd: counts[name] ?? 0,
        },
      ];
    }),
  );
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  if (log.length) process.stderr.write(`local stack log:\n${log.slice(-40).join('\n')}\n`);
  process.exitCode = 1;
});
