/**
 * Everything that can be rebuilt from code: one Lambda function per entry of the function list, the
 * HTTP API over the route table, the queue event sources and the JWT signing key. Destroying and
 * redeploying this stack never touches data (that lives in the stateful stack); it only replaces the
 * signing key, which ends the access tokens in flight (they live minutes; refresh tokens are records).
 */
import { join } from 'node:path';
import { CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct, IConstruct } from 'constructs';
import {
  type FunctionDefinition,
  type FunctionName,
  functionNames,
  functions,
  type ResourceGrant,
} from '../shared/api/functions.ts';
import { DEFAULT_ROUTE_FUNCTION, type RouteKey, routeKey, routes } from '../shared/api/routes.ts';
import {
  BATCH_INBOX_PREFIX,
  BATCH_RESULTS_PREFIX,
  MODEL_UPLOAD_PREFIX,
} from '../shared/domain/object-keys.ts';
import { SERVICE_NAME } from '../shared/observability/metric-names.ts';
import { Observability } from './observability.ts';
import { FUNCTION_RUNTIME, onnxRuntimeLayer } from './onnx-runtime-layer.ts';
import { REPO_ROOT } from './paths.ts';
import type { StageSettings } from './stage.ts';
import type { StatefulStack } from './stateful-stack.ts';

/** x86_64, because the onnxruntime layer ships onnxruntime-node's linux/x64 binaries. */
export const FUNCTION_ARCHITECTURE = lambda.Architecture.X86_64;

/** Steady-state requests per second and burst for the whole stage, before API Gateway answers 429. */
export const API_THROTTLE = { rateLimit: 100, burstLimit: 200 };

/**
 * Tighter limits for the routes that hash passwords (scrypt, CPU-bound) or create accounts, so that
 * a flood of sign-ins or sign-ups is answered 429 by API Gateway before it takes the auth
 * function's concurrency (and the stage's budget) from everyone else. They count every client
 * together: per-client limits are the WAF's rate-based rule (`-c waf=true`). POST /v1/tokens also
 * serves the refresh grant, which every signed-in client uses once per access-token lifetime.
 */
export const ROUTE_THROTTLES = {
  'POST /v1/tokens': { rateLimit: 20, burstLimit: 40 },
  'POST /v1/users': { rateLimit: 2, burstLimit: 10 },
} as const satisfies Partial<Record<RouteKey, apigwv2.ThrottleSettings>>;

/**
 * Lambda's default concurrency limit per account and region, and what it always keeps unreserved;
 * the reservations of the function list must fit in the difference.
 */
export const ACCOUNT_CONCURRENCY_LIMIT = 1000;
export const MINIMUM_UNRESERVED_CONCURRENCY = 100;

/**
 * ES module output still meets CommonJS dependencies that call `require` (esbuild's `__require` shim
 * throws without one). The import is aliased so it cannot clash with a name in the bundle.
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __bannerCreateRequire } from 'node:module'; const require = __bannerCreateRequire(import.meta.url);";

/** The function serving Swagger UI's assets gets them copied next to its bundle (see shared/http/docs.ts). */
const SWAGGER_UI_FUNCTION = routes.find((route) => route.path === '/docs/{asset}')?.fn;
const SWAGGER_UI_ASSETS = ['swagger-ui-bundle.js', 'swagger-ui.css'];

const ONNX_RUNTIME_MODULE = 'onnxruntime-node';

/** The managed policy every function role gets (CloudWatch Logs only), as cdk-nag names it. */
export const LAMBDA_BASIC_EXECUTION_POLICY =
  'arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole';

export interface StatelessStackProps extends StackProps {
  settings: StageSettings;
  stateful: StatefulStack;
}

export class StatelessStack extends Stack {
  readonly functions: Record<FunctionName, NodejsFunction>;
  readonly api: apigwv2.HttpApi;
  readonly apiStage: apigwv2.HttpStage;
  readonly signingKey: secretsmanager.Secret;
  /** The value CloudFront adds to every request it sends the API (infra/web-stack.ts). */
  readonly originVerifySecret: secretsmanager.Secret;
  readonly onnxRuntimeLayer: lambda.LayerVersion;
  readonly observability: Observability;
  /** Per scheduled function: the events its schedule could not deliver and the runs that failed for good. */
  readonly scheduleDeadLetterQueues: Partial<Record<FunctionName, sqs.Queue>> = {};

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { settings, stateful } = props;

