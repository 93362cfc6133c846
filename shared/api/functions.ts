/**
 * The function list, defined once: the CDK stateless stack creates one Lambda function per entry and
 * the local runtime bundles the same entry points and runs them in containers of its own.
 */

/**
 * What a function may touch; the CDK helper (`grant` in infra/stateless-stack.ts) turns each grant
 * into the IAM actions the code calls, on the key prefixes it uses, plus the env var naming the resource.
 */
export type ResourceGrant =
  /** GetItem, BatchGetItem, Query (the table and its indexes). */
  | 'table:read'
  /** PutItem, UpdateItem and ConditionCheckItem, alone or in a transaction. */
  | 'table:write'
  /** DeleteItem: only sign-in throttle counters and API keys are ever deleted. */
  | 'table:delete'
  /** The model files (`uploads/`): read, and whether one exists (ListBucket turns a missing key into 404). */
  | 'models-bucket:read'
  /** The model files (`uploads/`): PutObject, for presigned uploads. */
  | 'models-bucket:write'
  /** The batch files (`inbox/`): read, and whether one exists. */
  | 'batch-inbox:read'
  /** The batch files (`inbox/`): PutObject, for presigned uploads. */
  | 'batch-inbox:write'
  /** The results files and their segments (`results/`): read, for assembly and presigned downloads. */
  | 'batch-results:read'
  /** The results (`results/`): PutObject, multipart included, and DeleteObject of assembled segments only. */
  | 'batch-results:write'
  | 'batch-queue:send'
  | 'notification-queue:send'
  /** ChangeMessageVisibility: a failed delivery pushes its next attempt back. */
  | 'notification-queue:delay'
  | 'signing-key:read';

interface FunctionBase {
  /** Entry point, relative to the repository root; it exports `handler`. */
  entry: string;
  description: string;
  memoryMb: number;
  timeoutSeconds: number;
  grants: ResourceGrant[];
  /** Carries onnxruntime-node (shipped as a Lambda layer, not bundled). */
  usesOnnxRuntime: boolean;
  /**
   * Containers the local runtime may run for this function at once (default 8, see
   * infra/local/lambda-runtime.ts); Lambda itself scales to the account's concurrency.
   */
  maxLocalContainers?: number;
  /**
   * Concurrent executions reserved for this function where the stage reserves concurrency
   * (infra/stage.ts): a floor that no other function can take from it and a ceiling it cannot pass.
   * Sized, with the reasons, in the README's capacity table.
   */
  reservedConcurrency: number;
}

export interface HttpFunction extends FunctionBase {
  kind: 'http';
}

export interface QueueWorkerFunction extends FunctionBase {
  kind: 'queue-worker';
  queue: 'model-queue' | 'batch-queue' | 'notification-queue';
  /** SQS messages handed to one invocation. */
  batchSize: number;
  /**
   * The most invocations the queue's event source runs at once (its ScalingConfig, 2 to 1000), in
   * every stage: a backlog waits in the queue instead of taking concurrency from the HTTP functions.
   * At most `reservedConcurrency`, or the reservation would throttle the poller.
   */
  maxConcurrency: number;
}

/** Runs on a schedule (an EventBridge rule in AWS). */
export interface ScheduledFunction extends FunctionBase {
  kind: 'scheduled';
  everyMinutes: number;
}

export type FunctionDefinition = HttpFunction | QueueWorkerFunction | ScheduledFunction;

