/**
 * Request and response schemas of the public API. The route table names them; the same zod objects
 * validate requests (in httpFunction, before a handler runs), type the handlers' answers and
 * generate the OpenAPI document, so the three cannot drift apart.
 */
import { z } from 'zod';
import { creditAmount, ledgerKinds, MAX_GRANT, MAX_TOP_UP } from '../domain/credits.ts';
import { ModelNameSchema, PriceSchema } from '../domain/models.ts';
import { ChecksumSha256Schema, FileSizeSchema } from '../domain/uploads.ts';
import { EmailSchema, PasswordSchema } from '../domain/users.ts';

export const ProblemSchema = z
  .object({
    type: z.string().describe('URI of the problem type, `/problems/<slug>`'),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('One entry per offending field'),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const AssetParamsSchema = z.object({ asset: z.string() });

/** `?limit=&cursor=` of every list endpoint. */
export const PageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(2048).optional(),
});

/**
 * What a client may declare about the file it will PUT to a presigned upload. Both are optional;
 * whatever is given is signed into the URL, so S3 refuses a body of another length or content.
 */
function declaredFileFields(files: string) {
  return {
    size: FileSizeSchema.optional().describe(
      `The file's exact length in bytes. Signed into the upload URL as the \`Content-Length\` header: S3 refuses a body of any other length (send the header with the PUT; a browser sets it itself). A size over the limit for ${files} is refused at once with 413 \`/problems/payload-too-large\` (its \`limit\` member gives the limit in bytes), and nothing is created. Without it the size is checked after the upload.`,
    ),
    checksumSha256: ChecksumSha256Schema.optional().describe(
      "Base64 of the file's SHA-256 digest (32 bytes: 44 characters ending in `=`). Signed into the upload URL as the `x-amz-checksum-sha256` header, which the PUT must then carry: S3 refuses a body whose SHA-256 differs.",
    ),
  };
}

export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z
    .object({ items: z.array(item), nextCursor: z.string().nullable() })
    .meta({ id, description: 'A page of results, newest first' });
}

// Users and sessions

export const RegisterBodySchema = z
  .strictObject({ email: EmailSchema, password: PasswordSchema })
  .meta({ id: 'RegisterRequest' });

export const UserSchema = z
  .object({ id: z.string(), email: z.string(), role: z.enum(['user', 'admin']), createdAt: z.iso.datetime() })
  .meta({ id: 'User' });

export const MeSchema = UserSchema.extend({
  balance: z.int(),
  notifications: z
    .array(z.record(z.string(), z.unknown()))
    .describe('Recent notifications about the account, newest first (e.g. low balance)'),
}).meta({ id: 'Me' });

export const PasswordGrantSchema = z
  .strictObject({ email: EmailSchema, password: z.string().min(1).max(256) })
  .meta({ id: 'PasswordGrant', description: 'Sign in with email and password' });

export const RefreshGrantSchema = z.strictObject({ refreshToken: z.string().min(1).max(512) }).meta({
  id: 'RefreshGrant',
  description: 'Exchange a refresh token for a new pair (the old one is spent)',
});

export const TokenRequestSchema = z.union([PasswordGrantSchema, RefreshGrantSchema]).meta({
  id: 'TokenRequest',
  description: 'A password grant, or a refresh grant (a body with `refreshToken`)',
});

/**
 * Which variant of a union body a client meant, so that a bad one is answered with that variant's
 * field errors (zod alone reports a bare "invalid input" when no variant fits).
 */
const unionVariants = new WeakMap<z.ZodType, (input: unknown) => z.ZodType>();

export function variantMeant(union: z.ZodType, input: unknown): z.ZodType | undefined {
  return unionVariants.get(union)?.(input);
}

unionVariants.set(TokenRequestSchema, (input) =>
  typeof input === 'object' && input !== null && 'refreshToken' in input
    ? RefreshGrantSchema
    : PasswordGrantSchema,
);

