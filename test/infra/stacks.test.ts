/**
 * What the synthesized templates promise, for both stages. Bundling is skipped (the
 * `aws:cdk:bundling-stacks` context), so these tests take seconds; bundling.test.ts bundles for real.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { stageSettings } from '../../infra/stage.ts';
import {
  INVALID_MODEL_UPLOAD_DAYS,
  INVALID_MODEL_UPLOAD_TAG,
  MODEL_NONCURRENT_VERSION_DAYS,
  StatefulStack,
} from '../../infra/stateful-stack.ts';
import {
  ACCOUNT_CONCURRENCY_LIMIT,
  API_THROTTLE,
  grant,
  MINIMUM_UNRESERVED_CONCURRENCY,
  RESULT_SEGMENTS_PATTERN,
  ROUTE_THROTTLES,
} from '../../infra/stateless-stack.ts';
import {
  type FunctionName,
  functionNames,
  functions,
  type ResourceGrant,
} from '../../shared/api/functions.ts';
import { DEFAULT_ROUTE_FUNCTION, routeKey, routes } from '../../shared/api/routes.ts';
import {
  BATCH_INBOX_PREFIX,
  BATCH_RESULTS_PREFIX,
  inboxKey,
  MODEL_UPLOAD_PREFIX,
  modelUploadKey,
  resultsKey,
  segmentKey,
} from '../../shared/domain/object-keys.ts';

type Stage = 'dev' | 'prod';
type Json = Record<string, unknown>;

/** A prod synth needs someone to receive its alarms. */
const PROD_CONTEXT = { alarmEmail: 'ops@example.com' };

// A synth takes seconds alone and far longer beside other test processes: give each test the time.
vi.setConfig({ testTimeout: 180_000 });

const outdirs: string[] = [];
afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});

function synthesize(stage: Stage, context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'credit-predictions-stacks-'));
  outdirs.push(outdir);
  const built = buildApp({
    context: { stage, 'aws:cdk:bundling-stacks': [], ...(stage === 'prod' ? PROD_CONTEXT : {}), ...context },
    outdir,
  });
  return {
    ...built,
    statefulTemplate: Template.fromStack(built.stateful),
    statelessTemplate: Template.fromStack(built.stateless),
  };
}

const synthesized = new Map<Stage, ReturnType<typeof synthesize>>();
function stageApp(stage: Stage) {
  let app = synthesized.get(stage);
  if (!app) {
    app = synthesize(stage);
    synthesized.set(stage, app);
  }
  return app;
}

// The synths the tests share happen here, where a loaded machine gets the hook's longer timeout.
beforeAll(() => {
  stageApp('dev');
  stageApp('prod');
});

function logicalId(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
}

function resourceOf(template: Template, id: string): Json {
  const resource = template.toJSON().Resources?.[id] as Json | undefined;
  if (!resource) throw new Error(`No resource ${id} in the template.`);
  return resource;
}

function propertiesOf(template: Template, id: string): Json {
  return resourceOf(template, id).Properties as Json;
}

/** The value the stateful stack exports under the name a `Fn::ImportValue` of the stateless stack imports. */
function exportedValue(stateful: Template, imported: unknown): unknown {
  const name = (imported as { 'Fn::ImportValue'?: string })['Fn::ImportValue'];
  const outputs = Object.values(stateful.toJSON().Outputs ?? {}) as {
    Value: unknown;
    Export?: { Name: string };
  }[];
  const output = outputs.find((candidate) => candidate.Export?.Name === name);
  if (!output) throw new Error(`The stateful stack exports nothing named ${String(name)}.`);
  return output.Value;
}

