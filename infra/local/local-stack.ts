/**
 * The whole service on one machine: the AWS services (each from the endpoint the SDK's variables
 * name, the embedded moto for any they don't), resources provisioned from the CDK stateful stack,
 * the functions bundled and run in Lambda-like containers, the local gateway and the queue pump.
 * `npm run dev`, the bench and every integration test start it through here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reloadConfig } from '../../shared/config.ts';
import { type AwsEndpoints, endpointEnvironment, isComplete, LOCAL_SERVICES } from './aws-endpoints.ts';
import { type Emulator, startEmulator } from './emulator.ts';
import { functionBundles } from './function-bundles.ts';
import { type Gateway, startGateway } from './gateway.ts';
import { type LambdaRuntime, startLambdaRuntime } from './lambda-runtime.ts';
import { type LocalResources, provisionLocalResources, resourceEnvironment } from './provision.ts';
import { type QueuePump, startQueuePump } from './queue-pump.ts';
import { seedDemoModels } from './seed.ts';

export interface LocalStackOptions {
  /** Gateway port; 0 picks a free one. */
  port: number;
  /**
   * Emulators that are already running, per service (LocalStack, the tests' shared moto); a
   * service with none gets an embedded moto started here.
   */
  endpoints?: Partial<AwsEndpoints>;
  /** Port for an embedded emulator started here (a free one if omitted). */
  emulatorPort?: number;
  /** Prefix of every resource name. */
  prefix: string;
  visibilityTimeoutSeconds?: number;
  /** Extra environment for the functions (configuration they read at cold start). */
  environment?: Record<string, string>;
  /** Containers per function (each function's `maxLocalContainers` unless set). */
  maxContainers?: number;
  /** Whether the S3 endpoint delivers bucket notifications (SeaweedFS has none). Default true. */
  bucketNotifications?: boolean;
  /** Work to finish before the gateway answers (the local admin): health is 200 only after it. */
  beforeReady?: (url: string) => Promise<void>;
  log?: (line: string) => void;
  onRequest?: (line: string) => void;
  staticFiles?: (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;
}

export interface LocalStack {
  url: string;
  endpoints: AwsEndpoints;
  region: string;
  resources: LocalResources;
  runtime: LambdaRuntime;
  pump: QueuePump;
  stop(): Promise<void>;
}

export const LOCAL_REGION = 'us-east-1';

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  // The functions' settings first: they may name the credentials an emulator wants (SeaweedFS
  // accepts one identity), which provisioning below signs with too.
  Object.assign(process.env, options.environment);
  // Other emulators accept any credentials; the SDK only needs some to sign with.
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  const given = { ...options.endpoints };
  let emulator: Emulator | undefined;
  let gateway: Gateway | undefined;
  let pump: QueuePump | undefined;
  let runtime: LambdaRuntime | undefined;
  try {
    const [bundles] = await Promise.all([
      functionBundles(log),
      (async () => {
        if (isComplete(given)) return;
        emulator = await startEmulator({
          log,
          ...(options.emulatorPort ? { port: options.emulatorPort } : {}),
        });
        for (const service of LOCAL_SERVICES) given[service] ??= emulator.endpoint;
      })(),
    ]);
    if (!isComplete(given)) throw new Error('No AWS endpoint');
    const endpoints: AwsEndpoints = given;
    const resources = await provisionLocalResources(
      { endpoints, region: LOCAL_REGION },
      {
        prefix: options.prefix,
        bucketNotifications: options.bucketNotifications ?? true,
        ...(options.visibilityTimeoutSeconds
          ? { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds }
          : {}),
      },
    );
    // What a Lambda function gets from its stack. This process keeps a copy too: the seeding below,
    // the admin command and the tests' own checks use the same use cases against the same resources.
    const functionEnvironment = {
      STAGE: 'dev',
      AWS_REGION: LOCAL_REGION,
      ...endpointEnvironment(endpoints),
      ...resourceEnvironment(resources),
      ...options.environment,
    };
    Object.assign(process.env, functionEnvironment);
    const settings = reloadConfig();
    runtime = startLambdaRuntime({
      bundles,
      environment: { ...process.env },
      ...(options.maxContainers ? { maxContainers: options.maxContainers } : {}),
      log,
    });
    gateway = await startGateway({
      port: options.port,
      runtime,
      // The functions' own setting (CORS_ALLOWED_ORIGINS, or the stage's default origins).
      corsOrigins: settings.corsAllowedOrigins,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      ...(options.staticFiles ? { staticFiles: options.staticFiles } : {}),
    });
    await seedDemoModels();
    pump = startQueuePump(
      [
        { worker: 'model-validator', queueUrl: resources.modelQueueUrl },
        { worker: 'batch-worker', queueUrl: resources.batchQueueUrl },
        { worker: 'webhook-dispatcher', queueUrl: resources.notificationQueueUrl },
      ],
      { endpoint: endpoints.sqs, region: LOCAL_REGION, runtime },
      (message, error) => log(`${message}${error ? `: ${(error as Error).message ?? String(error)}` : ''}`),
    );
    await options.beforeReady?.(gateway.url);
    gateway.markReady();
    const started = { gateway, pump, runtime };
    return {
      url: gateway.url,
      endpoints,
      region: LOCAL_REGION,
      resources,
      runtime,
      pump,
      async stop() {
        await started.gateway.close();
        await Promise.all([started.pump.stop(), started.runtime.stop()]);
        await emulator?.stop();
      },
    };
  } catch (error) {
    await gateway?.close();
    await Promise.all([pump?.stop(), runtime?.stop()]);
    await emulator?.stop();
    throw error;
  }
}