    // The key material shared/auth/signing-keys.ts expects: {"current": ..., "previous"?: ...}, each a
    // random string that seeds an Ed25519 key pair. `previous` is only set during a manual rotation.
    this.signingKey = new secretsmanager.Secret(this, 'SigningKey', {
      description: `Seeds the Ed25519 keys that sign credit-predictions ${settings.stage} access tokens`,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({}),
        generateStringKey: 'current',
        passwordLength: 64,
        excludePunctuation: true,
      },
    });
    Validations.of(this.signingKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotated by hand, not by a rotation Lambda: the material {current, previous} lets an operator write a ' +
        'version whose previous is the old current, so tokens signed with either key keep verifying (access ' +
        'tokens live 15 minutes). No rotation function implementing that two-step exists yet.',
    });

    // The API's execute-api endpoint is public; only requests that carry this value came through
    // CloudFront, which adds it as a header (see infra/web-stack.ts). Same material as the signing key:
    // {"current": ..., "previous"?: ...}, `previous` only while a rotation is under way.
    this.originVerifySecret = new secretsmanager.Secret(this, 'OriginVerifySecret', {
      description: `The header value CloudFront adds to the credit-predictions ${settings.stage} API's requests`,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({}),
        generateStringKey: 'current',
        passwordLength: 48,
        excludePunctuation: true,
      },
    });
    Validations.of(this.originVerifySecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotated by hand, because the new value reaches CloudFront only through a deployment of the web stack ' +
        '(a rotation Lambda would change the distribution behind CloudFormation): write {current: new, previous: ' +
        'old}, which the API accepts both of, then deploy with -c originVerifyVersionId=<that version> (README).',
    });

    this.onnxRuntimeLayer = onnxRuntimeLayer(this, 'OnnxRuntimeLayer', {
      architecture: FUNCTION_ARCHITECTURE,
    });

    const resources: GrantableResources = {
      table: stateful.table,
      modelsBucket: stateful.modelsBucket,
      batchBucket: stateful.batchBucket,
      batchQueue: stateful.batchQueue,
      notificationQueue: stateful.notificationQueue,
      signingKey: this.signingKey,
    };
    const queues: Record<QueueName, sqs.IQueue> = {
      'model-queue': stateful.modelQueue,
      'batch-queue': stateful.batchQueue,
      'notification-queue': stateful.notificationQueue,
    };

    if (settings.reservedConcurrency) checkReservations();
    const built = {} as Record<FunctionName, NodejsFunction>;
    for (const name of functionNames) {
      const definition: FunctionDefinition = functions[name];
      const fn = this.createFunction(name, definition, settings);
      for (const resourceGrant of definition.grants) grant(fn, resourceGrant, resources);
      if (definition.kind === 'http') grantOriginVerify(fn, this.originVerifySecret);
      if (definition.kind === 'queue-worker') {
        // The event source also grants the function the right to receive and delete the queue's messages.
        fn.addEventSource(
          new SqsEventSource(queues[definition.queue], {
            batchSize: definition.batchSize,
            reportBatchItemFailures: true,
            maxConcurrency: definition.maxConcurrency,
          }),
        );
      }
      if (definition.kind === 'scheduled') this.schedule(name, fn, definition.everyMinutes);
      this.acknowledgeFunctionFindings(fn);
      built[name] = fn;
    }
    this.functions = built;

    const { api, stage, accessLogs } = this.createApi(settings);
    this.api = api;
    this.apiStage = stage;

    const reconcilerSchedule = this.scheduleDeadLetterQueues.reconciler;
    if (!reconcilerSchedule) throw new Error('The reconciler is expected to run on a schedule.');
    this.observability = new Observability(this, 'Observability', {
      stage: settings.stage,
      api,
      apiAccessLogs: accessLogs,
      functions: built,
      toleratedErrors: {
        'webhook-dispatcher': {
          perFifteenMinutes: 20,
          why:
            "a customer's receiver that is down fails every attempt until the message is dead-lettered, " +
            'which the Notification dead-letter alarm reports; many failures at once point at this side',
        },
      },
      deadLetterQueues: {
        Model: stateful.modelDeadLetterQueue,
        Batch: stateful.batchDeadLetterQueue,
        Notification: stateful.notificationDeadLetterQueue,
        ReconcilerSchedule: reconcilerSchedule,
      },
      workQueues: {
        model: {
          queue: stateful.modelQueue,
          maxAge: Duration.minutes(15),
          why: 'an uploaded model is validated within seconds to two minutes; its version stays pending meanwhile.',
        },
        batch: {
          queue: stateful.batchQueue,
          maxAge: Duration.hours(1),
          why:
            'batches wait when the batch worker is at its maximum concurrency; an hour of waiting means the ' +
            'backlog outgrows it (or the worker fails and retries).',
        },
        notification: {
          queue: stateful.notificationQueue,
          maxAge: Duration.minutes(30),
          why:
            'low-balance webhooks are sent within seconds, and the retries before the dead-letter queue back ' +
            'off for minutes, not half an hour.',
        },
      },
      table: stateful.table,
      reconcilerEveryMinutes: functions.reconciler.everyMinutes,
      alarmEmail: settings.alarmEmail,
    });
    new CfnOutput(this, 'ApiUrl', { value: stage.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'OriginVerifySecretArn', {
      value: this.originVerifySecret.secretArn,
      description: 'The value CloudFront adds to API requests; rotate it as the README says',
    });
  }

  /**
   * An EventBridge rule that runs the function, with a dead-letter queue for what cannot be
   * delivered (the rule's own retries spent) and for runs that failed for good (Lambda's
   * asynchronous retries spent): either fires the dead-letter alarm. An event older than one period
   * is dropped, since the next run does its work.
   */
  private schedule(name: FunctionName, fn: NodejsFunction, everyMinutes: number) {
    const id = pascalCase(name);
    const deadLetterQueue = new sqs.Queue(this, `${id}ScheduleDeadLetterQueue`, {
      retentionPeriod: Duration.days(14),
      enforceSSL: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
    });
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: `This queue is itself a dead-letter queue (of the ${name} schedule and of its failed runs).`,
    });
    const period = Duration.minutes(everyMinutes);
    new events.Rule(this, `${id}Schedule`, {
      description: `Runs ${name} every ${everyMinutes} minutes`,
      schedule: events.Schedule.rate(period),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 2, maxEventAge: period, deadLetterQueue })],
    });
    fn.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: period,
      onFailure: new destinations.SqsDestination(deadLetterQueue),
    });
    this.scheduleDeadLetterQueues[name] = deadLetterQueue;
  }

  private createFunction(name: FunctionName, definition: FunctionDefinition, settings: StageSettings) {
    const id = pascalCase(name);
    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      retention: retentionDays(settings.logRetentionDays),
      removalPolicy: settings.removalPolicy,
    });
    const environment: Record<string, string> = {
      STAGE: settings.stage,
      LOG_LEVEL: settings.logLevel,
      CORS_ALLOWED_ORIGINS: settings.corsOrigins.join(','),
      SELF_SERVICE_TOP_UPS: String(settings.selfServiceTopUps),
      SIGNUP_BONUS: String(settings.signupBonus),
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      NODE_OPTIONS: '--enable-source-maps',
      BATCH_MAX_RECEIVES: String(settings.maxReceiveCount),
      POWERTOOLS_TRACE_DISABLED: String(!settings.tracing),
      ...(definition.usesOnnxRuntime ? { ORT_INTRA_OP_THREADS: '1' } : {}),
    };
    return new NodejsFunction(this, `${id}Function`, {
      entry: join(REPO_ROOT, definition.entry),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime: FUNCTION_RUNTIME,
      architecture: FUNCTION_ARCHITECTURE,
      description: definition.description,
      memorySize: definition.memoryMb,
      timeout: Duration.seconds(definition.timeoutSeconds),
      logGroup,
      environment,
      ...(settings.tracing ? { tracing: lambda.Tracing.ACTIVE } : {}),
      ...(settings.reservedConcurrency
        ? { reservedConcurrentExecutions: definition.reservedConcurrency }
        : {}),
      layers: definition.usesOnnxRuntime ? [this.onnxRuntimeLayer] : [],
      bundling: {
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The AWS SDK is bundled, at the versions in package-lock.json that the tests ran against,
        // rather than taken from whatever version the runtime ships. onnxruntime-node (a native addon,
        // which esbuild cannot bundle) is left to the layer; a function without the layer must not load it.
        bundleAwsSDK: true,
        externalModules: [ONNX_RUNTIME_MODULE],
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [
            ...(name === SWAGGER_UI_FUNCTION ? copySwaggerUiCommands(inputDir, outputDir) : []),
            ...(definition.usesOnnxRuntime ? [] : [refuseOnnxRuntimeImport(name, outputDir)]),
          ],
        },
      },
    });
  }

  private createApi(settings: StageSettings) {
    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integrationFor = (name: FunctionName) => {
      let integration = integrations.get(name);
      if (!integration) {
        integration = new HttpLambdaIntegration(`${pascalCase(name)}Integration`, this.functions[name], {
          payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
        });
        integrations.set(name, integration);
      }
      return integration;
    };

    const api = new apigwv2.HttpApi(this, 'Api', {
      apiName: `credit-predictions-${settings.stage}`,
      description: `Credit predictions API (${settings.stage})`,
      createDefaultStage: false,
      // The catch-all answers unknown paths and methods with problem+json (404 or 405).
      defaultIntegration: integrationFor(DEFAULT_ROUTE_FUNCTION),
      ...(settings.corsOrigins.length > 0
        ? {
            corsPreflight: {
              allowOrigins: settings.corsOrigins,
              allowMethods: [apigwv2.CorsHttpMethod.ANY],
              allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
              exposeHeaders: ['x-request-id', 'retry-after'],
              maxAge: Duration.hours(1),
            },
          }
        : {}),
    });
    const apiRoutes = new Map<string, apigwv2.HttpRoute>();
    for (const route of routes) {
      const [added] = api.addRoutes({
        path: route.path,
        methods: [apigwv2.HttpMethod[route.method]],
        integration: integrationFor(route.fn),
      });
      if (added) apiRoutes.set(routeKey(route), added);
    }

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: retentionDays(settings.logRetentionDays),
      removalPolicy: settings.removalPolicy,
    });
    const stage = new apigwv2.HttpStage(this, 'ApiDefaultStage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: API_THROTTLE,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            apiId: '$context.apiId',
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTimeEpoch',
            method: '$context.httpMethod',
            path: '$context.path',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    // Route settings name routes by key; CloudFormation refuses them until those routes exist.
    const routeSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};
    for (const [key, throttle] of Object.entries(ROUTE_THROTTLES)) {
      const route = apiRoutes.get(key);
      if (!route) throw new Error(`ROUTE_THROTTLES names ${key}, which the route table does not have.`);
      stage.node.addDependency(route);
      routeSettings[key] = {
        ThrottlingRateLimit: throttle.rateLimit,
        ThrottlingBurstLimit: throttle.burstLimit,
      };
    }
    (stage.node.defaultChild as apigwv2.CfnStage).routeSettings = routeSettings;

    Validations.of(api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Authorization happens in the functions, not in API Gateway: each route is public, takes a JWT access ' +
        'token or takes an API key (the route table says which), and API keys must be checked against the ' +
        'table on every request so that a revocation takes effect at once, which a cached authorizer would not do.',
    });
    return { api, stage, accessLogs };
  }

  /** Findings that every function of this stack shares, acknowledged on the function with the reason. */
  private acknowledgeFunctionFindings(fn: NodejsFunction) {
    Validations.of(fn).acknowledge({
      id: `AwsSolutions-IAM4[Policy::${LAMBDA_BASIC_EXECUTION_POLICY}]`,
      reason:
        'The execution role uses AWSLambdaBasicExecutionRole, which only lets the function write to ' +
        'CloudWatch Logs; it is the AWS-maintained minimum for a Lambda function.',
    });
  }
}

