/**
 * `npm run dev`: the whole service on this machine. Checks its ports first, then starts the
 * embedded AWS emulator for every service that no `AWS_ENDPOINT_URL[_<SERVICE>]` names, provisions
 * it from the CDK stateful stack, serves the API and the web UI on PORT (default 3000), runs the
 * functions in Lambda-like containers, pumps the queues into the workers, and stops everything on
 * Ctrl-C. The web UI is built into web/dist while the emulator starts (SKIP_WEB_BUILD=1 serves the
 * last build). /v1/health answers 200 once the admin and the demo models exist.
 */
import { describeEndpoints, endpointsFromEnvironment, isComplete } from './aws-endpoints.ts';
import { freePort, portInUse } from './emulator.ts';
import { startLocalStack } from './local-stack.ts';
import { buildWebApp, serveWebApp } from './static-site.ts';

const DEFAULT_EMULATOR_PORT = 4566;
const port = Number(process.env.PORT ?? 3000);
const started = Date.now();
const log = (line: string) => console.log(`[dev] ${line}`);
const fail = (message: string): never => {
  console.error(`[dev] ${message}`);
  process.exit(1);
};

// Ports before anything slow: a second `npm run dev` should say so at once, not after a build.
if (await portInUse(port))
  fail(`Port ${port} is already in use (another \`npm run dev\`?). Stop it, or choose another with PORT=.`);
const external = endpointsFromEnvironment(process.env);
let emulatorPort: number | undefined;
if (!isComplete(external)) {
  if (process.env.EMULATOR_PORT) {
    emulatorPort = Number(process.env.EMULATOR_PORT);
    if (await portInUse(emulatorPort))
      fail(
        `EMULATOR_PORT ${emulatorPort} is already in use. Choose another, or leave it unset to pick a free one.`,
      );
  } else if (await portInUse(DEFAULT_EMULATOR_PORT)) {
    emulatorPort = await freePort();
    log(
      `port ${DEFAULT_EMULATOR_PORT} is taken (another stack?): the embedded emulator uses ${emulatorPort}`,
    );
  } else {
    emulatorPort = DEFAULT_EMULATOR_PORT;
  }
}

const webBuild = process.env.SKIP_WEB_BUILD
  ? Promise.resolve()
  : buildWebApp().then(
      () => log(`web UI built in ${((Date.now() - started) / 1000).toFixed(1)} s`),
      (error: unknown) =>
        log(
          `the web UI did not build (the API still runs): ${error instanceof Error ? error.message : error}`,
        ),
    );

// The first admin of a local stack comes from configuration (a deployed stack uses `npm run admin:create`).
const adminEmail = process.env.ADMIN_EMAIL ?? 'admin@example.com';
const adminPassword = process.env.ADMIN_PASSWORD ?? 'admin-password';

// The UI uploads files straight to presigned URLs of the S3 endpoint, so its policy must allow that origin.
let uploadOrigins: string[] = [];
const stack = await startLocalStack({
  port,
  endpoints: external,
  ...(emulatorPort ? { emulatorPort } : {}),
  prefix: process.env.RESOURCE_PREFIX ?? 'credit-predictions-dev',
  visibilityTimeoutSeconds: Number(process.env.LOCAL_VISIBILITY_TIMEOUT ?? 30),
  log,
  onRequest: (line) => console.log(line),
  staticFiles: serveWebApp({ connectSources: () => uploadOrigins }),
  beforeReady: async () => {
    const { services } = await import('../../shared/app/services.ts');
    await services().users.ensureAdmin(adminEmail.trim().toLowerCase(), adminPassword);
  },
});
const s3Url = new URL(stack.endpoints.s3);
uploadOrigins = [s3Url.origin, `${s3Url.protocol}//localhost:${s3Url.port}`];
await webBuild;

const publicUrl = stack.url.replace('127.0.0.1', 'localhost');
log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
log(`Web UI     ${publicUrl}/`);
log(`API        ${publicUrl}/v1/health`);
log(`API docs   ${publicUrl}/docs`);
log(`OpenAPI    ${publicUrl}/openapi.json`);
log(
  `AWS        ${describeEndpoints(stack.endpoints)}${emulatorPort ? ' (embedded moto where not set)' : ''}`,
);
log(
  `Admin      ${adminEmail}${process.env.ADMIN_PASSWORD ? '' : ` / ${adminPassword} (set ADMIN_EMAIL and ADMIN_PASSWORD to choose)`}`,
);
log('Press Ctrl-C to stop.');

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