export const functions = {
  public: {
    kind: 'http',
    entry: 'functions/public/handler.ts',
    description: 'Health, OpenAPI document, Swagger UI and the catch-all for unknown routes',
    memoryMb: 256,
    timeoutSeconds: 10,
    grants: [],
    usesOnnxRuntime: false,
    reservedConcurrency: 20,
  },
  auth: {
    kind: 'http',
    entry: 'functions/auth/handler.ts',
    description: 'Sign-up, sign-in, token refresh and revocation, API keys, the JWKS',
    memoryMb: 512,
    timeoutSeconds: 10,
    grants: ['table:read', 'table:write', 'table:delete', 'signing-key:read'],
    usesOnnxRuntime: false,
    reservedConcurrency: 50,
    // A scrypt hash at OWASP's cost takes 128 MiB and a core for a few hundred ms. On AWS each
    // container has a CPU share of its own; locally they all share this machine's cores, where more
    // containers than cores only make every hash (and so every invocation) slower.
    maxLocalContainers: 4,
  },
  account: {
    kind: 'http',
    entry: 'functions/account/handler.ts',
    description: 'Balances, top-ups, admin grants and the ledger',
    memoryMb: 256,
    timeoutSeconds: 10,
    grants: ['table:read', 'table:write', 'signing-key:read'],
    usesOnnxRuntime: false,
    reservedConcurrency: 30,
  },
  models: {
    kind: 'http',
    entry: 'functions/models/handler.ts',
    description: 'The model registry: publish versions through presigned uploads, reprice, retire',
    memoryMb: 512,
    timeoutSeconds: 10,
    grants: ['table:read', 'table:write', 'models-bucket:write', 'signing-key:read'],
    usesOnnxRuntime: false,
    reservedConcurrency: 20,
  },
  predict: {
    kind: 'http',
    entry: 'functions/predict/handler.ts',
    description: 'Synchronous predictions charged on success, prediction history and refunds',
    memoryMb: 1769,
    timeoutSeconds: 29,
    grants: [
      'table:read',
      'table:write',
      'models-bucket:read',
      'notification-queue:send',
      'signing-key:read',
    ],
    usesOnnxRuntime: true,
    reservedConcurrency: 200,
  },
  reports: {
    kind: 'http',
    entry: 'functions/reports/handler.ts',
    description: 'Usage reports and CSV exports for users; service statistics and the audit trail for admins',
    memoryMb: 512,
    timeoutSeconds: 29,
    grants: ['table:read', 'signing-key:read'],
    usesOnnxRuntime: false,
    reservedConcurrency: 20,
  },
  batches: {
    kind: 'http',
    entry: 'functions/batches/handler.ts',
    description: 'Batch creation with a presigned upload, progress and results links',
    memoryMb: 512,
    timeoutSeconds: 10,
    // Presigned uploads into the inbox and presigned downloads of results.
    grants: ['table:read', 'table:write', 'batch-inbox:write', 'batch-results:read', 'signing-key:read'],
    usesOnnxRuntime: false,
    reservedConcurrency: 30,
  },
  'model-validator': {
    kind: 'queue-worker',
    queue: 'model-queue',
    batchSize: 5,
    entry: 'functions/model-validator/handler.ts',
    description:
      'Loads each uploaded ONNX file with onnxruntime and records its signature or why it is invalid',
    memoryMb: 1024,
    timeoutSeconds: 120,
    grants: ['table:read', 'table:write', 'models-bucket:read'],
    usesOnnxRuntime: true,
    reservedConcurrency: 5,
    maxConcurrency: 5,
  },
  'batch-worker': {
    kind: 'queue-worker',
    queue: 'batch-queue',
    batchSize: 1,
    entry: 'functions/batch-worker/handler.ts',
    description:
      'Streams a batch file from the inbox, predicts it chunk by chunk and writes the results file',
    memoryMb: 2048,
    timeoutSeconds: 900,
    grants: [
      'table:read',
      'table:write',
      'models-bucket:read',
      'batch-inbox:read',
      'batch-results:read',
      'batch-results:write',
      'batch-queue:send',
      'notification-queue:send',
    ],
    usesOnnxRuntime: true,
    reservedConcurrency: 50,
    maxConcurrency: 50,
  },
  'webhook-dispatcher': {
    kind: 'queue-worker',
    queue: 'notification-queue',
    batchSize: 10,
    entry: 'functions/webhook-dispatcher/handler.ts',
    description: 'Delivers low-balance notifications to webhooks, signed as Standard Webhooks, with backoff',
    memoryMb: 256,
    timeoutSeconds: 30,
    grants: ['table:read', 'table:write', 'notification-queue:delay'],
    usesOnnxRuntime: false,
    reservedConcurrency: 10,
    maxConcurrency: 10,
  },
  reconciler: {
    kind: 'scheduled',
    everyMinutes: 60,
    entry: 'functions/reconciler/handler.ts',
    description: 'Checks balance = sum of ledger for accounts changed since the last run and emits a metric',
    memoryMb: 512,
    timeoutSeconds: 300,
    grants: ['table:read', 'table:write'],
    usesOnnxRuntime: false,
    reservedConcurrency: 1,
  },
} as const satisfies Record<string, FunctionDefinition>;

export type FunctionName = keyof typeof functions;
export type HttpFunctionName = {
  [K in FunctionName]: (typeof functions)[K]['kind'] extends 'http' ? K : never;
}[FunctionName];
export type QueueWorkerName = {
  [K in FunctionName]: (typeof functions)[K]['kind'] extends 'queue-worker' ? K : never;
}[FunctionName];

export const functionNames = Object.keys(functions) as FunctionName[];
