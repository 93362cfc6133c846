import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fromResult, toEvent } from '../../infra/local/gateway.ts';

function request(method: string, url: string, headers: Record<string, string | string[]>): IncomingMessage {
  const message = Readable.from([]) as unknown as IncomingMessage;
  Object.assign(message, {
    method,
    url,
    headers,
    httpVersion: '1.1',
    socket: { remoteAddress: '127.0.0.9' },
  });
  return message;
}

describe('the local gateway', () => {
  it('builds an API Gateway v2 event: route key, path parameters, query, cookies, lower-case headers', () => {
    const event = toEvent(
      request('POST', '/v1/models/iris/predictions?a=1&a=2&b=x', {
        'content-type': 'application/json',
        cookie: 'session=abc; theme=dark',
        'x-custom': ['one', 'two'],
      }),
      Buffer.from('{"inputs":{}}'),
      'localhost:3000',
    );
    expect(event.routeKey).toBe('POST /v1/models/{modelId}/predictions');
    expect(event.pathParameters).toEqual({ modelId: 'iris' });
    expect(event.queryStringParameters).toEqual({ a: '1,2', b: 'x' });
    expect(event.rawQueryString).toBe('a=1&a=2&b=x');
    expect(event.cookies).toEqual(['session=abc', 'theme=dark']);
    expect(event.headers).toMatchObject({ 'content-type': 'application/json', 'x-custom': 'one,two' });
    expect(event.headers.cookie).toBeUndefined();
    expect(event.body).toBe('{"inputs":{}}');
    expect(event.isBase64Encoded).toBe(false);
    expect(event.requestContext.http).toMatchObject({
      method: 'POST',
      path: '/v1/models/iris/predictions',
      sourceIp: '127.0.0.9',
    });
  });

  it('sends binary bodies base64-encoded and unmatched paths to $default', () => {
    const bytes = Buffer.from([0, 1, 2, 250]);
    const event = toEvent(
      request('PUT', '/nowhere', { 'content-type': 'application/octet-stream' }),
      bytes,
      'localhost',
    );
    expect(event.routeKey).toBe('$default');
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body ?? '', 'base64')).toEqual(bytes);
  });

  it('returns a function answer faithfully: status, headers, cookies and base64 bodies decoded', () => {
    const answer = fromResult({
      statusCode: 201,
      headers: { 'content-type': 'image/png', 'x-id': 'a' },
      cookies: ['a=1; HttpOnly', 'b=2'],
      body: Buffer.from([137, 80, 78, 71]).toString('base64'),
      isBase64Encoded: true,
    });
    expect(answer.statusCode).toBe(201);
    expect(answer.headers).toEqual({ 'content-type': 'image/png', 'x-id': 'a' });
    expect(answer.cookies).toEqual(['a=1; HttpOnly', 'b=2']);
    expect([...answer.body]).toEqual([137, 80, 78, 71]);
  });

  it('treats a bare object or string answer as JSON with status 200, as API Gateway does', () => {
    const object = fromResult({ hello: 'world' });
    expect(object.statusCode).toBe(200);
    expect(object.headers['content-type']).toBe('application/json');
    expect(JSON.parse(object.body.toString())).toEqual({ hello: 'world' });
    expect(fromResult(undefined)).toMatchObject({ statusCode: 200 });
  });
});
