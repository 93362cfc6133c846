import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { startLocalStack } from '../../infra/local/local-stack.ts';
import { useLocalStack } from '../support/local-stack.ts';

const local = useLocalStack();

describe('the local service', () => {
  it('answers the health check', async () => {
    const response = await fetch(`${local.url}/v1/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toMatch(/.+/);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('publishes an OpenAPI 3.1 document generated from the route table', async () => {
    const response = await fetch(`${local.url}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toContain('/v1/health');
    expect(document.components.schemas).toHaveProperty('Problem');
  });

  it('serves Swagger UI and its assets at /docs', async () => {
    const page = await fetch(`${local.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('SwaggerUIBundle');
    const script = await fetch(new URL('docs/swagger-ui-bundle.js', `${local.url}/docs`));
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100_000);
    const missing = await fetch(`${local.url}/docs/secrets.txt`);
    expect(missing.status).toBe(404);
  });

  it('answers an unknown path with a problem+json 404', async () => {
    const response = await fetch(`${local.url}/v1/nothing-here`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const body = (await response.json()) as { detail: string };
    expect(body).toMatchObject({ type: '/problems/not-found', status: 404, title: 'Not found' });
    expect(body.detail).toContain('/v1/nothing-here');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it('answers a known path with the wrong method with a problem+json 405 naming the allowed methods', async () => {
    const response = await fetch(`${local.url}/v1/health`, { method: 'DELETE' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET');
    expect(await response.json()).toMatchObject({ type: '/problems/method-not-allowed', status: 405 });
  });
});

describe('a starting stack', () => {
  it('answers /v1/health 503 until the work before ready (the local admin) is done, then 200', async () => {
    const seen: number[] = [];
    const stack = await startLocalStack({
      port: 0,
      endpoints: inject('awsEndpoints'),
      prefix: `t${randomBytes(4).toString('hex')}`,
      beforeReady: async (url) => {
        seen.push((await fetch(`${url}/v1/health`)).status);
      },
    });
    try {
      seen.push((await fetch(`${stack.url}/v1/health`)).status);
      expect(seen).toEqual([503, 200]);
    } finally {
      await stack.stop();
    }
  });
});