function environmentOf(stage: Stage, name: FunctionName): Record<string, unknown> {
  const { stateless, statelessTemplate } = stageApp(stage);
  const properties = propertiesOf(statelessTemplate, logicalId(stateless.functions[name]));
  return (properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

interface Statement {
  Effect: string;
  Action: string[];
  Resource: unknown[];
  Condition?: Json;
}

/** Every statement of the policies attached to a function's execution role, Action and Resource as lists. */
function statementsOf(stage: Stage, name: FunctionName): Statement[] {
  const { stateless, statelessTemplate } = stageApp(stage);
  const role = logicalId(stateless.functions[name].role as IConstruct);
  const policies = Object.values(statelessTemplate.findResources('AWS::IAM::Policy')) as {
    Properties: {
      Roles: { Ref: string }[];
      PolicyDocument: {
        Statement: { Effect: string; Action: unknown; Resource: unknown; Condition?: Json }[];
      };
    };
  }[];
  const list = (value: unknown) => (Array.isArray(value) ? value : [value]);
  return policies
    .filter((policy) => policy.Properties.Roles.some((ref) => ref.Ref === role))
    .flatMap((policy) =>
      policy.Properties.PolicyDocument.Statement.map((statement) => ({
        ...statement,
        Action: list(statement.Action) as string[],
        Resource: list(statement.Resource),
      })),
    );
}

/** Every IAM action of the policies attached to a function's execution role. */
function actionsOf(stage: Stage, name: FunctionName): string[] {
  return statementsOf(stage, name).flatMap((statement) => statement.Action);
}

/** The actions a function's role allows on one resource (as the template writes its ARN). */
function actionsOn(stage: Stage, name: FunctionName, resource: unknown): string[] {
  const arn = JSON.stringify(resource);
  return statementsOf(stage, name)
    .filter((statement) => statement.Resource.some((candidate) => JSON.stringify(candidate) === arn))
    .flatMap((statement) => statement.Action);
}

/** The environment variable each grant sets, as shared/config.ts reads it. */
const grantVariables: Record<ResourceGrant, string> = {
  'table:read': 'TABLE_NAME',
  'table:write': 'TABLE_NAME',
  'table:delete': 'TABLE_NAME',
  'models-bucket:read': 'MODELS_BUCKET',
  'models-bucket:write': 'MODELS_BUCKET',
  'batch-inbox:read': 'BATCH_BUCKET',
  'batch-inbox:write': 'BATCH_BUCKET',
  'batch-results:read': 'BATCH_BUCKET',
  'batch-results:write': 'BATCH_BUCKET',
  'batch-queue:send': 'BATCH_QUEUE_URL',
  'notification-queue:send': 'NOTIFICATION_QUEUE_URL',
  'notification-queue:delay': 'NOTIFICATION_QUEUE_URL',
  'signing-key:read': 'SIGNING_KEY_SECRET_ARN',
};

/**
 * Each right of a function's role as `<action> <resource>`, the resource named after the construct
 * it is (`table`, `models-bucket/uploads/*`, `notification-queue`...), imports of the stateful stack
 * followed to what it exports. Logs and X-Ray rights are left out.
 */
function rightsOf(stage: Stage, name: FunctionName): string[] {
  const { stateful, stateless, statefulTemplate } = stageApp(stage);
  const names = new Map<string, string>([
    [logicalId(stateful.table), 'table'],
    [logicalId(stateful.modelsBucket), 'models-bucket'],
    [logicalId(stateful.batchBucket), 'batch-bucket'],
    [logicalId(stateful.modelQueue), 'model-queue'],
    [logicalId(stateful.batchQueue), 'batch-queue'],
    [logicalId(stateful.notificationQueue), 'notification-queue'],
    [logicalId(stateless.signingKey), 'signing-key'],
    [logicalId(stateless.originVerifySecret), 'origin-verify'],
  ]);
  const named = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const object = value as Record<string, unknown>;
    if ('Fn::ImportValue' in object) return named(exportedValue(statefulTemplate, object));
    if ('Fn::GetAtt' in object) {
      const [id] = object['Fn::GetAtt'] as [string, string];
      return names.get(id) ?? id;
    }
    if ('Ref' in object) return names.get(object.Ref as string) ?? (object.Ref as string);
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return parts.map(named).join(separator);
    }
    throw new Error(`Cannot name ${JSON.stringify(value)}.`);
  };
  return statementsOf(stage, name)
    .filter((statement) => statement.Effect === 'Allow')
    .flatMap((statement) =>
      statement.Action.filter((action) => !/^(logs|xray):/.test(action)).flatMap((action) =>
        statement.Resource.map((resource) => `${action} ${named(resource)}`),
      ),
    )
    .sort();
}
const resourceVariables = new Set(Object.values(grantVariables));

