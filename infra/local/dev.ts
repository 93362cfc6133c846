/**
 * `npm run dev`: the whole service on this machine. Starts the embedded AWS emulator unless
 * AWS_ENDPOINT_URL is set, provisions it from the CDK stateful stack, serves the API and the web UI
 * on PORT (default 3000), pumps the queues into the workers, and stops everything on Ctrl-C. The web
 * UI is built into web/dist while the emulator starts (SKIP_WEB_BUILD=1 serves the last build).
 */
import { startLocalStack } from './local-stack.ts';
import { buildWebApp, serveWebApp } from './static-site.ts';

const port = Number(process.env.PORT ?? 3000);
const externalEndpoint = process.env.AWS_ENDPOINT_URL;
const started = Date.now();
const log = (line: string) => console.log(`[dev] ${line}`);

const webBuild = process.env.SKIP_WEB_BUILD
  ? Promise.resolve()
  : buildWebApp().then(
      () => log(`web UI built in ${((Date.now() - started) / 1000).toFixed(1)} s`),
      (error: unknown) =>
        log(
          `the web UI did not build (the API still runs): ${error instanceof Error ? error.message : error}`,
        ),
    );

// The UI uploads files straight to presigned URLs of the emulator, so its policy must allow that origin.
let uploadOrigins: string[] = [];
const stack = await startLocalStack({
  port,
  endpoint: externalEndpoint,
  emulatorPort: Number(process.env.EMULATOR_PORT ?? 4566),
  prefix: process.env.RESOURCE_PREFIX ?? 'credit-predictions-dev',
  visibilityTimeoutSeconds: Number(process.env.LOCAL_VISIBILITY_TIMEOUT ?? 30),
  log,
  onRequest: (line) => console.log(line),
  staticFiles: serveWebApp({ connectSources: () => uploadOrigins }),
});
const emulatorUrl = new URL(stack.endpoint);
uploadOrigins = [emulatorUrl.origin, `${emulatorUrl.protocol}//localhost:${emulatorUrl.port}`];
await webBuild;

// The first admin of a local stack comes from configuration (a deployed stack uses `npm run admin:create`).
const adminEmail = process.env.ADMIN_EMAIL ?? 'admin@example.com';
const adminPassword = process.env.ADMIN_PASSWORD ?? 'admin-password';
const { services } = await import('../../shared/app/services.ts');
await services().users.ensureAdmin(adminEmail.trim().toLowerCase(), adminPassword);

const publicUrl = stack.url.replace('127.0.0.1', 'localhost');
log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
log(`Web UI     ${publicUrl}/`);
log(`API        ${publicUrl}/v1/health`);
log(`API docs   ${publicUrl}/docs`);
log(`OpenAPI    ${publicUrl}/openapi.json`);
log(`AWS        ${stack.endpoint} (${externalEndpoint ? 'external emulator' : 'embedded moto'})`);
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
