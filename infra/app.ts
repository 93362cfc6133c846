/**
 * The CDK app: `cdk synth -c stage=prod -c alarmEmail=ops@example.com [-c corsOrigins=https://a.example,...]`.
 * Tests build the app through the same `buildApp` so that what they check is what gets deployed.
 * The stacks are environment-agnostic: synth needs no AWS account and no network.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { REPO_ROOT } from './paths.ts';
import { checkAlarmSubscriber, stageSettings } from './stage.ts';
import { StatefulStack } from './stateful-stack.ts';
import { StatelessStack } from './stateless-stack.ts';
import { parseEdgeOptions, WebStack } from './web-stack.ts';

/**
 * The context of cdk.json (feature flags). The CLI passes it to the app itself; it is read here too
 * so that an app built in a test has the same flags as the one the CLI synthesizes.
 */
function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

function commaList(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String);
  return String(value)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A `-c name=true|false` flag; undefined when not given. */
function booleanFlag(value: unknown, name: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`-c ${name}=${String(value)}: use true or false.`);
}

export interface AppOptions {
  /** Extra context, as `-c key=value` would give it (e.g. `stage`, `corsOrigins`, `aws:cdk:bundling-stacks`). */
  context?: Record<string, unknown>;
  /** Where the cloud assembly goes (default: what the CLI says, or a temporary directory). */
  outdir?: string;
}

export function buildApp({ context = {}, outdir }: AppOptions = {}) {
  const app = new App({ context: { ...cdkJsonContext(), ...context }, ...(outdir ? { outdir } : {}) });
  const stage = String(app.node.tryGetContext('stage') ?? 'dev');
  const corsOrigins = commaList(app.node.tryGetContext('corsOrigins'));
  const tracing = booleanFlag(app.node.tryGetContext('tracing'), 'tracing');
  const alarmEmail = app.node.tryGetContext('alarmEmail') as string | undefined;
  const reservedConcurrency = booleanFlag(
    app.node.tryGetContext('reservedConcurrency'),
    'reservedConcurrency',
  );
  const settings = stageSettings(stage, {
    ...(corsOrigins ? { corsOrigins } : {}),
    tracing,
    alarmEmail,
    reservedConcurrency,
  });
  checkAlarmSubscriber(settings);
  const edge = parseEdgeOptions((key) => app.node.tryGetContext(key));
  const prefix = `CreditPredictions-${settings.stage}`;

  const stateful = new StatefulStack(app, `${prefix}-stateful`, {
    settings,
    description: `Credit predictions (${settings.stage}): table, buckets and queues`,
    terminationProtection: settings.stage === 'prod',
  });
  const stateless = new StatelessStack(app, `${prefix}-stateless`, {
    settings,
    stateful,
    description: `Credit predictions (${settings.stage}): functions and HTTP API`,
  });
  const web = new WebStack(app, `${prefix}-web`, {
    settings,
    api: stateless.api,
    originVerifySecret: stateless.originVerifySecret,
    presignedBuckets: [stateful.modelsBucket, stateful.batchBucket],
    edge,
    description: `Credit predictions (${settings.stage}): web UI and the CloudFront origin in front of the API`,
  });

  Tags.of(app).add('project', 'credit-predictions');
  Tags.of(app).add('stage', settings.stage);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, settings, stateful, stateless, web };
}

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) buildApp().app.synth();