describe.each(['dev', 'prod'] as const)('the %s stateful stack', (stage) => {
  const production = stage === 'prod';

  it('keeps everything in one table keyed by pk/sk with gsi1, gsi2, a TTL on expiresAt, PITR and a stream', () => {
    const { statefulTemplate } = stageApp(stage);
    statefulTemplate.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    statefulTemplate.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
        }),
        Match.objectLike({
          IndexName: 'gsi2',
          KeySchema: [
            { AttributeName: 'gsi2pk', KeyType: 'HASH' },
            { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
          ],
        }),
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      // No stream: the report counters are kept inside the charge transactions instead.
      StreamSpecification: Match.absent(),
      Replicas: [
        Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
      ],
    });
  });

  it(
    production
      ? 'protects the table from deletion and retains it when the stack goes'
      : 'lets the table be deleted with the stack',
    () => {
      const { stateful, statefulTemplate } = stageApp(stage);
      const table = resourceOf(statefulTemplate, logicalId(stateful.table));
      expect(table.DeletionPolicy).toBe(production ? 'Retain' : 'Delete');
      expect(table.UpdateReplacePolicy).toBe(production ? 'Retain' : 'Delete');
      const [replica] = (table.Properties as { Replicas: { DeletionProtectionEnabled: boolean }[] }).Replicas;
      expect(replica?.DeletionProtectionEnabled).toBe(production);
    },
  );

  it('blocks public access to both buckets and denies requests without TLS', () => {
    const { stateful, statefulTemplate } = stageApp(stage);
    for (const bucket of [stateful.modelsBucket, stateful.batchBucket]) {
      expect(propertiesOf(statefulTemplate, logicalId(bucket)).PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      statefulTemplate.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: logicalId(bucket) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  it('expires non-current model versions, lone delete markers and uploads tagged invalid', () => {
    const { stateful, statefulTemplate } = stageApp(stage);
    const rules = (
      propertiesOf(statefulTemplate, logicalId(stateful.modelsBucket)).LifecycleConfiguration as {
        Rules: Json[];
      }
    ).Rules;
    expect(rules).toEqual(
      expect.arrayContaining([
        {
          Status: 'Enabled',
          NoncurrentVersionExpiration: { NoncurrentDays: MODEL_NONCURRENT_VERSION_DAYS.toDays() },
        },
        { Status: 'Enabled', ExpiredObjectDeleteMarker: true },
        {
          Status: 'Enabled',
          Prefix: MODEL_UPLOAD_PREFIX,
          TagFilters: [{ Key: INVALID_MODEL_UPLOAD_TAG.key, Value: INVALID_MODEL_UPLOAD_TAG.value }],
          ExpirationInDays: INVALID_MODEL_UPLOAD_DAYS.toDays(),
        },
      ]),
    );
    // Valid model files are never expired: the only current-version expiration needs the tag.
    const expiring = rules.filter((rule) => rule.ExpirationInDays !== undefined);
    expect(expiring).toHaveLength(1);
  });

  it('sends ObjectCreated of uploads/ in the models bucket to the model queue and of inbox/ in the batch bucket to the batch queue', () => {
    const { stateful, statefulTemplate } = stageApp(stage);
    const routesTo = [
      { bucket: stateful.modelsBucket, prefix: 'uploads/', queue: stateful.modelQueue },
      { bucket: stateful.batchBucket, prefix: 'inbox/', queue: stateful.batchQueue },
    ];
    for (const { bucket, prefix, queue } of routesTo) {
      statefulTemplate.hasResourceProperties('Custom::S3BucketNotifications', {
        BucketName: { Ref: logicalId(bucket) },
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              Events: ['s3:ObjectCreated:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } },
              QueueArn: { 'Fn::GetAtt': [logicalId(queue), 'Arn'] },
            },
          ],
        },
      });
    }
  });

  it(`moves a message to its queue's dead-letter queue after ${stageSettings(stage).maxReceiveCount} receives`, () => {
    const { stateful, statefulTemplate } = stageApp(stage);
    const pairs = [
      { queue: stateful.modelQueue, deadLetterQueue: stateful.modelDeadLetterQueue },
      { queue: stateful.batchQueue, deadLetterQueue: stateful.batchDeadLetterQueue },
    ];
    for (const { queue, deadLetterQueue } of pairs) {
      expect(propertiesOf(statefulTemplate, logicalId(queue)).RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(deadLetterQueue), 'Arn'] },
        maxReceiveCount: stageSettings(stage).maxReceiveCount,
      });
    }
  });
});

