/**
 * Starts one embedded AWS emulator for the whole run (unless AWS_ENDPOINT_URL names one). Each test
 * file provisions resources of its own under a unique prefix, so files run in parallel. A failing
 * start fails the run loudly; nothing is skipped.
 */
import type { TestProject } from 'vitest/node';
import { startEmulator } from '../../infra/local/emulator.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.AWS_ENDPOINT_URL;
  if (external) {
    project.provide('awsEndpoint', external);
    return;
  }
  const emulator = await startEmulator({ log: (line) => console.log(line) });
  project.provide('awsEndpoint', emulator.endpoint);
  return async () => {
    await emulator.stop();
  };
}