export const TokenPairSchema = z
  .object({
    accessToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.int().describe('Seconds until the access token expires'),
    refreshToken: z.string(),
  })
  .meta({ id: 'TokenPair' });

export const RevokeBodySchema = z
  .strictObject({ refreshToken: z.string().min(1).max(512) })
  .meta({ id: 'RevokeRequest' });

export const ApiKeyCreateSchema = z
  .strictObject({ name: z.string().trim().min(1).max(100) })
  .meta({ id: 'ApiKeyCreateRequest' });

export const ApiKeySchema = z
  .object({ id: z.string(), name: z.string(), prefix: z.string(), createdAt: z.iso.datetime() })
  .meta({ id: 'ApiKey' });

export const ApiKeyCreatedSchema = ApiKeySchema.extend({
  key: z.string().describe('The secret; shown only in this response'),
}).meta({ id: 'ApiKeyCreated' });

export const ApiKeyListSchema = z
  .object({ items: z.array(ApiKeySchema), nextCursor: z.null() })
  .meta({ id: 'ApiKeyList' });

export const IdParamsSchema = z.object({ id: z.string().min(1).max(128) });

export const JwksSchema = z
  .object({ keys: z.array(z.record(z.string(), z.unknown())) })
  .meta({ id: 'JsonWebKeySet' });

// Credits

export const AccountSchema = z
  .object({
    balance: z.int(),
    updatedAt: z.iso.datetime(),
    limits: z.object({
      dailySpendCap: z.int().nullable(),
      lowBalanceThreshold: z.int().nullable(),
      webhookUrl: z.string().nullable(),
    }),
  })
  .meta({ id: 'Account' });

export const TopUpBodySchema = z
  .strictObject({ amount: creditAmount(MAX_TOP_UP) })
  .meta({ id: 'TopUpRequest' });

export const GrantBodySchema = z
  .strictObject({ amount: creditAmount(MAX_GRANT), reason: z.string().trim().min(1).max(500) })
  .meta({ id: 'GrantRequest' });

export const LedgerEntrySchema = z
  .object({
    id: z.string(),
    kind: z.enum(ledgerKinds),
    amount: z.int().describe('Signed: credits added are positive, charges negative'),
    balanceAfter: z.int(),
    predictionId: z.string().optional(),
    batchId: z.string().optional(),
    reason: z.string().optional(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'LedgerEntry' });

export const BalanceChangeResponseSchema = z
  .object({ transaction: LedgerEntrySchema, balance: z.int() })
  .meta({ id: 'BalanceChange' });

export const TransactionsQuerySchema = PageQuerySchema.extend({
  kind: z.enum(ledgerKinds).optional(),
  format: z.enum(['json', 'csv']).optional().describe('csv exports the whole (filtered) ledger as CSV'),
});

export const UserIdParamsSchema = z.object({ userId: z.string().min(1).max(128) });

export const IdempotencyHeadersSchema = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('Retries with the same key and body return the first result and change nothing'),
});

// Models

export const TensorSpecSchema = z
  .object({
    name: z.string(),
    type: z
      .string()
      .describe('Element type: float32, float64, int32, int64, bool (outputs may also be e.g. string)'),
    shape: z.array(z.int().nullable()).describe('null marks a dynamic dimension (the batch dimension N)'),
  })
  .meta({ id: 'TensorSpec' });