type QueueName = Extract<FunctionDefinition, { kind: 'queue-worker' }>['queue'];

/**
 * Fails the synth when the function list reserves more than the account can give, or caps a queue
 * worker's event source above its own reservation (the poller would be throttled), instead of
 * letting CloudFormation fail half-way through a deployment.
 */
function checkReservations(): void {
  const reserved = functionNames.reduce((sum, name) => sum + functions[name].reservedConcurrency, 0);
  const budget = ACCOUNT_CONCURRENCY_LIMIT - MINIMUM_UNRESERVED_CONCURRENCY;
  if (reserved > budget) {
    throw new Error(
      `The function list reserves ${reserved} concurrent executions; an account with Lambda's default ` +
        `limit of ${ACCOUNT_CONCURRENCY_LIMIT} can reserve at most ${budget}. Lower reservedConcurrency in ` +
        'shared/api/functions.ts, or deploy with -c reservedConcurrency=false.',
    );
  }
  for (const name of functionNames) {
    const definition: FunctionDefinition = functions[name];
    if (definition.kind === 'queue-worker' && definition.maxConcurrency > definition.reservedConcurrency) {
      throw new Error(
        `${name}: maxConcurrency ${definition.maxConcurrency} is above its reservedConcurrency ` +
          `${definition.reservedConcurrency}; the event source would be throttled.`,
      );
    }
  }
}