describe.each(['dev', 'prod'] as const)('the %s stateless stack', (stage) => {
  it('creates one Node.js 24 function per entry of the function list, sized as the list says', () => {
    const { stateless, statelessTemplate } = stageApp(stage);
    statelessTemplate.resourceCountIs('AWS::Lambda::Function', functionNames.length);
    for (const name of functionNames) {
      const definition = functions[name];
      expect(propertiesOf(statelessTemplate, logicalId(stateless.functions[name]))).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['x86_64'],
        Handler: 'index.handler',
        Description: definition.description,
        MemorySize: definition.memoryMb,
        Timeout: definition.timeoutSeconds,
      });
    }
  });

  it('feeds each queue worker from its queue, reporting partial batch failures', () => {
    const { stateful, stateless, statefulTemplate, statelessTemplate } = stageApp(stage);
    const queues = {
      'model-queue': stateful.modelQueue,
      'batch-queue': stateful.batchQueue,
      'notification-queue': stateful.notificationQueue,
    };
    const mappings = Object.values(statelessTemplate.findResources('AWS::Lambda::EventSourceMapping')) as {
      Properties: Json;
    }[];
    const workers = functionNames.flatMap((name) => {
      const definition = functions[name];
      return definition.kind === 'queue-worker' ? [{ name, definition }] : [];
    });
    expect(mappings).toHaveLength(workers.length);
    for (const { name, definition } of workers) {
      const mapping = mappings.find(
        (candidate) =>
          (candidate.Properties.FunctionName as { Ref?: string }).Ref ===
          logicalId(stateless.functions[name]),
      );
      expect(mapping?.Properties).toMatchObject({
        BatchSize: definition.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: definition.maxConcurrency },
      });
      expect(exportedValue(statefulTemplate, mapping?.Properties.EventSourceArn)).toEqual({
        'Fn::GetAtt': [logicalId(queues[definition.queue]), 'Arn'],
      });
    }
  });

  it('routes every entry of the route table, and $default, to the function the table names', () => {
    const { stateless, statelessTemplate } = stageApp(stage);
    const expected = new Map<string, FunctionName>(routes.map((route) => [routeKey(route), route.fn]));
    expected.set('$default', DEFAULT_ROUTE_FUNCTION);
    statelessTemplate.resourceCountIs('AWS::ApiGatewayV2::Route', routes.length + 1);

    const served = new Map<string, string>();
    for (const route of Object.values(statelessTemplate.findResources('AWS::ApiGatewayV2::Route'))) {
      const { RouteKey, Target } = route.Properties as {
        RouteKey: string;
        Target: { 'Fn::Join': [string, unknown[]] };
      };
      const integrationRef = Target['Fn::Join'][1][1] as { Ref: string };
      const integration = propertiesOf(statelessTemplate, integrationRef.Ref);
      expect(integration).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
      served.set(
        RouteKey,
        (integration.IntegrationUri as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0],
      );
    }
    expect(Object.fromEntries(served)).toEqual(
      Object.fromEntries([...expected].map(([key, fn]) => [key, logicalId(stateless.functions[fn])])),
    );
  });

  it('logs every request of the default stage and throttles it', () => {
    const { statelessTemplate } = stageApp(stage);
    statelessTemplate.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      DefaultRouteSettings: { ThrottlingBurstLimit: 200, ThrottlingRateLimit: 100 },
    });
    expect(statelessTemplate.toJSON().Outputs).toHaveProperty('ApiUrl');
  });

  it('throttles sign-ins and sign-ups per route, below the stage limits, once those routes exist', () => {
    const { stateless, statelessTemplate } = stageApp(stage);
    const apiStage = resourceOf(statelessTemplate, logicalId(stateless.apiStage));
    const settings = (apiStage.Properties as Json).RouteSettings as Record<string, Json>;
    expect(Object.keys(settings).sort()).toEqual(['POST /v1/tokens', 'POST /v1/users']);
    for (const [key, throttle] of Object.entries(ROUTE_THROTTLES)) {
      expect(settings[key]).toEqual({
        ThrottlingRateLimit: throttle.rateLimit,
        ThrottlingBurstLimit: throttle.burstLimit,
      });
      expect(throttle.rateLimit).toBeLessThan(API_THROTTLE.rateLimit);
      expect(throttle.burstLimit).toBeLessThan(API_THROTTLE.burstLimit);
      // The stage is deployed after the route its settings name.
      const [routeId] = Object.entries(statelessTemplate.findResources('AWS::ApiGatewayV2::Route')).find(
        ([, route]) => (route.Properties as Json).RouteKey === key,
      ) ?? [undefined];
      expect(routeId, key).toBeDefined();
      expect(apiStage.DependsOn, key).toEqual(expect.arrayContaining([routeId]));
    }
  });

  it(
    stage === 'prod'
      ? 'reserves the concurrency of the function list for each function, leaving the account at least 100 unreserved'
      : 'reserves no concurrency (an account with a low limit could not deploy), unless asked to',
    () => {
      const { stateless, statelessTemplate } = stageApp(stage);
      const reservations = functionNames.map(
        (name) =>
          propertiesOf(statelessTemplate, logicalId(stateless.functions[name])).ReservedConcurrentExecutions,
      );
      if (stage === 'prod') {
        expect(reservations).toEqual(functionNames.map((name) => functions[name].reservedConcurrency));
        const total = (reservations as number[]).reduce((sum, value) => sum + value, 0);
        expect(total).toBeLessThanOrEqual(ACCOUNT_CONCURRENCY_LIMIT - MINIMUM_UNRESERVED_CONCURRENCY);
      } else {
        expect(reservations.every((value) => value === undefined)).toBe(true);
      }
    },
  );

  it('gives each function exactly the resource variables its grants name', () => {
    for (const name of functionNames) {
      const expected = new Set(functions[name].grants.map((resourceGrant) => grantVariables[resourceGrant]));
      const actual = Object.keys(environmentOf(stage, name)).filter((variable) =>
        resourceVariables.has(variable),
      );
      expect(new Set(actual), name).toEqual(expected);
    }
  });

  it('gives the public function no access to the table, the buckets, the queues or the signing key', () => {
    const { stateless } = stageApp(stage);
    const environment = environmentOf(stage, 'public');
    expect(environment).not.toHaveProperty('TABLE_NAME');
    expect(actionsOf(stage, 'public').filter((action) => /^(dynamodb|s3|sqs):/.test(action))).toEqual([]);
    // Its only secret is the origin-verify value.
    const secrets = statementsOf(stage, 'public').filter((statement) =>
      statement.Action.some((action) => action.startsWith('secretsmanager:')),
    );
    expect(secrets.flatMap((statement) => statement.Resource)).toEqual([
      { Ref: logicalId(stateless.originVerifySecret) },
    ]);
  });

  it('tells every function behind the API where the origin-verify secret is and lets it read it; no worker', () => {
    const { stateless, statelessTemplate } = stageApp(stage);
    const secret = { Ref: logicalId(stateless.originVerifySecret) };
    statelessTemplate.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('CloudFront adds'),
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'current', SecretStringTemplate: '{}' }),
    });
    for (const name of functionNames) {
      const http = functions[name].kind === 'http';
      expect(environmentOf(stage, name).ORIGIN_VERIFY_SECRET_ARN, name).toEqual(http ? secret : undefined);
      expect(actionsOn(stage, name, secret).includes('secretsmanager:GetSecretValue'), name).toBe(http);
    }
  });

  it('lets the batch worker read and write the table and the batch bucket, read models and re-enqueue', () => {
    const environment = environmentOf(stage, 'batch-worker');
    for (const variable of ['TABLE_NAME', 'MODELS_BUCKET', 'BATCH_BUCKET', 'BATCH_QUEUE_URL']) {
      expect(environment).toHaveProperty(variable);
    }
    expect(actionsOf(stage, 'batch-worker')).toEqual(
      expect.arrayContaining([
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:Query',
        's3:GetObject',
        's3:PutObject',
        'sqs:SendMessage',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
      ]),
    );
  });

  it('grants each function the table actions the code calls: no Scan, BatchWriteItem or stream action, DeleteItem for auth only', () => {
    const read = [
      'dynamodb:BatchGetItem table',
      'dynamodb:GetItem table',
      'dynamodb:Query table',
      'dynamodb:Query table/index/*',
    ];
    const write = [
      'dynamodb:ConditionCheckItem table',
      'dynamodb:PutItem table',
      'dynamodb:UpdateItem table',
    ];
    const expected: Record<FunctionName, string[]> = {
      public: [],
      auth: [...read, ...write, 'dynamodb:DeleteItem table'],
      account: [...read, ...write],
      models: [...read, ...write],
      predict: [...read, ...write],
      reports: read,
      batches: [...read, ...write],
      'model-validator': [...read, ...write],
      'batch-worker': [...read, ...write],
      'webhook-dispatcher': [...read, ...write],
      reconciler: [...read, ...write],
    };
    for (const name of functionNames) {
      const table = rightsOf(stage, name).filter((right) => right.startsWith('dynamodb:'));
      expect(table, name).toEqual([...expected[name]].sort());
    }
  });

  it('grants S3 rights on the key prefixes the code uses, the batch worker included DeleteObject of the segments it assembled', () => {
    // Uploaded models, and the demo models the seed registers (ModelService.registerBundled).
    const modelReads = [
      's3:GetObject models-bucket/bundled/*',
      's3:GetObject models-bucket/uploads/*',
      's3:ListBucket models-bucket',
    ];
    const expected: Record<FunctionName, string[]> = {
      public: [],
      auth: [],
      account: [],
      reports: [],
      'webhook-dispatcher': [],
      reconciler: [],
      // Presigned uploads of model files (single PUTs: nothing to abort).
      models: ['s3:PutObject models-bucket/uploads/*'],
      predict: [...modelReads],
      'model-validator': [...modelReads],
      // Presigned uploads into the inbox, presigned downloads of results.
      batches: ['s3:GetObject batch-bucket/results/*', 's3:PutObject batch-bucket/inbox/*'],
      'batch-worker': [
        's3:AbortMultipartUpload batch-bucket/results/*',
        's3:DeleteObject batch-bucket/results/*.parts/*',
        's3:GetObject batch-bucket/inbox/*',
        's3:GetObject batch-bucket/results/*',
        's3:ListBucket batch-bucket',
        's3:PutObject batch-bucket/results/*',
        ...modelReads,
      ],
    };
    for (const name of functionNames) {
      const objects = rightsOf(stage, name).filter((right) => right.startsWith('s3:'));
      expect(objects, name).toEqual([...expected[name]].sort());
    }
  });

  it('sends to the notification queue from predict and the batch worker only; the dispatcher only pushes its messages back', () => {
    const onQueue = (name: FunctionName) =>
      rightsOf(stage, name)
        .filter((right) => right.endsWith(' notification-queue'))
        .map((right) => right.split(' ')[0]);
    for (const name of ['predict', 'batch-worker'] as const) {
      expect(onQueue(name), name).toContain('sqs:SendMessage');
    }
    for (const name of functionNames.filter((n) => n !== 'predict' && n !== 'batch-worker')) {
      expect(onQueue(name), name).not.toContain('sqs:SendMessage');
    }
    // The event source's consumer rights, and the visibility change the backoff makes with the queue URL.
    expect(onQueue('webhook-dispatcher')).toContain('sqs:ChangeMessageVisibility');
    expect(environmentOf(stage, 'webhook-dispatcher')).toHaveProperty('NOTIFICATION_QUEUE_URL');
    expect(onQueue('reconciler')).toEqual([]);
    expect(environmentOf(stage, 'reconciler')).not.toHaveProperty('NOTIFICATION_QUEUE_URL');
  });

  it('lets the functions that sign or verify tokens read the signing key secret, and no other', () => {
    const { stateless, statelessTemplate } = stageApp(stage);
    // The signing key and the origin-verify value.
    statelessTemplate.resourceCountIs('AWS::SecretsManager::Secret', 2);
    statelessTemplate.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('access tokens'),
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'current', SecretStringTemplate: '{}' }),
    });
    const signingKey = { Ref: logicalId(stateless.signingKey) };
    for (const name of functionNames) {
      const reads = (functions[name].grants as readonly ResourceGrant[]).includes('signing-key:read');
      const environment = environmentOf(stage, name);
      if (reads) expect(environment.SIGNING_KEY_SECRET_ARN).toEqual(signingKey);
      expect(actionsOn(stage, name, signingKey).includes('secretsmanager:GetSecretValue'), name).toBe(reads);
    }
  });

  it('attaches the onnxruntime layer, with one intra-op thread, only to the functions that run models', () => {
    const { stateless, statelessTemplate } = stageApp(stage);
    statelessTemplate.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    statelessTemplate.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleRuntimes: ['nodejs24.x'],
      CompatibleArchitectures: ['x86_64'],
    });
    const layer = { Ref: logicalId(stateless.onnxRuntimeLayer) };
    for (const name of functionNames) {
      const properties = propertiesOf(statelessTemplate, logicalId(stateless.functions[name]));
      const environment = environmentOf(stage, name);
      if (functions[name].usesOnnxRuntime) {
        expect(properties.Layers, name).toEqual([layer]);
        expect(environment.ORT_INTRA_OP_THREADS, name).toBe('1');
      } else {
        expect(properties.Layers, name).toBeUndefined();
        expect(environment, name).not.toHaveProperty('ORT_INTRA_OP_THREADS');
      }
    }
  });

  it('passes the stage settings to every function', () => {
    const settings = stageSettings(stage);
    for (const name of functionNames) {
      expect(environmentOf(stage, name), name).toMatchObject({
        STAGE: stage,
        LOG_LEVEL: settings.logLevel,
        SELF_SERVICE_TOP_UPS: stage === 'prod' ? 'false' : 'true',
        SIGNUP_BONUS: stage === 'prod' ? '0' : '100',
        CORS_ALLOWED_ORIGINS: settings.corsOrigins.join(','),
        POWERTOOLS_SERVICE_NAME: 'credit-predictions',
      });
    }
  });
});

