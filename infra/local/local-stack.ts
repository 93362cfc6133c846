/**
 * The whole service on one machine: the AWS emulator (embedded moto unless AWS_ENDPOINT_URL names
 * another), resources provisioned from the CDK stateful stack, the local gateway and the queue pump.
 * `npm run dev` and every integration test start it through here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reloadConfig } from '../../shared/config.ts';
import { type Emulator, startEmulator } from './emulator.ts';
import { type Gateway, startGateway } from './gateway.ts';
import { type LocalResources, provisionLocalResources, resourceEnvironment } from './provision.ts';
import { type QueuePump, startQueuePump } from './queue-pump.ts';
import { seedDemoModels } from './seed.ts';

export interface LocalStackOptions {
  /** Gateway port; 0 picks a free one. */
  port: number;
  /** An emulator that is already running (LocalStack, or the tests' shared moto); none starts one. */
  endpoint?: string | undefined;
  /** Port for an embedded emulator started here. */
  emulatorPort?: number;
  /** Prefix of every resource name. */
  prefix: string;
  visibilityTimeoutSeconds?: number;
  /** Extra environment for the functions (configuration they read at cold start). */
  environment?: Record<string, string>;
  log?: (line: string) => void;
  onRequest?: (line: string) => void;
  staticFiles?: (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;
}

export interface LocalStack {
  url: string;
  endpoint: string;
  region: string;
  resources: LocalResources;
  pump: QueuePump;
  stop(): Promise<void>;
}

export const LOCAL_REGION = 'us-east-1';

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  // Emulators accept any credentials; the SDK only needs some to sign with.
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  let emulator: Emulator | undefined;
  if (!options.endpoint) {
    emulator = await startEmulator({ log, ...(options.emulatorPort ? { port: options.emulatorPort } : {}) });
  }
  const endpoint = options.endpoint ?? emulator?.endpoint;
  if (!endpoint) throw new Error('No AWS endpoint');
  let gateway: Gateway | undefined;
  let pump: QueuePump | undefined;
  try {
    const resources = await provisionLocalResources(
      { endpoint, region: LOCAL_REGION },
      {
        prefix: options.prefix,
        ...(options.visibilityTimeoutSeconds
          ? { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds }
          : {}),
      },
    );
    // The functions run in this process and read their configuration from its environment, as a
    // Lambda function reads the variables its stack gave it.
    Object.assign(process.env, {
      STAGE: 'dev',
      AWS_REGION: LOCAL_REGION,
      AWS_ENDPOINT_URL: endpoint,
      ...resourceEnvironment(resources),
      ...options.environment,
    });
    reloadConfig();
    await seedDemoModels();
    pump = startQueuePump(
      [
        { worker: 'model-validator', queueUrl: resources.modelQueueUrl },
        { worker: 'batch-worker', queueUrl: resources.batchQueueUrl },
        { worker: 'webhook-dispatcher', queueUrl: resources.notificationQueueUrl },
      ],
      { endpoint, region: LOCAL_REGION },
      (message, error) => log(`${message}${error ? `: ${(error as Error).message ?? String(error)}` : ''}`),
    );
    gateway = await startGateway({
      port: options.port,
      corsOrigins: (process.env.CORS_ALLOWED_ORIGINS ?? 'http://localhost:3000,http://localhost:5173').split(
        ',',
      ),
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      ...(options.staticFiles ? { staticFiles: options.staticFiles } : {}),
    });
    const started = { gateway, pump };
    return {
      url: gateway.url,
      endpoint,
      region: LOCAL_REGION,
      resources,
      pump,
      async stop() {
        await started.gateway.close();
        await started.pump.stop();
        await emulator?.stop();
      },
    };
  } catch (error) {
    await gateway?.close();
    await pump?.stop();
    await emulator?.stop();
    throw error;
  }
}