interface GrantableResources {
  table: StatefulStack['table'];
  modelsBucket: StatefulStack['modelsBucket'];
  batchBucket: StatefulStack['batchBucket'];
  batchQueue: sqs.IQueue;
  notificationQueue: sqs.IQueue;
  signingKey: secretsmanager.ISecret;
}

/**
 * The table actions the code uses (shared/adapters/dynamo): a transaction needs, per part, the
 * action of that part (PutItem, UpdateItem, DeleteItem, ConditionCheckItem); there is no IAM action
 * for TransactWriteItems itself. Scan, BatchWriteItem and the stream actions are used by nothing.
 */
export const TABLE_ACTIONS = {
  read: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
  write: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
  delete: ['dynamodb:DeleteItem'],
} as const;

/**
 * Where ModelService.registerBundled puts the demo models it registers from models/ (the local seed,
 * infra/local/seed.ts, does): model runs read them like uploaded ones.
 */
export const BUNDLED_MODEL_PREFIX = 'bundled/';

/**
 * The keys that the results grant may delete: the segments a results file is assembled from
 * (`segmentKey` in shared/domain/object-keys.ts), never a results file.
 */
export const RESULT_SEGMENTS_PATTERN = `${BATCH_RESULTS_PREFIX}*.parts/*`;