describe('capacity that one tenant cannot exhaust', () => {
  it('caps every queue worker at or below its reservation, so a backlog waits in its queue', () => {
    for (const name of functionNames) {
      const definition = functions[name];
      if (definition.kind !== 'queue-worker') continue;
      expect(definition.maxConcurrency, name).toBeGreaterThanOrEqual(2);
      expect(definition.maxConcurrency, name).toBeLessThanOrEqual(definition.reservedConcurrency);
    }
  });

  it('keeps predict and auth their own concurrency however many batch files arrive', () => {
    const { stateless, statelessTemplate } = stageApp('prod');
    const reserved = (name: FunctionName) =>
      propertiesOf(statelessTemplate, logicalId(stateless.functions[name])).ReservedConcurrentExecutions;
    // A reservation is also a ceiling: the batch worker can never run more than its own...
    expect(reserved('batch-worker')).toBe(functions['batch-worker'].reservedConcurrency);
    // ...and nothing the batch worker does can take what predict and auth hold.
    expect(reserved('predict')).toBeGreaterThan(functions['batch-worker'].maxConcurrency);
    expect(reserved('auth')).toBeGreaterThan(0);
  });

  it('lets -c reservedConcurrency override the stage', () => {
    const dev = synthesize('dev', { reservedConcurrency: 'true' });
    const prod = synthesize('prod', { reservedConcurrency: 'false' });
    for (const name of functionNames) {
      expect(
        propertiesOf(dev.statelessTemplate, logicalId(dev.stateless.functions[name]))
          .ReservedConcurrentExecutions,
      ).toBe(functions[name].reservedConcurrency);
      expect(
        propertiesOf(prod.statelessTemplate, logicalId(prod.stateless.functions[name]))
          .ReservedConcurrentExecutions,
      ).toBeUndefined();
    }
    expect(() => synthesize('dev', { reservedConcurrency: 'yes' })).toThrow(/reservedConcurrency=yes/);
  });

  it('refuses to synthesize reservations that the account limit cannot hold', () => {
    const predict = functions.predict as { reservedConcurrency: number };
    const sized = predict.reservedConcurrency;
    predict.reservedConcurrency = ACCOUNT_CONCURRENCY_LIMIT;
    try {
      expect(() => synthesize('prod')).toThrow(/reserves \d+ concurrent executions.*at most 900/);
      expect(() => synthesize('dev')).not.toThrow();
    } finally {
      predict.reservedConcurrency = sized;
    }
  });
});

