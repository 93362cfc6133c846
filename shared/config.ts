/**
 * The service's configuration: the only module that reads `process.env`. It is read and validated
 * once per container (at cold start, on first use) and fails fast with every problem listed.
 */
import { z } from 'zod';
import { ConfigError } from './domain/errors.ts';
import { SERVICE_NAME } from './observability/metric-names.ts';
import { stageDefaults, stages } from './stages.ts';

const booleanFlag = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');

const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

const optionalName = z.string().min(1).optional();

/**
 * The environment as read, and the configuration it makes: the nested Config, with the stage's
 * defaults (shared/stages.ts) for what is not set.
 */
const configSchema = z
  .object({
    STAGE: z.enum(stages).default('dev'),
    SERVICE_NAME: z.string().min(1).default(SERVICE_NAME),
    LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']).default('INFO'),
    AWS_REGION: z.string().min(1).default('us-east-1'),
    /**
     * Set for LocalStack or the embedded emulator; unset in AWS. The SDK's per-service variables win
     * over the shared one, as they do in the SDK itself.
     */
    AWS_ENDPOINT_URL: z.url().optional(),
    AWS_ENDPOINT_URL_DYNAMODB: z.url().optional(),
    AWS_ENDPOINT_URL_S3: z.url().optional(),
    AWS_ENDPOINT_URL_SQS: z.url().optional(),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: z.url().optional(),
    TABLE_NAME: optionalName,
    MODELS_BUCKET: optionalName,
    BATCH_BUCKET: optionalName,
    BATCH_QUEUE_URL: optionalName,
    NOTIFICATION_QUEUE_URL: optionalName,
    CORS_ALLOWED_ORIGINS: commaList.optional(),
    /** Largest accepted request body in bytes (API Gateway itself stops at 10 MB). */
    MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
    SELF_SERVICE_TOP_UPS: booleanFlag.optional(),
    SIGNUP_BONUS: z.coerce.number().int().min(0).max(1_000_000).optional(),
    /** Where the JWT signing key lives: a Secrets Manager secret in AWS, a generated file locally. */
    SIGNING_KEY_SECRET_ARN: optionalName,
    SIGNING_KEY_FILE: optionalName,
    JWT_ISSUER: z.string().min(1).default('credit-predictions'),
    JWT_AUDIENCE: z.string().min(1).default('credit-predictions-api'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(900),
    REFRESH_TOKEN_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(3600)
      .default(30 * 86_400),
    /** log2 of scrypt's N. OWASP asks for 17 (N=2^17, r=8, p=1); tests may lower it. */
    SCRYPT_LOG2_N: z.coerce.number().int().min(10).max(20).default(17),
    SIGNIN_MAX_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).default(5),
    SIGNIN_MAX_FAILURES_PER_SOURCE: z.coerce.number().int().min(1).default(30),
    SIGNIN_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
    MAX_MODEL_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(100 * 1024 * 1024),
    MAX_PREDICTION_ROWS: z.coerce.number().int().positive().default(1000),
    PREDICTION_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    PREDICTION_RETENTION_DAYS: z.coerce.number().int().positive().default(90),
    PREDICTIONS_PER_MINUTE: z.coerce.number().int().positive().default(600),
    MODEL_CACHE_SIZE: z.coerce.number().int().positive().default(8),
    MODEL_NAME_CACHE_SECONDS: z.coerce.number().int().min(0).default(30),
    ORT_INTRA_OP_THREADS: z.coerce.number().int().positive().default(1),
    BATCH_CHUNK_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    MAX_BATCH_ROWS: z.coerce.number().int().positive().default(1_000_000),
    MAX_BATCH_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(512 * 1024 * 1024),
    BATCH_RESERVE_MS: z.coerce.number().int().min(0).default(120_000),
    BATCH_MAX_RUN_MS: z.coerce.number().int().min(0).default(0),
    /** The queues' maxReceiveCount (the stage's unless set): on the last receive a failing batch is marked failed. */
    BATCH_MAX_RECEIVES: z.coerce.number().int().min(1).optional(),
    PRESIGNED_URL_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .default(900),
  })
  .transform((e) => {
    const defaults = stageDefaults[e.STAGE];
    return {
      stage: e.STAGE,
      serviceName: e.SERVICE_NAME,
      logLevel: e.LOG_LEVEL,
      region: e.AWS_REGION,
      /** Per AWS service: an emulator's URL, or undefined for AWS itself. */
      endpoints: {
        dynamodb: e.AWS_ENDPOINT_URL_DYNAMODB ?? e.AWS_ENDPOINT_URL,
        s3: e.AWS_ENDPOINT_URL_S3 ?? e.AWS_ENDPOINT_URL,
        sqs: e.AWS_ENDPOINT_URL_SQS ?? e.AWS_ENDPOINT_URL,
        secretsManager: e.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? e.AWS_ENDPOINT_URL,
      },
      resources: {
        tableName: e.TABLE_NAME,
        modelsBucket: e.MODELS_BUCKET,
        batchBucket: e.BATCH_BUCKET,
        batchQueueUrl: e.BATCH_QUEUE_URL,
        notificationQueueUrl: e.NOTIFICATION_QUEUE_URL,
      },
      corsAllowedOrigins: e.CORS_ALLOWED_ORIGINS ?? defaults.corsOrigins,
      maxBodyBytes: e.MAX_BODY_BYTES,
      selfServiceTopUps: e.SELF_SERVICE_TOP_UPS ?? defaults.selfServiceTopUps,
      signupBonus: e.SIGNUP_BONUS ?? defaults.signupBonus,
      models: {
        maxModelBytes: e.MAX_MODEL_BYTES,
        cacheSize: e.MODEL_CACHE_SIZE,
        nameCacheSeconds: e.MODEL_NAME_CACHE_SECONDS,
        intraOpThreads: e.ORT_INTRA_OP_THREADS,
      },
      predictions: {
        maxRows: e.MAX_PREDICTION_ROWS,
        timeoutMs: e.PREDICTION_TIMEOUT_MS,
        retentionSeconds: e.PREDICTION_RETENTION_DAYS * 86_400,
        perMinute: e.PREDICTIONS_PER_MINUTE,
      },
      batches: {
        chunkSize: e.BATCH_CHUNK_SIZE,
        maxRows: e.MAX_BATCH_ROWS,
        maxBytes: e.MAX_BATCH_BYTES,
        reserveMs: e.BATCH_RESERVE_MS,
        maxRunMs: e.BATCH_MAX_RUN_MS,
        maxReceives: e.BATCH_MAX_RECEIVES ?? defaults.maxReceiveCount,
      },
      presignedUrlTtlSeconds: e.PRESIGNED_URL_TTL_SECONDS,
      auth: {
        signingKeySecretArn: e.SIGNING_KEY_SECRET_ARN,
        // Locally a key file is generated on first use; a deployed stack must name its secret.
        signingKeyFile:
          e.SIGNING_KEY_FILE ??
          (e.STAGE === 'dev' && !e.SIGNING_KEY_SECRET_ARN ? '.local/signing-key.json' : undefined),
        issuer: e.JWT_ISSUER,
        audience: e.JWT_AUDIENCE,
        accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
        refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
        scryptLog2N: e.SCRYPT_LOG2_N,
        signIn: {
          maxFailuresPerAccount: e.SIGNIN_MAX_FAILURES_PER_ACCOUNT,
          maxFailuresPerSource: e.SIGNIN_MAX_FAILURES_PER_SOURCE,
          windowSeconds: e.SIGNIN_WINDOW_SECONDS,
        },
      },
    };
  });

/** The configuration, in the shape the service reads it; its type is what the schema makes. */
export type Config = z.output<typeof configSchema>;

export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}

let cached: Config | undefined;

/** The configuration of this container, read from the environment on first use. */
export function config(): Config {
  cached ??= loadConfig(process.env);
  return cached;
}

/**
 * Reads the environment again. Only for the local stack, which runs the functions in a process
 * whose environment it sets after modules may already have read it; a Lambda container never does.
 */
export function reloadConfig(): Config {
  cached = loadConfig(process.env);
  return cached;
}

/** A resource name that this function needs; missing means the deployment forgot a grant. */
export function requireResource(name: keyof Config['resources']): string {
  const value = config().resources[name];
  if (!value) throw new ConfigError(`This function has no ${name} configured (missing grant in the stack?).`);
  return value;
}