/**
 * Gives a function one grant of the function list: the IAM rights and, in the same place, the
 * environment variable that names the resource, so that the two cannot drift apart. Each right is
 * an action the code calls, on the key prefix it uses (shared/domain/object-keys.ts); the wildcards
 * that remain are acknowledged here, one cdk-nag finding at a time, with the reason.
 */
export function grant(
  fn: lambda.Function,
  resourceGrant: ResourceGrant,
  resources: GrantableResources,
): void {
  const wildcard = (finding: string, reason: string) =>
    Validations.of(fn).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
  const allow = (actions: readonly string[], arns: string[]) =>
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: [...actions], resources: arns }));

  const { table, modelsBucket, batchBucket } = resources;
  const tableAccess = (actions: readonly string[], indexes: boolean) => {
    allow(actions, [table.tableArn]);
    fn.addEnvironment('TABLE_NAME', table.tableName);
    if (!indexes) return;
    allow(['dynamodb:Query'], [`${table.tableArn}/index/*`]);
    wildcard(
      `Resource::${nagReference(fn, table, table.tableArn)}/index/*`,
      "Query on the table's global secondary indexes (gsi1, gsi2): index/* names the indexes of this one table, " +
        'and Query is the only action allowed on them.',
    );
  };
  /** Actions on the objects under one key pattern of a bucket, acknowledged with what the keys are. */
  const objects = (
    bucket: StatefulStack['modelsBucket'],
    pattern: string,
    actions: readonly string[],
    keys: string,
  ) => {
    allow(actions, [bucket.arnForObjects(pattern)]);
    wildcard(
      `Resource::${nagReference(fn, bucket, bucket.bucketArn)}/${pattern}`,
      `${keys}: their names are made at run time (per user, upload or model version), so the policy names ` +
        `their prefix (${pattern}) in this one bucket.`,
    );
  };
  // HeadObject of a missing key answers 404 only to a caller that may list the bucket (403 otherwise),
  // and "the file is not there" is an answer the code gives.
  const listing = (bucket: StatefulStack['modelsBucket']) => allow(['s3:ListBucket'], [bucket.bucketArn]);

  switch (resourceGrant) {
    case 'table:read':
      tableAccess(TABLE_ACTIONS.read, true);
      return;
    case 'table:write':
      tableAccess(TABLE_ACTIONS.write, false);
      return;
    case 'table:delete':
      tableAccess(TABLE_ACTIONS.delete, false);
      return;
    case 'models-bucket:read':
      objects(modelsBucket, `${MODEL_UPLOAD_PREFIX}*`, ['s3:GetObject'], 'Model files');
      objects(modelsBucket, `${BUNDLED_MODEL_PREFIX}*`, ['s3:GetObject'], 'Bundled demo model files');
      listing(modelsBucket);
      fn.addEnvironment('MODELS_BUCKET', modelsBucket.bucketName);
      return;
    case 'models-bucket:write':
      // Presigned single-request PUTs: no multipart upload to abort.
      objects(modelsBucket, `${MODEL_UPLOAD_PREFIX}*`, ['s3:PutObject'], 'Model files uploaded by admins');
      fn.addEnvironment('MODELS_BUCKET', modelsBucket.bucketName);
      return;
    case 'batch-inbox:read':
      objects(batchBucket, `${BATCH_INBOX_PREFIX}*`, ['s3:GetObject'], 'Batch files');
      listing(batchBucket);
      fn.addEnvironment('BATCH_BUCKET', batchBucket.bucketName);
      return;
    case 'batch-inbox:write':
      objects(batchBucket, `${BATCH_INBOX_PREFIX}*`, ['s3:PutObject'], 'Batch files uploaded by users');
      fn.addEnvironment('BATCH_BUCKET', batchBucket.bucketName);
      return;
    case 'batch-results:read':
      objects(batchBucket, `${BATCH_RESULTS_PREFIX}*`, ['s3:GetObject'], 'Results files and their segments');
      fn.addEnvironment('BATCH_BUCKET', batchBucket.bucketName);
      return;
    case 'batch-results:write':
      // Segments and results are streamed in parts (lib-storage), and a failed upload is aborted.
      objects(
        batchBucket,
        `${BATCH_RESULTS_PREFIX}*`,
        ['s3:PutObject', 's3:AbortMultipartUpload'],
        'Results files and their segments',
      );
      // DeleteObjects checks s3:DeleteObject for each key; only the assembled segments are deleted.
      objects(batchBucket, RESULT_SEGMENTS_PATTERN, ['s3:DeleteObject'], 'The segments of results files');
      fn.addEnvironment('BATCH_BUCKET', batchBucket.bucketName);
      return;
    case 'batch-queue:send':
      resources.batchQueue.grantSendMessages(fn);
      fn.addEnvironment('BATCH_QUEUE_URL', resources.batchQueue.queueUrl);
      return;
    case 'notification-queue:send':
      resources.notificationQueue.grantSendMessages(fn);
      fn.addEnvironment('NOTIFICATION_QUEUE_URL', resources.notificationQueue.queueUrl);
      return;
    case 'notification-queue:delay':
      allow(['sqs:ChangeMessageVisibility'], [resources.notificationQueue.queueArn]);
      fn.addEnvironment('NOTIFICATION_QUEUE_URL', resources.notificationQueue.queueUrl);
      return;
    case 'signing-key:read':
      resources.signingKey.grantRead(fn);
      fn.addEnvironment('SIGNING_KEY_SECRET_ARN', resources.signingKey.secretArn);
      return;
    default: {
      const unknown: never = resourceGrant;
      throw new Error(`No IAM grant is defined for "${String(unknown)}".`);
    }
  }
}

