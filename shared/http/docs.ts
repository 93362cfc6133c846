/**
 * Swagger UI, served by the service itself so /docs works offline. In a Lambda bundle the two assets
 * are copied next to the code (see the stateless stack); locally they come from swagger-ui-dist.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '../domain/errors.ts';
import { type MediaResult, text } from './responses.ts';

const assets: Record<string, string> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
};

function assetDirectory(): string {
  const bundled = join(dirname(fileURLToPath(import.meta.url)), 'swagger-ui');
  if (existsSync(bundled)) return bundled;
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

const cache = new Map<string, string>();

export async function docsAsset(name: string | undefined): Promise<MediaResult<200>> {
  const contentType = name ? assets[name] : undefined;
  if (!name || !contentType) throw new NotFoundError(`There is no documentation asset named ${name ?? ''}.`);
  let body = cache.get(name);
  if (body === undefined) {
    body = await readFile(join(assetDirectory(), name), 'utf8');
    cache.set(name, body);
  }
  return text(200, body, contentType, { 'Cache-Control': 'public, max-age=86400' });
}

export function docsPage(): MediaResult<200, 'text/html'> {
  return text(
    200,
    `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Credit predictions API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: new URL('openapi.json', document.baseURI).href, dom_id: '#swagger-ui' });
  </script>
</body>
</html>`,
    'text/html; charset=utf-8',
    { 'Cache-Control': 'public, max-age=300' },
  );
}