export const ModelSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.int(),
    description: z.string(),
    price: z.int().describe('Credits per row'),
    status: z.enum(['pending_upload', 'active', 'invalid', 'retired']),
    statusReason: z.string().optional(),
    inputs: z.array(TensorSpecSchema),
    outputs: z.array(TensorSpecSchema),
    sha256: z.string().optional(),
    sizeBytes: z.int().optional(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Model' });

export const CreateModelBodySchema = z
  .strictObject({
    name: ModelNameSchema,
    description: z.string().trim().max(2000).default(''),
    price: PriceSchema,
    ...declaredFileFields('model files'),
  })
  .meta({ id: 'CreateModelRequest' });

export const UploadSchema = z
  .object({
    url: z.url(),
    method: z.literal('PUT'),
    headers: z
      .record(z.string(), z.string())
      .describe(
        'Send every one of these with the PUT: `Content-Type`, and `Content-Length` and `x-amz-checksum-sha256` when `size` and `checksumSha256` were given (those two are signed into the URL). A browser sets `Content-Length` itself and must not be given it.',
      ),
  })
  .meta({ id: 'PresignedUpload', description: 'PUT the file to `url` with these headers' });

export const CreateModelResponseSchema = z
  .object({ model: ModelSchema, upload: UploadSchema })
  .meta({ id: 'CreateModelResponse' });

export const PatchModelBodySchema = z
  .strictObject({
    price: PriceSchema.optional(),
    description: z.string().trim().max(2000).optional(),
    status: z.enum(['active', 'retired']).optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), {
    message: 'give at least one of price, description, status',
  })
  .meta({ id: 'UpdateModelRequest' });

export const ModelRefParamsSchema = z.object({
  modelId: z
    .string()
    .min(1)
    .max(128)
    .describe('A model version id, or a model name (its newest active version)'),
});

// Predictions

export const PredictionBodySchema = z
  .strictObject({
    inputs: z
      .record(z.string(), z.unknown())
      .describe(
        'Tensors keyed by input name, as nested arrays; a flat array of F numbers is one row of an [N, F] input',
      ),
  })
  .meta({ id: 'PredictionRequest', example: { inputs: { input: [5.1, 3.5, 1.4, 0.2] } } });

export const PredictionResultSchema = z
  .object({
    id: z.string(),
    modelId: z.string(),
    modelVersion: z.int(),
    outputs: z.record(z.string(), z.unknown()),
    rows: z.int(),
    cost: z.int(),
    balance: z.int(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'PredictionResult' });

export const PredictionRecordSchema = z
  .object({
    id: z.string(),
    modelId: z.string(),
    modelName: z.string(),
    modelVersion: z.int(),
    status: z.enum(['succeeded', 'failed']),
    rows: z.int(),
    cost: z.int(),
    outputs: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    latencyMs: z.int(),
    createdAt: z.iso.datetime(),
    refundedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'Prediction' });

export const PredictionsQuerySchema = PageQuerySchema.extend({
  modelId: z.string().min(1).max(128).optional().describe('Only predictions of this model id or name'),
  format: z.enum(['json', 'csv']).optional().describe('csv exports the whole (filtered) history as CSV'),
});

export const PredictionIdParamsSchema = z.object({ predictionId: z.string().min(1).max(128) });

export const RefundBodySchema = z
  .strictObject({ reason: z.string().trim().min(1).max(500) })
  .meta({ id: 'RefundRequest' });

// Batches

export const CreateBatchBodySchema = z
  .strictObject({
    modelId: z.string().min(1).max(128).describe('A model version id or name'),
    format: z.enum(['csv', 'jsonl']),
    ...declaredFileFields('batch files'),
  })
  .meta({ id: 'CreateBatchRequest' });

export const BatchSchema = z
  .object({
    id: z.string(),
    modelId: z.string(),
    modelName: z.string(),
    modelVersion: z.int(),
    format: z.enum(['csv', 'jsonl']),
    status: z.enum(['awaiting_upload', 'queued', 'running', 'succeeded', 'failed']),
    statusReason: z.string().optional(),
    rows: z.int().nullable().describe("The file's row count once known"),
    processed: z.int(),
    succeeded: z.int(),
    failed: z.int(),
    cost: z.int(),
    results: z
      .object({ url: z.url() })
      .optional()
      .describe('A presigned link to the results file, once succeeded'),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'Batch' });

export const CreateBatchResponseSchema = z
  .object({
    id: z.string(),
    status: z.literal('awaiting_upload'),
    upload: UploadSchema,
    batch: BatchSchema,
  })
  .meta({ id: 'CreateBatchResponse' });

export const BatchIdParamsSchema = z.object({ id: z.string().min(1).max(128) });

// Spend control, reports and the audit trail

export const LimitsBodySchema = z
  .strictObject({
    dailySpendCap: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .nullable()
      .optional()
      .describe('Credits per UTC day; null: no cap'),
    lowBalanceThreshold: z
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .nullable()
      .optional()
      .describe('A balance falling below this records a notification; null: none'),
    webhookUrl: z
      .url()
      .max(2048)
      .nullable()
      .optional()
      .describe('Receives low-balance notifications (Standard Webhooks)'),
  })
  .meta({ id: 'LimitsRequest', description: 'Fields left out stay as they are; null clears one' });

export const LimitsSchema = z
  .object({
    dailySpendCap: z.int().nullable(),
    lowBalanceThreshold: z.int().nullable(),
    webhookUrl: z.string().nullable(),
  })
  .meta({ id: 'Limits' });

export const LimitsResponseSchema = LimitsSchema.extend({
  webhookSecret: z
    .string()
    .optional()
    .describe('The signing secret of a new webhook URL (whsec_...), shown only in this response'),
}).meta({ id: 'LimitsResponse' });

export const FormatQuerySchema = z.object({
  format: z
    .enum(['json', 'csv'])
    .optional()
    .describe('csv exports the same data as CSV (or send Accept: text/csv)'),
});

export const UsageQuerySchema = z
  .strictObject({
    from: z.string().optional().describe('UTC date YYYY-MM-DD, inclusive (default: 29 days before `to`)'),
    to: z.string().optional().describe('UTC date YYYY-MM-DD, inclusive (default: today)'),
    groupBy: z.enum(['day', 'model']).default('day'),
  })
  .extend(FormatQuerySchema.shape);

export const UsageCountsSchema = z.object({ predictions: z.int(), failed: z.int(), credits: z.int() });

export const UsageReportSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    groupBy: z.enum(['day', 'model']),
    items: z.array(
      UsageCountsSchema.extend({ period: z.string().optional(), modelId: z.string().optional() }),
    ),
    totals: UsageCountsSchema,
  })
  .meta({ id: 'UsageReport' });

