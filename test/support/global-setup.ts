/**
 * Starts one embedded AWS emulator for the whole run, for every service that no
 * `AWS_ENDPOINT_URL[_<SERVICE>]` names (the AWS-fidelity suite names S3 and SQS on LocalStack), and
 * bundles the functions once for the local runtime. Each test file provisions resources of its own
 * under a unique prefix, so files run in parallel. A failing start fails the run loudly; nothing is
 * skipped.
 */
import type { TestProject } from 'vitest/node';
import {
  type AwsEndpoints,
  endpointsFromEnvironment,
  isComplete,
  LOCAL_SERVICES,
} from '../../infra/local/aws-endpoints.ts';
import { startEmulator } from '../../infra/local/emulator.ts';
import { functionBundles } from '../../infra/local/function-bundles.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoints: AwsEndpoints;
  }
}

export default async function setup(project: TestProject) {
  await functionBundles((line) => console.log(line));
  const endpoints = endpointsFromEnvironment(process.env);
  if (isComplete(endpoints)) {
    project.provide('awsEndpoints', endpoints);
    return;
  }
  const emulator = await startEmulator({ log: (line) => console.log(line) });
  for (const service of LOCAL_SERVICES) endpoints[service] ??= emulator.endpoint;
  if (!isComplete(endpoints)) throw new Error('unreachable: every service has an endpoint');
  project.provide('awsEndpoints', endpoints);
  return async () => {
    await emulator.stop();
  };
}