/**
 * Every function behind the API may read the origin-verify secret and is told where it is
 * (`ORIGIN_VERIFY_SECRET_ARN`): a request without the header CloudFront adds, or with another
 * value, did not come through CloudFront and is refused (shared/http).
 */
export function grantOriginVerify(fn: lambda.Function, secret: secretsmanager.ISecret): void {
  secret.grantRead(fn);
  fn.addEnvironment('ORIGIN_VERIFY_SECRET_ARN', secret.secretArn);
}

/**
 * How cdk-nag spells a resource attribute in a finding id (its flattenCfnReference): an attribute of
 * another stack is the name of the export CDK creates for the reference (`exportValue` without a name
 * returns that same import), and one of the consumer's own stack is `<LogicalId.Attribute>`.
 */
function nagReference(consumer: IConstruct, producer: IConstruct, attribute: string): string {
  const consumerStack = Stack.of(consumer);
  const producerStack = Stack.of(producer);
  const token = producerStack === consumerStack ? attribute : producerStack.exportValue(attribute);
  const resolved: unknown = consumerStack.resolve(token);
  if (resolved && typeof resolved === 'object') {
    if ('Fn::ImportValue' in resolved && typeof resolved['Fn::ImportValue'] === 'string') {
      return resolved['Fn::ImportValue'];
    }
    if ('Fn::GetAtt' in resolved && Array.isArray(resolved['Fn::GetAtt'])) {
      return `<${resolved['Fn::GetAtt'].join('.')}>`;
    }
    if ('Ref' in resolved && typeof resolved.Ref === 'string') return `<${resolved.Ref}>`;
  }
  throw new Error(`Cannot tell how cdk-nag names ${JSON.stringify(resolved)}.`);
}