export const StatsQuerySchema = z.strictObject({ from: z.string().optional(), to: z.string().optional() });

export const AdminStatsSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    users: z.int(),
    activeUsers: z.int(),
    predictions: z.int(),
    failed: z.int(),
    creditsCharged: z.int(),
    creditsAdded: z.int(),
    errorRate: z.number(),
    byModel: z.array(
      UsageCountsSchema.extend({
        modelId: z.string(),
        modelName: z.string().optional(),
        modelVersion: z.int().optional(),
        errorRate: z.number(),
        p50LatencyMs: z.number().nullable(),
        p95LatencyMs: z.number().nullable(),
      }),
    ),
    byDay: z.array(
      UsageCountsSchema.extend({ period: z.string(), creditsAdded: z.int(), activeUsers: z.int() }),
    ),
    topUsers: z.array(UsageCountsSchema.extend({ userId: z.string(), email: z.string().nullable() })),
  })
  .meta({ id: 'AdminStats' });

export const AuditEntrySchema = z
  .object({
    id: z.string(),
    at: z.iso.datetime(),
    actorId: z.string(),
    action: z.enum(['credits.grant', 'prediction.refund', 'model.create', 'model.update']),
    target: z.object({ type: z.enum(['user', 'prediction', 'model']), id: z.string() }),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

export const NotificationSchema = z
  .object({
    id: z.string(),
    type: z.literal('low_balance'),
    balance: z.int(),
    threshold: z.int(),
    delivery: z.enum(['none', 'pending', 'delivered', 'failed']),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Notification' });