describe('the key patterns of the S3 grants', () => {
  /** An IAM resource pattern (`*` any run of characters, `/` included) as a regular expression. */
  const matches = (pattern: string, key: string) =>
    new RegExp(
      `^${pattern
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    ).test(key);

  it('cover the keys the service makes, and the segment pattern no results file', () => {
    expect(matches(`${MODEL_UPLOAD_PREFIX}*`, modelUploadKey('mdl_01ABC'))).toBe(true);
    expect(matches(`${BATCH_INBOX_PREFIX}*`, inboxKey('usr_1', 'mdl_1', 'bat_1', 'csv'))).toBe(true);
    expect(matches(`${BATCH_RESULTS_PREFIX}*`, resultsKey('usr_1', 'bat_1', 'jsonl'))).toBe(true);
    expect(matches(`${BATCH_RESULTS_PREFIX}*`, segmentKey('usr_1', 'bat_1', 3))).toBe(true);
    expect(matches(RESULT_SEGMENTS_PATTERN, segmentKey('usr_1', 'bat_1', 3))).toBe(true);
    expect(matches(RESULT_SEGMENTS_PATTERN, resultsKey('usr_1', 'bat_1', 'csv'))).toBe(false);
    expect(matches(RESULT_SEGMENTS_PATTERN, inboxKey('usr_1', 'mdl_1', 'bat_1', 'csv'))).toBe(false);
  });
});

describe('CORS on the API', () => {
  it('allows the local front-end origins in dev with the headers clients send and read', () => {
    stageApp('dev').statelessTemplate.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: {
        AllowOrigins: ['http://localhost:3000', 'http://localhost:5173'],
        AllowHeaders: ['authorization', 'content-type', 'idempotency-key'],
        ExposeHeaders: ['x-request-id', 'retry-after'],
        AllowMethods: Match.anyValue(),
        MaxAge: Match.anyValue(),
      },
    });
  });

  it('allows no origin in prod unless the corsOrigins context names some', () => {
    stageApp('prod').statelessTemplate.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.absent(),
    });
    const named = synthesize('prod', { corsOrigins: 'https://app.example.com, https://admin.example.com' });
    named.statelessTemplate.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['https://app.example.com', 'https://admin.example.com'],
      }),
    });
    expect(environmentOf('prod', 'public').CORS_ALLOWED_ORIGINS).toBe('');
  });
});

describe('the grant helper', () => {
  // Every grant the function list may use, including those no function uses yet.
  const expectations: Record<ResourceGrant, string> = {
    'table:read': 'dynamodb:GetItem',
    'table:write': 'dynamodb:PutItem',
    'table:delete': 'dynamodb:DeleteItem',
    'models-bucket:read': 's3:GetObject',
    'models-bucket:write': 's3:PutObject',
    'batch-inbox:read': 's3:GetObject',
    'batch-inbox:write': 's3:PutObject',
    'batch-results:read': 's3:GetObject',
    'batch-results:write': 's3:DeleteObject',
    'batch-queue:send': 'sqs:SendMessage',
    'notification-queue:send': 'sqs:SendMessage',
    'notification-queue:delay': 'sqs:ChangeMessageVisibility',
    'signing-key:read': 'secretsmanager:GetSecretValue',
  };

  it.each(Object.entries(expectations) as [ResourceGrant, string][])(
    'turns %s into the IAM right (%s) and the variable naming the resource',
    (resourceGrant, action) => {
      const outdir = mkdtempSync(join(tmpdir(), 'credit-predictions-grant-'));
      outdirs.push(outdir);
      const app = new App({ outdir });
      const stateful = new StatefulStack(app, 'Stateful', { settings: stageSettings('dev') });
      const stack = new Stack(app, 'Consumer');
      const fn = new lambda.Function(stack, 'Fn', {
        runtime: lambda.Runtime.NODEJS_24_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('export const handler = async () => {};'),
      });
      const signingKey = new secretsmanager.Secret(stack, 'SigningKey');
      const { table, modelsBucket, batchBucket, batchQueue, notificationQueue } = stateful;
      grant(fn, resourceGrant, {
        table,
        modelsBucket,
        batchBucket,
        batchQueue,
        notificationQueue,
        signingKey,
      });

      const template = Template.fromStack(stack);
      const properties = propertiesOf(template, logicalId(fn));
      expect(properties.Environment).toEqual({
        Variables: { [grantVariables[resourceGrant]]: expect.anything() },
      });
      const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));
      expect(policies).toContain(`"${action}"`);
    },
  );
});