/**
 * A shell command that fails the bundling of a function without the onnxruntime layer if its bundle
 * loads onnxruntime-node when it starts (a static import or require): in Lambda it would not start.
 */
function refuseOnnxRuntimeImport(name: FunctionName, outputDir: string): string {
  const loads = `from ?"${ONNX_RUNTIME_MODULE}"|require\\("${ONNX_RUNTIME_MODULE}"\\)`;
  const problem =
    `The ${name} function loads ${ONNX_RUNTIME_MODULE} at start-up but its entry in shared/api/functions.ts ` +
    'has usesOnnxRuntime: false, so it gets no layer and would fail to start in Lambda. Import the model ' +
    'runtime lazily (await import()) in the code that runs models, or set usesOnnxRuntime: true.';
  return `if grep -Eq '${loads}' "${outputDir}/index.mjs"; then echo '${problem}' >&2; exit 1; fi`;
}

/** Shell commands that copy Swagger UI's two assets next to the bundle (`swagger-ui/`). */
function copySwaggerUiCommands(inputDir: string, outputDir: string): string[] {
  const source = `${inputDir}/node_modules/swagger-ui-dist`;
  return [
    `mkdir -p "${outputDir}/swagger-ui"`,
    ...SWAGGER_UI_ASSETS.map((asset) => `cp "${source}/${asset}" "${outputDir}/swagger-ui/${asset}"`),
  ];
}

function retentionDays(days: number): logs.RetentionDays {
  const known = Object.values(logs.RetentionDays).filter(
    (value): value is number => typeof value === 'number',
  );
  if (!known.includes(days)) throw new Error(`CloudWatch Logs cannot keep logs for ${days} days.`);
  return days as logs.RetentionDays;
}

function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, _dash: string, letter: string) => letter.toUpperCase());
}
